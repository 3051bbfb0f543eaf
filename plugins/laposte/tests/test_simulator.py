"""The La Poste simulator must behave like the contract: tests pin every rule a plugin relies on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from pimms_core.sandbox import SandboxState
from pimms_laposte.seed import (
    LANGS,
    MOTIFS,
    SANDBOX_OKAPI_KEY,
    SEED_IDSHIPS,
    STATUTS,
    seed_shipments,
)
from pimms_laposte.simulator import create_app

FIXED = datetime(2026, 3, 10, 10, 0, 0, tzinfo=UTC)  # 11:00 in Paris (CET, +01:00)
AUTH = {"X-Okapi-Key": SANDBOX_OKAPI_KEY, "Accept": "application/json"}
CLAIMS = "/reclamation/v1/reclamations"
INVALID_MESSAGE_START = "Le numéro que vous avez saisi n'est pas valide"


class FakeMonotonic:
    """A hand-driven clock for the quota window."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


def make_client(
    state: SandboxState | None = None, *, quotas: bool = True, clock: Any = None
) -> FlaskClient:
    state = state or SandboxState(None, clock=lambda: FIXED)
    return create_app(state, quotas=quotas, quota_clock=clock).test_client()


@pytest.fixture
def state() -> SandboxState:
    return SandboxState(None, clock=lambda: FIXED)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_app(state).test_client()


def track(client: FlaskClient, ids: str, **params: str) -> Any:
    return client.get(f"/suivi/v2/idships/{ids}", headers=AUTH, query_string=params)


def claim_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "idShip": "6A00000000003",
        "motif": "RETARD_LIVRAISON",
        "description": "Colis bloqué depuis plusieurs jours (usager fictif).",
        "referenceExterne": "PIMMS-TEST-0001",
        "contact": {"email": "camille.exemple@example.org", "telephone": "0100000000"},
    }
    body.update(overrides)
    return body


def post_claim(client: FlaskClient, **overrides: Any) -> Any:
    return client.post(CLAIMS, headers=AUTH, json=claim_body(**overrides))


# --- Tracking: seed rows -----------------------------------------------------------------------


def assert_suivi_shape(body: dict[str, Any], id_ship: str, lang: str = "fr_FR") -> dict[str, Any]:
    assert body["lang"] == lang
    assert body["scope"] == "open"
    assert body["returnCode"] == 200
    shipment = body["shipment"]
    assert shipment["idShip"] == id_ship
    assert isinstance(shipment["holder"], int)
    assert isinstance(shipment["isFinal"], bool)
    assert shipment["url"] == f"https://www.laposte.fr/outils/suivre-vos-envois?code={id_ship}"
    datetime.fromisoformat(shipment["entryDate"])
    timeline = shipment["timeline"]
    assert [step["id"] for step in timeline] == [1, 2, 3, 4, 5]
    for step in timeline:
        assert isinstance(step["shortLabel"], str) and step["shortLabel"]
        assert isinstance(step["longLabel"], str)
        assert isinstance(step["status"], bool)
        assert step["type"] in (-1, 0, 1)
        assert isinstance(step["country"], str)
        assert ("date" in step) == step["status"]
    events = shipment["event"]
    assert events, "a seeded shipment has events"
    for event in events:
        assert set(event) == {"order", "code", "label", "date"}
        assert isinstance(event["order"], int)
    dates = [datetime.fromisoformat(e["date"]) for e in events]
    assert dates == sorted(dates, reverse=True), "event[0] is the most recent"
    assert [e["order"] for e in events] == sorted((e["order"] for e in events), reverse=True)
    assert shipment["entryDate"] == events[-1]["date"]
    context = shipment["contextData"]
    assert isinstance(context["deliveryChoice"]["deliveryChoice"], int)
    assert context["originCountry"] == "FR"
    return shipment


