"""Tests of the Veolia simulator: it must keep the partner contract so the plugin can rely on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from pimms_core.sandbox import SandboxState
from pimms_veolia.seed import (
    ETATS_DEMANDE,
    SANDBOX_LOGIN,
    SANDBOX_PASSWORD,
    SEED_NUMEROS_CLIENT,
    TYPES_DEMANDE,
    abonnements_for,
    find_abonnement,
)
from pimms_veolia.simulator import QUOTA_CALLS, create_app

FIXED = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
FIXED_TS = "2026-10-01T09:30:00+00:00"


class Clock:
    """A settable clock, so token expiry and time rules are tested without sleeping."""

    def __init__(self, now: datetime = FIXED) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Ticks:
    """A settable monotonic clock for the quota window."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> SandboxState:
    return SandboxState(None, clock=clock)


@pytest.fixture
def client(state: SandboxState) -> FlaskClient:
    return create_app(state, quotas=False).test_client()


def login(client: FlaskClient) -> str:
    response = client.post(
        "/auth/v1/token", json={"identifiant": SANDBOX_LOGIN, "mot_de_passe": SANDBOX_PASSWORD}
    )
    assert response.status_code == 200
    return str(response.get_json()["jeton"])


def bearer(jeton: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jeton}"}


@pytest.fixture
def auth(client: FlaskClient) -> dict[str, str]:
    return bearer(login(client))


def create(
    client: FlaskClient,
    auth: dict[str, str],
    key: str | None = "cle-1",
    **fields: Any,
) -> Any:
    body = {"id_abonnement": "AB-778812", "type_demande": "FACTURE_CONTESTEE"}
    body["description"] = "Facture de septembre contestee (donnees fictives)."
    body.update(fields)
    headers = dict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/demandes/v1/demandes", json=body, headers=headers)


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.is_json, response.data
    body = response.get_json()
    assert set(body) == {"erreur"}
    assert body["erreur"]["code"] == code
    assert isinstance(body["erreur"]["libelle"], str)
    assert body["erreur"]["libelle"]


def claim_count(state: SandboxState) -> int:
    return len(state.read().get("claims", {}))


# -- auth -------------------------------------------------------------------------------------


def test_login_returns_a_jeton_valid_900_seconds(client: FlaskClient) -> None:
    response = client.post(
        "/auth/v1/token", json={"identifiant": SANDBOX_LOGIN, "mot_de_passe": SANDBOX_PASSWORD}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"jeton", "expire_dans"}
    assert body["expire_dans"] == 900
    assert isinstance(body["jeton"], str) and len(body["jeton"]) >= 20


def test_each_login_gets_a_distinct_jeton(client: FlaskClient) -> None:
    assert login(client) != login(client)


@pytest.mark.parametrize(
    ("identifiant", "mot_de_passe"),
    [
        (SANDBOX_LOGIN, "mauvais-mot-de-passe"),
        ("inconnu", SANDBOX_PASSWORD),
        (SANDBOX_LOGIN.upper(), SANDBOX_PASSWORD),
    ],
)
def test_wrong_credentials_are_401(
    client: FlaskClient, identifiant: str, mot_de_passe: str
) -> None:
    response = client.post(
        "/auth/v1/token", json={"identifiant": identifiant, "mot_de_passe": mot_de_passe}
    )
    assert_error(response, 401, "IDENTIFIANTS_INVALIDES")


@pytest.mark.parametrize(
    "body",
    [
        b"{pas du json",
        b"[]",
        b'{"identifiant": "sandbox-veolia"}',
        b'{"identifiant": 3, "mot_de_passe": "x"}',
    ],
)
def test_malformed_login_is_400(client: FlaskClient, body: bytes) -> None:
    response = client.post("/auth/v1/token", data=body, content_type="application/json")
    assert_error(response, 400, "REQUETE_INVALIDE")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, bearer("jeton-inconnu")],
)
def test_missing_or_unknown_jeton_is_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/espace-client/v1/abonnements?numero_client=100200300", headers=headers)
    assert_error(response, 401, "JETON_INVALIDE")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/espace-client/v1/abonnements?numero_client=100200300"),
        ("post", "/demandes/v1/demandes"),
        ("get", "/demandes/v1/demandes/D-2026-00001"),
    ],
)
def test_every_api_route_requires_a_jeton(client: FlaskClient, method: str, path: str) -> None:
    response = getattr(client, method)(path, json={}, headers={"Idempotency-Key": "k"})
    assert_error(response, 401, "JETON_INVALIDE")


