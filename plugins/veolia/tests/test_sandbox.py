"""Veolia plugin integration tests: the facade against the Veolia simulator, in-process.

A fixed clock drives the simulator (creation dates, response delays, jeton expiry). Status
changes go through the simulator's admin route, on a second app sharing the same state, as
another process serving the same data directory would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

import pimms_veolia
from pimms_core.config import Config
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidInput,
    PartnerAuthError,
)
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState
from pimms_core.sandbox import SandboxState
from pimms_core.testing import fresh_host, sandbox_pimms
from pimms_veolia.auth import VeoliaTokenAuth
from pimms_veolia.info import INFO
from pimms_veolia.seed import SANDBOX_PASSWORD
from pimms_veolia.simulator import create_app

FIXED = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)


class Clock:
    """A settable clock for the simulator's state."""

    def __init__(self) -> None:
        self.now = FIXED

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pimms(clock: Clock) -> Iterator[Pimms]:
    with sandbox_pimms(pimms_veolia, clock=clock) as facade:
        yield facade


@pytest.fixture
def admin(pimms: Pimms) -> FlaskClient:
    """The simulator's admin routes, on the facade's sandbox state."""
    return create_app(pimms.sandbox_state("veolia"), quotas=False).test_client()


def claims(pimms: Pimms) -> dict[str, Any]:
    found: dict[str, Any] = pimms.sandbox_state("veolia").read().get("claims", {})
    return found


def set_etat(admin: FlaskClient, numero: str, etat: str, note: str | None = None) -> None:
    body = {"status": etat} if note is None else {"status": etat, "note": note}
    response = admin.post(f"/_sandbox/claims/{numero}/status", json=body)
    assert response.status_code == 200, response.get_json()


def token_auth(pimms: Pimms) -> VeoliaTokenAuth:
    auth = pimms._context("veolia", None).http.auth
    assert isinstance(auth, VeoliaTokenAuth)
    return auth


# --- accounts ------------------------------------------------------------------------------------


EXPECTED_ACCOUNTS = {
    "100200300": ("Mme Camille MARTIN", "active", ["AB-778812"], 132.4),
    "100200400": ("M. Lucien FICTIF", "active", ["AB-900001", "AB-900002"], 0.0),
    "100200500": ("M. Karim BENALI", "terminated", ["AB-555000"], 0.0),
}


def test_declared_sandbox_accounts_are_the_seed() -> None:
    assert [a.reference for a in INFO.sandbox_accounts] == list(EXPECTED_ACCOUNTS)


@pytest.mark.parametrize("reference", list(EXPECTED_ACCOUNTS))
def test_every_seed_account_is_found(pimms: Pimms, reference: str) -> None:
    holder, status, services, balance = EXPECTED_ACCOUNTS[reference]
    account = pimms.lookup_account("veolia", reference)
    assert account.reference == reference
    assert account.holder_name == holder
    assert account.status == status
    assert [s.id for s in account.services] == services
    assert account.balance is not None and account.balance.amount == balance
    assert all(s.details["numero_client"] == reference for s in account.services)
    assert pimms.mode("veolia") == "sandbox"


def test_two_abonnements_keep_their_own_status(pimms: Pimms) -> None:
    account = pimms.lookup_account("veolia", "100200400")
    assert [(s.id, s.status, s.label) for s in account.services] == [
        ("AB-900001", "ACTIF", "Eau potable - particulier"),
        ("AB-900002", "RESILIE", "Eau potable - residence secondaire"),
    ]
    assert account.services[0].details["date_index_releve"] == "2026-08-22"


def test_camille_martin_details(pimms: Pimms) -> None:
    account = pimms.lookup_account("veolia", "100200300")
    assert account.address == "12 rue des Lilas 69008 LYON"
    assert account.services[0].details["numero_compteur"] == "I17VA012345"
    assert account.services[0].details["solde"] == "132.40"
    assert account.services[0].details["mode_paiement"] == "MENSUALISATION"


@pytest.mark.parametrize("reference", ["123456789", "000000000"])
def test_an_unknown_numero_is_account_not_found(pimms: Pimms, reference: str) -> None:
    with pytest.raises(AccountNotFound):
        pimms.lookup_account("veolia", reference)


# --- demandes ------------------------------------------------------------------------------------


def test_a_demande_is_opened_and_followed(pimms: Pimms, admin: FlaskClient, clock: Clock) -> None:
    claim = pimms.open_claim(
        "veolia", "100200300", "billing", "Facture de septembre contestée", idempotency_key="k1"
    )
    assert claim.claim_ref == "D-2026-00001"
    assert claim.state is ClaimState.RECEIVED
    assert claim.opened_at == FIXED
    assert claim.response_due_by is not None
    assert claim.response_due_by.isoformat() == "2026-10-09"
    assert claim.replayed is False
    stored = claims(pimms)["D-2026-00001"]
    assert (stored["id_abonnement"], stored["type_demande"]) == ("AB-778812", "FACTURE_CONTESTEE")

    steps = [
        ("EN_COURS", ClaimState.IN_PROGRESS),
        ("EN_ATTENTE_CLIENT", ClaimState.AWAITING_CUSTOMER),
        ("TRAITEE", ClaimState.RESOLVED),
        ("CLOSE", ClaimState.CLOSED),
    ]
    for etat, state in steps:
        clock.advance(days=1)
        set_etat(admin, claim.claim_ref, etat, note=f"Note {etat}")
        status = pimms.claim_status("veolia", claim.claim_ref)
        assert status.state is state
        assert status.partner_status == etat
        assert status.updated_at == clock.now
    assert [h.partner_status for h in status.history] == [
        "NOUVELLE",
        "EN_COURS",
        "EN_ATTENTE_CLIENT",
        "TRAITEE",
        "CLOSE",
    ]
    assert status.history[-1].note == "Note CLOSE"
    assert not status.state.is_open