def test_in_transit_colissimo(client: FlaskClient) -> None:
    response = track(client, "6A00000000001", lang="fr_FR")
    assert response.status_code == 200
    shipment = assert_suivi_shape(response.get_json(), "6A00000000001")
    assert shipment["holder"] == 4
    assert shipment["product"] == "colissimo"
    assert shipment["isFinal"] is False
    assert shipment["event"][0]["code"] == "ET1"
    assert "deliveryDate" not in shipment
    assert shipment["estimDate"] == "2026-03-11"
    assert shipment["event"][0]["date"] == "2026-03-10T05:00:00+01:00"
    assert [s["status"] for s in shipment["timeline"]] == [True, True, False, False, False]


def test_delivered_colissimo(client: FlaskClient) -> None:
    shipment = assert_suivi_shape(track(client, "6A00000000002").get_json(), "6A00000000002")
    assert shipment["holder"] == 4
    assert shipment["isFinal"] is True
    assert shipment["event"][0]["code"] == "DI1"
    assert shipment["deliveryDate"] == shipment["event"][0]["date"]
    assert shipment["deliveryDate"] == "2026-03-09T10:45:00+01:00"
    assert "estimDate" not in shipment
    assert all(step["status"] and step["type"] == 1 for step in shipment["timeline"])


def test_colissimo_with_problem(client: FlaskClient) -> None:
    shipment = assert_suivi_shape(track(client, "6A00000000003").get_json(), "6A00000000003")
    assert shipment["event"][0]["code"] == "PB1"
    assert shipment["isFinal"] is False
    assert "deliveryDate" not in shipment
    assert any(step["type"] == 0 for step in shipment["timeline"]), "an incident (aléa) step"


def test_international_returned_to_sender(client: FlaskClient) -> None:
    shipment = assert_suivi_shape(track(client, "EW000000001FR").get_json(), "EW000000001FR")
    assert shipment["holder"] == 2
    assert shipment["event"][0]["code"] == "RE1"
    assert shipment["isFinal"] is False
    assert shipment["contextData"]["arrivalCountry"] != "FR"
    assert any(step["type"] == -1 for step in shipment["timeline"])


def test_seed_table_is_exactly_the_contracts() -> None:
    assert SEED_IDSHIPS == ("6A00000000001", "6A00000000002", "6A00000000003", "EW000000001FR")
    last_codes = {k: v["event"][0]["code"] for k, v in seed_shipments(FIXED).items()}
    assert last_codes == {
        "6A00000000001": "ET1",
        "6A00000000002": "DI1",
        "6A00000000003": "PB1",
        "EW000000001FR": "RE1",
    }


def test_dates_follow_the_clock() -> None:
    later = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # summer time: +02:00
    client = make_client(SandboxState(None, clock=lambda: later))
    shipment = track(client, "6A00000000001").get_json()["shipment"]
    assert shipment["event"][0]["date"] == "2026-07-01T08:00:00+02:00"
    assert shipment["estimDate"] == "2026-07-02"


def test_lower_case_id_is_found(client: FlaskClient) -> None:
    body = track(client, "ew000000001fr").get_json()
    assert body["returnCode"] == 200
    assert body["shipment"]["idShip"] == "EW000000001FR"


@pytest.mark.parametrize("lang", LANGS)
def test_every_contract_lang_is_echoed(client: FlaskClient, lang: str) -> None:
    response = track(client, "6A00000000001", lang=lang)
    assert response.status_code == 200
    assert response.get_json()["lang"] == lang


def test_lang_defaults_to_french(client: FlaskClient) -> None:
    assert track(client, "6A00000000001").get_json()["lang"] == "fr_FR"


# --- Tracking: batches and errors ----------------------------------------------------------------


def test_several_ids_give_an_array(client: FlaskClient) -> None:
    response = track(client, ",".join(SEED_IDSHIPS))
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list)
    assert [unit["shipment"]["idShip"] for unit in body] == list(SEED_IDSHIPS)


