"""Tests of the SNCF simulator: the contract in /work/shared/partners/sncf.md, through Flask."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from pimms_core.sandbox import SandboxState
from pimms_sncf.seed import (
    SANDBOX_API_KEY,
    SEED_REFERENCES,
    build_bookings,
    find_booking,
    normalize_name,
)
from pimms_sncf.simulator import (
    QUOTA_CALLS,
    ApiError,
    add_one_month,
    create_app,
    g30_compensation,
    g30_rate,
)

# 10:30 in Paris (CET), a Sunday in mid-March 2026.
FIXED = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
DOSSIERS = "/v1/relation-client/dossiers"
CLAIMS = "/v1/relation-client/reclamations"


def basic(key: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{key}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


AUTH = basic(SANDBOX_API_KEY)


class Clock:
    """A clock tests can move."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_client(clock: Any = None, *, quotas: bool = False, path: Path | None = None) -> Any:
    state = SandboxState(path, clock=clock or (lambda: FIXED))
    return create_app(state, quotas=quotas).test_client(), state


@pytest.fixture
def client() -> FlaskClient:
    return make_client()[0]


def claim_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference_dossier": "ABC123",
        "nom": "Martin",
        "motif": "G30_RETARD",
        "description": "Arrivée à Lyon avec plus d'une heure de retard.",
        "external_id": "pimms-0001",
        "contact": {"email": "camille.martin@example.test"},
    }
    body.update(overrides)
    return body


# --- auth -------------------------------------------------------------------------------------


def test_missing_authorization_is_401_no_token_without_wrapper(client: FlaskClient) -> None:
    response = client.get(f"{DOSSIERS}/ABC123?nom=Martin")
    assert response.status_code == 401
    assert response.get_json() == {"message": "no token"}


