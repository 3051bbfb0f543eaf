"""SNCF plugin unit tests: exact requests and every mapped answer, with respx.

The facade runs in live mode against SNCF's production base URL, which respx intercepts; canned
bodies are shaped like the contract (shared/partners/sncf.md).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

import pimms_sncf
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
from pimms_core.models import ClaimState, Contact, Money
from pimms_core.policy import RetryPolicy
from pimms_core.testing import live_pimms

BASE = "https://api.sncf.com"
API_KEY = "canary-sncf-key-5e0d"
ENV = {"SNCF_API_KEY": API_KEY}
SETTINGS = {"api_key_env": "SNCF_API_KEY"}
BASIC = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
PARIS = ZoneInfo("Europe/Paris")

DOSSIER_PATH = "/v1/relation-client/dossiers/ABC123"
CLAIMS_PATH = "/v1/relation-client/reclamations"
CLAIM_PATH = "/v1/relation-client/reclamations/R-26-0000001"

NAME = "Martin"
DESCRIPTION = "Arrivée à Lyon avec 65 minutes de retard, correspondance manquée."

DOSSIER: dict[str, Any] = {
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
                "depart_prevu": "20261102T081000",
                "arrivee_prevue": "20261102T101000",
                "arrivee_reelle": "20261102T111500",
                "retard_minutes": 65,
            }
        ],
        "montant_total": {"valeur": 89.0, "devise": "EUR"},
    }
}
CREATED: dict[str, Any] = {
    "reclamation": {
        "id": "R-26-0000001",
        "statut": "recue",
        "cree_le": "20261105T093000",
        "reponse_attendue_le": "20261205T093000",
        "compensation": {"montant": 22.25, "devise": "EUR", "forme": "bon_voyage"},
    }
}


def claim_view(status: str = "recue", **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": "R-26-0000001",
        "statut": status,
        "maj_le": "20261106T140000",
        "historique": [
            {"statut": "recue", "le": "20261105T093000", "commentaire": "Réclamation reçue."},
            {"statut": status, "le": "20261106T140000", "commentaire": "Suite donnée."},
        ],
    }
    view.update(extra)
    return {"reclamation": view}


def sncf_error(error_id: str, message: str = "Erreur.", **extra: Any) -> dict[str, Any]:
    return {"error": {"id": error_id, "message": message, **extra}}


@pytest.fixture
def sncf() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def pimms() -> Iterator[Pimms]:
    with live_pimms(pimms_sncf, BASE, settings=SETTINGS, env=ENV) as facade:
        yield facade


def open_g30(pimms: Pimms, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"last_name": NAME, "idempotency_key": "key-1"}
    options.update(kwargs)
    return pimms.open_claim("sncf", "ABC123", "delay_compensation", DESCRIPTION, **options)


def assert_clean(error: BaseException) -> None:
    """No secret and no personal data in an error's text."""
    text = f"{error} {json.dumps(getattr(error, 'to_dict', dict)(), default=str)}"
    for forbidden in (API_KEY, BASIC.split()[1], NAME, NAME.upper(), "Camille", DESCRIPTION):
        assert forbidden not in text


# --- lookup -------------------------------------------------------------------------------------


def test_lookup_sends_exact_request(sncf: respx.MockRouter, pimms: Pimms) -> None:
    route = sncf.get(DOSSIER_PATH).respond(200, json=DOSSIER)
    pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.path == DOSSIER_PATH
    assert parse_qs(request.url.query.decode()) == {"nom": ["Martin"]}
    assert request.headers["Authorization"] == BASIC
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("pimms/")
    assert route.call_count == 1


def test_lookup_maps_the_booking(sncf: respx.MockRouter, pimms: Pimms) -> None:
    sncf.get(DOSSIER_PATH).respond(200, json=DOSSIER)
    account = pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert account.partner == "sncf"
    assert account.reference == "ABC123"
    assert account.holder_name == "Camille MARTIN"
    assert (account.status, account.partner_status) == ("active", "confirme")
    assert account.balance == Money(89.0, "EUR")
    assert account.address is None
    (journey,) = account.services
    assert journey.id == "TGV-INOUI-6611-20261102"
    assert journey.label == "TGV INOUI 6611 Paris Gare de Lyon → Lyon Part-Dieu"
    assert journey.status == "delayed"
    assert journey.details == {
        "train": "TGV INOUI 6611",
        "origin": "Paris Gare de Lyon",
        "destination": "Lyon Part-Dieu",
        "departure_planned": "2026-11-02T08:10:00+01:00",
        "arrival_planned": "2026-11-02T10:10:00+01:00",
        "arrival_actual": "2026-11-02T11:15:00+01:00",
        "delay_minutes": "65",
    }
    assert account.raw == DOSSIER["dossier"]
    assert account.plugin is not None and account.plugin.name == "pimms-sncf"