def test_mixed_batch_is_multi_status(client: FlaskClient) -> None:
    response = track(client, "6A00000000001,6A99999999999,abc")
    assert response.status_code == 207
    codes = [unit["returnCode"] for unit in response.get_json()]
    assert codes == [200, 404, 400]


def test_batch_of_unknown_ids_is_404_array(client: FlaskClient) -> None:
    response = track(client, "6A99999999998,6A99999999999")
    assert response.status_code == 404
    assert [u["returnMessage"] for u in response.get_json()] == ["Not Found", "Not Found"]


def test_more_than_ten_ids_is_400(client: FlaskClient) -> None:
    response = track(client, ",".join(["6A00000000001"] * 11))
    assert response.status_code == 400
    assert response.get_json()["returnCode"] == 400


def test_unknown_valid_id_is_404_json(client: FlaskClient) -> None:
    response = track(client, "6A99999999999")
    assert response.status_code == 404
    assert response.get_json() == {
        "returnCode": 404,
        "returnMessage": "Not Found",
        "idShip": "6A99999999999",
        "lang": "fr_FR",
        "scope": "open",
    }


@pytest.mark.parametrize(
    "bad", ["6A0000000", "6A000000000000000", "6A00000-00001", "6A0000000000é"]
)
def test_malformed_id_is_400(client: FlaskClient, bad: str) -> None:
    response = track(client, bad)
    assert response.status_code == 400
    body = response.get_json()
    assert body["returnCode"] == 400
    assert body["returnMessage"].startswith(INVALID_MESSAGE_START)
    assert body["idShip"] == bad
    assert body["lang"] == "fr_FR"
    assert body["scope"] == "open"


def test_unknown_lang_is_400(client: FlaskClient) -> None:
    response = track(client, "6A00000000001", lang="pt_PT")
    assert response.status_code == 400
    body = response.get_json()
    assert body["returnCode"] == 400
    assert "returnMessage" in body


@pytest.mark.parametrize("path", ["/suivi/v2/idships/", "/suivi/v2/idships"])
def test_missing_id_is_plain_text_404(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.mimetype == "text/plain"
    assert response.get_json(silent=True) is None
    assert response.get_data(as_text=True).strip()


# --- Authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Okapi-Key": "wrong"}, {"X-Okapi-Key": SANDBOX_OKAPI_KEY[:-1] + "1"}],
)
@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/suivi/v2/idships/6A00000000001"),
        ("post", CLAIMS),
        ("get", CLAIMS + "?referenceExterne=X"),
        ("get", CLAIMS + "/RCL-2026-000001"),
    ],
)
def test_missing_or_wrong_key_is_401(
    client: FlaskClient, headers: dict[str, str], method: str, path: str
) -> None:
    response = getattr(client, method)(path, headers=headers, json=claim_body())
    assert response.status_code == 401
    assert response.get_json() == {"returnCode": 401, "returnMessage": "Unauthorized"}


def test_unauthorised_post_creates_nothing(client: FlaskClient, state: SandboxState) -> None:
    client.post(CLAIMS, json=claim_body())
    assert len(state.read().get("claims", {})) == 0


def test_sandbox_key_is_64_characters() -> None:
    assert len(SANDBOX_OKAPI_KEY) == 64


# --- Quota ---------------------------------------------------------------------------------------


def test_quota_is_100_calls_per_second() -> None:
    clock = FakeMonotonic()
    client = make_client(clock=clock)
    for _ in range(100):
        assert track(client, "6A00000000001").status_code == 200
    response = track(client, "6A00000000001")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.get_json() == {
        "code": "TOO_MANY_REQUESTS",
        "message": "Rate limited, max quota reached (100 calls per 1s) (TOO_MANY_REQUESTS).",
    }
    assert post_claim(client).status_code == 429, "claims share the key's quota"
    clock.value += 1.0
    assert track(client, "6A00000000001").status_code == 200


