"""Translation between Veolia's API (contract: shared/partners/veolia.md) and pimms' models.

Transport, auth and error policy are the core's: this module builds paths and bodies, reads
Veolia's `{"erreur": {"code", "libelle"}}` errors to pick the core's error, and reads Veolia's
payloads into models. A numéro client may hold several abonnements: the account lists them all
as services, and a demande names one of them (`ClaimRequest.service_id`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from pimms_core.context import PartnerContext
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidInput,
    InvalidReference,
    PartnerProtocolError,
)
from pimms_core.http import ErrorFactory, json_or_none, raise_for_status, url_path
from pimms_core.models import (
    Account,
    AccountQuery,
    Claim,
    ClaimRequest,
    ClaimStatus,
    Money,
    Service,
    StatusChange,
)
from pimms_core.payload import Payload
from pimms_veolia.seed import STATUT_ACTIF, STATUT_EN_COURS_DE_RESILIATION, STATUT_RESILIE

ABONNEMENTS_PATH = "/espace-client/v1/abonnements"
DEMANDES_PATH = "/demandes/v1/demandes"
DEMANDE_PATH = "/demandes/v1/demandes/{}"

ABONNEMENT_RESILIE = "ABONNEMENT_RESILIE"


# --- errors -------------------------------------------------------------------------------------


def _error_code(response: httpx.Response) -> str | None:
    """Veolia's machine-readable code: `erreur.code`, or `erreur` itself when it is a string.

    The `libelle` is never used in our messages: it may echo what was sent.
    """
    body = json_or_none(response)
    erreur = body.get("erreur") if isinstance(body, dict) else None
    if isinstance(erreur, dict):
        erreur = erreur.get("code")
    return erreur if isinstance(erreur, str) and erreur else None


def _check(
    response: httpx.Response,
    partner: PartnerContext,
    *,
    not_found: ErrorFactory,
    rejected: ErrorFactory | None = None,
) -> None:
    """The core's mapping, plus Veolia's own code for a demande on a terminated abonnement.

    A 204 to a GET is Veolia's "nothing here": `not_found`. (Any other 204 is left to the
    caller, whose body read reports it as a protocol error.)
    """
    if response.status_code == 204 and response.request.method == "GET":
        raise not_found(partner.id)
    if response.is_success:
        return
    code = _error_code(response)
    if response.status_code == 409 and code == ABONNEMENT_RESILIE:
        raise ClaimRejected(
            partner.id,
            "this subscription is terminated: only the category 'other' (AUTRE) can be opened",
            partner_code=code,
        )
    raise_for_status(
        response, partner.id, not_found=not_found, rejected=rejected, partner_code=code
    )


def _invalid_reference(partner: PartnerContext) -> ErrorFactory:
    fmt = partner.info.reference
    return lambda pid: InvalidReference(pid, fmt.hint, fmt.example, reason="Veolia refused it")


def _unknown_abonnement(partner_id: str) -> AccountNotFound:
    return AccountNotFound(partner_id, f"{partner_id}: Veolia does not know this subscription")


def _claim_refused(response: httpx.Response) -> ErrorFactory:
    """A refused demande, by Veolia's code (the body is read only if the error is raised)."""

    def refused(partner_id: str) -> ClaimRejected:
        code = _error_code(response)
        words = "Veolia found the demande invalid" + (f" ({code})" if code else "")
        return ClaimRejected(partner_id, words, partner_code=code)

    return refused


# --- account ------------------------------------------------------------------------------------


def fetch_abonnements(partner: PartnerContext, numero_client: str) -> list[Payload]:
    """Every abonnement of a numéro client; none (200 with an empty list, or 204) is not found."""
    response = partner.http.get(ABONNEMENTS_PATH, params={"numero_client": numero_client})
    _check(response, partner, not_found=AccountNotFound, rejected=_invalid_reference(partner))
    body = Payload.of(response, partner.id)
    if "abonnements" not in body:
        # Payload reads an absent list as empty; a renamed field must not pass for "no account".
        raise PartnerProtocolError(partner.id, "field abonnements is missing")
    abonnements = body.objects("abonnements")
    if not abonnements:
        raise AccountNotFound(partner.id)
    return abonnements


def lookup_account(partner: PartnerContext, query: AccountQuery) -> Account:
    abonnements = fetch_abonnements(partner, query.reference)
    first = abonnements[0]
    status, partner_status = _account_status([a.text("statut") for a in abonnements])
    soldes = [s for a in abonnements if (s := a.opt_number("facturation", "solde")) is not None]
    return Account(
        partner=partner.id,
        reference=query.reference,
        holder_name=first.text("titulaire"),
        status=status,
        partner_status=partner_status,
        address=first.opt_text("adresse_de_branchement"),
        services=[_service(a) for a in abonnements],
        balance=Money(round(sum(soldes), 2), "EUR") if soldes else None,
        raw={"abonnements": [a.data for a in abonnements]},
    )


