"""La Poste plugin unit tests: exact requests and every mapped answer, with respx.

The facade runs in live mode against La Poste's production base URL, which respx intercepts;
canned bodies are shaped like the contract (shared/partners/laposte.md): Suivi v2 for tracking,
the mediation API for claims, and the Okapi gateway's own error shape.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

import pimms_laposte
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    ConfigError,
    InvalidReference,
    PartnerAuthError,
    PartnerProtocolError,
    PartnerUnavailable,
    PimmsError,
)
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState, Contact
from pimms_core.policy import RetryPolicy
from pimms_core.testing import live_pimms
from pimms_laposte.info import INFO

BASE = "https://api.laposte.fr"
OKAPI_KEY = "canary-okapi-key-5b2e" + "x" * 43  # 64 characters, like a real key
ENV = {"LAPOSTE_OKAPI_KEY": OKAPI_KEY}
SETTINGS: dict[str, Any] = {"okapi_key_env": "LAPOSTE_OKAPI_KEY"}
ID_SHIP = "6A18987970674"
TRACK = f"/suivi/v2/idships/{ID_SHIP}"
CLAIMS = "/reclamation/v1/reclamations"
CLAIM_ID = "RCL-2026-000123"
DESCRIPTION = "Colis jamais arrivé chez Mme Canary-Dupont"
PARIS_SUMMER = timezone(timedelta(hours=2))

SUIVI: dict[str, Any] = {
    "lang": "fr_FR",
    "scope": "open",
    "returnCode": 200,
    "shipment": {
        "idShip": ID_SHIP,
        "holder": 4,
        "product": "colissimo",
        "isFinal": False,
        "entryDate": "2020-07-04T01:25:12+02:00",
        "estimDate": "2020-07-07",
        "url": f"https://www.laposte.fr/outils/suivre-vos-envois?code={ID_SHIP}",
        "timeline": [
            {
                "id": 1,
                "shortLabel": "Pris en charge",
                "longLabel": "",
                "date": "2020-07-04T09:00:00+02:00",
                "country": "FR",
                "status": True,
                "type": 1,
            },
            {
                "id": 2,
                "shortLabel": "En cours d'acheminement",
                "longLabel": "",
                "country": "",
                "status": False,
                "type": 1,
            },
        ],
        "event": [
            {
                "order": 300,
                "code": "ET1",
                "label": "Votre colis est en transit sur nos plateformes logistiques.",
                "date": "2020-07-05T06:10:00+02:00",
            },
            {
                "order": 200,
                "code": "PC1",
                "label": "Votre colis a été déposé et pris en charge par La Poste.",
                "date": "2020-07-04T09:00:00+02:00",
            },
            {
                "order": 100,
                "code": "DR1",
                "label": "Votre Colissimo va bientôt nous être confié !",
                "date": "2020-07-04T01:25:12+02:00",
            },
        ],
        "contextData": {
            "deliveryChoice": {"deliveryChoice": 0},
            "originCountry": "FR",
            "arrivalCountry": "FR",
        },
    },
}

SUIVI_EVENTS: list[dict[str, Any]] = SUIVI["shipment"]["event"]

RECLAMATION: dict[str, Any] = {
    "id": CLAIM_ID,
    "statut": "ENREGISTREE",
    "dateCreation": "2026-03-10T11:00:00+01:00",
    "dateReponseAttendue": "2026-03-31T11:00:00+02:00",
}


def suivi(**changes: Any) -> dict[str, Any]:
    """The contract's Suivi v2 answer, with shipment fields changed (None removes one)."""
    body = copy.deepcopy(SUIVI)
    for key, value in changes.items():
        if value is None:
            body["shipment"].pop(key, None)
        else:
            body["shipment"][key] = value
    return body


def full_claim(statut: str | None = "ENREGISTREE", **extra: Any) -> dict[str, Any]:
    return {
        **RECLAMATION,
        "idShip": ID_SHIP,
        "motif": "COLIS_NON_RECU",
        "description": DESCRIPTION,
        "referenceExterne": "key-1",
        "contact": {"email": "canary@example.org"},
        "statut": statut,
        "historique": [
            {
                "statut": "ENREGISTREE",
                "date": "2026-03-10T11:00:00+01:00",
                "commentaire": "Réclamation enregistrée.",
            },
            {"statut": statut, "date": "2026-03-12T09:30:00+01:00", "commentaire": "Suite."},
        ],
        **extra,
    }