def test_throttled_post_creates_nothing() -> None:
    clock = FakeMonotonic()
    state = SandboxState(None, clock=lambda: FIXED)
    client = make_client(state, clock=clock)
    for _ in range(100):
        track(client, "6A00000000001")
    assert post_claim(client).status_code == 429
    assert len(state.read().get("claims", {})) == 0


def test_quota_can_be_switched_off() -> None:
    client = make_client(quotas=False, clock=FakeMonotonic())
    statuses = {track(client, "6A00000000001").status_code for _ in range(150)}
    assert statuses == {200}


def test_quota_with_the_real_clock() -> None:
    client = make_client()
    statuses = [track(client, "6A00000000001").status_code for _ in range(101)]
    assert statuses.count(429) <= 1
    if statuses[-1] == 429:  # the 101 calls fitted in one second, as they normally do
        assert statuses[:100] == [200] * 100


# --- Claims ---------------------------------------------------------------------------------------


def test_create_claim(client: FlaskClient, state: SandboxState) -> None:
    response = post_claim(client)
    assert response.status_code == 201
    assert response.get_json() == {
        "returnCode": 201,
        "reclamation": {
            "id": "RCL-2026-000001",
            "statut": "ENREGISTREE",
            "dateCreation": "2026-03-10T11:00:00+01:00",
            "dateReponseAttendue": "2026-03-31T11:00:00+02:00",
        },
    }
    stored = state.read()["claims"]["RCL-2026-000001"]
    assert stored["referenceExterne"] == "PIMMS-TEST-0001"
    assert stored["idShip"] == "6A00000000003"
    assert stored["motif"] == "RETARD_LIVRAISON"
    assert stored["contact"] == {"email": "camille.exemple@example.org", "telephone": "0100000000"}


def test_response_is_due_21_days_later_in_winter() -> None:
    winter = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    client = make_client(SandboxState(None, clock=lambda: winter))
    claim = post_claim(client).get_json()["reclamation"]
    assert claim["dateCreation"] == "2026-01-05T10:30:00+01:00"
    assert claim["dateReponseAttendue"] == "2026-01-26T10:30:00+01:00"


def test_claim_id_year_comes_from_the_clock() -> None:
    next_year = datetime(2027, 2, 1, 8, 0, tzinfo=UTC)
    client = make_client(SandboxState(None, clock=lambda: next_year))
    assert post_claim(client).get_json()["reclamation"]["id"] == "RCL-2027-000001"


def test_sending_twice_creates_two_claims(client: FlaskClient, state: SandboxState) -> None:
    first = post_claim(client).get_json()["reclamation"]["id"]
    second = post_claim(client).get_json()["reclamation"]["id"]
    assert (first, second) == ("RCL-2026-000001", "RCL-2026-000002")
    assert len(state.read().get("claims", {})) == 2
    found = client.get(CLAIMS, headers=AUTH, query_string={"referenceExterne": "PIMMS-TEST-0001"})
    assert found.status_code == 200
    assert [c["id"] for c in found.get_json()["reclamations"]] == [first, second]


def test_lookup_by_reference_filters(client: FlaskClient) -> None:
    post_claim(client, referenceExterne="REF-A")
    post_claim(client, referenceExterne="REF-B")
    body = client.get(CLAIMS, headers=AUTH, query_string={"referenceExterne": "REF-B"}).get_json()
    assert list(body) == ["reclamations"]
    assert [c["referenceExterne"] for c in body["reclamations"]] == ["REF-B"]
    assert body["reclamations"][0]["id"] == "RCL-2026-000002"


def test_lookup_without_match_is_empty(client: FlaskClient) -> None:
    response = client.get(CLAIMS, headers=AUTH, query_string={"referenceExterne": "NOPE"})
    assert response.status_code == 200
    assert response.get_json() == {"reclamations": []}