def test_a_rejected_demande(pimms: Pimms, admin: FlaskClient) -> None:
    claim = pimms.open_claim("veolia", "100200300", "ECHEANCIER", "x", idempotency_key="k")
    set_etat(admin, claim.claim_ref, "REJETEE")
    status = pimms.claim_status("veolia", claim.claim_ref)
    assert (status.state, status.partner_label) == (ClaimState.REJECTED, "Rejetée")


def test_a_leak_is_answered_in_two_days(pimms: Pimms) -> None:
    claim = pimms.open_claim("veolia", "100200300", "service_outage", "Fuite", idempotency_key="k")
    assert claim.response_due_by is not None
    assert claim.response_due_by.isoformat() == "2026-10-03"
    assert claims(pimms)[claim.claim_ref]["type_demande"] == "FUITE"


def test_same_key_twice_is_one_demande_at_veolia(pimms: Pimms) -> None:
    first = pimms.open_claim("veolia", "100200300", "billing", "x", idempotency_key="cle-unique")
    again = pimms.open_claim("veolia", "100200300", "billing", "x", idempotency_key="cle-unique")
    assert len(pimms.sandbox_state("veolia").read().get("claims", {})) == 1
    assert again.claim_ref == first.claim_ref
    assert (first.replayed, again.replayed) == (False, True)
    other = pimms.open_claim("veolia", "100200300", "billing", "x", idempotency_key="cle-autre")
    assert other.claim_ref != first.claim_ref
    assert len(pimms.sandbox_state("veolia").read().get("claims", {})) == 2


def test_several_abonnements_need_a_service_id(pimms: Pimms) -> None:
    with pytest.raises(InvalidInput, match="AB-900001, AB-900002"):
        pimms.open_claim("veolia", "100200400", "billing", "x", idempotency_key="k")
    with pytest.raises(InvalidInput, match="expected one of AB-900001, AB-900002"):
        pimms.open_claim(
            "veolia", "100200400", "billing", "x", service_id="AB-778812", idempotency_key="k"
        )
    assert claims(pimms) == {}
    claim = pimms.open_claim(
        "veolia", "100200400", "billing", "x", service_id="AB-900001", idempotency_key="k"
    )
    assert claims(pimms)[claim.claim_ref]["id_abonnement"] == "AB-900001"


@pytest.mark.parametrize(
    ("reference", "service_id"), [("100200500", None), ("100200400", "AB-900002")]
)
def test_terminated_abonnement_only_takes_autre(
    pimms: Pimms, reference: str, service_id: str | None
) -> None:
    with pytest.raises(ClaimRejected, match="only the category 'other' \\(AUTRE\\)") as caught:
        pimms.open_claim(
            "veolia", reference, "billing", "x", service_id=service_id, idempotency_key="k"
        )
    assert caught.value.partner_code == "ABONNEMENT_RESILIE"
    assert claims(pimms) == {}
    claim = pimms.open_claim(
        "veolia", reference, "other", "x", service_id=service_id, idempotency_key="k"
    )
    assert claims(pimms)[claim.claim_ref]["type_demande"] == "AUTRE"


def test_open_claim_on_an_unknown_numero(pimms: Pimms) -> None:
    with pytest.raises(AccountNotFound):
        pimms.open_claim("veolia", "123456789", "billing", "x", idempotency_key="k")
    assert claims(pimms) == {}


def test_unknown_demande_is_claim_not_found(pimms: Pimms) -> None:
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("veolia", "D-2026-99999")


# --- auth ----------------------------------------------------------------------------------------


def test_expired_jetons_are_renewed_once(pimms: Pimms) -> None:
    pimms.lookup_account("veolia", "100200300")
    auth = token_auth(pimms)
    assert auth.logins == 1
    http = pimms._context("veolia", None).http
    response = http.post("/_sandbox/tokens/expire")
    assert response.json() == {"jetons_expires": 1}
    # The simulator now answers the old jeton with 403: one new login, and the call succeeds.
    assert pimms.lookup_account("veolia", "100200300").reference == "100200300"
    assert auth.logins == 2
    pimms.lookup_account("veolia", "100200300")
    assert auth.logins == 2


def test_a_jeton_past_its_lifetime_is_renewed(pimms: Pimms, clock: Clock) -> None:
    claim = pimms.open_claim("veolia", "100200300", "billing", "x", idempotency_key="k")
    clock.advance(seconds=901)
    assert pimms.claim_status("veolia", claim.claim_ref).state is ClaimState.RECEIVED
    assert token_auth(pimms).logins == 2


def test_a_wrong_password_is_an_auth_error_naming_no_secret(clock: Clock) -> None:
    wrong = "canary-wrong-password-3b9c"
    env = {"VEOLIA_PASSWORD": wrong}
    config = Config.from_document({"partners": {"veolia": {"password_env": "VEOLIA_PASSWORD"}}})
    facade = Pimms(
        config,
        fresh_host(pimms_veolia),
        sandbox=True,
        env=env,
        sandbox_state=SandboxState(None, clock=clock),
    )
    with facade, pytest.raises(PartnerAuthError) as caught:
        facade.lookup_account("veolia", "100200300")
    text = str(caught.value) + repr(caught.value.to_dict())
    assert wrong not in text and SANDBOX_PASSWORD not in text
    assert "veolia" in text


def test_sandbox_never_leaves_the_machine(pimms: Pimms) -> None:
    http = pimms._context("veolia", None).http
    assert isinstance(http, httpx.Client)
    assert str(http.base_url).startswith("http://veolia.sandbox.pimms.invalid")