@pytest.mark.parametrize(("typed", "sent"), [("abc123", "ABC123"), (" aBc123 ", "ABC123")])
def test_lowercase_reference_is_sent_in_upper_case(
    sncf: respx.MockRouter, pimms: Pimms, typed: str, sent: str
) -> None:
    route = sncf.get(f"/v1/relation-client/dossiers/{sent}").respond(200, json=DOSSIER)
    pimms.lookup_account("sncf", typed, last_name=" Martin ")
    assert route.called
    assert parse_qs(route.calls.last.request.url.query.decode()) == {"nom": ["Martin"]}


def test_name_is_encoded_in_the_query(sncf: respx.MockRouter, pimms: Pimms) -> None:
    route = sncf.get(DOSSIER_PATH).respond(200, json=DOSSIER)
    pimms.lookup_account("sncf", "ABC123", last_name="Nguyễn & Co/?#")
    raw_query = route.calls.last.request.url.query.decode()
    assert "&" not in raw_query and "#" not in raw_query and "/" not in raw_query
    assert parse_qs(raw_query) == {"nom": ["Nguyễn & Co/?#"]}


def test_summer_times_carry_the_summer_offset(sncf: respx.MockRouter, pimms: Pimms) -> None:
    body = copy.deepcopy(DOSSIER)
    body["dossier"]["trajets"][0].update(
        depart_prevu="20260710T231000", arrivee_prevue="20260711T011000"
    )
    sncf.get(DOSSIER_PATH).respond(200, json=body)
    (journey,) = pimms.lookup_account("sncf", "ABC123", last_name=NAME).services
    assert journey.details["departure_planned"] == "2026-07-10T23:10:00+02:00"
    assert journey.id == "TGV-INOUI-6611-20260710"  # the local day, not the UTC one


def test_unknown_fields_and_odd_shapes_are_read(sncf: respx.MockRouter, pimms: Pimms) -> None:
    body = copy.deepcopy(DOSSIER)
    dossier = body["dossier"]
    dossier["statut"] = "en_attente_paiement"
    dossier["canal_vente"] = {"code": "SNCF_CONNECT"}
    dossier["voyageurs"] = [
        {"prenom": "Léo", "nom": "DURAND"},
        {"prenom": "Camille", "nom": "Martin", "carte": "Avantage"},
    ]
    del dossier["montant_total"]
    trip = dossier["trajets"][0]
    del trip["retard_minutes"]
    trip["voiture"] = "12"
    dossier["trajets"].append(
        {
            "train": "Intercités 3631",
            "origine": "Paris Austerlitz",
            "destination": "Clermont-Ferrand",
            "depart_prevu": "20261103T075600",
        }
    )
    sncf.get(DOSSIER_PATH).respond(200, json=body)
    account = pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert account.holder_name == "Camille Martin"  # the traveller bearing the booking's name
    assert (account.status, account.partner_status) == ("unknown", "en_attente_paiement")
    assert account.balance is None
    first, second = account.services
    assert first.details["delay_minutes"] == "65"  # from the arrival times
    assert second.id == "Intercites-3631-20261103"
    assert second.status == ""
    assert second.details["arrival_actual"] == "" and second.details["delay_minutes"] == ""
    assert account.raw["canal_vente"] == {"code": "SNCF_CONNECT"}


@pytest.mark.parametrize(
    ("changes", "holder", "status", "service_status"),
    [
        ({"voyageurs": []}, "MARTIN", "active", "delayed"),
        ({"voyageurs": [{"prenom": "Léo"}]}, "Léo", "active", "delayed"),
        ({"statut": "annule"}, "Camille MARTIN", "cancelled", "delayed"),
        (
            {"trajets": [{**DOSSIER["dossier"]["trajets"][0], "retard_minutes": 0}]},
            None,
            None,
            "on_time",
        ),
    ],
)
def test_holder_status_and_delay_variants(
    sncf: respx.MockRouter,
    pimms: Pimms,
    changes: dict[str, Any],
    holder: str | None,
    status: str | None,
    service_status: str,
) -> None:
    body = copy.deepcopy(DOSSIER)
    body["dossier"].update(changes)
    sncf.get(DOSSIER_PATH).respond(200, json=body)
    account = pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert account.holder_name == (holder or "Camille MARTIN")
    assert account.status == (status or "active")
    assert account.services[0].status == service_status