def test_jeton_expires_after_900_seconds_with_403(
    client: FlaskClient, clock: Clock, auth: dict[str, str]
) -> None:
    path = "/espace-client/v1/abonnements?numero_client=100200300"
    clock.advance(seconds=899)
    assert client.get(path, headers=auth).status_code == 200
    clock.advance(seconds=1)
    assert_error(client.get(path, headers=auth), 403, "JETON_EXPIRE")
    assert client.get(path, headers=bearer(login(client))).status_code == 200


def test_admin_route_expires_every_jeton(client: FlaskClient) -> None:
    path = "/espace-client/v1/abonnements?numero_client=100200300"
    first, second = bearer(login(client)), bearer(login(client))
    response = client.post("/_sandbox/tokens/expire")
    assert response.status_code == 200
    assert response.get_json() == {"jetons_expires": 2}
    assert_error(client.get(path, headers=first), 403, "JETON_EXPIRE")
    assert_error(client.get(path, headers=second), 403, "JETON_EXPIRE")
    assert client.get(path, headers=bearer(login(client))).status_code == 200


def test_jetons_are_kept_per_app(state: SandboxState) -> None:
    one = create_app(state, quotas=False).test_client()
    other = create_app(state, quotas=False).test_client()
    jeton = login(one)
    path = "/espace-client/v1/abonnements?numero_client=100200300"
    assert one.get(path, headers=bearer(jeton)).status_code == 200
    assert_error(other.get(path, headers=bearer(jeton)), 401, "JETON_INVALIDE")


# -- abonnements ------------------------------------------------------------------------------


def abonnements(client: FlaskClient, auth: dict[str, str], numero: str) -> list[dict[str, Any]]:
    response = client.get(f"/espace-client/v1/abonnements?numero_client={numero}", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"abonnements"}
    return list(body["abonnements"])


def test_camille_martin_has_the_contract_example(client: FlaskClient, auth: dict[str, str]) -> None:
    assert abonnements(client, auth, "100200300") == [
        {
            "id_abonnement": "AB-778812",
            "numero_client": "100200300",
            "titulaire": "Mme Camille MARTIN",
            "statut": "ACTIF",
            "libelle_contrat": "Eau potable - particulier",
            "adresse_de_branchement": "12 rue des Lilas 69008 LYON",
            "numero_compteur": "I17VA012345",
            "facturation": {
                "solde": 132.4,
                "mode_paiement": "MENSUALISATION",
                "dernier_index_releve": 1532.0,
                "date_index_releve": "2026-09-14",
            },
        }
    ]


