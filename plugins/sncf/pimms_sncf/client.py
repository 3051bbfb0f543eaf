"""Translation between SNCF's relation-client API (contract: shared/partners/sncf.md) and pimms.

Transport, auth and error policy are the core's: this module builds paths, queries and bodies,
maps SNCF's error ids (`{"error": {"id", "message"}}`, or a bare `{"message"}` on 401/403) onto
the core's errors, and reads SNCF's payloads, whose dates are `YYYYMMDDTHHMMSS` in Paris time.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import date, datetime
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
    Contact,
    Money,
    Service,
    StatusChange,
)
from pimms_core.payload import Payload
from pimms_sncf.info import G30_DEADLINE_DAYS
from pimms_sncf.seed import PARIS, SNCF_DATETIME_FORMAT

BOOKING_PATH = "/v1/relation-client/dossiers/{}"
CLAIMS_PATH = "/v1/relation-client/reclamations"
CLAIM_PATH = "/v1/relation-client/reclamations/{}"

DUPLICATE_KEY = "duplicate_external_id"
TOO_LATE = "delai_depasse"
NOT_ELIGIBLE = "non_eligible"

REFUSALS = {
    TOO_LATE: f"G30 compensation must be claimed within {G30_DEADLINE_DAYS} days of the journey",
    NOT_ELIGIBLE: (
        "this journey is not eligible for the G30 guarantee, which covers TGV INOUI and "
        "Intercités trains arriving 30 minutes late or more"
    ),
}
"""SNCF's refusal ids, in words a mediator can repeat to the resident."""


# --- errors -------------------------------------------------------------------------------------


def _error(response: httpx.Response) -> dict[str, Any]:
    """SNCF's `error` object, or {} (401/403 bodies are a bare `{"message"}`, or not JSON)."""
    body = json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _error_id(response: httpx.Response) -> str | None:
    code = _error(response).get("id")
    return code if isinstance(code, str) else None


def _check(
    response: httpx.Response,
    partner: PartnerContext,
    *,
    not_found: ErrorFactory | None = None,
    rejected: ErrorFactory | None = None,
) -> None:
    """The core's mapping (401/403 bare bodies included), naming SNCF's error id if any."""
    if response.is_success:
        return
    raise_for_status(
        response,
        partner.id,
        not_found=not_found,
        rejected=rejected,
        partner_code=_error_id(response),
    )


def _booking_not_found(partner_id: str) -> AccountNotFound:
    # The same words for an unknown reference and a wrong name: SNCF cannot tell them apart.
    return AccountNotFound(
        partner_id,
        f"{partner_id}: no booking matches this reference and last name together; "
        "check both with the resident (they are on the e-ticket)",
    )


def _invalid_reference(partner: PartnerContext) -> ErrorFactory:
    fmt = partner.info.reference
    return lambda pid: InvalidReference(
        pid, fmt.hint, fmt.example, reason="SNCF refused this reference or last name"
    )


def _claim_refused(response: httpx.Response) -> ErrorFactory:
    """A 400/422 on a claim: G30 refusals in plain words, anything else by its SNCF id.

    The body is read only when the error is raised, not on every answer.
    """

    def refused(partner_id: str) -> ClaimRejected:
        code = _error_id(response)
        reason = REFUSALS.get(code or "")
        if reason is None:
            status = response.status_code
            what = "could not read the claim" if status == 400 else "refused the claim"
            reason = f"SNCF {what} ({code or f'HTTP {status}'})"
        return ClaimRejected(partner_id, reason, partner_code=code)

    return refused


def _need_last_name(partner: PartnerContext, last_name: str | None) -> str:
    if not last_name or not last_name.strip():
        raise InvalidInput(
            f"{partner.id}: a booking is only found with the traveller's last name: give it too",
            partner=partner.id,
        )
    return last_name.strip()


# --- dates and money ----------------------------------------------------------------------------


def _when(payload: Payload, key: str) -> datetime:
    """An SNCF date-time (`YYYYMMDDTHHMMSS`, Paris local time) as an aware datetime."""
    return payload.timestamp(key, fmt=SNCF_DATETIME_FORMAT).replace(tzinfo=PARIS)


def _opt_when(payload: Payload, key: str) -> datetime | None:
    return _when(payload, key) if payload.has(key) else None


def _money(payload: Payload | None, amount_key: str) -> Money | None:
    if payload is None:
        return None
    return Money(payload.number(amount_key), payload.opt_text("devise") or "EUR")