def test_lookup_without_reference_is_400(client: FlaskClient) -> None:
    response = client.get(CLAIMS, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["returnCode"] == 400


def test_get_claim(client: FlaskClient) -> None:
    post_claim(client, motif="COLIS_ENDOMMAGE")
    response = client.get(f"{CLAIMS}/RCL-2026-000001", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["returnCode"] == 200
    claim = body["reclamation"]
    assert claim["id"] == "RCL-2026-000001"
    assert claim["statut"] == "ENREGISTREE"
    assert claim["motif"] == "COLIS_ENDOMMAGE"
    assert claim["dateReponseAttendue"] == "2026-03-31T11:00:00+02:00"
    assert claim["historique"] == [
        {
            "statut": "ENREGISTREE",
            "date": "2026-03-10T11:00:00+01:00",
            "commentaire": "Réclamation enregistrée.",
        }
    ]


def test_unknown_claim_is_404(client: FlaskClient) -> None:
    response = client.get(f"{CLAIMS}/RCL-2026-999999", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"returnCode": 404, "returnMessage": "Not Found"}


@pytest.mark.parametrize("motif", MOTIFS)
def test_every_motif_is_accepted(client: FlaskClient, motif: str) -> None:
    assert post_claim(client, motif=motif).status_code == 201


def test_contact_is_optional(client: FlaskClient, state: SandboxState) -> None:
    body = claim_body()
    del body["contact"]
    assert client.post(CLAIMS, headers=AUTH, json=body).status_code == 201
    assert state.read()["claims"]["RCL-2026-000001"]["contact"] == {}


@pytest.mark.parametrize(
    "overrides",
    [
        {"motif": "PERDU"},
        {"motif": None},
        {"description": ""},
        {"description": "   "},
        {"description": 12},
        {"idShip": None},
        {"idShip": "6A-0001"},
        {"referenceExterne": ""},
        {"contact": "camille@example.org"},
        {"contact": {"email": 5}},
    ],
)
def test_invalid_claim_is_400(
    client: FlaskClient, state: SandboxState, overrides: dict[str, Any]
) -> None:
    response = post_claim(client, **overrides)
    assert response.status_code == 400
    body = response.get_json()
    assert body["returnCode"] == 400
    assert isinstance(body["returnMessage"], str) and body["returnMessage"]
    assert len(state.read().get("claims", {})) == 0


@pytest.mark.parametrize("field", ["idShip", "motif", "description", "referenceExterne"])
def test_missing_field_is_400(client: FlaskClient, field: str) -> None:
    body = claim_body()
    del body[field]
    response = client.post(CLAIMS, headers=AUTH, json=body)
    assert response.status_code == 400
    assert field in response.get_json()["returnMessage"]


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', ""])
def test_malformed_json_is_400(client: FlaskClient, raw: str) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = client.post(CLAIMS, headers=headers, data=raw)
    assert response.status_code == 400
    assert response.get_json()["returnCode"] == 400


def test_claim_on_unknown_shipment_is_404(client: FlaskClient, state: SandboxState) -> None:
    response = post_claim(client, idShip="6A99999999999")
    assert response.status_code == 404
    assert response.get_json() == {"returnCode": 404, "returnMessage": "Not Found"}
    assert len(state.read().get("claims", {})) == 0


@pytest.mark.parametrize("id_ship", SEED_IDSHIPS)
def test_claim_on_every_seeded_shipment(client: FlaskClient, id_ship: str) -> None:
    assert post_claim(client, idShip=id_ship).status_code == 201


# --- Sandbox admin route --------------------------------------------------------------------------


def set_status(client: FlaskClient, claim_id: str, payload: Any) -> Any:
    return client.post(f"/_sandbox/claims/{claim_id}/status", json=payload)


def test_admin_drives_a_claim_through_every_status(client: FlaskClient) -> None:
    post_claim(client)
    for status in STATUTS[1:]:
        response = set_status(
            client, "RCL-2026-000001", {"status": status, "note": f"vers {status}"}
        )
        assert response.status_code == 200
        assert response.get_json()["reclamation"]["statut"] == status
        fetched = client.get(f"{CLAIMS}/RCL-2026-000001", headers=AUTH).get_json()["reclamation"]
        assert fetched["statut"] == status
        assert fetched["historique"][-1] == {
            "statut": status,
            "date": "2026-03-10T11:00:00+01:00",
            "commentaire": f"vers {status}",
        }
    history = client.get(f"{CLAIMS}/RCL-2026-000001", headers=AUTH).get_json()["reclamation"]
    assert [h["statut"] for h in history["historique"]] == list(STATUTS)


def test_admin_note_is_optional(client: FlaskClient) -> None:
    post_claim(client)
    response = set_status(client, "RCL-2026-000001", {"status": "REJETEE"})
    entry = response.get_json()["reclamation"]["historique"][-1]
    assert entry["statut"] == "REJETEE"
    assert entry["commentaire"]


def test_admin_unknown_claim_is_404(client: FlaskClient) -> None:
    response = set_status(client, "RCL-2026-000042", {"status": "CLOTUREE"})
    assert response.status_code == 404
    assert response.get_json()["returnCode"] == 404


@pytest.mark.parametrize("payload", [{"status": "resolved"}, {}, {"status": None}, [1]])
def test_admin_bad_status_is_400(client: FlaskClient, payload: Any) -> None:
    post_claim(client)
    response = set_status(client, "RCL-2026-000001", payload)
    assert response.status_code == 400
    claim = client.get(f"{CLAIMS}/RCL-2026-000001", headers=AUTH).get_json()["reclamation"]
    assert claim["statut"] == "ENREGISTREE"
    assert len(claim["historique"]) == 1


def test_admin_route_needs_no_key_nor_quota() -> None:
    clock = FakeMonotonic()
    client = make_client(clock=clock)
    post_claim(client)
    for _ in range(150):
        assert (
            set_status(client, "RCL-2026-000001", {"status": "EN_COURS_DE_TRAITEMENT"}).status_code
            == 200
        )


# --- Error pages ----------------------------------------------------------------------------------


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    response = client.get("/reclamation/v2/nothing", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"returnCode": 404, "returnMessage": "Not Found"}


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.delete(CLAIMS, headers=AUTH)
    assert response.status_code == 405
    assert response.get_json() == {"returnCode": 405, "returnMessage": "Method Not Allowed"}


def test_crash_is_json_500() -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("clock broke")

    client = make_client(SandboxState(None, clock=broken_clock))
    response = track(client, "6A00000000001")
    assert response.status_code == 500
    assert response.get_json() == {"returnCode": 500, "returnMessage": "Internal Server Error"}


# --- Persistence ----------------------------------------------------------------------------------


def test_two_apps_share_claims_through_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = make_client(SandboxState(path, clock=lambda: FIXED))
    second = make_client(SandboxState(path, clock=lambda: FIXED))
    assert post_claim(first).get_json()["reclamation"]["id"] == "RCL-2026-000001"
    assert post_claim(second).get_json()["reclamation"]["id"] == "RCL-2026-000002"
    assert set_status(second, "RCL-2026-000001", {"status": "CLOTUREE"}).status_code == 200
    claim = first.get(f"{CLAIMS}/RCL-2026-000001", headers=AUTH).get_json()["reclamation"]
    assert claim["statut"] == "CLOTUREE"
    found = first.get(CLAIMS, headers=AUTH, query_string={"referenceExterne": "PIMMS-TEST-0001"})
    assert len(found.get_json()["reclamations"]) == 2
    assert len(SandboxState(path).read()["claims"]) == 2


def test_apps_do_not_share_memory_state() -> None:
    first = make_client()
    second = make_client()
    post_claim(first)
    assert second.get(f"{CLAIMS}/RCL-2026-000001", headers=AUTH).status_code == 404