def test_100200400_holds_one_active_and_one_terminated(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    found = abonnements(client, auth, "100200400")
    assert [(a["id_abonnement"], a["statut"]) for a in found] == [
        ("AB-900001", "ACTIF"),
        ("AB-900002", "RESILIE"),
    ]
    assert {a["numero_client"] for a in found} == {"100200400"}


def test_karim_benali_is_terminated(client: FlaskClient, auth: dict[str, str]) -> None:
    found = abonnements(client, auth, "100200500")
    assert [(a["id_abonnement"], a["statut"]) for a in found] == [("AB-555000", "RESILIE")]
    assert "Karim" in found[0]["titulaire"] and "BENALI" in found[0]["titulaire"]


@pytest.mark.parametrize("numero", SEED_NUMEROS_CLIENT)
def test_every_seed_row_has_all_contract_fields(
    client: FlaskClient, auth: dict[str, str], numero: str
) -> None:
    for abonnement in abonnements(client, auth, numero):
        assert set(abonnement) == {
            "id_abonnement",
            "numero_client",
            "titulaire",
            "statut",
            "libelle_contrat",
            "adresse_de_branchement",
            "numero_compteur",
            "facturation",
        }
        facturation = abonnement["facturation"]
        assert set(facturation) == {
            "solde",
            "mode_paiement",
            "dernier_index_releve",
            "date_index_releve",
        }
        assert isinstance(facturation["solde"], float)
        assert isinstance(facturation["dernier_index_releve"], float)
        assert datetime.fromisoformat(facturation["date_index_releve"]).date() < FIXED.date()


@pytest.mark.parametrize("numero", ["100200301", "999999999", "000000000"])
def test_unknown_valid_numero_is_an_empty_list(
    client: FlaskClient, auth: dict[str, str], numero: str
) -> None:
    assert abonnements(client, auth, numero) == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?numero_client=",
        "?numero_client=10020030",
        "?numero_client=1002003000",
        "?numero_client=10020030A",
        "?numero_client=%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6%D9%A7%D9%A8%D9%A9",
    ],
)
def test_invalid_numero_is_400(client: FlaskClient, auth: dict[str, str], query: str) -> None:
    response = client.get(f"/espace-client/v1/abonnements{query}", headers=auth)
    assert_error(response, 400, "REQUETE_INVALIDE")


def test_seed_accessors_match_the_contract() -> None:
    assert [a.id_abonnement for a in abonnements_for("100200400", FIXED)] == [
        "AB-900001",
        "AB-900002",
    ]
    assert abonnements_for("123456789", FIXED) == []
    found = find_abonnement("AB-778812", FIXED)
    assert found is not None and found.solde == 132.4
    assert find_abonnement("AB-000000", FIXED) is None


# -- demandes ---------------------------------------------------------------------------------


def test_create_demande_is_201_with_sequential_ids(
    client: FlaskClient, state: SandboxState, auth: dict[str, str]
) -> None:
    response = create(client, auth, key="cle-a")
    assert response.status_code == 201
    assert response.get_json() == {
        "demande": {
            "numero_demande": "D-2026-00001",
            "etat": "NOUVELLE",
            "date_creation": FIXED_TS,
            "date_reponse_prevue": "2026-10-09T09:30:00+00:00",
        }
    }
    second = create(client, auth, key="cle-b", type_demande="ECHEANCIER")
    assert second.status_code == 201
    assert second.get_json()["demande"]["numero_demande"] == "D-2026-00002"
    assert sorted(state.read()["claims"]) == ["D-2026-00001", "D-2026-00002"]


@pytest.mark.parametrize(
    ("type_demande", "days"),
    [(t, 2 if t == "FUITE" else 8) for t in TYPES_DEMANDE],
)
def test_response_due_8_days_or_2_for_a_leak(
    client: FlaskClient, auth: dict[str, str], type_demande: str, days: int
) -> None:
    response = create(client, auth, type_demande=type_demande)
    assert response.status_code == 201
    demande = response.get_json()["demande"]
    due = datetime.fromisoformat(demande["date_reponse_prevue"])
    assert due - datetime.fromisoformat(demande["date_creation"]) == timedelta(days=days)


def test_id_year_comes_from_the_clock(clock: Clock) -> None:
    clock.now = datetime(2027, 1, 2, 8, 0, tzinfo=UTC)
    client = create_app(SandboxState(None, clock=clock), quotas=False).test_client()
    response = create(client, bearer(login(client)))
    assert response.get_json()["demande"]["numero_demande"] == "D-2027-00001"
    assert response.get_json()["demande"]["date_creation"] == "2027-01-02T08:00:00+00:00"


def test_same_idempotency_key_returns_the_same_demande(
    client: FlaskClient, state: SandboxState, auth: dict[str, str]
) -> None:
    first = create(client, auth, key="cle-repetee")
    again = create(client, auth, key="cle-repetee")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert claim_count(state) == 1