@pytest.mark.parametrize(
    "headers",
    [
        basic("wrong-key"),
        {"Authorization": "Bearer sandbox-sncf-key"},
        {"Authorization": "Basic !!!not-base64!!!"},
    ],
)
def test_wrong_credentials_are_403_without_wrapper(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.post(CLAIMS, json=claim_body(), headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {"message": "You are not authorized to access this resource"}


def test_claim_routes_require_auth(client: FlaskClient) -> None:
    assert client.get(f"{CLAIMS}/R-26-0000001").status_code == 401
    assert client.post(CLAIMS, json=claim_body()).status_code == 401


# --- bookings ---------------------------------------------------------------------------------


def test_abc123_booking_is_served_exactly(client: FlaskClient) -> None:
    response = client.get(f"{DOSSIERS}/ABC123?nom=Martin", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {
        "dossier": {
            "reference": "ABC123",
            "nom": "MARTIN",
            "statut": "confirme",
            "voyageurs": [{"prenom": "Camille", "nom": "MARTIN"}],
            "trajets": [
                {
                    "train": "TGV INOUI 6611",
                    "origine": "Paris Gare de Lyon",
                    "destination": "Lyon Part-Dieu",
                    "depart_prevu": "20260305T081000",
                    "arrivee_prevue": "20260305T101000",
                    "arrivee_reelle": "20260305T111500",
                    "retard_minutes": 65,
                }
            ],
            "montant_total": {"valeur": 89.0, "devise": "EUR"},
        }
    }


@pytest.mark.parametrize(
    ("reference", "name", "train", "delay", "fare", "departure"),
    [
        ("XYZ789", "Benali", "Intercités 3631", 130, 45.0, "20260307T075600"),
        ("QRS456", "Nguyen", "TER 886012", 40, 22.4, "20260309T091400"),
        ("OLD001", "Martin", "TGV INOUI 8515", 80, 79.0, "20251215T095200"),
    ],
)
def test_other_seed_bookings(
    client: FlaskClient,
    reference: str,
    name: str,
    train: str,
    delay: int,
    fare: float,
    departure: str,
) -> None:
    response = client.get(f"{DOSSIERS}/{reference}", query_string={"nom": name}, headers=AUTH)
    assert response.status_code == 200
    dossier = response.get_json()["dossier"]
    assert dossier["reference"] == reference
    assert dossier["nom"] == name.upper()
    (trip,) = dossier["trajets"]
    assert trip["train"] == train
    assert trip["retard_minutes"] == delay
    assert trip["depart_prevu"] == departure
    assert dossier["montant_total"] == {"valeur": fare, "devise": "EUR"}


def test_arrival_times_reflect_delay() -> None:
    trip = build_bookings(FIXED)["XYZ789"].trips[0]
    assert trip.to_json()["arrivee_prevue"] == "20260307T112000"
    assert trip.to_json()["arrivee_reelle"] == "20260307T133000"  # 2h10 late


def test_old001_journey_is_90_days_before_now() -> None:
    trip = build_bookings(FIXED)["OLD001"].trips[0]
    assert (FIXED.date() - trip.departure.date()).days == 90


@pytest.mark.parametrize("name", ["martin", "MARTIN", " Mártin ", "MARTÍN"])
def test_name_matches_without_case_or_accents(client: FlaskClient, name: str) -> None:
    response = client.get(f"{DOSSIERS}/ABC123", query_string={"nom": name}, headers=AUTH)
    assert response.status_code == 200


def test_accented_name_matches_plain_seed_name(client: FlaskClient) -> None:
    response = client.get(f"{DOSSIERS}/QRS456", query_string={"nom": "Nguyễn"}, headers=AUTH)
    assert response.status_code == 200
    assert normalize_name("Nguyễn") == normalize_name("NGUYEN")


def test_lowercase_reference_is_accepted(client: FlaskClient) -> None:
    response = client.get(f"{DOSSIERS}/abc123?nom=Martin", headers=AUTH)
    assert response.get_json()["dossier"]["reference"] == "ABC123"


def test_wrong_name_gives_same_404_as_unknown_reference(client: FlaskClient) -> None:
    wrong_name = client.get(f"{DOSSIERS}/ABC123?nom=Benali", headers=AUTH)
    unknown = client.get(f"{DOSSIERS}/ZZZ999?nom=Martin", headers=AUTH)
    assert wrong_name.status_code == unknown.status_code == 404
    assert wrong_name.get_json() == unknown.get_json()
    assert wrong_name.get_json()["error"]["id"] == "unknown_object"


@pytest.mark.parametrize("reference", ["ABC12", "ABC1234", "ABC-12", "ÀBC123"])
def test_malformed_reference_is_400(client: FlaskClient, reference: str) -> None:
    response = client.get(f"{DOSSIERS}/{reference}?nom=Martin", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["id"] == "unable_to_parse"


@pytest.mark.parametrize("query", ["", "?nom=", "?nom=%20%20"])
def test_missing_name_is_400(client: FlaskClient, query: str) -> None:
    response = client.get(f"{DOSSIERS}/ABC123{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["id"] == "unable_to_parse"


def test_every_seed_reference_resolves() -> None:
    for reference, name in SEED_REFERENCES:
        assert find_booking(reference, name, FIXED) is not None
    assert find_booking("ABC123", "Nguyen", FIXED) is None


# --- claims: creation and G30 -----------------------------------------------------------------


def test_g30_on_abc123_gives_25_percent(client: FlaskClient) -> None:
    response = client.post(CLAIMS, json=claim_body(), headers=AUTH)
    assert response.status_code == 201
    assert response.get_json() == {
        "reclamation": {
            "id": "R-26-0000001",
            "statut": "recue",
            "cree_le": "20260315T103000",
            "reponse_attendue_le": "20260415T103000",
            "compensation": {"montant": 22.25, "devise": "EUR", "forme": "bon_voyage"},
        }
    }


def test_g30_on_xyz789_gives_50_percent(client: FlaskClient) -> None:
    body = claim_body(reference_dossier="XYZ789", nom="benali", external_id="x-2")
    response = client.post(CLAIMS, json=body, headers=AUTH)
    assert response.status_code == 201
    assert response.get_json()["reclamation"]["compensation"] == {
        "montant": 22.5,
        "devise": "EUR",
        "forme": "bon_voyage",
    }


def test_g30_on_ter_is_not_eligible_and_nothing_is_created() -> None:
    client, state = make_client()
    body = claim_body(reference_dossier="QRS456", nom="Nguyen")
    response = client.post(CLAIMS, json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["error"]["id"] == "non_eligible"
    assert response.get_json()["error"]["message"]
    assert len(state.read().get("claims", {})) == 0


def test_g30_on_old_journey_is_delai_depasse() -> None:
    client, state = make_client()
    body = claim_body(reference_dossier="OLD001", nom="Martin")
    response = client.post(CLAIMS, json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["error"]["id"] == "delai_depasse"
    assert len(state.read().get("claims", {})) == 0


def test_other_motif_on_ter_is_accepted_without_compensation(client: FlaskClient) -> None:
    body = claim_body(reference_dossier="QRS456", nom="Nguyen", motif="ANNULATION")
    response = client.post(CLAIMS, json=body, headers=AUTH)
    assert response.status_code == 201
    assert "compensation" not in response.get_json()["reclamation"]


def test_other_motif_on_old_journey_is_accepted(client: FlaskClient) -> None:
    body = claim_body(reference_dossier="OLD001", motif="TARIF")
    assert client.post(CLAIMS, json=body, headers=AUTH).status_code == 201


@pytest.mark.parametrize(
    "overrides",
    [{"reference_dossier": "ZZZ999"}, {"nom": "Benali"}, {"reference_dossier": "XYZ789"}],
)
def test_claim_on_unknown_booking_or_wrong_name_is_404(
    client: FlaskClient, overrides: dict[str, str]
) -> None:
    response = client.post(CLAIMS, json=claim_body(**overrides), headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"]["id"] == "unknown_object"


@pytest.mark.parametrize(
    "field", ["reference_dossier", "nom", "motif", "description", "external_id"]
)
def test_missing_required_field_is_400(client: FlaskClient, field: str) -> None:
    body = claim_body()
    del body[field]
    response = client.post(CLAIMS, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["id"] == "unable_to_parse"


@pytest.mark.parametrize(
    "overrides",
    [
        {"motif": "RETARD"},
        {"external_id": 12},
        {"description": ""},
        {"contact": 42},
        {"reference_dossier": "ABC12"},
    ],
)
def test_invalid_field_is_400(client: FlaskClient, overrides: dict[str, Any]) -> None:
    response = client.post(CLAIMS, json=claim_body(**overrides), headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]["id"] == "unable_to_parse"


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", ""])
def test_malformed_json_is_400(client: FlaskClient, data: str) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    response = client.post(CLAIMS, data=data, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["id"] == "unable_to_parse"


@pytest.mark.parametrize(
    "motif", ["G30_RETARD", "ANNULATION", "BAGAGE", "ACCESSIBILITE", "TARIF", "AUTRE"]
)
def test_every_motif_is_accepted(client: FlaskClient, motif: str) -> None:
    response = client.post(CLAIMS, json=claim_body(motif=motif), headers=AUTH)
    assert response.status_code == 201


def test_claim_ids_are_sequential(client: FlaskClient) -> None:
    ids = [
        client.post(CLAIMS, json=claim_body(external_id=f"k-{n}"), headers=AUTH).get_json()[
            "reclamation"
        ]["id"]
        for n in range(3)
    ]
    assert ids == ["R-26-0000001", "R-26-0000002", "R-26-0000003"]


# --- idempotency ------------------------------------------------------------------------------


def test_duplicate_external_id_is_409_and_creates_nothing() -> None:
    client, state = make_client()
    first = client.post(CLAIMS, json=claim_body(), headers=AUTH)
    again = client.post(CLAIMS, json=claim_body(), headers=AUTH)
    other_payload = client.post(CLAIMS, json=claim_body(motif="AUTRE"), headers=AUTH)
    assert first.status_code == 201
    for response in (again, other_payload):
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert error["id"] == "duplicate_external_id"
        assert error["existing_id"] == "R-26-0000001"
        assert error["message"]
    assert list(state.read()["claims"]) == ["R-26-0000001"]


def test_refused_claim_does_not_consume_external_id() -> None:
    client, state = make_client()
    refused = client.post(CLAIMS, json=claim_body(reference_dossier="QRS456", nom="Nguyen"))
    assert refused.status_code == 401
    refused = client.post(
        CLAIMS, json=claim_body(reference_dossier="QRS456", nom="Nguyen"), headers=AUTH
    )
    assert refused.status_code == 422
    accepted = client.post(CLAIMS, json=claim_body(), headers=AUTH)
    assert accepted.status_code == 201
    assert accepted.get_json()["reclamation"]["id"] == "R-26-0000001"
    assert len(state.read()["claims"]) == 1


# --- claims: follow-up ------------------------------------------------------------------------


def test_get_claim(client: FlaskClient) -> None:
    client.post(CLAIMS, json=claim_body(), headers=AUTH)
    response = client.get(f"{CLAIMS}/R-26-0000001", headers=AUTH)
    assert response.status_code == 200
    claim = response.get_json()["reclamation"]
    assert claim["id"] == "R-26-0000001"
    assert claim["statut"] == "recue"
    assert claim["maj_le"] == "20260315T103000"
    assert claim["historique"] == [
        {"statut": "recue", "le": "20260315T103000", "commentaire": "Réclamation reçue."}
    ]
    assert claim["compensation"] == {"montant": 22.25, "devise": "EUR", "forme": "bon_voyage"}
    assert claim["reponse_attendue_le"] == "20260415T103000"
    assert claim["motif"] == "G30_RETARD"


def test_get_claim_without_compensation_omits_it(client: FlaskClient) -> None:
    client.post(CLAIMS, json=claim_body(motif="BAGAGE"), headers=AUTH)
    claim = client.get(f"{CLAIMS}/R-26-0000001", headers=AUTH).get_json()["reclamation"]
    assert "compensation" not in claim


def test_unknown_claim_is_404(client: FlaskClient) -> None:
    response = client.get(f"{CLAIMS}/R-26-0000099", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"]["id"] == "unknown_object"


# --- time rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "claim_id", "created", "due"),
    [
        # 31 January → end of February.
        (
            datetime(2026, 1, 31, 12, tzinfo=UTC),
            "R-26-0000001",
            "20260131T130000",
            "20260228T130000",
        ),
        # New Year's Eve in UTC is already 2027 in Paris: local year in the id.
        (
            datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
            "R-27-0000001",
            "20270101T003000",
            "20270201T003000",
        ),
        # Summer time (CEST, UTC+2).
        (
            datetime(2026, 7, 10, 8, tzinfo=UTC),
            "R-26-0000001",
            "20260710T100000",
            "20260810T100000",
        ),
    ],
)
def test_creation_and_due_dates_in_paris_time(
    now: datetime, claim_id: str, created: str, due: str
) -> None:
    client, _ = make_client(lambda: now)
    response = client.post(CLAIMS, json=claim_body(motif="AUTRE"), headers=AUTH)
    claim = response.get_json()["reclamation"]
    assert (claim["id"], claim["cree_le"], claim["reponse_attendue_le"]) == (
        claim_id,
        created,
        due,
    )


def test_add_one_month_clamps_leap_february() -> None:
    assert add_one_month(datetime(2028, 1, 31, 10, tzinfo=UTC)).day == 29


@pytest.mark.parametrize(
    ("delay", "rate"),
    [(0, 0.0), (29, 0.0), (30, 0.25), (119, 0.25), (120, 0.5), (179, 0.5), (180, 0.75)],
)
def test_g30_rate_tiers(delay: int, rate: float) -> None:
    assert g30_rate(delay) == rate


def test_g30_sixty_day_deadline_boundary() -> None:
    booking = build_bookings(FIXED)["ABC123"]  # journey on 5 March 2026
    assert g30_compensation(booking, FIXED + timedelta(days=50))["montant"] == 22.25
    with pytest.raises(ApiError) as raised:
        g30_compensation(booking, FIXED + timedelta(days=51))
    assert (raised.value.status, raised.value.error_id) == (422, "delai_depasse")


def test_seed_stays_recent_whatever_the_day() -> None:
    later = datetime(2031, 9, 1, 6, 0, tzinfo=UTC)
    client, _ = make_client(lambda: later)
    response = client.post(CLAIMS, json=claim_body(), headers=AUTH)
    assert response.status_code == 201
    assert response.get_json()["reclamation"]["id"] == "R-31-0000001"


# --- sandbox admin route ----------------------------------------------------------------------


def test_admin_route_drives_claim_through_every_status() -> None:
    clock = Clock(FIXED)
    client, _ = make_client(clock)
    client.post(CLAIMS, json=claim_body(), headers=AUTH)
    statuses = ["en_cours", "complement_demande", "en_cours", "acceptee", "refusee", "close"]
    for hours, status in enumerate(statuses, start=1):
        clock.now = FIXED + timedelta(hours=hours)
        response = client.post(
            "/_sandbox/claims/R-26-0000001/status", json={"status": status, "note": f"n{hours}"}
        )
        assert response.status_code == 200
        claim = client.get(f"{CLAIMS}/R-26-0000001", headers=AUTH).get_json()["reclamation"]
        assert claim["statut"] == status
        assert claim["maj_le"] == f"20260315T{10 + hours:02d}3000"
        assert claim["historique"][-1] == {
            "statut": status,
            "le": claim["maj_le"],
            "commentaire": f"n{hours}",
        }
    assert len(claim["historique"]) == 1 + len(statuses)
    assert claim["cree_le"] == "20260315T103000"


def test_admin_route_default_comment_and_compensation(client: FlaskClient) -> None:
    client.post(CLAIMS, json=claim_body(motif="ANNULATION"), headers=AUTH)
    compensation = {"montant": 89, "forme": "virement"}
    response = client.post(
        "/_sandbox/claims/R-26-0000001/status",
        json={"status": "acceptee", "compensation": compensation},
    )
    claim = response.get_json()["reclamation"]
    assert claim["historique"][-1]["commentaire"]
    assert claim["compensation"] == {"montant": 89.0, "devise": "EUR", "forme": "virement"}


def test_admin_route_unknown_claim_is_404(client: FlaskClient) -> None:
    response = client.post("/_sandbox/claims/R-26-0000042/status", json={"status": "close"})
    assert response.status_code == 404
    assert response.get_json()["error"]["id"] == "unknown_object"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "resolved"},
        {},
        {"status": "close", "note": 3},
        {"status": "close", "compensation": {"montant": 5, "forme": "cheque"}},
        {"status": "close", "compensation": {"montant": "5", "forme": "virement"}},
    ],
)
def test_admin_route_invalid_body_is_400(client: FlaskClient, body: dict[str, Any]) -> None:
    client.post(CLAIMS, json=claim_body(), headers=AUTH)
    response = client.post("/_sandbox/claims/R-26-0000001/status", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["id"] == "unable_to_parse"
    claim = client.get(f"{CLAIMS}/R-26-0000001", headers=AUTH).get_json()["reclamation"]
    assert claim["statut"] == "recue"
    assert len(claim["historique"]) == 1


# --- quota ------------------------------------------------------------------------------------


def test_quota_answers_429_with_retry_after() -> None:
    ticks = [100.0]
    app = create_app(SandboxState(None, clock=lambda: FIXED), quota_clock=lambda: ticks[0])
    client = app.test_client()
    url = f"{DOSSIERS}/ABC123?nom=Martin"
    for _ in range(QUOTA_CALLS):
        assert client.get(url, headers=AUTH).status_code == 200
    limited = client.get(url, headers=AUTH)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.get_json()["error"]["id"] == "too_many_requests"
    assert limited.get_json()["error"]["message"]
    ticks[0] += 1.0
    assert client.get(url, headers=AUTH).status_code == 200


def test_quota_disabled() -> None:
    client, _ = make_client(quotas=False)
    for _ in range(QUOTA_CALLS + 5):
        assert client.get(f"{DOSSIERS}/ABC123?nom=Martin", headers=AUTH).status_code == 200


def test_quotas_are_per_app() -> None:
    ticks = [0.0]
    state = SandboxState(None, clock=lambda: FIXED)
    first = create_app(state, quota_clock=lambda: ticks[0]).test_client()
    second = create_app(state, quota_clock=lambda: ticks[0]).test_client()
    for _ in range(QUOTA_CALLS):
        first.get(f"{DOSSIERS}/ABC123?nom=Martin", headers=AUTH)
    assert first.get(f"{DOSSIERS}/ABC123?nom=Martin", headers=AUTH).status_code == 429
    assert second.get(f"{DOSSIERS}/ABC123?nom=Martin", headers=AUTH).status_code == 200


# --- error shapes -----------------------------------------------------------------------------


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    for url in ("/v1/nowhere", "/nowhere"):
        response = client.get(url, headers=AUTH)
        assert response.status_code == 404
        assert response.get_json()["error"]["id"] == "unknown_object"


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.get(CLAIMS, headers=AUTH)
    assert response.status_code == 405
    assert response.get_json()["error"]["id"] == "method_not_allowed"


def test_unexpected_failure_is_json_500() -> None:
    class BrokenState(SandboxState):
        def read(self) -> dict[str, Any]:
            raise RuntimeError("disk on fire")

    client = create_app(BrokenState(None, clock=lambda: FIXED)).test_client()
    response = client.get(f"{CLAIMS}/R-26-0000001", headers=AUTH)
    assert response.status_code == 500
    assert response.get_json()["error"]["id"] == "internal_error"


# --- persistence ------------------------------------------------------------------------------


def test_two_apps_on_one_state_file_share_claims(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first, _ = make_client(path=path)
    second, _ = make_client(path=path)
    assert first.post(CLAIMS, json=claim_body(), headers=AUTH).status_code == 201
    seen = second.get(f"{CLAIMS}/R-26-0000001", headers=AUTH)
    assert seen.status_code == 200
    duplicate = second.post(CLAIMS, json=claim_body(), headers=AUTH)
    assert duplicate.status_code == 409
    next_claim = second.post(CLAIMS, json=claim_body(external_id="other"), headers=AUTH)
    assert next_claim.get_json()["reclamation"]["id"] == "R-26-0000002"
    second.post("/_sandbox/claims/R-26-0000001/status", json={"status": "en_cours"})
    claim = first.get(f"{CLAIMS}/R-26-0000001", headers=AUTH).get_json()["reclamation"]
    assert claim["statut"] == "en_cours"
    assert len(SandboxState(path).read()["claims"]) == 2