@pytest.fixture
def laposte() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def pimms() -> Iterator[Pimms]:
    with live_pimms(pimms_laposte, BASE, settings=SETTINGS, env=ENV) as facade:
        yield facade


def assert_no_secret(error: PimmsError) -> None:
    assert OKAPI_KEY not in str(error)
    assert OKAPI_KEY not in json.dumps(error.to_dict())


# --- Tracking: requests and mapping -------------------------------------------------------------


def test_lookup_sends_the_suivi_v2_request_exactly(laposte: respx.MockRouter, pimms: Pimms) -> None:
    route = laposte.get(TRACK).respond(200, json=SUIVI)
    pimms.lookup_account("laposte", ID_SHIP)
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.raw_path == b"/suivi/v2/idships/6A18987970674?lang=fr_FR"
    assert request.headers["X-Okapi-Key"] == OKAPI_KEY
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.headers["User-Agent"].startswith("pimms/")


def test_lookup_maps_the_shipment(laposte: respx.MockRouter, pimms: Pimms) -> None:
    laposte.get(TRACK).respond(200, json=SUIVI)
    account = pimms.lookup_account("laposte", ID_SHIP)
    assert account.partner == "laposte"
    assert account.reference == ID_SHIP
    assert account.holder_name == "Colissimo"
    assert account.status == "in_transit"
    assert account.partner_status == "ET1"
    assert account.address is None
    assert [(e.code, e.at) for e in account.events] == [
        ("ET1", datetime(2020, 7, 5, 6, 10, tzinfo=PARIS_SUMMER)),
        ("PC1", datetime(2020, 7, 4, 9, 0, tzinfo=PARIS_SUMMER)),
        ("DR1", datetime(2020, 7, 4, 1, 25, 12, tzinfo=PARIS_SUMMER)),
    ]
    assert account.events[1].label.startswith("Votre colis a été déposé")
    (service,) = account.services
    assert service.id == ID_SHIP
    assert service.status == "in_transit"
    assert dict(service.details) == {
        "holder": "4",
        "product": "colissimo",
        "entryDate": "2020-07-04T01:25:12+02:00",
        "estimDate": "2020-07-07",
        "url": f"https://www.laposte.fr/outils/suivre-vos-envois?code={ID_SHIP}",
        "isFinal": "false",
        "originCountry": "FR",
        "arrivalCountry": "FR",
    }
    assert account.raw["timeline"][0]["shortLabel"] == "Pris en charge"
    assert account.plugin is not None and account.plugin.name == "pimms-laposte"


def test_lang_setting_is_sent(laposte: respx.MockRouter) -> None:
    route = laposte.get(TRACK).respond(200, json=suivi())
    with live_pimms(pimms_laposte, BASE, settings={**SETTINGS, "lang": "en_GB"}, env=ENV) as pimms:
        pimms.lookup_account("laposte", ID_SHIP)
    assert route.calls.last.request.url.params["lang"] == "en_GB"


def test_unknown_lang_setting_is_a_config_error_before_any_request(
    laposte: respx.MockRouter,
) -> None:
    settings = {**SETTINGS, "lang": "pt_PT"}
    with (
        live_pimms(pimms_laposte, BASE, settings=settings, env=ENV) as p,
        pytest.raises(ConfigError, match="lang must be one of fr_FR"),
    ):
        p.lookup_account("laposte", ID_SHIP)
    assert not laposte.calls


def test_a_one_element_array_is_accepted(laposte: respx.MockRouter, pimms: Pimms) -> None:
    laposte.get(TRACK).respond(200, json=[SUIVI])
    account = pimms.lookup_account("laposte", ID_SHIP)
    assert account.reference == ID_SHIP
    assert account.partner_status == "ET1"


@pytest.mark.parametrize("units", [0, 2])
def test_an_array_of_another_size_is_a_protocol_error(
    laposte: respx.MockRouter, pimms: Pimms, units: int
) -> None:
    laposte.get(TRACK).respond(200, json=[SUIVI] * units)
    with pytest.raises(PartnerProtocolError, match=f"got {units}"):
        pimms.lookup_account("laposte", ID_SHIP)


