"""EDF plugin unit tests: exact requests and every mapped answer, with respx.

The facade runs in live mode against EDF's production base URL, which respx intercepts; canned
bodies are shaped like the contract (shared/partners/edf.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx

import pimms_edf
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidReference,
    PartnerAuthError,
    PartnerProtocolError,
    PartnerUnavailable,
)
from pimms_core.models import ClaimState, Contact
from pimms_core.testing import live_pimms

BASE = "https://partenaires.api.edf.fr"
CLIENT_ID = "canary-client-id-7c1f"
CLIENT_SECRET = "canary-client-secret-93ab"
ENV = {"EDF_CLIENT_ID": CLIENT_ID, "EDF_CLIENT_SECRET": CLIENT_SECRET}
SETTINGS = {"client_id_env": "EDF_CLIENT_ID", "client_secret_env": "EDF_CLIENT_SECRET"}

CUSTOMER = {
    "customer": {
        "customer_id": "4001234567",
        "status": "active",
        "identity": {
            "natural_person": {"title": "Mme", "firstname": "Camille", "lastname": "Martin"}
        },
        "contact_data": {"phone": "0600000000", "email": "camille.martin@example.org"},
        "usage_points": [
            {
                "usage_point": {
                    "usage_point_id": "24115050123456",
                    "usage_point_status": "com",
                    "meter_type": "AMM",
                },
                "usage_point_addresses": {
                    "street": "12 rue des Lilas",
                    "postal_code": "69008",
                    "insee_code": "69388",
                    "city": "Lyon",
                    "country": "France",
                },
                "contracts": {
                    "offer": "TARIF_BLEU",
                    "subscribed_power": "6 kVA",
                    "contract_status": "SERVC",
                    "last_activation_date": "2017-07-15+02:00",
                },
            }
        ],
        "balance": {"amount": -84.20, "currency": "EUR", "payment_plan": False},
    }
}
CLAIM_CREATED = {
    "claim_id": "EDF-C-000001",
    "status": "OPEN",
    "created_at": "2026-11-02T09:30:00+01:00",
    "response_due_date": "2026-11-17",
}


def claim_view(status: str, label: str = "") -> dict[str, object]:
    return {
        "claim_id": "EDF-C-000001",
        "status": status,
        "status_label": label,
        "updated_at": "2026-11-03T10:00:00+01:00",
        "history": [
            {"status": "OPEN", "at": "2026-11-02T09:30:00+01:00", "note": "Réclamation reçue"},
            {"status": status, "at": "2026-11-03T10:00:00+01:00", "note": None},
        ],
    }


@pytest.fixture
def edf() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/oauth2/v3/token", name="token").respond(
            200, json={"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}
        )
        yield router


@pytest.fixture
def pimms():  # type: ignore[no-untyped-def]
    with live_pimms(pimms_edf, BASE, settings=SETTINGS, env=ENV) as facade:
        yield facade


def test_lookup_by_customer_number_sends_exact_request(edf, pimms):
    route = edf.get("/customers/v1/accounts/4001234567").respond(200, json=CUSTOMER)
    account = pimms.lookup_account("edf", "4001234567")
    request = route.calls.last.request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("pimms/")
    token_form = parse_qs(edf["token"].calls.last.request.content.decode())
    assert token_form == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert account.holder_name == "Mme Camille Martin"
    assert account.status == "active"
    assert account.address == "12 rue des Lilas 69008 Lyon"
    assert account.balance is not None and account.balance.amount == -84.20
    assert account.services[0].id == "24115050123456"
    assert account.services[0].details["offer"] == "TARIF_BLEU"
    assert account.raw["contact_data"]["email"] == "camille.martin@example.org"
    assert account.plugin is not None and account.plugin.name == "pimms-edf"


def test_lookup_by_pdl_uses_the_usage_point_query(edf, pimms):
    route = edf.get("/customers/v1/accounts", params={"usage_point_id": "24115050123456"})
    route.respond(200, json=CUSTOMER)
    account = pimms.lookup_account("edf", " 24115050123456 ")
    assert route.called
    assert account.reference == "4001234567"


def test_legal_entity_and_unknown_fields_are_read(edf, pimms):
    body = json.loads(json.dumps(CUSTOMER))
    body["customer"]["identity"] = {"legal_entity": {"name": "Atelier Imaginaire SARL"}}
    body["customer"]["status"] = "terminated"
    body["customer"]["new_field"] = {"anything": 1}
    body["customer"]["usage_points"][0]["usage_point"]["usage_point_status"] = "no com"
    edf.get("/customers/v1/accounts/4001234567").respond(200, json=body)
    account = pimms.lookup_account("edf", "4001234567")
    assert account.holder_name == "Atelier Imaginaire SARL"
    assert account.status == "terminated"
    assert account.services[0].status == "no com"


def test_a_point_without_contract_or_address_is_read(edf, pimms):
    body = json.loads(json.dumps(CUSTOMER))
    points = body["customer"]["usage_points"]
    points[0]["usage_point_addresses"]["postal_code"] = 69008
    points.insert(0, {"usage_point": {"usage_point_id": "24115050000001"}, "contracts": None})
    edf.get("/customers/v1/accounts/4001234567").respond(200, json=body)
    account = pimms.lookup_account("edf", "4001234567")
    assert account.address == "12 rue des Lilas 69008 Lyon"
    bare, full = account.services
    assert (bare.id, bare.label, bare.status) == ("24115050000001", "delivery point", "")
    assert dict(bare.details) == {"meter_type": ""}
    assert (full.id, full.label, full.status) == ("24115050123456", "TARIF_BLEU 6 kVA", "com")
    assert dict(full.details) == {
        "meter_type": "AMM",
        "offer": "TARIF_BLEU",
        "subscribed_power": "6 kVA",
        "contract_status": "SERVC",
        "last_activation_date": "2017-07-15+02:00",
    }


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("contracts",), "TARIF_BLEU", "field customer.usage_points[0].contracts is not an object"),
        (("contracts", "offer"), ["TARIF_BLEU"], "usage_points[0].contracts.offer is not text"),
        (("usage_point", "meter_type"), True, "usage_points[0].usage_point.meter_type is not text"),
        (("usage_point_addresses",), "Lyon", "usage_points[0].usage_point_addresses is not an"),
        (("usage_point_addresses", "city"), {}, "usage_points[0].usage_point_addresses.city is"),
    ],
)
def test_a_malformed_field_of_a_point_is_named(edf, pimms, where, value, message):
    body = json.loads(json.dumps(CUSTOMER))
    target = body["customer"]["usage_points"][0]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    edf.get("/customers/v1/accounts/4001234567").respond(200, json=body)
    with pytest.raises(PartnerProtocolError) as caught:
        pimms.lookup_account("edf", "4001234567")
    assert message in str(caught.value)
    assert "Lyon" not in str(caught.value) and "TARIF_BLEU" not in str(caught.value)


def test_token_is_reused_across_calls(edf, pimms):
    edf.get("/customers/v1/accounts/4001234567").respond(200, json=CUSTOMER)
    pimms.lookup_account("edf", "4001234567")
    pimms.lookup_account("edf", "4001234567")
    assert edf["token"].call_count == 1


def test_invalid_token_is_refreshed_once_and_the_call_retried_once(edf, pimms):
    edf["token"].side_effect = [
        httpx.Response(200, json={"access_token": "old", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "new", "expires_in": 3600}),
    ]
    route = edf.get("/customers/v1/accounts/4001234567")
    route.side_effect = [
        httpx.Response(401, json={"error": "invalid_token", "error_description": "expired"}),
        httpx.Response(200, json=CUSTOMER),
    ]
    assert pimms.lookup_account("edf", "4001234567").reference == "4001234567"
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer old",
        "Bearer new",
    ]


def test_second_invalid_token_is_an_auth_error_not_a_loop(edf, pimms):
    route = edf.get("/customers/v1/accounts/4001234567").respond(
        401, json={"error": "invalid_token", "error_description": "expired"}
    )
    with pytest.raises(PartnerAuthError):
        pimms.lookup_account("edf", "4001234567")
    assert route.call_count == 2
    assert edf["token"].call_count == 2


def test_invalid_client_is_an_auth_error_naming_no_secret(edf, pimms):
    edf["token"].respond(401, json={"error": "invalid_client", "error_description": "bad"})
    route = edf.get("/customers/v1/accounts/4001234567")
    with pytest.raises(PartnerAuthError) as caught:
        pimms.lookup_account("edf", "4001234567")
    assert not route.called
    assert CLIENT_SECRET not in str(caught.value) and CLIENT_ID not in str(caught.value)


def test_invalid_reference_is_refused_before_any_request(edf, pimms):
    with pytest.raises(InvalidReference) as caught:
        pimms.lookup_account("edf", "123")
    assert "10-digit customer number" in str(caught.value)
    assert "4001234567" in str(caught.value)
    assert not edf.calls


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"error": "EDF-ERR0404", "error_description": "unknown"}, AccountNotFound),
        (400, {"error": "EDF-ERR0002", "error_description": "bad input"}, InvalidReference),
        (403, {"error": "EDF-ERR0069", "error_description": "consent missing"}, PartnerAuthError),
        (401, {"error": "invalid_client", "error_description": "?"}, PartnerAuthError),
        (429, {"error": "too_many_requests"}, PartnerUnavailable),
        (503, "<html><body>Service Unavailable</body></html>", PartnerUnavailable),
        (418, {"error": "teapot"}, PartnerProtocolError),
    ],
)
def test_lookup_errors_are_mapped(edf, pimms, status, body, error):
    kwargs = {"json": body} if isinstance(body, dict) else {"text": body}
    edf.get("/customers/v1/accounts/4001234567").respond(status, **kwargs)
    with pytest.raises(error) as caught:
        pimms.lookup_account("edf", "4001234567")
    assert caught.value.partner == "edf"
    assert caught.value.plugin is not None and caught.value.plugin.name == "pimms-edf"


def test_consent_missing_says_so(edf, pimms):
    edf.get("/customers/v1/accounts/4001234567").respond(
        403, json={"error": "EDF-ERR0069", "error_description": "consent missing"}
    )
    with pytest.raises(PartnerAuthError, match="consent"):
        pimms.lookup_account("edf", "4001234567")


def test_rate_limit_carries_retry_after(edf, pimms):
    edf.get("/customers/v1/accounts/4001234567").respond(
        429, headers={"Retry-After": "7"}, json={"error": "too_many_requests"}
    )
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.lookup_account("edf", "4001234567")
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        '{"customer": {"customer_id": "4001234567"',
        '{"client": {}}',
        '{"customer": {"status": "active", "identity": {}}}',
    ],
)
def test_malformed_bodies_are_protocol_errors(edf, pimms, body):
    edf.get("/customers/v1/accounts/4001234567").respond(200, text=body)
    with pytest.raises(PartnerProtocolError):
        pimms.lookup_account("edf", "4001234567")


def test_open_claim_sends_key_header_and_body(edf, pimms):
    route = edf.post("/claims/v1/claims").respond(201, json=CLAIM_CREATED)
    claim = pimms.open_claim(
        "edf",
        "4001234567",
        "payment_difficulty",
        "Échéancier demandé",
        contact=Contact(email="c@example.org"),
        idempotency_key="key-1",
    )
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "key-1"
    assert json.loads(request.content) == {
        "customer_id": "4001234567",
        "category": "DIFFICULTE_PAIEMENT",
        "description": "Échéancier demandé",
        "contact": {"email": "c@example.org"},
    }
    assert claim.claim_ref == "EDF-C-000001"
    assert claim.state is ClaimState.RECEIVED
    assert claim.response_due_by is not None and claim.response_due_by.isoformat() == "2026-11-17"
    assert claim.replayed is False


def test_open_claim_on_a_pdl_names_the_customer_and_the_usage_point(edf, pimms):
    edf.get("/customers/v1/accounts", params={"usage_point_id": "24115050123456"}).respond(
        200, json=CUSTOMER
    )
    route = edf.post("/claims/v1/claims").respond(201, json=CLAIM_CREATED)
    pimms.open_claim("edf", "24115050123456", "RELEVE", "Index contesté", idempotency_key="k")
    body = json.loads(route.calls.last.request.content)
    assert body["customer_id"] == "4001234567"
    assert body["usage_point_id"] == "24115050123456"
    assert body["category"] == "RELEVE"


def test_replayed_key_returns_the_original_claim(edf, pimms):
    edf.post("/claims/v1/claims").respond(200, json=CLAIM_CREATED)
    claim = pimms.open_claim("edf", "4001234567", "billing", "x", idempotency_key="k")
    assert claim.replayed is True
    assert claim.claim_ref == "EDF-C-000001"


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (422, {"error": "idempotency_key_reused"}, ClaimRejected, "idempotency key"),
        (400, {"error": "EDF-ERR0002", "error_description": "bad"}, ClaimRejected, "invalid"),
        (404, {"error": "EDF-ERR0404", "error_description": "?"}, AccountNotFound, "no account"),
        (500, "<html>oops</html>", PartnerUnavailable, "HTTP 500"),
    ],
)
def test_open_claim_errors_are_mapped(edf, pimms, status, body, error, words):
    kwargs = {"json": body} if isinstance(body, dict) else {"text": body}
    edf.post("/claims/v1/claims").respond(status, **kwargs)
    with pytest.raises(error, match=words):
        pimms.open_claim("edf", "4001234567", "billing", "x", idempotency_key="k")


@pytest.mark.parametrize(
    ("code", "state"),
    [
        ("OPEN", ClaimState.RECEIVED),
        ("IN_PROGRESS", ClaimState.IN_PROGRESS),
        ("WAITING_CUSTOMER", ClaimState.AWAITING_CUSTOMER),
        ("SOLVED", ClaimState.RESOLVED),
        ("REFUSED", ClaimState.REJECTED),
        ("CLOSED", ClaimState.CLOSED),
        ("ESCALATED_TO_MEDIATOR", ClaimState.UNKNOWN),
    ],
)
def test_every_status_is_mapped(edf, pimms, code, state):
    edf.get("/claims/v1/claims/EDF-C-000001").respond(200, json=claim_view(code, "Libellé"))
    status = pimms.claim_status("edf", "EDF-C-000001")
    assert status.state is state
    assert status.partner_status == code
    assert status.partner_label == "Libellé"
    assert [h.partner_status for h in status.history] == ["OPEN", code]


def test_claim_ref_is_url_encoded(edf, pimms):
    route = edf.get(url__regex=r".*/claims/v1/claims/.*").respond(
        404, json={"error": "EDF-ERR0404"}
    )
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("edf", "EDF-C-1/../../admin")
    assert route.calls.last.request.url.raw_path == b"/claims/v1/claims/EDF-C-1%2F..%2F..%2Fadmin"


def test_unknown_claim_is_claim_not_found(edf, pimms):
    edf.get("/claims/v1/claims/EDF-C-999999").respond(404, json={"error": "EDF-ERR0404"})
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("edf", "EDF-C-999999")