@pytest.mark.parametrize("reference", ["ABC12", "ABC1234", "ABC-12", "ÀBC123", "AB 123", "", "  "])
def test_invalid_reference_is_refused_before_any_request(
    sncf: respx.MockRouter, pimms: Pimms, reference: str
) -> None:
    with pytest.raises(InvalidReference) as caught:
        pimms.lookup_account("sncf", reference, last_name=NAME)
    assert "6-letter-or-digit booking reference" in str(caught.value)
    assert "ABC123" in str(caught.value)
    assert not sncf.calls


@pytest.mark.parametrize("last_name", [None, "", "   "])
def test_missing_last_name_is_refused_before_any_request(
    sncf: respx.MockRouter, pimms: Pimms, last_name: str | None
) -> None:
    with pytest.raises(InvalidInput, match="last name"):
        pimms.lookup_account("sncf", "ABC123", last_name=last_name)
    with pytest.raises(InvalidInput, match="last name"):
        pimms.open_claim("sncf", "ABC123", "other", "x", last_name=last_name)
    assert not sncf.calls


def test_wrong_name_and_unknown_reference_read_the_same(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    not_found = sncf_error("unknown_object", "Aucun dossier ne correspond.")
    sncf.get(DOSSIER_PATH).respond(404, json=not_found)
    sncf.get("/v1/relation-client/dossiers/ZZZ999").respond(404, json=not_found)
    with pytest.raises(AccountNotFound) as wrong_name:
        pimms.lookup_account("sncf", "ABC123", last_name="Benali")
    with pytest.raises(AccountNotFound) as unknown:
        pimms.lookup_account("sncf", "ZZZ999", last_name=NAME)
    assert str(wrong_name.value) == str(unknown.value)
    assert "reference and last name" in str(unknown.value)
    assert "Benali" not in str(wrong_name.value)
    assert_clean(unknown.value)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"message": "no token"}, PartnerAuthError),
        (403, {"message": "You are not authorized to access this resource"}, PartnerAuthError),
        (403, "Forbidden", PartnerAuthError),
        (404, sncf_error("unknown_object"), AccountNotFound),
        (400, sncf_error("unable_to_parse"), InvalidReference),
        (429, sncf_error("too_many_requests"), PartnerUnavailable),
        (500, sncf_error("internal_error"), PartnerUnavailable),
        (503, "<html><body>Service Unavailable</body></html>", PartnerUnavailable),
        (418, sncf_error("teapot"), PartnerProtocolError),
    ],
)
def test_lookup_errors_are_mapped(
    sncf: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    sncf.get(DOSSIER_PATH).respond(status, **kwargs)
    with pytest.raises(error) as caught:
        pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert caught.value.partner == "sncf"
    assert caught.value.plugin is not None and caught.value.plugin.name == "pimms-sncf"
    assert_clean(caught.value)


def test_refused_reference_says_sncf_refused_it(sncf: respx.MockRouter, pimms: Pimms) -> None:
    sncf.get(DOSSIER_PATH).respond(400, json=sncf_error("unable_to_parse"))
    with pytest.raises(InvalidReference, match="SNCF refused this reference"):
        pimms.lookup_account("sncf", "ABC123", last_name=NAME)


def test_unmapped_status_names_the_sncf_error_id(sncf: respx.MockRouter, pimms: Pimms) -> None:
    sncf.get(DOSSIER_PATH).respond(418, json=sncf_error("teapot"))
    with pytest.raises(PartnerProtocolError, match=r"HTTP 418 \(teapot\)"):
        pimms.lookup_account("sncf", "ABC123", last_name=NAME)


def test_rate_limit_carries_retry_after(sncf: respx.MockRouter, pimms: Pimms) -> None:
    sncf.get(DOSSIER_PATH).respond(
        429, headers={"Retry-After": "3"}, json=sncf_error("too_many_requests")
    )
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert caught.value.retry_after == 3.0
    assert caught.value.status == 429


def _edited(edit: Callable[[dict[str, Any]], object]) -> str:
    """The canned booking, with `edit` applied to its `dossier`, as JSON text."""
    body = copy.deepcopy(DOSSIER)
    edit(body["dossier"])
    return json.dumps(body)


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        '{"dossier": {"reference": "ABC123"',
        '["ABC123"]',
        json.dumps({"booking": DOSSIER["dossier"]}),
        _edited(lambda d: d.pop("reference")),
        _edited(lambda d: d.pop("statut")),
        _edited(lambda d: d.update(trajets={"train": "TGV"})),
        _edited(lambda d: d["trajets"][0].update(depart_prevu="2026-11-02T08:10:00")),
        _edited(lambda d: d["trajets"][0].pop("train")),
        _edited(lambda d: d["trajets"][0].update(retard_minutes="65")),
        _edited(lambda d: d.update(montant_total={"montant": 89.0})),
        _edited(lambda d: (d.pop("nom"), d.update(voyageurs=[]))),
    ],
)
def test_malformed_bodies_are_protocol_errors(
    sncf: respx.MockRouter, pimms: Pimms, body: str
) -> None:
    sncf.get(DOSSIER_PATH).respond(200, text=body)
    with pytest.raises(PartnerProtocolError) as caught:
        pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert_clean(caught.value)


