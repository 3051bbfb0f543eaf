"""Tests of the EDF simulator against its contract (shared/partners/edf.md).

Everything goes through Flask's test client with fixed clocks (state and quota), so the tests are
deterministic: the seed table, auth and token expiry, claims, idempotency, quotas, the sandbox
admin routes, error shapes and persistence across apps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from pimms_core.sandbox import SandboxState
from pimms_edf.seed import (
    CLAIM_STATUS_LABELS,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    all_accounts,
)
from pimms_edf.simulator import create_app

FIXED = datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
PLUGIN_ROOT = Path(__file__).resolve().parents[1]

CAMILLE_AS_IN_CONTRACT = {
    "customer_id": "4001234567",
    "status": "active",
    "identity": {"natural_person": {"title": "Mme", "firstname": "Camille", "lastname": "Martin"}},
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

CLAIM_BODY = {
    "customer_id": "4001234567",
    "usage_point_id": "24115050123456",
    "category": "FACTURATION",
    "description": "Facture de mars anormalement élevée",
    "contact": {"email": "camille.martin@example.org"},
}


class Clock:
    """A settable clock for the state (datetime) and the quota windows (seconds)."""

    def __init__(self, now: datetime = FIXED) -> None:
        self.now = now
        self.seconds = 0.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SandboxState:
    return SandboxState(None, clock=clock)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    """A client without quotas, so functional tests may make as many calls as they need."""
    return create_app(state, quotas=False).test_client()


def fetch_token(client: FlaskClient) -> str:
    response = client.post(
        "/oauth2/v3/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client: FlaskClient) -> dict[str, str]:
    return bearer(fetch_token(client))


def post_claim(
    client: FlaskClient,
    headers: dict[str, str],
    body: Any = CLAIM_BODY,
    key: str | None = "key-1",
) -> Any:
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post("/claims/v1/claims", json=body, headers={**headers, **extra})


def claim_count(state: SandboxState) -> int:
    return len(state.read().get("claims", {}))


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.is_json
    body = response.get_json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    return dict(body)


# -- seed module ------------------------------------------------------------------------------


def test_seed_module_does_not_import_flask() -> None:
    code = "import sys, pimms_edf.seed; sys.exit('flask' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PLUGIN_ROOT, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_seed_accessors_hand_out_copies() -> None:
    accounts = all_accounts()
    accounts[0]["status"] = "terminated"
    assert all_accounts()[0]["status"] == "active"
    assert [account["customer_id"] for account in accounts] == [
        "4001234567",
        "4007654321",
        "4009999999",
    ]


# -- token endpoint ---------------------------------------------------------------------------


def test_token_is_issued_for_sandbox_client(client: FlaskClient) -> None:
    response = client.post(
        "/oauth2/v3/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) >= 20
    assert response.headers["Cache-Control"] == "no-store"


def test_token_accepts_http_basic_client_authentication(client: FlaskClient) -> None:
    response = client.post(
        "/oauth2/v3/token",
        data={"grant_type": "client_credentials"},
        auth=(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET),
    )
    assert response.status_code == 200
    assert response.get_json()["token_type"] == "Bearer"


def test_each_token_is_distinct(client: FlaskClient) -> None:
    assert fetch_token(client) != fetch_token(client)


@pytest.mark.parametrize(
    "form",
    [
        {"client_id": SANDBOX_CLIENT_ID, "client_secret": "wrong-secret"},
        {"client_id": "someone-else", "client_secret": SANDBOX_CLIENT_SECRET},
        {"client_id": SANDBOX_CLIENT_ID},
        {},
    ],
    ids=["wrong-secret", "wrong-id", "no-secret", "no-credentials"],
)
def test_token_rejects_bad_client(client: FlaskClient, form: dict[str, str]) -> None:
    response = client.post("/oauth2/v3/token", data={"grant_type": "client_credentials", **form})
    assert_error(response, 401, "invalid_client")


def test_token_rejects_unsupported_grant(client: FlaskClient) -> None:
    response = client.post(
        "/oauth2/v3/token",
        data={
            "grant_type": "password",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert_error(response, 400, "unsupported_grant_type")


def test_token_requires_grant_type(client: FlaskClient) -> None:
    response = client.post(
        "/oauth2/v3/token",
        data={"client_id": SANDBOX_CLIENT_ID, "client_secret": SANDBOX_CLIENT_SECRET},
    )
    assert_error(response, 400, "invalid_request")


# -- bearer auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
    ids=["missing", "unknown", "wrong-scheme"],
)
def test_api_requires_valid_bearer(client: FlaskClient, headers: dict[str, str]) -> None:
    for response in (
        client.get("/customers/v1/accounts/4001234567", headers=headers),
        client.get("/customers/v1/accounts?usage_point_id=24115050123456", headers=headers),
        client.get("/claims/v1/claims/EDF-C-000001", headers=headers),
        client.post(
            "/claims/v1/claims", json=CLAIM_BODY, headers={**headers, "Idempotency-Key": "k"}
        ),
    ):
        assert_error(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unauthenticated_claim_creates_nothing(client: FlaskClient, state: SandboxState) -> None:
    post_claim(client, {"Authorization": "Bearer nope"})
    assert claim_count(state) == 0


def test_token_expires_after_3600_seconds(client: FlaskClient, clock: Clock) -> None:
    headers = bearer(fetch_token(client))
    clock.now = FIXED + timedelta(seconds=3599)
    assert client.get("/customers/v1/accounts/4001234567", headers=headers).status_code == 200
    clock.now = FIXED + timedelta(seconds=3600)
    response = client.get("/customers/v1/accounts/4001234567", headers=headers)
    assert_error(response, 401, "invalid_token")
    fresh = bearer(fetch_token(client))
    assert client.get("/customers/v1/accounts/4001234567", headers=fresh).status_code == 200


def test_sandbox_expire_tokens_forces_one_refresh(client: FlaskClient) -> None:
    headers = bearer(fetch_token(client))
    response = client.post("/_sandbox/tokens/expire")
    assert response.status_code == 200
    assert response.get_json() == {"expired_tokens": 1}
    assert_error(
        client.get("/customers/v1/accounts/4001234567", headers=headers), 401, "invalid_token"
    )
    fresh = bearer(fetch_token(client))
    assert client.get("/customers/v1/accounts/4001234567", headers=fresh).status_code == 200


def test_tokens_belong_to_one_app(state: SandboxState) -> None:
    first = create_app(state, quotas=False).test_client()
    second = create_app(state, quotas=False).test_client()
    headers = bearer(fetch_token(first))
    response = second.get("/customers/v1/accounts/4001234567", headers=headers)
    assert_error(response, 401, "invalid_token")


# -- accounts ---------------------------------------------------------------------------------


def test_camille_martin_is_the_contract_example(client: FlaskClient, auth: dict[str, str]) -> None:
    by_id = client.get("/customers/v1/accounts/4001234567", headers=auth)
    by_pdl = client.get("/customers/v1/accounts?usage_point_id=24115050123456", headers=auth)
    assert by_id.status_code == 200
    assert by_id.get_json() == {"customer": CAMILLE_AS_IN_CONTRACT}
    assert by_pdl.get_json() == by_id.get_json()


def test_karim_benali_on_payment_plan(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/customers/v1/accounts/4007654321", headers=auth)
    assert response.status_code == 200
    customer = response.get_json()["customer"]
    assert customer["customer_id"] == "4007654321"
    assert customer["status"] == "active"
    assert customer["identity"]["natural_person"] == {
        "title": "M.",
        "firstname": "Karim",
        "lastname": "Benali",
    }
    (point,) = customer["usage_points"]
    assert point["usage_point"]["usage_point_id"] == "24115050654321"
    assert point["contracts"]["offer"] == "TEMPO"
    assert point["contracts"]["subscribed_power"] == "9 kVA"
    assert point["usage_point_addresses"]["city"]
    assert customer["balance"]["payment_plan"] is True
    assert customer["balance"]["currency"] == "EUR"
    assert isinstance(customer["balance"]["amount"], float)
    by_pdl = client.get("/customers/v1/accounts?usage_point_id=24115050654321", headers=auth)
    assert by_pdl.get_json() == response.get_json()


def test_terminated_account(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/customers/v1/accounts/4009999999", headers=auth)
    assert response.status_code == 200
    customer = response.get_json()["customer"]
    assert customer["customer_id"] == "4009999999"
    assert customer["status"] == "terminated"
    assert customer["identity"]["legal_entity"]["name"]
    assert "natural_person" not in customer["identity"]
    (point,) = customer["usage_points"]
    assert point["usage_point"]["usage_point_status"] == "no com"
    assert point["contracts"]["contract_status"] == "RESIL"


def test_seed_accounts_have_contract_shape(client: FlaskClient, auth: dict[str, str]) -> None:
    for account in all_accounts():
        body = client.get(f"/customers/v1/accounts/{account['customer_id']}", headers=auth)
        customer = body.get_json()["customer"]
        assert {"customer_id", "status", "identity", "contact_data", "usage_points", "balance"} <= (
            set(customer)
        )
        assert customer["status"] in {"active", "terminated"}
        assert customer["contact_data"]["email"].endswith("example.org")
        for point in customer["usage_points"]:
            assert set(point) == {"usage_point", "usage_point_addresses", "contracts"}


@pytest.mark.parametrize("reference", ["123", "40012345678", "400123456A", "4001-23456"])
def test_account_reference_must_be_ten_digits(
    client: FlaskClient, auth: dict[str, str], reference: str
) -> None:
    response = client.get(f"/customers/v1/accounts/{reference}", headers=auth)
    assert_error(response, 400, "EDF-ERR0002")


def test_unknown_account_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/customers/v1/accounts/4000000000", headers=auth)
    assert_error(response, 404, "EDF-ERR0404")


@pytest.mark.parametrize("pdl", ["2411505012345", "241150501234567", "2411505012345X", ""])
def test_usage_point_must_be_fourteen_digits(
    client: FlaskClient, auth: dict[str, str], pdl: str
) -> None:
    response = client.get(f"/customers/v1/accounts?usage_point_id={pdl}", headers=auth)
    assert_error(response, 400, "EDF-ERR0002")


def test_usage_point_query_is_required(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_error(client.get("/customers/v1/accounts", headers=auth), 400, "EDF-ERR0002")


def test_unknown_usage_point_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/customers/v1/accounts?usage_point_id=24115050000000", headers=auth)
    assert_error(response, 404, "EDF-ERR0404")


# -- claims: creation and time rules ----------------------------------------------------------


def test_claim_is_created(client: FlaskClient, auth: dict[str, str], state: SandboxState) -> None:
    response = post_claim(client, auth)
    assert response.status_code == 201
    assert response.get_json() == {
        "claim_id": "EDF-C-000001",
        "status": "OPEN",
        "created_at": "2024-05-02T09:30:00+00:00",
        "response_due_date": "2024-05-17",
    }
    stored = state.read()["claims"]["EDF-C-000001"]
    assert stored["customer_id"] == "4001234567"
    assert stored["usage_point_id"] == "24115050123456"
    assert stored["category"] == "FACTURATION"
    assert stored["description"] == CLAIM_BODY["description"]
    assert stored["contact"] == CLAIM_BODY["contact"]


def test_created_at_has_an_offset(client: FlaskClient, auth: dict[str, str]) -> None:
    created_at = post_claim(client, auth).get_json()["created_at"]
    parsed = datetime.fromisoformat(created_at)
    assert parsed.utcoffset() == timedelta(0)
    assert parsed == FIXED


def test_created_at_is_utc_whatever_the_clock_zone(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    clock.now = datetime(2024, 5, 2, 23, 30, tzinfo=timezone(timedelta(hours=2)))
    body = post_claim(client, bearer(fetch_token(client))).get_json()
    assert body["created_at"] == "2024-05-02T21:30:00+00:00"
    assert body["response_due_date"] == "2024-05-17"


@pytest.mark.parametrize(
    ("category", "due"),
    [
        ("FACTURATION", "2024-05-17"),
        ("DIFFICULTE_PAIEMENT", "2024-05-07"),
        ("RELEVE", "2024-05-17"),
        ("CONTRAT", "2024-05-17"),
        ("COUPURE", "2024-05-17"),
        ("AUTRE", "2024-05-17"),
    ],
)
def test_response_due_date_by_category(
    client: FlaskClient, auth: dict[str, str], category: str, due: str
) -> None:
    response = post_claim(client, auth, {**CLAIM_BODY, "category": category})
    assert response.status_code == 201
    assert response.get_json()["response_due_date"] == due


def test_due_date_crosses_month_end(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    clock.now = datetime(2024, 2, 27, 23, 59, 59, tzinfo=UTC)
    response = post_claim(client, auth, {**CLAIM_BODY, "category": "DIFFICULTE_PAIEMENT"})
    assert response.get_json()["response_due_date"] == "2024-03-03"


def test_claim_ids_are_sequential(client: FlaskClient, auth: dict[str, str]) -> None:
    ids = [post_claim(client, auth, key=f"key-{n}").get_json()["claim_id"] for n in range(3)]
    assert ids == ["EDF-C-000001", "EDF-C-000002", "EDF-C-000003"]


def test_minimal_claim_without_optional_fields(
    client: FlaskClient, auth: dict[str, str], state: SandboxState
) -> None:
    body = {"customer_id": "4007654321", "category": "DIFFICULTE_PAIEMENT", "description": "x"}
    response = post_claim(client, auth, body)
    assert response.status_code == 201
    stored = state.read()["claims"]["EDF-C-000001"]
    assert stored["usage_point_id"] is None
    assert stored["contact"] is None


def test_terminated_customer_may_still_claim(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"customer_id": "4009999999", "category": "FACTURATION", "description": "solde"}
    assert post_claim(client, auth, body).status_code == 201


# -- claims: idempotency ----------------------------------------------------------------------


def test_same_key_same_body_returns_original(
    client: FlaskClient, auth: dict[str, str], state: SandboxState, clock: Clock
) -> None:
    first = post_claim(client, auth)
    clock.now = FIXED + timedelta(minutes=5)
    second = post_claim(client, auth)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.get_json() == first.get_json()
    assert claim_count(state) == 1


def test_same_key_same_body_in_other_key_order_is_a_replay(
    client: FlaskClient, auth: dict[str, str], state: SandboxState
) -> None:
    post_claim(client, auth)
    reordered = dict(reversed(list(CLAIM_BODY.items())))
    response = client.post(
        "/claims/v1/claims",
        data=json.dumps(reordered, indent=2),
        content_type="application/json",
        headers={**auth, "Idempotency-Key": "key-1"},
    )
    assert response.status_code == 200
    assert claim_count(state) == 1


def test_same_key_different_body_is_422(
    client: FlaskClient, auth: dict[str, str], state: SandboxState
) -> None:
    post_claim(client, auth)
    response = post_claim(client, auth, {**CLAIM_BODY, "description": "autre chose"})
    assert_error(response, 422, "idempotency_key_reused")
    assert claim_count(state) == 1


def test_different_keys_same_body_create_two_claims(
    client: FlaskClient, auth: dict[str, str], state: SandboxState
) -> None:
    assert post_claim(client, auth, key="a").status_code == 201
    assert post_claim(client, auth, key="b").status_code == 201
    assert claim_count(state) == 2


def test_replay_reports_current_status(client: FlaskClient, auth: dict[str, str]) -> None:
    post_claim(client, auth)
    client.post("/_sandbox/claims/EDF-C-000001/status", json={"status": "IN_PROGRESS"})
    replayed = post_claim(client, auth)
    assert replayed.status_code == 200
    assert replayed.get_json()["status"] == "IN_PROGRESS"
    assert replayed.get_json()["created_at"] == "2024-05-02T09:30:00+00:00"


@pytest.mark.parametrize("key", [None, "", "   ", "k" * 256])
def test_idempotency_key_required_and_bounded(
    client: FlaskClient, auth: dict[str, str], state: SandboxState, key: str | None
) -> None:
    assert_error(post_claim(client, auth, key=key), 400, "EDF-ERR0002")
    assert claim_count(state) == 0


def test_idempotency_key_of_255_chars_is_accepted(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert post_claim(client, auth, key="k" * 255).status_code == 201


def test_rejected_request_does_not_burn_the_key(
    client: FlaskClient, auth: dict[str, str], state: SandboxState
) -> None:
    assert_error(post_claim(client, auth, {**CLAIM_BODY, "category": "NOPE"}), 400, "EDF-ERR0002")
    assert post_claim(client, auth).status_code == 201
    assert claim_count(state) == 1


# -- claims: validation -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["customer_id", "category", "description"])
def test_required_claim_fields(
    client: FlaskClient, auth: dict[str, str], state: SandboxState, field: str
) -> None:
    body = {name: value for name, value in CLAIM_BODY.items() if name != field}
    assert_error(post_claim(client, auth, body), 400, "EDF-ERR0002")
    assert claim_count(state) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"category": "billing"},
        {"category": "facturation"},
        {"customer_id": "40012345"},
        {"customer_id": 4001234567},
        {"usage_point_id": "123"},
        {"usage_point_id": "24115050654321"},
        {"description": "   "},
        {"description": 42},
        {"contact": 42},
    ],
    ids=[
        "common-vocabulary-category",
        "lowercase-category",
        "short-customer",
        "numeric-customer",
        "short-pdl",
        "pdl-of-another-customer",
        "blank-description",
        "numeric-description",
        "numeric-contact",
    ],
)
def test_invalid_claim_fields(
    client: FlaskClient, auth: dict[str, str], state: SandboxState, change: dict[str, Any]
) -> None:
    assert_error(post_claim(client, auth, {**CLAIM_BODY, **change}), 400, "EDF-ERR0002")
    assert claim_count(state) == 0


def test_unknown_customer_claim_is_404(
    client: FlaskClient, auth: dict[str, str], state: SandboxState
) -> None:
    body = {**CLAIM_BODY, "customer_id": "4000000000", "usage_point_id": None}
    assert_error(post_claim(client, auth, body), 404, "EDF-ERR0404")
    assert claim_count(state) == 0


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "", '"text"'])
def test_malformed_claim_body(
    client: FlaskClient, auth: dict[str, str], state: SandboxState, raw: str
) -> None:
    response = client.post(
        "/claims/v1/claims",
        data=raw,
        content_type="application/json",
        headers={**auth, "Idempotency-Key": "k"},
    )
    assert_error(response, 400, "EDF-ERR0002")
    assert claim_count(state) == 0


# -- claims: reading and the admin status route -----------------------------------------------


def test_get_claim(client: FlaskClient, auth: dict[str, str]) -> None:
    post_claim(client, auth)
    response = client.get("/claims/v1/claims/EDF-C-000001", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {
        "claim_id": "EDF-C-000001",
        "status": "OPEN",
        "status_label": "Reçue",
        "updated_at": "2024-05-02T09:30:00+00:00",
        "history": [
            {"status": "OPEN", "at": "2024-05-02T09:30:00+00:00", "note": "Réclamation reçue"}
        ],
    }


def test_unknown_claim_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    assert_error(client.get("/claims/v1/claims/EDF-C-999999", headers=auth), 404, "EDF-ERR0404")


def test_admin_route_drives_claim_through_every_status(
    client: FlaskClient, auth: dict[str, str], clock: Clock
) -> None:
    post_claim(client, auth)
    statuses = ["IN_PROGRESS", "WAITING_CUSTOMER", "IN_PROGRESS", "SOLVED", "REFUSED", "CLOSED"]
    for step, status in enumerate(statuses, start=1):
        clock.now = FIXED + timedelta(minutes=step)
        response = client.post(
            "/_sandbox/claims/EDF-C-000001/status", json={"status": status, "note": f"n{step}"}
        )
        assert response.status_code == 200
        assert response.get_json()["status"] == status
        view = client.get("/claims/v1/claims/EDF-C-000001", headers=auth).get_json()
        assert view["status"] == status
        assert view["status_label"] == CLAIM_STATUS_LABELS[status]
        assert view["updated_at"] == clock.now.isoformat()
        assert view["history"][-1] == {
            "status": status,
            "at": clock.now.isoformat(),
            "note": f"n{step}",
        }
        assert len(view["history"]) == step + 1
    assert [entry["status"] for entry in view["history"]] == ["OPEN", *statuses]


def test_status_labels_are_french_and_distinct() -> None:
    assert set(CLAIM_STATUS_LABELS) == {
        "OPEN",
        "IN_PROGRESS",
        "WAITING_CUSTOMER",
        "SOLVED",
        "REFUSED",
        "CLOSED",
    }
    assert len(set(CLAIM_STATUS_LABELS.values())) == 6
    assert CLAIM_STATUS_LABELS["CLOSED"] == "Clôturée"


def test_admin_note_is_optional(client: FlaskClient, auth: dict[str, str]) -> None:
    post_claim(client, auth)
    response = client.post("/_sandbox/claims/EDF-C-000001/status", json={"status": "SOLVED"})
    assert response.status_code == 200
    assert response.get_json()["history"][-1]["note"] is None


def test_admin_unknown_claim_is_404(client: FlaskClient) -> None:
    response = client.post("/_sandbox/claims/EDF-C-000042/status", json={"status": "SOLVED"})
    assert_error(response, 404, "EDF-ERR0404")


@pytest.mark.parametrize(
    "body", [{"status": "resolved"}, {"status": "DONE"}, {}, {"status": "SOLVED", "note": 3}]
)
def test_admin_rejects_bad_status(
    client: FlaskClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    post_claim(client, auth)
    response = client.post("/_sandbox/claims/EDF-C-000001/status", json=body)
    assert_error(response, 400, "EDF-ERR0002")
    view = client.get("/claims/v1/claims/EDF-C-000001", headers=auth).get_json()
    assert view["status"] == "OPEN"
    assert len(view["history"]) == 1


def test_admin_rejects_malformed_json(client: FlaskClient, auth: dict[str, str]) -> None:
    post_claim(client, auth)
    response = client.post(
        "/_sandbox/claims/EDF-C-000001/status", data="{", content_type="application/json"
    )
    assert_error(response, 400, "EDF-ERR0002")


# -- quota ------------------------------------------------------------------------------------


@pytest.fixture
def quota_client(state: SandboxState, clock: Clock) -> FlaskClient:
    return create_app(state, quota_clock=clock.monotonic).test_client()


def test_five_calls_per_second(quota_client: FlaskClient, clock: Clock) -> None:
    headers = bearer(fetch_token(quota_client))
    for _ in range(5):
        assert (
            quota_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code
            == 200
        )
    response = quota_client.get("/customers/v1/accounts/4001234567", headers=headers)
    assert_error(response, 429, "too_many_requests")
    assert response.headers["Retry-After"] == "1"
    clock.seconds = 1.0
    assert quota_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code == 200


def test_quota_counts_every_api_route(quota_client: FlaskClient) -> None:
    headers = bearer(fetch_token(quota_client))
    assert post_claim(quota_client, headers).status_code == 201
    assert quota_client.get("/claims/v1/claims/EDF-C-000001", headers=headers).status_code == 200
    assert (
        quota_client.get(
            "/customers/v1/accounts?usage_point_id=24115050123456", headers=headers
        ).status_code
        == 200
    )
    assert quota_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code == 200
    assert quota_client.get("/customers/v1/accounts/4007654321", headers=headers).status_code == 200
    response = post_claim(quota_client, headers, key="other")
    assert_error(response, 429, "too_many_requests")


def test_rate_limited_claim_creates_nothing(quota_client: FlaskClient, state: SandboxState) -> None:
    headers = bearer(fetch_token(quota_client))
    for _ in range(5):
        quota_client.get("/customers/v1/accounts/4001234567", headers=headers)
    assert post_claim(quota_client, headers).status_code == 429
    assert claim_count(state) == 0


def test_quota_is_per_client_not_per_token(quota_client: FlaskClient) -> None:
    tokens = [bearer(fetch_token(quota_client)) for _ in range(6)]
    statuses = [
        quota_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code
        for headers in tokens
    ]
    assert statuses == [200] * 5 + [429]


def test_token_endpoint_and_rejected_calls_are_not_counted(quota_client: FlaskClient) -> None:
    for _ in range(10):
        fetch_token(quota_client)
    for _ in range(10):
        quota_client.get("/customers/v1/accounts/4001234567", headers=bearer("bad"))
    headers = bearer(fetch_token(quota_client))
    for _ in range(5):
        assert (
            quota_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code
            == 200
        )


def test_thousand_calls_per_hour(quota_client: FlaskClient, clock: Clock) -> None:
    headers = bearer(fetch_token(quota_client))
    for n in range(1000):
        clock.seconds = n * 0.25
        response = quota_client.get("/customers/v1/accounts/4001234567", headers=headers)
        assert response.status_code == 200, n
    clock.seconds = 250.0
    response = quota_client.get("/customers/v1/accounts/4001234567", headers=headers)
    assert_error(response, 429, "too_many_requests")
    assert response.headers["Retry-After"] == "3350"
    clock.seconds = 3600.0
    assert quota_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code == 200


def test_quotas_can_be_disabled(client: FlaskClient, auth: dict[str, str]) -> None:
    for _ in range(20):
        assert client.get("/customers/v1/accounts/4001234567", headers=auth).status_code == 200


def test_default_app_enforces_quota(state: SandboxState) -> None:
    app_client = create_app(state).test_client()
    headers = bearer(fetch_token(app_client))
    statuses = {
        app_client.get("/customers/v1/accounts/4001234567", headers=headers).status_code
        for _ in range(12)
    }
    assert 429 in statuses


# -- error shapes -----------------------------------------------------------------------------


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/nowhere"), 404, "EDF-ERR0404")


def test_wrong_method_is_json_405(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/oauth2/v3/token")
    assert_error(response, 405, "EDF-ERR0405")
    assert "POST" in response.headers["Allow"]
    assert_error(client.delete("/claims/v1/claims/EDF-C-000001", headers=auth), 405, "EDF-ERR0405")


def test_unexpected_failure_is_json_500(state: SandboxState) -> None:
    app = create_app(state, quotas=False)

    @app.route("/_boom")
    def boom() -> str:
        raise RuntimeError("simulated bug")

    assert_error(app.test_client().get("/_boom"), 500, "EDF-ERR0500")


def test_apps_do_not_share_flask_instances(state: SandboxState) -> None:
    assert create_app(state) is not create_app(state)


# -- persistence ------------------------------------------------------------------------------


def test_two_apps_on_one_state_file_share_claims(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "state.json"
    first = create_app(SandboxState(path, clock=clock), quotas=False).test_client()
    second = create_app(SandboxState(path, clock=clock), quotas=False).test_client()
    first_auth = bearer(fetch_token(first))
    second_auth = bearer(fetch_token(second))

    assert post_claim(first, first_auth).status_code == 201
    view = second.get("/claims/v1/claims/EDF-C-000001", headers=second_auth)
    assert view.status_code == 200
    assert view.get_json()["status"] == "OPEN"

    replay = post_claim(second, second_auth)
    assert replay.status_code == 200
    assert replay.get_json()["claim_id"] == "EDF-C-000001"
    assert post_claim(second, second_auth, key="key-2").get_json()["claim_id"] == "EDF-C-000002"

    second.post("/_sandbox/claims/EDF-C-000001/status", json={"status": "SOLVED"})
    assert (
        first.get("/claims/v1/claims/EDF-C-000001", headers=first_auth).get_json()["status"]
        == "SOLVED"
    )

    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert sorted(on_disk["claims"]) == ["EDF-C-000001", "EDF-C-000002"]
    assert len(SandboxState(path).read()["claims"]) == 2