def test_replayed_key_reports_the_current_etat(
    client: FlaskClient, state: SandboxState, auth: dict[str, str]
) -> None:
    create(client, auth, key="cle-x")
    client.post("/_sandbox/claims/D-2026-00001/status", json={"status": "EN_COURS"})
    again = create(client, auth, key="cle-x", type_demande="AUTRE")
    assert again.status_code == 200
    assert again.get_json()["demande"]["numero_demande"] == "D-2026-00001"
    assert again.get_json()["demande"]["etat"] == "EN_COURS"
    assert claim_count(state) == 1


def test_different_keys_create_different_demandes(
    client: FlaskClient, state: SandboxState, auth: dict[str, str]
) -> None:
    assert create(client, auth, key="k1").status_code == 201
    assert create(client, auth, key="k2").status_code == 201
    assert claim_count(state) == 2


@pytest.mark.parametrize("key", [None, "", "   "])
def test_missing_idempotency_key_is_400(
    client: FlaskClient, state: SandboxState, auth: dict[str, str], key: str | None
) -> None:
    assert_error(create(client, auth, key=key), 400, "REQUETE_INVALIDE")
    assert claim_count(state) == 0


def test_unknown_abonnement_is_404(
    client: FlaskClient, state: SandboxState, auth: dict[str, str]
) -> None:
    assert_error(create(client, auth, id_abonnement="AB-000000"), 404, "ABONNEMENT_INCONNU")
    assert claim_count(state) == 0


@pytest.mark.parametrize("type_demande", ["INCONNU", "fuite", 3])
def test_unknown_type_is_400(
    client: FlaskClient, state: SandboxState, auth: dict[str, str], type_demande: Any
) -> None:
    assert_error(create(client, auth, type_demande=type_demande), 400, "REQUETE_INVALIDE")
    assert claim_count(state) == 0


@pytest.mark.parametrize("id_abonnement", ["AB-900002", "AB-555000"])
@pytest.mark.parametrize("type_demande", [t for t in TYPES_DEMANDE if t != "AUTRE"])
def test_non_autre_demande_on_terminated_abonnement_is_409(
    client: FlaskClient,
    state: SandboxState,
    auth: dict[str, str],
    id_abonnement: str,
    type_demande: str,
) -> None:
    response = create(client, auth, id_abonnement=id_abonnement, type_demande=type_demande)
    assert_error(response, 409, "ABONNEMENT_RESILIE")
    assert claim_count(state) == 0


@pytest.mark.parametrize("id_abonnement", ["AB-900002", "AB-555000"])
def test_autre_demande_on_terminated_abonnement_is_allowed(
    client: FlaskClient, auth: dict[str, str], id_abonnement: str
) -> None:
    response = create(client, auth, id_abonnement=id_abonnement, type_demande="AUTRE")
    assert response.status_code == 201


def test_rejected_key_can_be_used_again(
    client: FlaskClient, state: SandboxState, auth: dict[str, str]
) -> None:
    assert create(client, auth, key="cle-r", id_abonnement="AB-000000").status_code == 404
    assert create(client, auth, key="cle-r").status_code == 201
    assert claim_count(state) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{pas du json",
        b'"texte"',
        b'{"type_demande": "AUTRE", "description": "x"}',
        b'{"id_abonnement": "AB-778812", "description": "x"}',
        b'{"id_abonnement": "AB-778812", "type_demande": "AUTRE"}',
        b'{"id_abonnement": "AB-778812", "type_demande": "AUTRE", "description": "  "}',
        b'{"id_abonnement": "AB-778812", "type_demande": "AUTRE", "description": "x", '
        b'"contact": 4}',
    ],
)
def test_malformed_demande_is_400(
    client: FlaskClient, state: SandboxState, auth: dict[str, str], body: bytes
) -> None:
    headers = {**auth, "Idempotency-Key": "cle-m"}
    response = client.post(
        "/demandes/v1/demandes", data=body, headers=headers, content_type="application/json"
    )
    assert_error(response, 400, "REQUETE_INVALIDE")
    assert claim_count(state) == 0


