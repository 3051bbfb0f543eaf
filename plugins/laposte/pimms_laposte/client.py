"""Translation between La Poste's APIs (contract: shared/partners/laposte.md) and pimms' models.

Tracking is the public Suivi v2 API, followed exactly: the "account" is a shipment. Claims use
La Poste's mediation API, which has no idempotency header: the caller's key travels as
`referenceExterne` and `find_claim` looks it up, which the core does before every send.
Transport, auth and error policy are the core's: this module builds paths and bodies, reads
La Poste's two error shapes (`returnCode`/`returnMessage`, and the gateway's `code`/`message`),
and reads payloads into models.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from pimms_core.context import PartnerContext
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidReference,
    PartnerAuthError,
    PartnerProtocolError,
)
from pimms_core.http import ErrorFactory, json_body, json_or_none, raise_for_status, url_path
from pimms_core.models import (
    Account,
    AccountEvent,
    AccountQuery,
    Claim,
    ClaimRequest,
    ClaimStatus,
    Service,
    StatusChange,
)
from pimms_core.payload import Payload
from pimms_laposte.info import EVENT_STATUS, HOLDERS

TRACKING_PATH = "/suivi/v2/idships/{}"
CLAIMS_PATH = "/reclamation/v1/reclamations"
CLAIM_PATH = CLAIMS_PATH + "/{}"
DEFAULT_LABEL = "Envoi La Poste"
_GATEWAY_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


# --- Errors -------------------------------------------------------------------------------------


def _gateway_code(response: httpx.Response) -> str | None:
    """The Okapi gateway's code (`{"code": "TOO_MANY_REQUESTS", ...}`), if it looks like one.

    Only an upper-case identifier is kept, so no free text of the partner reaches a message.
    """
    body = json_or_none(response)
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and _GATEWAY_CODE.fullmatch(code) else None


def _key_refused(partner_id: str) -> PartnerAuthError:
    return PartnerAuthError(partner_id, "La Poste refused the Okapi key")


def _check(
    response: httpx.Response,
    partner: PartnerContext,
    *,
    by_status: dict[int, ErrorFactory] | None = None,
    **rules: ErrorFactory,
) -> None:
    """The core's mapping, with La Poste's wording for a refused key and its gateway codes."""
    if response.is_success:
        return
    raise_for_status(
        response,
        partner.id,
        partner_code=_gateway_code(response),
        by_status={401: _key_refused, 403: _key_refused, **(by_status or {})},
        **rules,
    )


def _invalid_reference(partner: PartnerContext) -> ErrorFactory:
    fmt = partner.info.reference
    return lambda pid: InvalidReference(
        pid, fmt.hint, fmt.example, reason="La Poste says this tracking number is not valid"
    )


# --- Tracking (Suivi v2) ------------------------------------------------------------------------


def _tracking_unit(response: httpx.Response, partner: PartnerContext) -> Payload:
    """The one unit answer for one idShip: a bare object, or a one-element array of it."""
    body = json_body(response, partner.id)
    if isinstance(body, list):
        if len(body) != 1:
            raise PartnerProtocolError(
                partner.id, f"expected one tracking answer for one number, got {len(body)}"
            )
        body = body[0]
    if not isinstance(body, dict):
        raise PartnerProtocolError(partner.id, "expected a JSON object in the tracking answer")
    unit = Payload(body, partner.id)
    code = unit.raw("returnCode")
    if isinstance(code, int) and not isinstance(code, bool) and code != 200:
        # A unit inside an array carries its own status (the HTTP one may be 200 or 207).
        if code == 404:
            raise AccountNotFound(partner.id)
        if code == 400:
            raise _invalid_reference(partner)(partner.id)
        raise PartnerProtocolError(partner.id, f"the tracking answer holds returnCode {code}")
    return unit


def fetch_shipment(partner: PartnerContext, id_ship: str) -> Payload:
    """Suivi v2's `shipment` object for one tracking number."""
    response = partner.http.get(
        url_path(TRACKING_PATH, id_ship), params={"lang": partner.settings["lang"]}
    )
    _check(
        response,
        partner,
        not_found=AccountNotFound,  # JSON or not: some 404s come with a plain-text body
        by_status={400: _invalid_reference(partner)},
    )
    return _tracking_unit(response, partner).obj("shipment")


def lookup_account(partner: PartnerContext, query: AccountQuery) -> Account:
    shipment = fetch_shipment(partner, query.reference)
    if not isinstance(shipment.raw("event"), list):
        raise PartnerProtocolError(partner.id, "field shipment.event is missing or not a list")
    events = [
        AccountEvent(
            code=event.text("code"),
            label=event.opt_text("label") or "",
            at=event.opt_timestamp("date"),
        )
        for event in shipment.objects("event")
    ]
    latest = events[0].code if events else ""  # event[0] is the most recent
    status = shipment_status(latest, is_final=shipment.flag("isFinal"))
    label = _label(shipment)
    return Account(
        partner=partner.id,
        reference=shipment.text("idShip"),
        holder_name=label,  # a shipment has no holder to name: the product stands in
        status=status,
        partner_status=latest,
        services=[_service(shipment, label, status)],
        events=events,
        raw=shipment.data,
    )