def _one_month_after(moment: datetime) -> date:
    """SNCF answers within one calendar month (31 January → end of February)."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return date(year, month, min(moment.day, calendar.monthrange(year, month)[1]))


# --- bookings -----------------------------------------------------------------------------------


def fetch_booking(partner: PartnerContext, reference: str, last_name: str | None) -> Payload:
    """SNCF's `dossier`, found only by its reference AND its traveller's last name."""
    response = partner.http.get(
        url_path(BOOKING_PATH, reference.upper()),
        params={"nom": _need_last_name(partner, last_name)},
    )
    _check(response, partner, not_found=_booking_not_found, rejected=_invalid_reference(partner))
    return Payload.of(response, partner.id).obj("dossier")


def lookup_account(partner: PartnerContext, query: AccountQuery) -> Account:
    dossier = fetch_booking(partner, query.reference, query.last_name)
    status = dossier.text("statut")
    return Account(
        partner=partner.id,
        reference=dossier.text("reference"),
        holder_name=_holder_name(dossier),
        status=_booking_status(status),
        partner_status=status,
        services=[_journey(trip) for trip in dossier.objects("trajets")],
        # The booking's total fare: what a G30 compensation is a share of.
        balance=_money(dossier.opt_obj("montant_total"), "valeur"),
        raw=dossier.data,
    )


def _booking_status(status: str) -> str:
    return {"confirme": "active", "annule": "cancelled"}.get(status, "unknown")


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _plain(text: str) -> str:
    """A name as SNCF compares it: without case or accents."""
    return " ".join(_unaccented(text).casefold().split())


def _holder_name(dossier: Payload) -> str:
    """The traveller bearing the booking's name, else the first traveller, else that name."""
    holder = dossier.opt_text("nom")
    travellers = dossier.objects("voyageurs")
    chosen = next(
        (t for t in travellers if holder and _plain(t.opt_text("nom") or "") == _plain(holder)),
        travellers[0] if travellers else None,
    )
    if chosen is not None:
        name = " ".join(p for p in (chosen.opt_text("prenom"), chosen.opt_text("nom")) if p)
        if name:
            return name
    return dossier.text("nom")


def journey_id(train: str, departure: datetime) -> str:
    """A readable, stable id for a journey (SNCF gives none): train and local departure day."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", _unaccented(train)).strip("-")
    return f"{slug}-{departure:%Y%m%d}"


def _journey(trip: Payload) -> Service:
    train = trip.text("train")
    origin, destination = trip.text("origine"), trip.text("destination")
    departure = _when(trip, "depart_prevu")
    planned = _opt_when(trip, "arrivee_prevue")
    actual = _opt_when(trip, "arrivee_reelle")
    delay: int | None = trip.integer("retard_minutes") if trip.has("retard_minutes") else None
    if delay is None and planned is not None and actual is not None:
        delay = int((actual - planned).total_seconds() // 60)
    details = {
        "train": train,
        "origin": origin,
        "destination": destination,
        "departure_planned": departure.isoformat(),
        "arrival_planned": planned.isoformat() if planned else "",
        "arrival_actual": actual.isoformat() if actual else "",
        "delay_minutes": "" if delay is None else str(delay),
    }
    status = "" if delay is None else "delayed" if delay > 0 else "on_time"
    return Service(
        id=journey_id(train, departure),
        label=f"{train} {origin} → {destination}",
        status=status,
        details=details,
    )


# --- claims -------------------------------------------------------------------------------------


def open_claim(partner: PartnerContext, request: ClaimRequest) -> Claim:
    last_name = _need_last_name(partner, request.last_name)
    reference = request.account_ref.upper()
    description = request.description
    if request.service_id:
        description = _about_journey(partner, reference, last_name, request.service_id) + (
            description
        )
    body: dict[str, Any] = {
        "reference_dossier": reference,
        "nom": last_name,
        "motif": request.partner_category,
        "description": description,
        "external_id": request.idempotency_key,
    }
    contact = _contact(request.contact)
    if contact:
        body["contact"] = contact
    response = partner.http.post(CLAIMS_PATH, json=body)
    if response.status_code == 409 and _error_id(response) == DUPLICATE_KEY:
        return _existing_claim(partner, response, reference)
    _check(response, partner, not_found=_booking_not_found, rejected=_claim_refused(response))
    return _claim(partner, Payload.of(response, partner.id).obj("reclamation"))


def _about_journey(partner: PartnerContext, reference: str, last_name: str, service_id: str) -> str:
    """SNCF's claim has no journey field: name the journey at the head of the description."""
    dossier = fetch_booking(partner, reference, last_name)
    journeys = {}
    for trip in dossier.objects("trajets"):
        journey = _journey(trip)
        journeys[journey.id] = (journey, _when(trip, "depart_prevu"))
    if service_id not in journeys:
        raise InvalidInput(
            f"{partner.id}: this booking has no journey {service_id!r}: expected one of "
            f"{', '.join(journeys) or 'none (the booking lists no journey)'}",
            partner=partner.id,
        )
    journey, departure = journeys[service_id]
    return f"Trajet concerné : {journey.label}, départ le {departure:%d/%m/%Y à %H:%M}.\n\n"