# --- opening a claim ----------------------------------------------------------------------------


def test_open_claim_sends_exact_request(sncf: respx.MockRouter, pimms: Pimms) -> None:
    route = sncf.post(CLAIMS_PATH).respond(201, json=CREATED)
    claim = pimms.open_claim(
        "sncf",
        "abc123",
        "delay_compensation",
        DESCRIPTION,
        last_name=" Martin ",
        contact=Contact(email="c@example.org", phone="0600000000"),
        idempotency_key="key-1",
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url.path == CLAIMS_PATH
    assert request.url.query == b""
    assert request.headers["Authorization"] == BASIC
    assert request.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in request.headers  # the key travels as external_id
    assert json.loads(request.content) == {
        "reference_dossier": "ABC123",
        "nom": "Martin",
        "motif": "G30_RETARD",
        "description": DESCRIPTION,
        "external_id": "key-1",
        "contact": {"email": "c@example.org", "telephone": "0600000000"},
    }
    assert route.call_count == 1
    assert claim.claim_ref == "R-26-0000001"
    assert claim.state is ClaimState.RECEIVED
    assert claim.partner_status == "recue"
    assert claim.opened_at == datetime(2026, 11, 5, 9, 30, tzinfo=PARIS)
    assert claim.opened_at.utcoffset() is not None
    assert claim.response_due_by == date(2026, 12, 5)
    assert claim.compensation == Money(22.25, "EUR")
    assert claim.replayed is False
    assert claim.raw["compensation"]["forme"] == "bon_voyage"


@pytest.mark.parametrize(
    ("category", "motif"),
    [
        ("delay_compensation", "G30_RETARD"),
        ("refund", "ANNULATION"),
        ("lost_or_damaged", "BAGAGE"),
        ("accessibility", "ACCESSIBILITE"),
        ("billing", "TARIF"),
        ("other", "AUTRE"),
        ("bagage", "BAGAGE"),
    ],
)
def test_every_category_is_sent_as_its_motif(
    sncf: respx.MockRouter, pimms: Pimms, category: str, motif: str
) -> None:
    created = copy.deepcopy(CREATED)
    del created["reclamation"]["compensation"]
    route = sncf.post(CLAIMS_PATH).respond(201, json=created)
    claim = pimms.open_claim("sncf", "ABC123", category, "x", last_name=NAME, idempotency_key="k")
    body = json.loads(route.calls.last.request.content)
    assert body["motif"] == motif
    assert "contact" not in body
    assert claim.compensation is None


def test_unknown_category_is_refused_before_any_request(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    with pytest.raises(InvalidInput, match="G30_RETARD"):
        pimms.open_claim("sncf", "ABC123", "meter_reading", "x", last_name=NAME)
    assert not sncf.calls


def test_contact_with_email_only(sncf: respx.MockRouter, pimms: Pimms) -> None:
    route = sncf.post(CLAIMS_PATH).respond(201, json=CREATED)
    open_g30(pimms, contact=Contact(email="c@example.org"))
    assert json.loads(route.calls.last.request.content)["contact"] == {"email": "c@example.org"}


def test_claim_about_one_journey_names_it_in_the_description(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    lookup = sncf.get(DOSSIER_PATH).respond(200, json=DOSSIER)
    route = sncf.post(CLAIMS_PATH).respond(201, json=CREATED)
    open_g30(pimms, service_id="TGV-INOUI-6611-20261102")
    assert parse_qs(lookup.calls.last.request.url.query.decode()) == {"nom": ["Martin"]}
    body = json.loads(route.calls.last.request.content)
    assert body["description"] == (
        "Trajet concerné : TGV INOUI 6611 Paris Gare de Lyon → Lyon Part-Dieu, "
        "départ le 02/11/2026 à 08:10.\n\n" + DESCRIPTION
    )


def test_claim_about_an_unknown_journey_is_refused_before_sending(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    sncf.get(DOSSIER_PATH).respond(200, json=DOSSIER)
    route = sncf.post(CLAIMS_PATH).respond(201, json=CREATED)
    with pytest.raises(InvalidInput, match="TGV-INOUI-6611-20261102") as caught:
        open_g30(pimms, service_id="TER-1-20261102")
    assert not route.called
    assert_clean(caught.value)


def test_duplicate_external_id_returns_the_existing_claim(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    post = sncf.post(CLAIMS_PATH).respond(
        409, json=sncf_error("duplicate_external_id", existing_id="R-26-0000001")
    )
    view = claim_view(
        "en_cours",
        cree_le="20261105T093000",
        reponse_attendue_le="20261205T093000",
        reference_dossier="ABC123",
        compensation={"montant": 22.25, "devise": "EUR", "forme": "bon_voyage"},
    )
    get = sncf.get(CLAIM_PATH).respond(200, json=view)
    claim = open_g30(pimms)
    assert post.call_count == 1 and get.call_count == 1
    assert get.calls.last.request.headers["Authorization"] == BASIC
    assert claim.replayed is True
    assert claim.claim_ref == "R-26-0000001"
    assert claim.state is ClaimState.IN_PROGRESS
    assert claim.opened_at == datetime(2026, 11, 5, 9, 30, tzinfo=PARIS)
    assert claim.response_due_by == date(2026, 12, 5)
    assert claim.compensation == Money(22.25, "EUR")


def test_replay_without_creation_dates_reads_them_from_the_history(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    sncf.post(CLAIMS_PATH).respond(
        409, json=sncf_error("duplicate_external_id", existing_id="R-26-0000001")
    )
    view = claim_view("recue")
    view["reclamation"]["historique"][0]["le"] = "20260131T093000"
    sncf.get(CLAIM_PATH).respond(200, json=view)
    claim = open_g30(pimms)
    assert claim.opened_at == datetime(2026, 1, 31, 9, 30, tzinfo=PARIS)
    assert claim.response_due_by == date(2026, 2, 28)  # one month, clamped


def test_retry_after_a_lost_answer_finds_the_claim_once(sncf: respx.MockRouter) -> None:
    """A 503 after SNCF stored the claim, then the core's retry: 409, and the same claim."""
    post = sncf.post(CLAIMS_PATH)
    post.side_effect = [
        httpx.Response(503, json=sncf_error("internal_error")),
        httpx.Response(409, json=sncf_error("duplicate_external_id", existing_id="R-26-0000001")),
    ]
    sncf.get(CLAIM_PATH).respond(200, json=claim_view("recue", cree_le="20261105T093000"))
    policy = RetryPolicy(attempts=3, backoff=0.0, max_backoff=0.0)
    with live_pimms(pimms_sncf, BASE, settings=SETTINGS, env=ENV, policy=policy) as pimms:
        claim = open_g30(pimms)
    assert post.call_count == 2
    keys = {json.loads(call.request.content)["external_id"] for call in post.calls}
    assert keys == {"key-1"}
    assert claim.replayed is True and claim.claim_ref == "R-26-0000001"


def test_duplicate_key_on_another_booking_is_refused(sncf: respx.MockRouter, pimms: Pimms) -> None:
    sncf.post(CLAIMS_PATH).respond(
        409, json=sncf_error("duplicate_external_id", existing_id="R-26-0000001")
    )
    sncf.get(CLAIM_PATH).respond(
        200, json=claim_view(cree_le="20261105T093000", reference_dossier="XYZ789")
    )
    with pytest.raises(ClaimRejected, match="another booking") as caught:
        open_g30(pimms)
    assert caught.value.partner_code == "duplicate_external_id"


@pytest.mark.parametrize(
    ("existing", "get_status", "words"),
    [
        (None, 200, "without the existing claim's id"),
        ("", 200, "without the existing claim's id"),
        ("R-26-0000001", 404, "could not find"),
    ],
)
def test_duplicate_key_answers_that_cannot_be_followed(
    sncf: respx.MockRouter, pimms: Pimms, existing: str | None, get_status: int, words: str
) -> None:
    extra = {} if existing is None else {"existing_id": existing}
    sncf.post(CLAIMS_PATH).respond(409, json=sncf_error("duplicate_external_id", **extra))
    sncf.get(CLAIM_PATH).respond(get_status, json=sncf_error("unknown_object"))
    with pytest.raises(PartnerProtocolError, match=words):
        open_g30(pimms)


@pytest.mark.parametrize(
    ("status", "body", "error", "words", "code"),
    [
        (
            422,
            sncf_error("delai_depasse", "Une demande G30 doit être déposée dans les 60 jours."),
            ClaimRejected,
            "G30 compensation must be claimed within 60 days of the journey",
            "delai_depasse",
        ),
        (
            422,
            sncf_error("non_eligible", "La Garantie G30 couvre les TGV INOUI et Intercités."),
            ClaimRejected,
            "not eligible for the G30 guarantee",
            "non_eligible",
        ),
        (
            422,
            sncf_error("dossier_annule"),
            ClaimRejected,
            r"refused the claim \(dossier_annule\)",
            "dossier_annule",
        ),
        (422, "<html>?</html>", ClaimRejected, r"\(HTTP 422\)", None),
        (
            400,
            sncf_error("unable_to_parse"),
            ClaimRejected,
            "could not read the claim",
            "unable_to_parse",
        ),
        (409, sncf_error("conflict"), ClaimRejected, r"\(conflict\)", "conflict"),
    ],
)
def test_claim_refusals_are_explained(
    sncf: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[ClaimRejected],
    words: str,
    code: str | None,
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    sncf.post(CLAIMS_PATH).respond(status, **kwargs)
    with pytest.raises(error, match=words) as caught:
        open_g30(pimms)
    assert caught.value.partner_code == code
    assert str(caught.value).startswith("sncf refused the claim: ")
    assert "\n" not in str(caught.value)
    assert_clean(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, sncf_error("unknown_object"), AccountNotFound),
        (401, {"message": "no token"}, PartnerAuthError),
        (403, {"message": "You are not authorized to access this resource"}, PartnerAuthError),
        (429, sncf_error("too_many_requests"), PartnerUnavailable),
        (500, "<html>oops</html>", PartnerUnavailable),
        (201, {"reclamation": {"statut": "recue"}}, PartnerProtocolError),
        (201, {"claim": CREATED["reclamation"]}, PartnerProtocolError),
        (201, "created", PartnerProtocolError),
    ],
)
def test_open_claim_errors_are_mapped(
    sncf: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    sncf.post(CLAIMS_PATH).respond(status, **kwargs)
    with pytest.raises(error) as caught:
        open_g30(pimms)
    assert_clean(caught.value)


def test_open_claim_not_found_names_reference_and_name(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    sncf.post(CLAIMS_PATH).respond(404, json=sncf_error("unknown_object"))
    with pytest.raises(AccountNotFound, match="reference and last name"):
        open_g30(pimms)


# --- claim status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "state", "label"),
    [
        ("recue", ClaimState.RECEIVED, "Reçue"),
        ("en_cours", ClaimState.IN_PROGRESS, "En cours de traitement"),
        ("complement_demande", ClaimState.AWAITING_CUSTOMER, "Complément demandé"),
        ("acceptee", ClaimState.RESOLVED, "Acceptée"),
        ("refusee", ClaimState.REJECTED, "Refusée"),
        ("close", ClaimState.CLOSED, "Close"),
        ("transmise_mediateur", ClaimState.UNKNOWN, ""),
    ],
)
def test_every_status_is_mapped(
    sncf: respx.MockRouter, pimms: Pimms, code: str, state: ClaimState, label: str
) -> None:
    route = sncf.get(CLAIM_PATH).respond(200, json=claim_view(code))
    status = pimms.claim_status("sncf", "R-26-0000001")
    assert route.calls.last.request.headers["Authorization"] == BASIC
    assert status.claim_ref == "R-26-0000001"
    assert status.state is state
    assert status.partner_status == code
    assert status.partner_label == label
    assert status.updated_at == datetime(2026, 11, 6, 14, 0, tzinfo=PARIS)
    assert [(h.state, h.partner_status) for h in status.history] == [
        (ClaimState.RECEIVED, "recue"),
        (state, code),
    ]
    assert status.history[0].note == "Réclamation reçue."
    assert status.compensation is None


def test_status_history_is_oldest_first_and_compensation_read(
    sncf: respx.MockRouter, pimms: Pimms
) -> None:
    view = claim_view(
        "acceptee", compensation={"montant": 89, "devise": "EUR", "forme": "virement"}
    )
    view["reclamation"]["historique"].reverse()
    view["reclamation"]["historique"].append({"statut": "en_cours", "le": "20261105T120000"})
    view["reclamation"]["extra"] = {"canal": "web"}
    sncf.get(CLAIM_PATH).respond(200, json=view)
    status = pimms.claim_status("sncf", "R-26-0000001")
    assert [h.partner_status for h in status.history] == ["recue", "en_cours", "acceptee"]
    assert status.history[1].note == ""
    assert status.compensation == Money(89.0, "EUR")
    assert status.raw["compensation"]["forme"] == "virement"
    assert status.raw["extra"] == {"canal": "web"}


def test_claim_ref_is_url_encoded(sncf: respx.MockRouter, pimms: Pimms) -> None:
    route = sncf.get(url__regex=r".*/reclamations/.*").respond(
        404, json=sncf_error("unknown_object")
    )
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("sncf", "R-26-1/../../dossiers")
    raw_path = route.calls.last.request.url.raw_path
    assert raw_path == b"/v1/relation-client/reclamations/R-26-1%2F..%2F..%2Fdossiers"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, sncf_error("unknown_object"), ClaimNotFound),
        (401, {"message": "no token"}, PartnerAuthError),
        (403, "forbidden", PartnerAuthError),
        (502, "<html>bad gateway</html>", PartnerUnavailable),
        (200, {"reclamation": {"id": "R-26-0000001"}}, PartnerProtocolError),
        (200, claim_view(maj_le="06/11/2026 14:00"), PartnerProtocolError),
        (200, claim_view(historique={"statut": "recue"}), PartnerProtocolError),
        (200, claim_view(compensation={"devise": "EUR"}), PartnerProtocolError),
        (200, "<html/>", PartnerProtocolError),
    ],
)
def test_claim_status_errors_are_mapped(
    sncf: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    sncf.get(CLAIM_PATH).respond(status, **kwargs)
    with pytest.raises(error) as caught:
        pimms.claim_status("sncf", "R-26-0000001")
    assert_clean(caught.value)


# --- declaration --------------------------------------------------------------------------------


def test_declaration_matches_the_contract(pimms: Pimms) -> None:
    info = pimms.info("sncf")
    assert info.idempotency.value == "unique_key"
    assert info.base_url == "https://api.sncf.com"
    assert info.reference.needs_last_name
    assert info.reference.matches("abc123") and not info.reference.matches("ABC12")
    assert {c.code: c.category.value for c in info.categories} == {
        "G30_RETARD": "delay_compensation",
        "ANNULATION": "refund",
        "BAGAGE": "lost_or_damaged",
        "ACCESSIBILITE": "accessibility",
        "TARIF": "billing",
        "AUTRE": "other",
    }
    assert [s.name for s in info.settings if s.secret] == ["api_key"]
    assert {(a.reference, a.last_name) for a in info.sandbox_accounts} == {
        ("ABC123", "Martin"),
        ("XYZ789", "Benali"),
        ("QRS456", "Nguyen"),
        ("OLD001", "Martin"),
    }


def test_the_key_never_shows_in_repr_or_errors(sncf: respx.MockRouter, pimms: Pimms) -> None:
    sncf.get(DOSSIER_PATH).respond(403, json={"message": "forbidden"})
    with pytest.raises(PartnerAuthError) as caught:
        pimms.lookup_account("sncf", "ABC123", last_name=NAME)
    assert_clean(caught.value)
    context = pimms._context("sncf", None)
    assert API_KEY not in repr(context) and API_KEY not in repr(context.settings)