def shipment_status(latest_code: str, *, is_final: bool) -> str:
    """The common status word of a shipment, from its latest event code."""
    known = EVENT_STATUS.get(latest_code)
    if known is not None:
        return known
    return "unknown" if is_final else "in_transit"


def _holder(shipment: Payload) -> int | None:
    return shipment.integer("holder") if shipment.has("holder") else None


def _label(shipment: Payload) -> str:
    """A neutral name for the shipment: the business (Colissimo...) and the product."""
    holder = HOLDERS.get(_holder(shipment) or 0)
    product = (shipment.opt_text("product") or "").strip()
    if product and (holder is None or product.casefold() != holder.casefold()):
        return f"{holder} — {product}" if holder else product
    return holder or DEFAULT_LABEL


def _service(shipment: Payload, label: str, status: str) -> Service:
    """The parcel itself, with the dates and countries a mediator is asked about."""
    context = shipment.opt_obj("contextData")
    details: dict[str, str] = {}
    holder = _holder(shipment)
    if holder is not None:
        details["holder"] = str(holder)
    for key in ("product", "entryDate", "deliveryDate", "estimDate", "url"):
        value = shipment.opt_text(key)
        if value:
            details[key] = value
    details["isFinal"] = "true" if shipment.flag("isFinal") else "false"
    if context is not None:
        for key in ("originCountry", "arrivalCountry"):
            value = context.opt_text(key)
            if value:
                details[key] = value
    return Service(id=shipment.text("idShip"), label=label, status=status, details=details)


# --- Claims (mediation API) ---------------------------------------------------------------------


def open_claim(partner: PartnerContext, request: ClaimRequest) -> Claim:
    """POST a réclamation; the caller's key travels as `referenceExterne`."""
    body: dict[str, Any] = {
        "idShip": request.account_ref,
        "motif": request.partner_category,
        "description": request.description,
        "referenceExterne": request.idempotency_key,
    }
    if request.contact is not None:
        contact = {"email": request.contact.email, "telephone": request.contact.phone}
        if any(contact.values()):
            body["contact"] = {k: v for k, v in contact.items() if v}
    response = partner.http.post(CLAIMS_PATH, json=body)
    _check(
        response,
        partner,
        not_found=AccountNotFound,
        rejected=lambda pid: ClaimRejected(
            pid, "La Poste found the claim invalid; check the tracking number and the motif"
        ),
    )
    return _claim(partner, Payload.of(response, partner.id).obj("reclamation"))


def find_claim(partner: PartnerContext, idempotency_key: str) -> Claim | None:
    """The claim opened earlier with this `referenceExterne`, or None."""
    response = partner.http.get(CLAIMS_PATH, params={"referenceExterne": idempotency_key})
    _check(response, partner)
    found = Payload.of(response, partner.id)
    if not isinstance(found.raw("reclamations"), list):
        raise PartnerProtocolError(partner.id, "field reclamations is missing or not a list")
    for claim in found.objects("reclamations"):
        # Guard against a filter the server ignored: never take another caller's claim.
        if claim.raw("referenceExterne") in (None, idempotency_key):
            return _claim(partner, claim)
    return None


def _claim(partner: PartnerContext, claim: Payload) -> Claim:
    status = claim.text("statut")
    return Claim(
        partner=partner.id,
        claim_ref=claim.text("id"),
        state=partner.info.state_of(status),
        partner_status=status,
        opened_at=claim.timestamp("dateCreation"),
        response_due_by=claim.opt_day("dateReponseAttendue"),
        raw=claim.data,
    )


def claim_status(partner: PartnerContext, claim_ref: str) -> ClaimStatus:
    response = partner.http.get(url_path(CLAIM_PATH, claim_ref))
    _check(response, partner, not_found=ClaimNotFound)
    claim = Payload.of(response, partner.id).obj("reclamation")
    status = claim.text("statut")
    history = [
        StatusChange(
            state=partner.info.state_of(step.text("statut")),
            partner_status=step.text("statut"),
            at=step.opt_timestamp("date"),
            note=step.opt_text("commentaire") or "",
        )
        for step in claim.objects("historique")
    ]
    dated = [step.at for step in history if step.at is not None]  # historique is oldest first
    return ClaimStatus(
        partner=partner.id,
        claim_ref=claim.text("id"),
        state=partner.info.state_of(status),
        partner_status=status,
        partner_label=partner.info.label_of(status),
        updated_at=dated[-1] if dated else claim.opt_timestamp("dateCreation"),
        history=history,
        raw=claim.data,
    )