def _contact(contact: Contact | None) -> dict[str, str]:
    if contact is None:
        return {}
    fields = {"email": contact.email, "telephone": contact.phone}
    return {key: value for key, value in fields.items() if value}


def _existing_claim(partner: PartnerContext, response: httpx.Response, reference: str) -> Claim:
    """A 409 on our `external_id`: the claim was already opened; return it, replayed."""
    existing_id = _error(response).get("existing_id")
    if not isinstance(existing_id, str) or not existing_id:
        raise PartnerProtocolError(
            partner.id, f"HTTP 409 ({DUPLICATE_KEY}) without the existing claim's id"
        )
    claim = fetch_claim(
        partner,
        existing_id,
        not_found=lambda pid: PartnerProtocolError(
            pid, f"{DUPLICATE_KEY} named a claim SNCF then could not find"
        ),
    )
    booking = claim.opt_text("reference_dossier")
    if booking is not None and booking.upper() != reference:
        raise ClaimRejected(
            partner.id,
            "this idempotency key was already used for a claim on another booking; use a new key",
            partner_code=DUPLICATE_KEY,
        )
    return _claim(partner, claim, replayed=True)


def fetch_claim(
    partner: PartnerContext, claim_ref: str, *, not_found: ErrorFactory = ClaimNotFound
) -> Payload:
    response = partner.http.get(url_path(CLAIM_PATH, claim_ref))
    _check(response, partner, not_found=not_found)
    return Payload.of(response, partner.id).obj("reclamation")


def _opened_at(claim: Payload) -> datetime:
    """`cree_le`; the claim view may omit it, and then its first history step is the creation."""
    if claim.has("cree_le"):
        return _when(claim, "cree_le")
    steps = [_when(step, "le") for step in claim.objects("historique") if step.has("le")]
    if not steps:
        raise PartnerProtocolError(claim.partner, "field reclamation.cree_le is missing")
    return min(steps)


def _claim(partner: PartnerContext, claim: Payload, *, replayed: bool = False) -> Claim:
    status = claim.text("statut")
    opened_at = _opened_at(claim)
    due = _opt_when(claim, "reponse_attendue_le")
    return Claim(
        partner=partner.id,
        claim_ref=claim.text("id"),
        state=partner.info.state_of(status),
        partner_status=status,
        opened_at=opened_at,
        response_due_by=due.date() if due else _one_month_after(opened_at),
        compensation=_money(claim.opt_obj("compensation"), "montant"),
        replayed=replayed,
        raw=claim.data,
    )


def claim_status(partner: PartnerContext, claim_ref: str) -> ClaimStatus:
    claim = fetch_claim(partner, claim_ref)
    status = claim.text("statut")
    history = [
        StatusChange(
            state=partner.info.state_of(step.text("statut")),
            partner_status=step.text("statut"),
            at=_opt_when(step, "le"),
            note=step.opt_text("commentaire") or "",
        )
        for step in claim.objects("historique")
    ]
    dated = [(change.at, change) for change in history if change.at is not None]
    if len(dated) == len(history):
        history = [change for _, change in sorted(dated, key=lambda pair: pair[0])]
    return ClaimStatus(
        partner=partner.id,
        claim_ref=claim.text("id"),
        state=partner.info.state_of(status),
        partner_status=status,
        partner_label=partner.info.label_of(status),
        updated_at=_opt_when(claim, "maj_le"),
        history=history,
        compensation=_money(claim.opt_obj("compensation"), "montant"),
        raw=claim.data,
    )