@pytest.mark.parametrize(
    ("unit", "error"),
    [
        ({"returnCode": 404, "returnMessage": "Not Found", "idShip": ID_SHIP}, AccountNotFound),
        ({"returnCode": 400, "returnMessage": "Le numéro...", "idShip": ID_SHIP}, InvalidReference),
        ({"returnCode": 500, "returnMessage": "Erreur", "idShip": ID_SHIP}, PartnerProtocolError),
    ],
)
def test_a_unit_return_code_inside_an_array_is_mapped(
    laposte: respx.MockRouter, pimms: Pimms, unit: dict[str, Any], error: type[PimmsError]
) -> None:
    laposte.get(TRACK).respond(207, json=[unit])
    with pytest.raises(error):
        pimms.lookup_account("laposte", ID_SHIP)


@pytest.mark.parametrize(
    ("code", "is_final", "status"),
    [
        ("DR1", False, "announced"),
        ("PC1", False, "in_transit"),
        ("PC2", False, "in_transit"),
        ("ET1", False, "in_transit"),
        ("ET2", False, "in_transit"),
        ("ET3", False, "in_transit"),
        ("ET4", False, "in_transit"),
        ("EP1", False, "in_transit"),
        ("DO1", False, "in_transit"),
        ("DO2", False, "in_transit"),
        ("DO3", False, "problem"),
        ("PB1", False, "problem"),
        ("PB2", False, "in_transit"),
        ("MD2", False, "out_for_delivery"),
        ("ND1", False, "problem"),
        ("AG1", False, "awaiting_pickup"),
        ("RE1", False, "returned"),
        ("DI1", True, "delivered"),
        ("DI2", True, "returned"),
        ("XY9", False, "in_transit"),
        ("XY9", True, "unknown"),
    ],
)
def test_every_event_code_gives_a_status(
    laposte: respx.MockRouter, pimms: Pimms, code: str, is_final: bool, status: str
) -> None:
    events = [{"order": 900, "code": code, "label": "Libellé", "date": "2020-07-06T10:00:00+02:00"}]
    laposte.get(TRACK).respond(200, json=suivi(isFinal=is_final, event=events + SUIVI_EVENTS))
    account = pimms.lookup_account("laposte", ID_SHIP)
    assert account.status == status
    assert account.partner_status == code
    assert account.events[0].code == code
    assert len(account.events) == 4


def test_no_event_yet_is_not_fatal(laposte: respx.MockRouter, pimms: Pimms) -> None:
    laposte.get(TRACK).respond(200, json=suivi(event=[]))
    account = pimms.lookup_account("laposte", ID_SHIP)
    assert account.events == ()
    assert account.partner_status == ""
    assert account.status == "in_transit"


@pytest.mark.parametrize(
    ("holder", "product", "label"),
    [
        (1, "Lettre recommandée", "Courrier national — Lettre recommandée"),
        (
            2,
            "Lettre suivie internationale",
            "Courrier international — Lettre suivie internationale",
        ),
        (3, "chronopost", "Chronopost"),
        (4, "colissimo", "Colissimo"),
        (9, "Nouveau produit", "Nouveau produit"),
        (None, None, "Envoi La Poste"),
    ],
)
def test_the_shipment_is_named_by_its_business_and_product(
    laposte: respx.MockRouter, pimms: Pimms, holder: int | None, product: str | None, label: str
) -> None:
    laposte.get(TRACK).respond(200, json=suivi(holder=holder, product=product))
    account = pimms.lookup_account("laposte", ID_SHIP)
    assert account.holder_name == label
    assert account.services[0].label == label


def test_delivered_shipment_and_unknown_fields(laposte: respx.MockRouter, pimms: Pimms) -> None:
    body = suivi(
        isFinal=True,
        deliveryDate="2020-07-07T11:02:00+02:00",
        estimDate=None,
        contextData=None,
        newField={"anything": [1, 2]},
    )
    body["shipment"]["event"][0] = {
        "order": 400,
        "code": "DI1",
        "label": "Votre colis est livré.",
        "date": "2020-07-07T11:02:00+02:00",
        "site": "Lyon PDC",
    }
    body["newTopLevel"] = True
    laposte.get(TRACK).respond(200, json=body)
    account = pimms.lookup_account("laposte", ID_SHIP)
    assert account.status == "delivered"
    details = account.services[0].details
    assert details["deliveryDate"] == "2020-07-07T11:02:00+02:00"
    assert "estimDate" not in details and "originCountry" not in details
    assert details["isFinal"] == "true"
    assert account.raw["newField"] == {"anything": [1, 2]}