def test_get_demande_shows_details_and_suivi(client: FlaskClient, auth: dict[str, str]) -> None:
    contact = {"telephone": "0600000000", "courriel": "camille.martin@example.invalid"}
    create(client, auth, type_demande="FUITE", description="Fuite avant compteur", contact=contact)
    response = client.get("/demandes/v1/demandes/D-2026-00001", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {
        "demande": {
            "numero_demande": "D-2026-00001",
            "id_abonnement": "AB-778812",
            "type_demande": "FUITE",
            "description": "Fuite avant compteur",
            "contact": contact,
            "etat": "NOUVELLE",
            "date_creation": FIXED_TS,
            "date_reponse_prevue": "2026-10-03T09:30:00+00:00",
            "date_maj": FIXED_TS,
            "suivi": [{"etat": "NOUVELLE", "date": FIXED_TS, "message": "Demande enregistree"}],
        }
    }


def test_get_demande_without_contact_omits_it(client: FlaskClient, auth: dict[str, str]) -> None:
    create(client, auth)
    demande = client.get("/demandes/v1/demandes/D-2026-00001", headers=auth).get_json()["demande"]
    assert "contact" not in demande


def test_unknown_demande_is_404(client: FlaskClient, auth: dict[str, str]) -> None:
    response = client.get("/demandes/v1/demandes/D-2026-99999", headers=auth)
    assert_error(response, 404, "DEMANDE_INCONNUE")


# -- sandbox admin route ----------------------------------------------------------------------


@pytest.mark.parametrize("etat", ETATS_DEMANDE)
def test_admin_route_sets_every_etat(
    client: FlaskClient, clock: Clock, auth: dict[str, str], etat: str
) -> None:
    create(client, auth)
    clock.advance(hours=3)
    response = client.post(
        "/_sandbox/claims/D-2026-00001/status", json={"status": etat, "note": "Note de test"}
    )
    assert response.status_code == 200
    assert response.get_json()["demande"]["etat"] == etat
    fresh = bearer(login(client))
    demande = client.get("/demandes/v1/demandes/D-2026-00001", headers=fresh).get_json()["demande"]
    assert demande["etat"] == etat
    assert demande["date_maj"] == "2026-10-01T12:30:00+00:00"
    assert demande["date_creation"] == FIXED_TS
    assert demande["suivi"][-1] == {
        "etat": etat,
        "date": "2026-10-01T12:30:00+00:00",
        "message": "Note de test",
    }
    assert len(demande["suivi"]) == 2


def test_admin_route_walks_a_demande_through_its_life(
    client: FlaskClient, clock: Clock, auth: dict[str, str]
) -> None:
    create(client, auth)
    for etat in ("EN_COURS", "EN_ATTENTE_CLIENT", "EN_COURS", "TRAITEE", "CLOSE"):
        clock.advance(days=1)
        assert (
            client.post("/_sandbox/claims/D-2026-00001/status", json={"status": etat}).status_code
            == 200
        )
    fresh = bearer(login(client))
    demande = client.get("/demandes/v1/demandes/D-2026-00001", headers=fresh).get_json()["demande"]
    assert [e["etat"] for e in demande["suivi"]] == [
        "NOUVELLE",
        "EN_COURS",
        "EN_ATTENTE_CLIENT",
        "EN_COURS",
        "TRAITEE",
        "CLOSE",
    ]
    assert all(e["message"] for e in demande["suivi"])
    assert demande["date_maj"] == "2026-10-06T09:30:00+00:00"


def test_admin_route_unknown_claim_is_404(client: FlaskClient) -> None:
    response = client.post("/_sandbox/claims/D-2026-00042/status", json={"status": "TRAITEE"})
    assert_error(response, 404, "DEMANDE_INCONNUE")


@pytest.mark.parametrize(
    "body", [{"status": "resolved"}, {"status": "INCONNU"}, {}, {"status": "TRAITEE", "note": 5}]
)
def test_admin_route_bad_status_is_400(
    client: FlaskClient, state: SandboxState, auth: dict[str, str], body: dict[str, Any]
) -> None:
    create(client, auth)
    response = client.post("/_sandbox/claims/D-2026-00001/status", json=body)
    assert_error(response, 400, "REQUETE_INVALIDE")
    assert state.read()["claims"]["D-2026-00001"]["etat"] == "NOUVELLE"


# -- quota ------------------------------------------------------------------------------------


def test_quota_answers_429_with_retry_after(state: SandboxState) -> None:
    ticks = Ticks()
    client = create_app(state, quota_clock=ticks).test_client()
    auth = bearer(login(client))
    path = "/espace-client/v1/abonnements?numero_client=100200300"
    for _ in range(QUOTA_CALLS):
        assert client.get(path, headers=auth).status_code == 200
    response = client.get(path, headers=auth)
    assert_error(response, 429, "TROP_DE_REQUETES")
    assert int(response.headers["Retry-After"]) >= 1
    ticks.value += 1.0
    assert client.get(path, headers=auth).status_code == 200


def test_quota_is_per_login_not_per_jeton(state: SandboxState) -> None:
    client = create_app(state, quota_clock=Ticks()).test_client()
    path = "/espace-client/v1/abonnements?numero_client=100200300"
    first, second = bearer(login(client)), bearer(login(client))
    for _ in range(QUOTA_CALLS):
        assert client.get(path, headers=first).status_code == 200
    assert_error(client.get(path, headers=second), 429, "TROP_DE_REQUETES")


def test_quota_counts_demandes_too(state: SandboxState) -> None:
    client = create_app(state, quota_clock=Ticks()).test_client()
    auth = bearer(login(client))
    for index in range(QUOTA_CALLS):
        assert create(client, auth, key=f"q-{index}").status_code == 201
    assert_error(create(client, auth, key="q-extra"), 429, "TROP_DE_REQUETES")
    assert claim_count(state) == QUOTA_CALLS


def test_quotas_can_be_disabled(client: FlaskClient, auth: dict[str, str]) -> None:
    path = "/espace-client/v1/abonnements?numero_client=100200300"
    statuses = {client.get(path, headers=auth).status_code for _ in range(QUOTA_CALLS * 3)}
    assert statuses == {200}


# -- errors are never HTML --------------------------------------------------------------------


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/espace-client/v1/inconnu"), 404, "RESSOURCE_INCONNUE")


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.delete("/demandes/v1/demandes")
    assert_error(response, 405, "METHODE_NON_AUTORISEE")
    assert "POST" in response.headers["Allow"]


def test_unexpected_failure_is_json_500(
    client: FlaskClient, state: SandboxState, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> Iterator[dict[str, Any]]:
        raise RuntimeError("disque plein")

    monkeypatch.setattr(state, "transaction", broken)
    assert_error(create(client, auth), 500, "ERREUR_INTERNE")


# -- persistence ------------------------------------------------------------------------------


def test_two_apps_on_one_state_file_share_demandes(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "state.json"
    one = create_app(SandboxState(path, clock=clock), quotas=False).test_client()
    other = create_app(SandboxState(path, clock=clock), quotas=False).test_client()
    one_auth, other_auth = bearer(login(one)), bearer(login(other))

    assert create(one, one_auth, key="partagee").status_code == 201
    seen = other.get("/demandes/v1/demandes/D-2026-00001", headers=other_auth)
    assert seen.status_code == 200
    assert seen.get_json()["demande"]["type_demande"] == "FACTURE_CONTESTEE"

    replay = create(other, other_auth, key="partagee")
    assert replay.status_code == 200
    assert replay.get_json()["demande"]["numero_demande"] == "D-2026-00001"

    assert create(other, other_auth, key="autre").get_json()["demande"]["numero_demande"] == (
        "D-2026-00002"
    )
    other.post("/_sandbox/claims/D-2026-00001/status", json={"status": "TRAITEE"})
    followed = one.get("/demandes/v1/demandes/D-2026-00001", headers=one_auth).get_json()
    assert followed["demande"]["etat"] == "TRAITEE"
    assert len(SandboxState(path).read()["claims"]) == 2