def _account_status(statuts: list[str]) -> tuple[str, str]:
    """The account's common status and the statut that decided it.

    Active if any abonnement is, closing if one is being terminated, terminated if all are;
    an undeclared statut (and no active one) is kept raw as "unknown".
    """
    if STATUT_ACTIF in statuts:
        return "active", STATUT_ACTIF
    if STATUT_EN_COURS_DE_RESILIATION in statuts:
        return "closing", STATUT_EN_COURS_DE_RESILIATION
    unknown = [s for s in statuts if s != STATUT_RESILIE]
    if unknown:
        return "unknown", unknown[0]
    return "terminated", STATUT_RESILIE


def _service(abonnement: Payload) -> Service:
    details: dict[str, str] = {}
    for key in ("numero_client", "numero_compteur", "adresse_de_branchement"):
        value = abonnement.opt_text(key)
        if value is not None:
            details[key] = value
    facturation = abonnement.opt_obj("facturation")
    if facturation is not None:
        solde = facturation.opt_number("solde")
        if solde is not None:
            details["solde"] = f"{solde:.2f}"
        mode = facturation.opt_text("mode_paiement")
        if mode is not None:
            details["mode_paiement"] = mode
        index = facturation.opt_number("dernier_index_releve")
        if index is not None:
            details["dernier_index_releve"] = f"{index:g}"
        releve = facturation.opt_day("date_index_releve")
        if releve is not None:
            details["date_index_releve"] = releve.isoformat()
    return Service(
        id=abonnement.text("id_abonnement"),
        label=abonnement.opt_text("libelle_contrat") or "abonnement",
        status=abonnement.text("statut"),
        details=details,
    )


# --- claims -------------------------------------------------------------------------------------


def _choose_abonnement(partner: PartnerContext, request: ClaimRequest) -> str:
    """The abonnement a demande is about: the one named, else the only one.

    Abonnement ids are not personal data, so listing them tells the mediator what to pass.
    """
    ids = [a.text("id_abonnement") for a in fetch_abonnements(partner, request.account_ref)]
    listed = ", ".join(ids)
    if request.service_id is not None:
        if request.service_id in ids:
            return request.service_id
        raise InvalidInput(
            f"{partner.id}: this subscription id is not one of this customer's subscriptions: "
            f"expected one of {listed}",
            partner=partner.id,
        )
    if len(ids) == 1:
        return ids[0]
    raise InvalidInput(
        f"{partner.id}: this customer number holds {len(ids)} subscriptions: give the "
        f"subscription id the claim is about (service_id; --service on the command line), "
        f"one of {listed}",
        partner=partner.id,
    )


def _contact(request: ClaimRequest) -> dict[str, str] | None:
    if request.contact is None:
        return None
    contact = {"courriel": request.contact.email, "telephone": request.contact.phone}
    kept = {k: v for k, v in contact.items() if v}
    return kept or None


def open_claim(partner: PartnerContext, request: ClaimRequest) -> Claim:
    body: dict[str, Any] = {
        "id_abonnement": _choose_abonnement(partner, request),
        "type_demande": request.partner_category,
        "description": request.description,
    }
    contact = _contact(request)
    if contact is not None:
        body["contact"] = contact
    response = partner.http.post(
        DEMANDES_PATH, json=body, headers={"Idempotency-Key": request.idempotency_key}
    )
    _check(
        response,
        partner,
        not_found=_unknown_abonnement,
        rejected=_claim_refused(response),
    )
    demande = Payload.of(response, partner.id).obj("demande")
    etat = demande.text("etat")
    return Claim(
        partner=partner.id,
        claim_ref=demande.text("numero_demande"),
        state=partner.info.state_of(etat),
        partner_status=etat,
        opened_at=demande.timestamp("date_creation"),
        response_due_by=demande.opt_day("date_reponse_prevue"),
        replayed=response.status_code == 200,
        raw=demande.data,
    )


def claim_status(partner: PartnerContext, claim_ref: str) -> ClaimStatus:
    response = partner.http.get(url_path(DEMANDE_PATH, claim_ref))
    _check(response, partner, not_found=ClaimNotFound)
    demande = Payload.of(response, partner.id).obj("demande")
    etat = demande.text("etat")
    return ClaimStatus(
        partner=partner.id,
        claim_ref=demande.text("numero_demande"),
        state=partner.info.state_of(etat),
        partner_status=etat,
        partner_label=partner.info.label_of(etat),
        updated_at=demande.opt_timestamp("date_maj"),
        history=_history(partner, demande),
        raw=demande.data,
    )


def _history(partner: PartnerContext, demande: Payload) -> list[StatusChange]:
    """The `suivi`, oldest first (sorted by date when every step has a comparable one)."""
    history = [
        StatusChange(
            state=partner.info.state_of(step.text("etat")),
            partner_status=step.text("etat"),
            at=step.opt_timestamp("date"),
            note=step.opt_text("message") or "",
        )
        for step in demande.objects("suivi")
    ]
    dated = [(change.at, change) for change in history if change.at is not None]
    if len(dated) == len(history) and len({_aware(at) for at, _ in dated}) <= 1:
        history = [change for _, change in sorted(dated, key=lambda pair: pair[0])]
    return history


def _aware(moment: datetime | None) -> bool:
    return moment is not None and moment.tzinfo is not None
