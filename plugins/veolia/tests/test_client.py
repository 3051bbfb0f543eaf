"""Veolia plugin unit tests: exact requests and every mapped answer, with respx.

The facade runs in live mode against Veolia's production base URL, which respx intercepts;
canned bodies are shaped like the contract (shared/partners/veolia.md). Credentials are canary
values, so any leak into an error text is caught.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

import pimms_veolia
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidInput,
    InvalidReference,
    PartnerAuthError,
    PartnerProtocolError,
    PartnerUnavailable,
    PimmsError,
)
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState, Contact, Idempotency
from pimms_core.policy import RetryPolicy
from pimms_core.testing import live_pimms
from pimms_veolia.info import INFO

BASE = "https://api.partenaires.eau.veolia.fr"
LOGIN = "canary-login-5d2e"
PASSWORD = "canary-password-81fa"
ENV = {"VEOLIA_LOGIN": LOGIN, "VEOLIA_PASSWORD": PASSWORD}
SETTINGS = {"login_env": "VEOLIA_LOGIN", "password_env": "VEOLIA_PASSWORD"}
NUMERO = "100200300"
ABONNEMENTS = "/espace-client/v1/abonnements"
DEMANDES = "/demandes/v1/demandes"
CANARY_DESCRIPTION = "canary-description-fuite-cave"

ABONNEMENT: dict[str, Any] = {
    "id_abonnement": "AB-778812",
    "numero_client": NUMERO,
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
ONE = {"abonnements": [ABONNEMENT]}


def abonnement(id_abonnement: str, statut: str, solde: float = 0.0) -> dict[str, Any]:
    item = copy.deepcopy(ABONNEMENT)
    item.update(id_abonnement=id_abonnement, statut=statut)
    item["facturation"]["solde"] = solde
    return item


TWO = {
    "abonnements": [
        abonnement("AB-900001", "ACTIF", 10.10),
        {
            **abonnement("AB-900002", "RESILIE", 20.25),
            "titulaire": "M. Autre TITULAIRE",
            "libelle_contrat": "Eau potable - residence secondaire",
            "adresse_de_branchement": "27 chemin du Moulin 26110 NYONS",
        },
    ]
}
DEMANDE_CREATED = {
    "demande": {
        "numero_demande": "D-2026-00042",
        "etat": "NOUVELLE",
        "date_creation": "2026-10-01T09:30:00+00:00",
        "date_reponse_prevue": "2026-10-09T09:30:00+00:00",
    }
}


def erreur(code: str, libelle: str = "Message de Veolia") -> dict[str, Any]:
    return {"erreur": {"code": code, "libelle": libelle}}


def demande_view(etat: str, suivi: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "demande": {
            "numero_demande": "D-2026-00042",
            "id_abonnement": "AB-778812",
            "type_demande": "FUITE",
            "description": "Fuite avant compteur",
            "etat": etat,
            "date_creation": "2026-10-01T09:30:00+00:00",
            "date_reponse_prevue": "2026-10-03T09:30:00+00:00",
            "date_maj": "2026-10-02T11:00:00+00:00",
            "suivi": suivi
            if suivi is not None
            else [
                {"etat": "NOUVELLE", "date": "2026-10-01T09:30:00+00:00", "message": "Enregistree"},
                {"etat": etat, "date": "2026-10-02T11:00:00+00:00", "message": "Mise a jour"},
            ],
        }
    }


def respond(route: respx.Route, status: int, body: object, **headers: str) -> None:
    """A canned answer: JSON for dicts and lists, raw text for strings, nothing for None."""
    if body is None:
        route.respond(status, headers=headers)
    elif isinstance(body, str):
        route.respond(status, text=body, headers=headers)
    else:
        route.respond(status, json=body, headers=headers)


@pytest.fixture
def veolia() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/auth/v1/token", name="token").respond(
            200, json={"jeton": "jeton-1", "expire_dans": 900}
        )
        yield router


@pytest.fixture
def pimms() -> Iterator[Pimms]:
    with live_pimms(pimms_veolia, BASE, settings=SETTINGS, env=ENV) as facade:
        yield facade


def lookup_route(router: respx.MockRouter, body: object = ONE, status: int = 200) -> respx.Route:
    route = router.get(ABONNEMENTS, params={"numero_client": NUMERO}, name="abonnements")
    respond(route, status, body)
    return route


def assert_clean(error: PimmsError) -> None:
    """No secret, no personal data, one line."""
    texts = [str(error), json.dumps(error.to_dict(), ensure_ascii=False)]
    for text in texts:
        for forbidden in (LOGIN, PASSWORD, "MARTIN", "Lilas", CANARY_DESCRIPTION, "jeton-1"):
            assert forbidden not in text
    assert "\n" not in str(error)


# --- declaration ---------------------------------------------------------------------------------


def test_info_declares_the_contract() -> None:
    assert INFO.id == "veolia"
    assert INFO.base_url == BASE
    assert INFO.idempotency is Idempotency.HEADER
    assert {c.code: c.category.value for c in INFO.categories} == {
        "FACTURE_CONTESTEE": "billing",
        "ECHEANCIER": "payment_difficulty",
        "RELEVE_INDEX": "meter_reading",
        "FUITE": "service_outage",
        "RESILIATION": "contract_change",
        "AUTRE": "other",
    }
    assert {s.code: s.state.value for s in INFO.statuses} == {
        "NOUVELLE": "received",
        "EN_COURS": "in_progress",
        "EN_ATTENTE_CLIENT": "awaiting_customer",
        "TRAITEE": "resolved",
        "REJETEE": "rejected",
        "CLOSE": "closed",
    }
    assert {s.name: s.secret for s in INFO.settings} == {"login": True, "password": True}
    assert [a.reference for a in INFO.sandbox_accounts] == ["100200300", "100200400", "100200500"]
    assert "9-digit customer number" in INFO.reference.hint


# --- auth ----------------------------------------------------------------------------------------


def test_lookup_sends_exact_requests(veolia: respx.MockRouter, pimms: Pimms) -> None:
    route = lookup_route(veolia)
    pimms.lookup_account("veolia", NUMERO)
    login = veolia["token"].calls.last.request
    assert login.method == "POST"
    assert login.url == f"{BASE}/auth/v1/token"
    assert json.loads(login.content) == {"identifiant": LOGIN, "mot_de_passe": PASSWORD}
    assert "Authorization" not in login.headers
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.path == ABONNEMENTS
    assert dict(request.url.params) == {"numero_client": NUMERO}
    assert request.headers["Authorization"] == "Bearer jeton-1"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("pimms/")
    assert not request.content


def test_login_follows_a_base_url_prefix() -> None:
    prefixed = "https://passerelle.example.org/veolia"
    with respx.mock(assert_all_called=True) as router:
        token = router.post(f"{prefixed}/auth/v1/token").respond(
            200, json={"jeton": "j", "expire_dans": 900}
        )
        router.get(f"{prefixed}{ABONNEMENTS}").respond(200, json=ONE)
        with live_pimms(pimms_veolia, prefixed, settings=SETTINGS, env=ENV) as facade:
            facade.lookup_account("veolia", NUMERO)
        assert token.called


def test_jeton_is_reused_across_calls(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup_route(veolia)
    pimms.lookup_account("veolia", NUMERO)
    pimms.lookup_account("veolia", NUMERO)
    assert veolia["token"].call_count == 1


def test_expire_dans_is_honoured(veolia: respx.MockRouter, pimms: Pimms) -> None:
    # A lifetime under the core's safety margin means the jeton is never reused.
    veolia["token"].respond(200, json={"jeton": "court", "expire_dans": 10})
    lookup_route(veolia)
    pimms.lookup_account("veolia", NUMERO)
    pimms.lookup_account("veolia", NUMERO)
    assert veolia["token"].call_count == 2


def test_login_without_expire_dans_still_works(veolia: respx.MockRouter, pimms: Pimms) -> None:
    veolia["token"].respond(200, json={"jeton": "sans-duree"})
    route = lookup_route(veolia)
    pimms.lookup_account("veolia", NUMERO)
    pimms.lookup_account("veolia", NUMERO)
    assert route.calls.last.request.headers["Authorization"] == "Bearer sans-duree"
    assert veolia["token"].call_count == 1


@pytest.mark.parametrize("expired_status", [401, 403])
def test_expired_jeton_logs_in_again_once_and_retries_once(
    veolia: respx.MockRouter, pimms: Pimms, expired_status: int
) -> None:
    veolia["token"].side_effect = [
        httpx.Response(200, json={"jeton": "ancien", "expire_dans": 900}),
        httpx.Response(200, json={"jeton": "nouveau", "expire_dans": 900}),
    ]
    route = veolia.get(ABONNEMENTS)
    route.side_effect = [
        httpx.Response(expired_status, json=erreur("JETON_EXPIRE")),
        httpx.Response(200, json=ONE),
    ]
    assert pimms.lookup_account("veolia", NUMERO).reference == NUMERO
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer ancien",
        "Bearer nouveau",
    ]


@pytest.mark.parametrize("expired_status", [401, 403])
def test_second_refusal_is_an_auth_error_not_a_loop(
    veolia: respx.MockRouter, pimms: Pimms, expired_status: int
) -> None:
    route = lookup_route(veolia, erreur("JETON_EXPIRE"), expired_status)
    with pytest.raises(PartnerAuthError) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert route.call_count == 2
    assert veolia["token"].call_count == 2
    assert_clean(caught.value)


def test_wrong_password_is_an_auth_error_naming_no_secret(
    veolia: respx.MockRouter, pimms: Pimms
) -> None:
    libelle = f"Mot de passe {PASSWORD} incorrect pour {LOGIN}"
    veolia["token"].respond(401, json=erreur("IDENTIFIANTS_INVALIDES", libelle))
    route = lookup_route(veolia)
    with pytest.raises(PartnerAuthError) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert not route.called
    assert veolia["token"].call_count == 1
    assert caught.value.partner == "veolia"
    assert_clean(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, "<html>indisponible</html>", PartnerUnavailable),
        (429, erreur("TROP_DE_REQUETES"), PartnerUnavailable),
        (200, {"token": "renamed"}, PartnerProtocolError),
        (200, "pas du json", PartnerProtocolError),
    ],
)
def test_login_failures_are_mapped(
    veolia: respx.MockRouter, pimms: Pimms, status: int, body: object, error: type[PimmsError]
) -> None:
    respond(veolia["token"], status, body)
    route = lookup_route(veolia)
    with pytest.raises(error) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert not route.called
    assert_clean(caught.value)


# --- account -------------------------------------------------------------------------------------


def test_lookup_maps_the_abonnement(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup_route(veolia)
    account = pimms.lookup_account("veolia", f" {NUMERO} ")
    assert account.partner == "veolia"
    assert account.reference == NUMERO
    assert account.holder_name == "Mme Camille MARTIN"
    assert account.status == "active"
    assert account.partner_status == "ACTIF"
    assert account.address == "12 rue des Lilas 69008 LYON"
    assert account.balance is not None
    assert (account.balance.amount, account.balance.currency) == (132.4, "EUR")
    [service] = account.services
    assert (service.id, service.label, service.status) == (
        "AB-778812",
        "Eau potable - particulier",
        "ACTIF",
    )
    assert dict(service.details) == {
        "numero_client": NUMERO,
        "numero_compteur": "I17VA012345",
        "adresse_de_branchement": "12 rue des Lilas 69008 LYON",
        "solde": "132.40",
        "mode_paiement": "MENSUALISATION",
        "dernier_index_releve": "1532",
        "date_index_releve": "2026-09-14",
    }
    assert account.raw == ONE
    assert account.plugin is not None and account.plugin.name == "pimms-veolia"


def test_several_abonnements_are_all_services(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup_route(veolia, TWO)
    account = pimms.lookup_account("veolia", NUMERO)
    assert [(s.id, s.status) for s in account.services] == [
        ("AB-900001", "ACTIF"),
        ("AB-900002", "RESILIE"),
    ]
    assert account.services[1].label == "Eau potable - residence secondaire"
    assert account.holder_name == "Mme Camille MARTIN"
    assert account.address == "12 rue des Lilas 69008 LYON"
    assert account.status == "active"
    assert account.balance is not None and account.balance.amount == 30.35


@pytest.mark.parametrize(
    ("statuts", "status", "partner_status"),
    [
        (["ACTIF"], "active", "ACTIF"),
        (["RESILIE"], "terminated", "RESILIE"),
        (["RESILIE", "RESILIE"], "terminated", "RESILIE"),
        (["EN_COURS_DE_RESILIATION"], "closing", "EN_COURS_DE_RESILIATION"),
        (["RESILIE", "EN_COURS_DE_RESILIATION"], "closing", "EN_COURS_DE_RESILIATION"),
        (["RESILIE", "ACTIF"], "active", "ACTIF"),
        (["SUSPENDU"], "unknown", "SUSPENDU"),
        (["RESILIE", "SUSPENDU"], "unknown", "SUSPENDU"),
        (["SUSPENDU", "ACTIF"], "active", "ACTIF"),
    ],
)
def test_account_status_from_every_abonnement(
    veolia: respx.MockRouter,
    pimms: Pimms,
    statuts: list[str],
    status: str,
    partner_status: str,
) -> None:
    body = {"abonnements": [abonnement(f"AB-{i}", s) for i, s in enumerate(statuts)]}
    lookup_route(veolia, body)
    account = pimms.lookup_account("veolia", NUMERO)
    assert (account.status, account.partner_status) == (status, partner_status)
    assert [s.status for s in account.services] == statuts


def test_unknown_fields_are_kept_and_optional_ones_may_be_missing(
    veolia: respx.MockRouter, pimms: Pimms
) -> None:
    item = {
        "id_abonnement": "AB-1",
        "titulaire": "SCI FICTIVE",
        "statut": "ACTIF",
        "nouveau_champ": {"x": 1},
    }
    lookup_route(veolia, {"abonnements": [item], "pagination": {"page": 1}})
    account = pimms.lookup_account("veolia", NUMERO)
    assert account.balance is None
    assert account.address is None
    assert account.services[0].label == "abonnement"
    assert dict(account.services[0].details) == {}
    assert account.raw["abonnements"][0]["nouveau_champ"] == {"x": 1}


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {"abonnements": []}), (200, {"abonnements": None}), (204, None)],
    ids=["empty-list", "null-list", "204-no-body"],
)
def test_no_abonnement_is_account_not_found(
    veolia: respx.MockRouter, pimms: Pimms, status: int, body: object
) -> None:
    lookup_route(veolia, body, status)
    with pytest.raises(AccountNotFound) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert "check it with the resident" in str(caught.value)


@pytest.mark.parametrize(
    "reference",
    ["12345678", "1002003000", "10020030A", "100 200 300", "١٠٠٢٠٠٣٠٠", "", "   "],
)
def test_invalid_reference_is_refused_before_any_request(
    veolia: respx.MockRouter, pimms: Pimms, reference: str
) -> None:
    with pytest.raises(InvalidReference) as caught:
        pimms.lookup_account("veolia", reference)
    assert "9-digit customer number" in str(caught.value)
    assert "100200300" in str(caught.value)
    assert not veolia.calls


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (400, erreur("REQUETE_INVALIDE"), InvalidReference, "Veolia refused it"),
        (400, {"erreur": "REQUETE_INVALIDE"}, InvalidReference, "Veolia refused it"),
        (404, erreur("RESSOURCE_INCONNUE"), AccountNotFound, "no account"),
        (429, erreur("TROP_DE_REQUETES"), PartnerUnavailable, "rate limit"),
        (500, erreur("ERREUR_INTERNE"), PartnerUnavailable, "HTTP 500 \\(ERREUR_INTERNE\\)"),
        (502, "<html><body>Bad Gateway</body></html>", PartnerUnavailable, "HTTP 502"),
        (418, erreur("THEIERE"), PartnerProtocolError, "HTTP 418 \\(THEIERE\\)"),
        (418, "pas du json", PartnerProtocolError, "unexpected HTTP 418"),
    ],
)
def test_lookup_errors_are_mapped(
    veolia: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: object,
    error: type[PimmsError],
    words: str,
) -> None:
    lookup_route(veolia, body, status)
    with pytest.raises(error, match=words) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert caught.value.partner == "veolia"
    assert caught.value.plugin is not None and caught.value.plugin.name == "pimms-veolia"
    assert_clean(caught.value)


def test_rate_limit_carries_retry_after(veolia: respx.MockRouter, pimms: Pimms) -> None:
    veolia.get(ABONNEMENTS).respond(
        429, headers={"Retry-After": "7"}, json=erreur("TROP_DE_REQUETES")
    )
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert caught.value.retry_after == 7.0


def _without(key: str) -> dict[str, Any]:
    item = copy.deepcopy(ABONNEMENT)
    del item[key]
    return {"abonnements": [item]}


@pytest.mark.parametrize(
    "body",
    [
        "pas du json",
        '{"abonnements": [',
        "[]",
        json.dumps({"abonnement": [ABONNEMENT]}),
        json.dumps({"abonnements": "AB-778812"}),
        json.dumps({"abonnements": ["AB-778812"]}),
        json.dumps(_without("id_abonnement")),
        json.dumps(_without("titulaire")),
        json.dumps(_without("statut")),
        json.dumps({"abonnements": [{**ABONNEMENT, "facturation": {"solde": "132,40"}}]}),
        json.dumps({"abonnements": [{**ABONNEMENT, "facturation": "MENSUALISATION"}]}),
    ],
)
def test_malformed_bodies_are_protocol_errors(
    veolia: respx.MockRouter, pimms: Pimms, body: str
) -> None:
    lookup_route(veolia, body)
    with pytest.raises(PartnerProtocolError) as caught:
        pimms.lookup_account("veolia", NUMERO)
    assert_clean(caught.value)


# --- opening a demande ---------------------------------------------------------------------------


def test_open_claim_sends_key_header_and_body(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup = lookup_route(veolia)
    route = veolia.post(DEMANDES).respond(201, json=DEMANDE_CREATED)
    claim = pimms.open_claim(
        "veolia",
        NUMERO,
        "billing",
        "Facture de septembre contestée",
        contact=Contact(email="c@example.org", phone="0600000000"),
        idempotency_key="cle-1",
    )
    assert lookup.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url == f"{BASE}{DEMANDES}"
    assert request.headers["Idempotency-Key"] == "cle-1"
    assert request.headers["Authorization"] == "Bearer jeton-1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "id_abonnement": "AB-778812",
        "type_demande": "FACTURE_CONTESTEE",
        "description": "Facture de septembre contestée",
        "contact": {"courriel": "c@example.org", "telephone": "0600000000"},
    }
    assert claim.partner == "veolia"
    assert claim.claim_ref == "D-2026-00042"
    assert claim.state is ClaimState.RECEIVED
    assert claim.partner_status == "NOUVELLE"
    assert claim.opened_at.isoformat() == "2026-10-01T09:30:00+00:00"
    assert claim.response_due_by is not None
    assert claim.response_due_by.isoformat() == "2026-10-09"
    assert claim.replayed is False
    assert claim.raw == DEMANDE_CREATED["demande"]


@pytest.mark.parametrize(
    ("category", "type_demande"),
    [
        ("billing", "FACTURE_CONTESTEE"),
        ("payment_difficulty", "ECHEANCIER"),
        ("meter_reading", "RELEVE_INDEX"),
        ("service_outage", "FUITE"),
        ("contract_change", "RESILIATION"),
        ("other", "AUTRE"),
        ("fuite", "FUITE"),
        ("ECHEANCIER", "ECHEANCIER"),
    ],
)
def test_every_category_is_sent_as_its_type_demande(
    veolia: respx.MockRouter, pimms: Pimms, category: str, type_demande: str
) -> None:
    lookup_route(veolia)
    route = veolia.post(DEMANDES).respond(201, json=DEMANDE_CREATED)
    pimms.open_claim("veolia", NUMERO, category, "x", idempotency_key="k")
    assert json.loads(route.calls.last.request.content)["type_demande"] == type_demande


@pytest.mark.parametrize(
    ("contact", "sent"),
    [
        (None, None),
        (Contact(phone="0600000000"), {"telephone": "0600000000"}),
        (Contact(email="c@example.org"), {"courriel": "c@example.org"}),
        (Contact(), None),
    ],
)
def test_contact_is_sent_only_with_what_is_known(
    veolia: respx.MockRouter, pimms: Pimms, contact: Contact | None, sent: dict[str, str] | None
) -> None:
    lookup_route(veolia)
    route = veolia.post(DEMANDES).respond(201, json=DEMANDE_CREATED)
    pimms.open_claim("veolia", NUMERO, "other", "x", contact=contact, idempotency_key="k")
    body = json.loads(route.calls.last.request.content)
    assert body.get("contact") == sent
    assert ("contact" in body) is (sent is not None)


def test_response_due_by_may_be_a_plain_date(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup_route(veolia)
    created = copy.deepcopy(DEMANDE_CREATED)
    created["demande"]["date_reponse_prevue"] = "2026-10-03"
    veolia.post(DEMANDES).respond(201, json=created)
    claim = pimms.open_claim("veolia", NUMERO, "FUITE", "x", idempotency_key="k")
    assert claim.response_due_by is not None and claim.response_due_by.isoformat() == "2026-10-03"


def test_replayed_key_returns_the_same_demande(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup_route(veolia)
    veolia.post(DEMANDES).respond(200, json=DEMANDE_CREATED)
    claim = pimms.open_claim("veolia", NUMERO, "billing", "x", idempotency_key="k")
    assert claim.replayed is True
    assert claim.claim_ref == "D-2026-00042"


def test_unknown_etat_on_creation_is_kept(veolia: respx.MockRouter, pimms: Pimms) -> None:
    lookup_route(veolia)
    created = copy.deepcopy(DEMANDE_CREATED)
    created["demande"]["etat"] = "A_QUALIFIER"
    veolia.post(DEMANDES).respond(201, json=created)
    claim = pimms.open_claim("veolia", NUMERO, "billing", "x", idempotency_key="k")
    assert claim.state is ClaimState.UNKNOWN
    assert claim.partner_status == "A_QUALIFIER"


@pytest.mark.parametrize("service_id", ["AB-900001", "AB-900002"])
def test_service_id_picks_one_of_several_abonnements(
    veolia: respx.MockRouter, pimms: Pimms, service_id: str
) -> None:
    lookup_route(veolia, TWO)
    route = veolia.post(DEMANDES).respond(201, json=DEMANDE_CREATED)
    pimms.open_claim(
        "veolia", NUMERO, "other", "x", service_id=f" {service_id} ", idempotency_key="k"
    )
    assert json.loads(route.calls.last.request.content)["id_abonnement"] == service_id


def test_several_abonnements_and_no_service_id_asks_for_it(
    veolia: respx.MockRouter, pimms: Pimms
) -> None:
    lookup_route(veolia, TWO)
    route = veolia.post(DEMANDES)
    with pytest.raises(InvalidInput) as caught:
        pimms.open_claim("veolia", NUMERO, "billing", "x", idempotency_key="k")
    message = str(caught.value)
    assert "2 subscriptions" in message
    assert "service_id" in message
    assert "AB-900001, AB-900002" in message
    assert not route.called
    assert_clean(caught.value)


@pytest.mark.parametrize("body", [ONE, TWO], ids=["one", "two"])
def test_service_id_not_held_is_refused_listing_the_valid_ones(
    veolia: respx.MockRouter, pimms: Pimms, body: dict[str, Any]
) -> None:
    lookup_route(veolia, body)
    route = veolia.post(DEMANDES)
    with pytest.raises(InvalidInput) as caught:
        pimms.open_claim(
            "veolia", NUMERO, "billing", "x", service_id="AB-000000", idempotency_key="k"
        )
    expected = ", ".join(a["id_abonnement"] for a in body["abonnements"])
    assert f"expected one of {expected}" in str(caught.value)
    assert not isinstance(caught.value, InvalidReference)
    assert not route.called


@pytest.mark.parametrize(("status", "body"), [(200, {"abonnements": []}), (204, None)])
def test_open_claim_on_an_unknown_numero_is_account_not_found(
    veolia: respx.MockRouter, pimms: Pimms, status: int, body: object
) -> None:
    lookup_route(veolia, body, status)
    route = veolia.post(DEMANDES)
    with pytest.raises(AccountNotFound):
        pimms.open_claim("veolia", NUMERO, "billing", "x", idempotency_key="k")
    assert not route.called


def test_open_claim_with_invalid_reference_sends_nothing(
    veolia: respx.MockRouter, pimms: Pimms
) -> None:
    with pytest.raises(InvalidReference):
        pimms.open_claim("veolia", "AB-778812", "billing", "x", idempotency_key="k")
    assert not veolia.calls


@pytest.mark.parametrize(
    ("status", "body", "error", "words", "code"),
    [
        (
            409,
            erreur("ABONNEMENT_RESILIE", f"Abonnement resilie ({CANARY_DESCRIPTION})"),
            ClaimRejected,
            "this subscription is terminated: only the category 'other' \\(AUTRE\\) can be opened",
            "ABONNEMENT_RESILIE",
        ),
        (409, erreur("CONFLIT"), ClaimRejected, "invalid \\(CONFLIT\\)", "CONFLIT"),
        (
            400,
            erreur("REQUETE_INVALIDE", f"description '{CANARY_DESCRIPTION}' refusee"),
            ClaimRejected,
            "invalid \\(REQUETE_INVALIDE\\)",
            "REQUETE_INVALIDE",
        ),
        (400, "<html>Bad Request</html>", ClaimRejected, "found the demande invalid$", None),
        (404, erreur("ABONNEMENT_INCONNU"), AccountNotFound, "does not know this subscr", None),
        (429, erreur("TROP_DE_REQUETES"), PartnerUnavailable, "rate limit", None),
        (500, "<html>oops</html>", PartnerUnavailable, "HTTP 500", None),
        (403, erreur("JETON_EXPIRE"), PartnerAuthError, "credentials", None),
    ],
)
def test_open_claim_errors_are_mapped(
    veolia: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: object,
    error: type[PimmsError],
    words: str,
    code: str | None,
) -> None:
    lookup_route(veolia)
    respond(veolia.post(DEMANDES), status, body)
    with pytest.raises(error, match=words) as caught:
        pimms.open_claim("veolia", NUMERO, "billing", CANARY_DESCRIPTION, idempotency_key="k")
    if code is not None:
        assert getattr(caught.value, "partner_code", None) == code
    assert_clean(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        "pas du json",
        json.dumps(DEMANDE_CREATED["demande"]),
        json.dumps({"demande": {**DEMANDE_CREATED["demande"], "numero_demande": None}}),
        json.dumps({"demande": {**DEMANDE_CREATED["demande"], "etat": ["NOUVELLE"]}}),
        json.dumps({"demande": {**DEMANDE_CREATED["demande"], "date_creation": "hier"}}),
        json.dumps({"demande": {**DEMANDE_CREATED["demande"], "date_reponse_prevue": "bientot"}}),
    ],
)
def test_malformed_creation_answers_are_protocol_errors(
    veolia: respx.MockRouter, pimms: Pimms, body: str
) -> None:
    lookup_route(veolia)
    veolia.post(DEMANDES).respond(201, text=body)
    with pytest.raises(PartnerProtocolError):
        pimms.open_claim("veolia", NUMERO, "billing", "x", idempotency_key="k")


def test_a_resent_demande_carries_the_same_key(veolia: respx.MockRouter) -> None:
    lookup_route(veolia)
    route = veolia.post(DEMANDES)
    route.side_effect = [
        httpx.Response(503, json=erreur("ERREUR_INTERNE")),
        httpx.Response(201, json=DEMANDE_CREATED),
    ]
    policy = RetryPolicy(attempts=2, backoff=0.0)
    with live_pimms(pimms_veolia, BASE, settings=SETTINGS, env=ENV, policy=policy) as facade:
        claim = facade.open_claim("veolia", NUMERO, "billing", "x", idempotency_key="cle-stable")
    assert claim.claim_ref == "D-2026-00042"
    assert [c.request.headers["Idempotency-Key"] for c in route.calls] == ["cle-stable"] * 2
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert bodies[0] == bodies[1]


# --- following a demande -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("etat", "state", "label"),
    [
        ("NOUVELLE", ClaimState.RECEIVED, "Nouvelle"),
        ("EN_COURS", ClaimState.IN_PROGRESS, "En cours"),
        ("EN_ATTENTE_CLIENT", ClaimState.AWAITING_CUSTOMER, "En attente du client"),
        ("TRAITEE", ClaimState.RESOLVED, "Traitée"),
        ("REJETEE", ClaimState.REJECTED, "Rejetée"),
        ("CLOSE", ClaimState.CLOSED, "Close"),
        ("TRANSMISE_MEDIATEUR", ClaimState.UNKNOWN, ""),
    ],
)
def test_every_etat_is_mapped(
    veolia: respx.MockRouter, pimms: Pimms, etat: str, state: ClaimState, label: str
) -> None:
    route = veolia.get(f"{DEMANDES}/D-2026-00042").respond(200, json=demande_view(etat))
    status = pimms.claim_status("veolia", "D-2026-00042")
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.headers["Authorization"] == "Bearer jeton-1"
    assert not request.url.query
    assert status.partner == "veolia"
    assert status.claim_ref == "D-2026-00042"
    assert status.state is state
    assert status.partner_status == etat
    assert status.partner_label == label
    assert status.updated_at is not None
    assert status.updated_at.isoformat() == "2026-10-02T11:00:00+00:00"
    assert [(h.partner_status, h.state) for h in status.history] == [
        ("NOUVELLE", ClaimState.RECEIVED),
        (etat, state),
    ]
    assert [h.note for h in status.history] == ["Enregistree", "Mise a jour"]
    assert status.raw["type_demande"] == "FUITE"


def test_history_is_given_oldest_first(veolia: respx.MockRouter, pimms: Pimms) -> None:
    suivi = [
        {"etat": "TRAITEE", "date": "2026-10-03T08:00:00+00:00", "message": "c"},
        {"etat": "NOUVELLE", "date": "2026-10-01T09:30:00+00:00", "message": "a"},
        {"etat": "EN_COURS", "date": "2026-10-02T10:00:00+00:00"},
    ]
    veolia.get(f"{DEMANDES}/D-2026-00042").respond(200, json=demande_view("TRAITEE", suivi))
    status = pimms.claim_status("veolia", "D-2026-00042")
    assert [h.partner_status for h in status.history] == ["NOUVELLE", "EN_COURS", "TRAITEE"]
    assert status.history[1].note == ""


def test_history_without_dates_keeps_the_partner_order(
    veolia: respx.MockRouter, pimms: Pimms
) -> None:
    suivi = [{"etat": "EN_COURS"}, {"etat": "NOUVELLE", "date": "2026-10-01T09:30:00+00:00"}]
    body = demande_view("EN_COURS", suivi)
    del body["demande"]["date_maj"]
    veolia.get(f"{DEMANDES}/D-2026-00042").respond(200, json=body)
    status = pimms.claim_status("veolia", "D-2026-00042")
    assert [h.partner_status for h in status.history] == ["EN_COURS", "NOUVELLE"]
    assert status.updated_at is None


def test_claim_ref_is_url_encoded(veolia: respx.MockRouter, pimms: Pimms) -> None:
    route = veolia.get(url__regex=r".*/demandes/v1/demandes/.*").respond(
        404, json=erreur("DEMANDE_INCONNUE")
    )
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("veolia", "D-2026/../../espace-client")
    assert route.calls.last.request.url.raw_path == (
        b"/demandes/v1/demandes/D-2026%2F..%2F..%2Fespace-client"
    )


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, erreur("DEMANDE_INCONNUE"), ClaimNotFound),
        (404, "Not Found", ClaimNotFound),
        (204, None, ClaimNotFound),
        (400, erreur("REQUETE_INVALIDE"), PartnerProtocolError),
        (429, erreur("TROP_DE_REQUETES"), PartnerUnavailable),
        (503, erreur("ERREUR_INTERNE"), PartnerUnavailable),
        (401, erreur("JETON_INVALIDE"), PartnerAuthError),
    ],
)
def test_claim_status_errors_are_mapped(
    veolia: respx.MockRouter, pimms: Pimms, status: int, body: object, error: type[PimmsError]
) -> None:
    respond(veolia.get(f"{DEMANDES}/D-2026-00042"), status, body)
    with pytest.raises(error) as caught:
        pimms.claim_status("veolia", "D-2026-00042")
    assert_clean(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        "pas du json",
        json.dumps({"demandes": []}),
        json.dumps({"demande": {"numero_demande": "D-2026-00042"}}),
        json.dumps({"demande": {"etat": "EN_COURS"}}),
        json.dumps({"demande": {"numero_demande": "D-1", "etat": "EN_COURS", "suivi": "x"}}),
        json.dumps({"demande": {"numero_demande": "D-1", "etat": "EN_COURS", "suivi": [{}]}}),
        json.dumps({"demande": {"numero_demande": "D-1", "etat": "EN_COURS", "date_maj": "?"}}),
    ],
)
def test_malformed_status_answers_are_protocol_errors(
    veolia: respx.MockRouter, pimms: Pimms, body: str
) -> None:
    veolia.get(f"{DEMANDES}/D-2026-00042").respond(200, text=body)
    with pytest.raises(PartnerProtocolError):
        pimms.claim_status("veolia", "D-2026-00042")