def test_reference_is_stripped_and_sent_as_given(laposte: respx.MockRouter, pimms: Pimms) -> None:
    route = laposte.get("/suivi/v2/idships/ew000000001fr").respond(
        200, json=suivi(idShip="EW000000001FR", holder=2)
    )
    account = pimms.lookup_account("laposte", "  ew000000001fr ")
    assert route.called
    assert account.reference == "EW000000001FR"


@pytest.mark.parametrize(
    "bad",
    ["123", "6A0000000", "6A0000000000000001", "6A00000-00001", "6A0000000000é", "6A 0000 0000 01"],
)
def test_invalid_reference_is_refused_before_any_request(
    laposte: respx.MockRouter, pimms: Pimms, bad: str
) -> None:
    with pytest.raises(InvalidReference) as caught:
        pimms.lookup_account("laposte", bad)
    assert "11 to 15 letters and digits" in str(caught.value)
    assert "6A00000000001" in str(caught.value)
    assert not laposte.calls


# --- Tracking: errors ----------------------------------------------------------------------------

INVALID_400 = {
    "returnCode": 400,
    "returnMessage": "Le numéro que vous avez saisi n'est pas valide. Nous vous invitons à "
    "vérifier votre saisie.",
    "idShip": ID_SHIP,
    "lang": "fr_FR",
    "scope": "open",
}
NOT_FOUND_404 = {
    "returnCode": 404,
    "returnMessage": "Not Found",
    "idShip": ID_SHIP,
    "lang": "fr_FR",
    "scope": "open",
}
UNAUTHORIZED_401 = {"returnCode": 401, "returnMessage": "Unauthorized"}
TOO_MANY_429 = {
    "code": "TOO_MANY_REQUESTS",
    "message": "Rate limited, max quota reached (100 calls per 1s) (TOO_MANY_REQUESTS).",
}
UNAVAILABLE_503 = {"code": "SERVICE_UNAVAILABLE", "message": "Service Unavailable"}


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (400, INVALID_400, InvalidReference, "La Poste says this tracking number is not valid"),
        (401, UNAUTHORIZED_401, PartnerAuthError, "refused the Okapi key"),
        (403, {"returnCode": 403, "returnMessage": "Forbidden"}, PartnerAuthError, "Okapi key"),
        (404, NOT_FOUND_404, AccountNotFound, "no account matches"),
        (404, "404 page not found\n", AccountNotFound, "no account matches"),
        (429, TOO_MANY_429, PartnerUnavailable, "rate limit reached"),
        (503, UNAVAILABLE_503, PartnerUnavailable, r"HTTP 503 \(SERVICE_UNAVAILABLE\)"),
        (500, "Internal Server Error", PartnerUnavailable, "HTTP 500"),
        (418, {"returnCode": 418, "returnMessage": "?"}, PartnerProtocolError, "HTTP 418"),
    ],
)
def test_lookup_errors_are_mapped(
    laposte: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
    words: str,
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    laposte.get(TRACK).respond(status, **kwargs)
    with pytest.raises(error, match=words) as caught:
        pimms.lookup_account("laposte", ID_SHIP)
    assert caught.value.partner == "laposte"
    assert caught.value.plugin is not None and caught.value.plugin.name == "pimms-laposte"
    assert "\n" not in str(caught.value)
    assert_no_secret(caught.value)


def test_rate_limit_carries_retry_after(laposte: respx.MockRouter, pimms: Pimms) -> None:
    laposte.get(TRACK).respond(429, headers={"Retry-After": "1"}, json=TOO_MANY_429)
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.lookup_account("laposte", ID_SHIP)
    assert caught.value.retry_after == 1.0
    assert caught.value.status == 429


def test_gateway_free_text_never_reaches_the_message(
    laposte: respx.MockRouter, pimms: Pimms
) -> None:
    laposte.get(TRACK).respond(503, json={"code": "Mme Canary-Dupont", "message": "x"})
    with pytest.raises(PartnerUnavailable) as caught:
        pimms.lookup_account("laposte", ID_SHIP)
    assert "Canary" not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        '{"lang": "fr_FR", "shipment": {"idShip": ',
        '"a string"',
        json.dumps({"returnCode": 200, "envoi": SUIVI["shipment"]}),
        json.dumps(suivi(event=None)),
        json.dumps(
            {
                **suivi(event=None),
                "shipment": {**suivi(event=None)["shipment"], "events": SUIVI_EVENTS},
            }
        ),
        json.dumps(suivi(event={"code": "ET1"})),
        json.dumps(suivi(isFinal="false")),
        json.dumps(suivi(isFinal=None)),
        json.dumps(suivi(idShip=None)),
        json.dumps(suivi(holder="4")),
        json.dumps(suivi(event=[{"order": 1, "label": "no code", "date": "2020-07-04"}])),
        json.dumps(suivi(event=[{"order": 1, "code": "ET1", "label": "x", "date": "hier"}])),
        json.dumps(suivi(event=["ET1"])),
    ],
)
def test_malformed_tracking_answers_are_protocol_errors(
    laposte: respx.MockRouter, pimms: Pimms, body: str
) -> None:
    laposte.get(TRACK).respond(200, text=body)
    with pytest.raises(PartnerProtocolError):
        pimms.lookup_account("laposte", ID_SHIP)


