"""Translation between EDF's API (contract: shared/partners/edf.md) and pimms' models.

Transport, auth and error policy are the core's: this module builds paths and bodies, maps
EDF's error codes onto the core's errors, and reads EDF's payloads into models.
"""

from __future__ import annotations

from typing import Any

import httpx

from pimms_core.context import PartnerContext
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidReference,
    PartnerAuthError,
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
from pimms_edf.info import USAGE_POINT_DIGITS

CONSENT_MISSING = "EDF-ERR0069"
KEY_REUSED = "idempotency_key_reused"
ACCOUNT_STATUSES = {"active": "active", "terminated": "terminated"}
"""EDF's account statuses that have a common word; any other is "unknown"."""


def _error_code(response: httpx.Response) -> str | None:
    body = json_or_none(response)
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _check(response: httpx.Response, partner: PartnerContext, **rules: ErrorFactory) -> None:
    """The core's mapping, plus EDF's own codes: consent missing, idempotency key reused."""
    if response.is_success:
        return
    code = _error_code(response)
    if response.status_code == 403 and code == CONSENT_MISSING:
        raise PartnerAuthError(
            partner.id, "EDF has no consent on record to share this customer's data"
        )
    if response.status_code == 422 and code == KEY_REUSED:
        raise ClaimRejected(
            partner.id,
            "this idempotency key was already used for a different claim; use a new key",
            partner_code=KEY_REUSED,
        )
    raise_for_status(response, partner.id, partner_code=code, **rules)


def _invalid_reference(partner: PartnerContext) -> ErrorFactory:
    fmt = partner.info.reference
    return lambda pid: InvalidReference(pid, fmt.hint, fmt.example, reason="EDF refused it")


def fetch_customer(partner: PartnerContext, reference: str) -> Payload:
    """EDF's `customer` object, found by numéro client or by PDL."""
    if len(reference) == USAGE_POINT_DIGITS:
        response = partner.http.get("/customers/v1/accounts", params={"usage_point_id": reference})
    else:
        response = partner.http.get(url_path("/customers/v1/accounts/{}", reference))
    _check(response, partner, not_found=AccountNotFound, rejected=_invalid_reference(partner))
    return Payload.of(response, partner.id).obj("customer")


def lookup_account(partner: PartnerContext, query: AccountQuery) -> Account:
    customer = fetch_customer(partner, query.reference)
    points = customer.objects("usage_points")
    services = list(map(_service, points))
    address = _first_address(points)
    balance = customer.opt_obj("balance")
    reference = customer.text("customer_id")
    holder_name = _holder_name(customer.obj("identity"))
    status = customer.text("status")
    return Account(
        partner=partner.id,
        reference=reference,
        holder_name=holder_name,
        status=ACCOUNT_STATUSES.get(status, "unknown"),
        partner_status=status,
        address=address,
        services=services,
        balance=Money(balance.number("amount"), balance.opt_text("currency") or "EUR")
        if balance
        else None,
        raw=customer.data,
    )


def _first_address(points: list[Payload]) -> str | None:
    """The address of the first delivery point that has one: EDF gives one per point."""
    for point in points:
        parts = point.opt_texts_in("usage_point_addresses", "street", "postal_code", "city")
        if parts is not None:
            return " ".join(filter(None, parts))
    return None


def _holder_name(identity: Payload) -> str:
    person = identity.opt_texts_in("natural_person", "title", "firstname", "lastname")
    if person is not None:
        return " ".join(filter(None, person))
    return identity.obj("legal_entity").text("name")


def _service(point: Payload) -> Service:
    """A delivery point, named by its contract when it has one ("TARIF_BLEU 6 kVA")."""
    usage_point = point.obj("usage_point")
    meter_type, status = usage_point.opt_texts("meter_type", "usage_point_status")
    contract = point.opt_texts_in(
        "contracts", "offer", "subscribed_power", "contract_status", "last_activation_date"
    )
    if contract is None:
        details = {"meter_type": meter_type or ""}
        label = ""
    else:
        offer, power, contract_status, activation = contract
        details = {
            "meter_type": meter_type or "",
            "offer": offer or "",
            "subscribed_power": power or "",
            "contract_status": contract_status or "",
            "last_activation_date": activation or "",
        }
        label = " ".join(filter(None, (offer, power)))
    return Service(
        id=usage_point.text("usage_point_id"),
        label=label or "delivery point",
        status=status or "",
        details=details,
    )


def open_claim(partner: PartnerContext, request: ClaimRequest) -> Claim:
    body: dict[str, Any] = {
        "category": request.partner_category,
        "description": request.description,
    }
    if len(request.account_ref) == USAGE_POINT_DIGITS:
        body["customer_id"] = fetch_customer(partner, request.account_ref).text("customer_id")
        body["usage_point_id"] = request.account_ref
    else:
        body["customer_id"] = request.account_ref
    if request.contact is not None:
        contact = {"email": request.contact.email, "phone": request.contact.phone}
        body["contact"] = {k: v for k, v in contact.items() if v}
    response = partner.http.post(
        "/claims/v1/claims", json=body, headers={"Idempotency-Key": request.idempotency_key}
    )
    _check(
        response,
        partner,
        not_found=AccountNotFound,
        rejected=lambda pid: ClaimRejected(pid, "EDF found the claim invalid"),
    )
    claim = Payload.of(response, partner.id)
    status = claim.text("status")
    return Claim(
        partner=partner.id,
        claim_ref=claim.text("claim_id"),
        state=partner.info.state_of(status),
        partner_status=status,
        opened_at=claim.timestamp("created_at"),
        response_due_by=claim.opt_day("response_due_date"),
        replayed=response.status_code == 200,
        raw=claim.data,
    )


def claim_status(partner: PartnerContext, claim_ref: str) -> ClaimStatus:
    response = partner.http.get(url_path("/claims/v1/claims/{}", claim_ref))
    _check(response, partner, not_found=ClaimNotFound)
    claim = Payload.of(response, partner.id)
    status = claim.text("status")
    history = [
        StatusChange(
            state=partner.info.state_of(step.text("status")),
            partner_status=step.text("status"),
            at=step.opt_timestamp("at"),
            note=step.opt_text("note") or "",
        )
        for step in claim.objects("history")
    ]
    return ClaimStatus(
        partner=partner.id,
        claim_ref=claim.text("claim_id"),
        state=partner.info.state_of(status),
        partner_status=status,
        partner_label=claim.opt_text("status_label") or partner.info.label_of(status),
        updated_at=claim.opt_timestamp("updated_at"),
        history=history,
        raw=claim.data,
    )