# --- Claims: opening ----------------------------------------------------------------------------


def test_open_claim_looks_the_key_up_then_posts_the_exact_body(
    laposte: respx.MockRouter, pimms: Pimms
) -> None:
    find = laposte.get(CLAIMS).respond(200, json={"reclamations": []})
    create = laposte.post(CLAIMS).respond(201, json={"returnCode": 201, "reclamation": RECLAMATION})
    claim = pimms.open_claim(
        "laposte",
        ID_SHIP,
        "lost_or_damaged",
        DESCRIPTION,
        contact=Contact(email="canary@example.org", phone="0100000000"),
        idempotency_key="key-1",
    )
    assert [call.request.method for call in laposte.calls] == ["GET", "POST"]
    lookup = find.calls.last.request
    assert lookup.url.raw_path == b"/reclamation/v1/reclamations?referenceExterne=key-1"
    assert lookup.headers["X-Okapi-Key"] == OKAPI_KEY
    sent = create.calls.last.request
    assert sent.url.raw_path == b"/reclamation/v1/reclamations"
    assert sent.headers["X-Okapi-Key"] == OKAPI_KEY
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in sent.headers
    assert json.loads(sent.content) == {
        "idShip": ID_SHIP,
        "motif": "COLIS_NON_RECU",
        "description": DESCRIPTION,
        "referenceExterne": "key-1",
        "contact": {"email": "canary@example.org", "telephone": "0100000000"},
    }
    assert claim.partner == "laposte"
    assert claim.claim_ref == CLAIM_ID
    assert claim.state is ClaimState.RECEIVED
    assert claim.partner_status == "ENREGISTREE"
    assert claim.opened_at == datetime(2026, 3, 10, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert claim.response_due_by == date(2026, 3, 31)
    assert claim.replayed is False
    assert claim.raw["id"] == CLAIM_ID
    assert claim.plugin is not None and claim.plugin.name == "pimms-laposte"


@pytest.mark.parametrize(
    ("category", "motif"),
    [
        ("lost_or_damaged", "COLIS_NON_RECU"),
        ("COLIS_NON_RECU", "COLIS_NON_RECU"),
        ("COLIS_ENDOMMAGE", "COLIS_ENDOMMAGE"),
        ("delivery_problem", "RETARD_LIVRAISON"),
        ("RETARD_LIVRAISON", "RETARD_LIVRAISON"),
        ("avis_de_passage_non_depose", "AVIS_DE_PASSAGE_NON_DEPOSE"),
        ("other", "AUTRE"),
        ("AUTRE", "AUTRE"),
    ],
)
def test_every_motif_is_sent(
    laposte: respx.MockRouter, pimms: Pimms, category: str, motif: str
) -> None:
    laposte.get(CLAIMS).respond(200, json={"reclamations": []})
    create = laposte.post(CLAIMS).respond(201, json={"returnCode": 201, "reclamation": RECLAMATION})
    pimms.open_claim("laposte", ID_SHIP, category, "x", idempotency_key="k")
    assert json.loads(create.calls.last.request.content)["motif"] == motif


@pytest.mark.parametrize(
    ("contact", "sent"),
    [
        (None, None),
        (Contact(), None),
        (Contact(phone="0100000000"), {"telephone": "0100000000"}),
        (Contact(email="a@example.org"), {"email": "a@example.org"}),
    ],
)
def test_contact_is_sent_only_with_what_is_known(
    laposte: respx.MockRouter, pimms: Pimms, contact: Contact | None, sent: dict[str, str] | None
) -> None:
    laposte.get(CLAIMS).respond(200, json={"reclamations": []})
    create = laposte.post(CLAIMS).respond(201, json={"returnCode": 201, "reclamation": RECLAMATION})
    pimms.open_claim("laposte", ID_SHIP, "other", "x", contact=contact, idempotency_key="k")
    assert json.loads(create.calls.last.request.content).get("contact") == sent


def test_a_claim_already_opened_with_the_key_is_returned_not_sent_again(
    laposte: respx.MockRouter, pimms: Pimms
) -> None:
    laposte.get(CLAIMS).respond(200, json={"reclamations": [full_claim("EN_COURS_DE_TRAITEMENT")]})
    create = laposte.post(CLAIMS)
    claim = pimms.open_claim("laposte", ID_SHIP, "other", "x", idempotency_key="key-1")
    assert not create.called
    assert claim.replayed is True
    assert claim.claim_ref == CLAIM_ID
    assert claim.state is ClaimState.IN_PROGRESS
    assert claim.response_due_by == date(2026, 3, 31)


def test_a_claim_of_another_key_is_never_taken_for_ours(
    laposte: respx.MockRouter, pimms: Pimms
) -> None:
    other = full_claim(referenceExterne="someone-else")
    laposte.get(CLAIMS).respond(200, json={"reclamations": [other]})
    create = laposte.post(CLAIMS).respond(201, json={"returnCode": 201, "reclamation": RECLAMATION})
    claim = pimms.open_claim("laposte", ID_SHIP, "other", "x", idempotency_key="key-1")
    assert create.called
    assert claim.replayed is False


def test_a_claim_sent_again_after_a_failure_is_found_not_created_twice(
    laposte: respx.MockRouter,
) -> None:
    find = laposte.get(CLAIMS)
    find.side_effect = [
        httpx.Response(200, json={"reclamations": []}),
        httpx.Response(200, json={"reclamations": [full_claim()]}),
    ]
    create = laposte.post(CLAIMS).respond(503, json=UNAVAILABLE_503)
    policy = RetryPolicy(attempts=3, backoff=0.0, max_backoff=0.0)
    with live_pimms(pimms_laposte, BASE, settings=SETTINGS, env=ENV, policy=policy) as pimms:
        claim = pimms.open_claim("laposte", ID_SHIP, "other", "x", idempotency_key="key-1")
    assert create.call_count == 1
    assert find.call_count == 2
    assert claim.replayed is True
    assert claim.claim_ref == CLAIM_ID


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            400,
            {"returnCode": 400, "returnMessage": "Le champ description est obligatoire."},
            ClaimRejected,
            "La Poste found the claim invalid",
        ),
        (404, {"returnCode": 404, "returnMessage": "Not Found"}, AccountNotFound, "no account"),
        (404, "404 page not found", AccountNotFound, "no account"),
        (401, UNAUTHORIZED_401, PartnerAuthError, "Okapi key"),
        (429, TOO_MANY_429, PartnerUnavailable, "rate limit"),
        (503, UNAVAILABLE_503, PartnerUnavailable, "SERVICE_UNAVAILABLE"),
        (500, "Internal Server Error", PartnerUnavailable, "HTTP 500"),
    ],
)
def test_open_claim_errors_are_mapped(
    laposte: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
    words: str,
) -> None:
    laposte.get(CLAIMS).respond(200, json={"reclamations": []})
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    laposte.post(CLAIMS).respond(status, **kwargs)
    with pytest.raises(error, match=words) as caught:
        pimms.open_claim("laposte", ID_SHIP, "other", DESCRIPTION, idempotency_key="k")
    assert "Canary" not in str(caught.value), "no personal data in a message"
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        {"returnCode": 201, "claim": RECLAMATION},
        {"returnCode": 201, "reclamation": {**RECLAMATION, "statut": None}},
        {"returnCode": 201, "reclamation": {k: v for k, v in RECLAMATION.items() if k != "id"}},
        {"returnCode": 201, "reclamation": {**RECLAMATION, "dateCreation": "10/03/2026"}},
        {"returnCode": 201, "reclamation": {**RECLAMATION, "dateReponseAttendue": "bientôt"}},
    ],
)
def test_malformed_creation_answers_are_protocol_errors(
    laposte: respx.MockRouter, pimms: Pimms, body: dict[str, Any]
) -> None:
    laposte.get(CLAIMS).respond(200, json={"reclamations": []})
    laposte.post(CLAIMS).respond(201, json=body)
    with pytest.raises(PartnerProtocolError):
        pimms.open_claim("laposte", ID_SHIP, "other", "x", idempotency_key="k")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"claims": []}, PartnerProtocolError),
        (200, {"reclamations": None}, PartnerProtocolError),
        (200, {"reclamations": [{"id": CLAIM_ID}]}, PartnerProtocolError),
        (200, "[]", PartnerProtocolError),
        (401, UNAUTHORIZED_401, PartnerAuthError),
        (400, {"returnCode": 400, "returnMessage": "?"}, PartnerProtocolError),
        (503, UNAVAILABLE_503, PartnerUnavailable),
    ],
)
def test_a_failed_key_lookup_never_sends_the_claim(
    laposte: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    laposte.get(CLAIMS).respond(status, **kwargs)
    create = laposte.post(CLAIMS)
    with pytest.raises(error) as caught:
        pimms.open_claim("laposte", ID_SHIP, "other", "x", idempotency_key="k")
    assert not create.called
    assert_no_secret(caught.value)


def test_the_key_is_encoded_in_the_lookup_query(laposte: respx.MockRouter, pimms: Pimms) -> None:
    find = laposte.get(CLAIMS).respond(200, json={"reclamations": []})
    laposte.post(CLAIMS).respond(201, json={"returnCode": 201, "reclamation": RECLAMATION})
    pimms.open_claim("laposte", ID_SHIP, "other", "x", idempotency_key="a&b=c #1")
    request = find.calls.last.request
    assert request.url.params["referenceExterne"] == "a&b=c #1"
    assert list(request.url.params.keys()) == ["referenceExterne"]


def test_open_claim_on_an_invalid_reference_sends_nothing(
    laposte: respx.MockRouter, pimms: Pimms
) -> None:
    with pytest.raises(InvalidReference):
        pimms.open_claim("laposte", "12-34", "other", "x", idempotency_key="k")
    assert not laposte.calls


# --- Claims: status ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "state", "label"),
    [
        ("ENREGISTREE", ClaimState.RECEIVED, "Enregistrée"),
        ("EN_COURS_DE_TRAITEMENT", ClaimState.IN_PROGRESS, "En cours de traitement"),
        ("ATTENTE_PIECES_CLIENT", ClaimState.AWAITING_CUSTOMER, "En attente de pièces du client"),
        ("INDEMNISATION_ACCORDEE", ClaimState.RESOLVED, "Indemnisation accordée"),
        ("REJETEE", ClaimState.REJECTED, "Rejetée"),
        ("CLOTUREE", ClaimState.CLOSED, "Clôturée"),
        ("TRANSMISE_AU_MEDIATEUR", ClaimState.UNKNOWN, ""),
    ],
)
def test_every_status_is_mapped(
    laposte: respx.MockRouter, pimms: Pimms, code: str, state: ClaimState, label: str
) -> None:
    route = laposte.get(f"{CLAIMS}/{CLAIM_ID}").respond(
        200, json={"returnCode": 200, "reclamation": full_claim(code)}
    )
    status = pimms.claim_status("laposte", CLAIM_ID)
    request = route.calls.last.request
    assert request.url.raw_path == b"/reclamation/v1/reclamations/RCL-2026-000123"
    assert request.headers["X-Okapi-Key"] == OKAPI_KEY
    assert status.claim_ref == CLAIM_ID
    assert status.state is state
    assert status.partner_status == code
    assert status.partner_label == label
    assert [(h.partner_status, h.state) for h in status.history] == [
        ("ENREGISTREE", ClaimState.RECEIVED),
        (code, state),
    ]
    assert status.history[0].note == "Réclamation enregistrée."
    assert status.updated_at == datetime(2026, 3, 12, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    assert status.raw["motif"] == "COLIS_NON_RECU"


def test_status_without_history_is_dated_by_its_creation(
    laposte: respx.MockRouter, pimms: Pimms
) -> None:
    body = {"returnCode": 200, "reclamation": {**RECLAMATION, "nouveauChamp": 1}}
    laposte.get(f"{CLAIMS}/{CLAIM_ID}").respond(200, json=body)
    status = pimms.claim_status("laposte", CLAIM_ID)
    assert status.history == ()
    assert status.updated_at == datetime(2026, 3, 10, 11, 0, tzinfo=timezone(timedelta(hours=1)))


def test_claim_ref_is_url_encoded(laposte: respx.MockRouter, pimms: Pimms) -> None:
    route = laposte.get(url__regex=r".*/reclamation/v1/reclamations/.*").respond(
        404, json={"returnCode": 404, "returnMessage": "Not Found"}
    )
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("laposte", "RCL-1/../../admin")
    assert route.calls.last.request.url.raw_path == (
        b"/reclamation/v1/reclamations/RCL-1%2F..%2F..%2Fadmin"
    )


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"returnCode": 404, "returnMessage": "Not Found"}, ClaimNotFound),
        (404, "404 page not found", ClaimNotFound),
        (401, UNAUTHORIZED_401, PartnerAuthError),
        (429, TOO_MANY_429, PartnerUnavailable),
        (503, UNAVAILABLE_503, PartnerUnavailable),
        (500, "Internal Server Error", PartnerUnavailable),
        (200, "<html>maintenance</html>", PartnerProtocolError),
        (200, {"returnCode": 200, "claim": full_claim()}, PartnerProtocolError),
        (200, {"returnCode": 200, "reclamation": full_claim(statut=None)}, PartnerProtocolError),
        (
            200,
            {"returnCode": 200, "reclamation": full_claim(historique=[{"date": "2026-03-10"}])},
            PartnerProtocolError,
        ),
        (
            200,
            {"returnCode": 200, "reclamation": full_claim(historique="ENREGISTREE")},
            PartnerProtocolError,
        ),
    ],
)
def test_claim_status_errors_are_mapped(
    laposte: respx.MockRouter,
    pimms: Pimms,
    status: int,
    body: dict[str, Any] | str,
    error: type[PimmsError],
) -> None:
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {"text": body}
    laposte.get(f"{CLAIMS}/{CLAIM_ID}").respond(status, **kwargs)
    with pytest.raises(error) as caught:
        pimms.claim_status("laposte", CLAIM_ID)
    assert caught.value.partner == "laposte"
    assert "Canary" not in str(caught.value)
    assert_no_secret(caught.value)


# --- Declaration ---------------------------------------------------------------------------------


def test_common_categories_resolve_to_the_first_declared_motif() -> None:
    assert INFO.category_code("lost_or_damaged").code == "COLIS_NON_RECU"
    assert INFO.category_code("delivery_problem").code == "RETARD_LIVRAISON"
    assert INFO.category_code("other").code == "AUTRE"
    assert INFO.accepted_categories()[:3] == ["lost_or_damaged", "delivery_problem", "other"]


def test_the_okapi_key_is_a_secret_and_lang_is_not() -> None:
    specs = {spec.name: spec for spec in INFO.settings}
    assert specs["okapi_key"].secret is True
    assert specs["okapi_key"].sandbox_value is not None
    assert specs["lang"].secret is False
    assert specs["lang"].default == "fr_FR"
    assert INFO.idempotency.value == "lookup"
    assert INFO.base_url == "https://api.laposte.fr"
    assert [(q.calls, q.seconds) for q in INFO.quotas] == [(100, 1)]
