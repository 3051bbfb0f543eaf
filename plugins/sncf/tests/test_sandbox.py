"""SNCF plugin against its simulator: seed bookings, G30 outcomes, a claim followed, idempotency.

Runs through the facade in sandbox mode (`sandbox_pimms`), with a clock the tests move, so the
seed journeys and the dates SNCF writes are fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import pimms_sncf
from pimms_core.config import Config
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ClaimRejected,
    InvalidInput,
    PartnerAuthError,
)
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState, Contact, Money
from pimms_core.policy import NO_RETRY
from pimms_core.sandbox import SandboxState
from pimms_core.testing import fresh_host, sandbox_pimms
from pimms_sncf.info import INFO

# 10:30 in Paris (CET) on Sunday 15 March 2026: ABC123 travelled on 5 March, OLD001 in December.
FIXED = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


class Clock:
    """A clock the tests move forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(FIXED)


@pytest.fixture
def pimms(clock: Clock) -> Iterator[Pimms]:
    with sandbox_pimms(pimms_sncf, clock=clock) as facade:
        yield facade


def claims_at_simulator(pimms: Pimms) -> dict[str, Any]:
    claims: dict[str, Any] = pimms.sandbox_state("sncf").read().get("claims", {})
    return claims


def drive(pimms: Pimms, claim_ref: str, status: str, **extra: Any) -> None:
    """Move a claim through the simulator's sandbox-only admin route."""
    response = pimms._context("sncf", None).http.post(
        f"/_sandbox/claims/{claim_ref}/status", json={"status": status, **extra}
    )
    assert response.status_code == 200, response.text


# --- bookings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", INFO.sandbox_accounts, ids=lambda a: a.reference)
def test_every_seed_booking_is_found(pimms: Pimms, seed: Any) -> None:
    account = pimms.lookup_account("sncf", seed.reference, last_name=seed.last_name)
    assert account.reference == seed.reference
    assert account.status == "active"
    assert seed.last_name.upper() in account.holder_name
    assert account.balance is not None and account.balance.currency == "EUR"
    (journey,) = account.services
    assert journey.status == "delayed"
    departure = datetime.fromisoformat(journey.details["departure_planned"])
    assert departure.utcoffset() is not None


def test_abc123_reads_as_the_contract_says(pimms: Pimms) -> None:
    account = pimms.lookup_account("sncf", "ABC123", last_name="Martin")
    assert account.holder_name == "Camille MARTIN"
    assert account.balance == Money(89.0, "EUR")
    (journey,) = account.services
    assert journey.id == "TGV-INOUI-6611-20260305"
    assert journey.label == "TGV INOUI 6611 Paris Gare de Lyon → Lyon Part-Dieu"
    assert journey.details["departure_planned"] == "2026-03-05T08:10:00+01:00"
    assert journey.details["arrival_actual"] == "2026-03-05T11:15:00+01:00"
    assert journey.details["delay_minutes"] == "65"


@pytest.mark.parametrize(
    ("reference", "name", "delay", "fare"),
    [("XYZ789", "Benali", "130", 45.0), ("QRS456", "Nguyen", "40", 22.4)],
)
def test_other_seed_journeys(
    pimms: Pimms, reference: str, name: str, delay: str, fare: float
) -> None:
    account = pimms.lookup_account("sncf", reference, last_name=name)
    assert account.services[0].details["delay_minutes"] == delay
    assert account.balance == Money(fare, "EUR")


def test_lowercase_reference_and_accented_name_are_found(pimms: Pimms) -> None:
    account = pimms.lookup_account("sncf", " qrs456 ", last_name="nguyễn")
    assert account.reference == "QRS456"


def test_wrong_name_and_unknown_reference_are_the_same_not_found(pimms: Pimms) -> None:
    with pytest.raises(AccountNotFound) as wrong_name:
        pimms.lookup_account("sncf", "ABC123", last_name="Benali")
    with pytest.raises(AccountNotFound) as unknown:
        pimms.lookup_account("sncf", "ZZZ999", last_name="Martin")
    assert str(wrong_name.value) == str(unknown.value)
    assert "Benali" not in str(wrong_name.value)


def test_missing_name_is_refused_before_the_simulator(pimms: Pimms) -> None:
    with pytest.raises(InvalidInput, match="last name"):
        pimms.lookup_account("sncf", "ABC123")


def test_a_wrong_api_key_is_an_auth_error_without_the_key() -> None:
    key = "canary-wrong-key-41b2"
    config = Config.from_document(
        {"partners": {"sncf": {"api_key_env": "SNCF_KEY"}}}, env={"SNCF_KEY": key}
    )
    with (
        Pimms(
            config,
            fresh_host(pimms_sncf),
            sandbox=True,
            env={"SNCF_KEY": key},
            sandbox_state=SandboxState(None, clock=lambda: FIXED),
            policy=NO_RETRY,
        ) as pimms,
        pytest.raises(PartnerAuthError) as caught,
    ):
        pimms.lookup_account("sncf", "ABC123", last_name="Martin")
    assert key not in str(caught.value)
    assert "HTTP 403" in str(caught.value)


# --- G30 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "name", "amount"),
    [("ABC123", "Martin", 22.25), ("XYZ789", "Benali", 22.5)],
    ids=["25% of 89 EUR", "50% of 45 EUR"],
)
def test_g30_compensation_on_eligible_bookings(
    pimms: Pimms, reference: str, name: str, amount: float
) -> None:
    claim = pimms.open_claim(
        "sncf", reference, "delay_compensation", "Retard à l'arrivée.", last_name=name
    )
    assert claim.compensation == Money(amount, "EUR")
    assert claim.state is ClaimState.RECEIVED
    assert claim.partner_status == "recue"
    assert claim.opened_at == datetime(2026, 3, 15, 10, 30, tzinfo=PARIS)
    assert claim.response_due_by == date(2026, 4, 15)
    assert claim.raw["compensation"]["forme"] == "bon_voyage"
    assert list(claims_at_simulator(pimms)) == [claim.claim_ref]


@pytest.mark.parametrize(
    ("reference", "name", "code", "words"),
    [
        ("QRS456", "Nguyen", "non_eligible", "not eligible for the G30 guarantee"),
        (
            "OLD001",
            "Martin",
            "delai_depasse",
            "G30 compensation must be claimed within 60 days of the journey",
        ),
    ],
)
def test_g30_refusals_are_clear_and_create_nothing(
    pimms: Pimms, reference: str, name: str, code: str, words: str
) -> None:
    with pytest.raises(ClaimRejected, match=words) as caught:
        pimms.open_claim("sncf", reference, "G30_RETARD", "Retard.", last_name=name)
    assert caught.value.partner_code == code
    assert caught.value.plugin is not None and caught.value.plugin.name == "pimms-sncf"
    assert claims_at_simulator(pimms) == {}


def test_another_motif_on_an_old_journey_is_accepted(pimms: Pimms) -> None:
    claim = pimms.open_claim("sncf", "OLD001", "billing", "Tarif contesté.", last_name="Martin")
    assert claim.compensation is None
    assert claims_at_simulator(pimms)[claim.claim_ref]["motif"] == "TARIF"


def test_claim_on_a_wrong_name_is_account_not_found(pimms: Pimms) -> None:
    with pytest.raises(AccountNotFound):
        pimms.open_claim("sncf", "ABC123", "other", "x", last_name="Nguyen")
    assert claims_at_simulator(pimms) == {}


# --- a claim followed ---------------------------------------------------------------------------


def test_claim_opened_and_followed_through_its_statuses(pimms: Pimms, clock: Clock) -> None:
    account = pimms.lookup_account("sncf", "XYZ789", last_name="Benali")
    claim = pimms.open_claim(
        "sncf",
        "xyz789",
        "refund",
        "Train supprimé, trajet non effectué.",
        last_name="Benali",
        contact=Contact(email="y.benali@example.test"),
        service_id=account.services[0].id,
        idempotency_key="site-1-0001",
    )
    stored = claims_at_simulator(pimms)[claim.claim_ref]
    assert stored["external_id"] == "site-1-0001"
    assert stored["reference_dossier"] == "XYZ789"
    assert stored["motif"] == "ANNULATION"
    assert stored["contact"] == {"email": "y.benali@example.test"}
    assert stored["description"].startswith("Trajet concerné : Intercités 3631 Paris Austerlitz")
    assert stored["description"].endswith("Train supprimé, trajet non effectué.")

    status = pimms.claim_status("sncf", claim.claim_ref)
    assert (status.state, status.partner_label) == (ClaimState.RECEIVED, "Reçue")

    steps: list[tuple[str, ClaimState, dict[str, Any]]] = [
        ("en_cours", ClaimState.IN_PROGRESS, {}),
        ("complement_demande", ClaimState.AWAITING_CUSTOMER, {"note": "Joindre le billet."}),
        ("en_cours", ClaimState.IN_PROGRESS, {}),
        (
            "acceptee",
            ClaimState.RESOLVED,
            {"compensation": {"montant": 45, "forme": "virement"}},
        ),
        ("close", ClaimState.CLOSED, {}),
    ]
    for hours, (code, state, extra) in enumerate(steps, start=1):
        clock.now = FIXED + timedelta(days=hours)
        drive(pimms, claim.claim_ref, code, **extra)
        status = pimms.claim_status("sncf", claim.claim_ref)
        assert (status.state, status.partner_status) == (state, code)
        assert status.updated_at == clock.now.astimezone(PARIS)
        assert len(status.history) == 1 + hours
        assert status.history[-1].partner_status == code
    assert [h.state for h in status.history] == [ClaimState.RECEIVED] + [s for _, s, _ in steps]
    assert status.history[2].note == "Joindre le billet."
    times = [h.at for h in status.history]
    assert times == sorted(t for t in times if t is not None)
    assert status.compensation == Money(45.0, "EUR")
    assert status.raw["compensation"]["forme"] == "virement"
    assert not status.state.is_open


def test_unknown_claim_is_claim_not_found(pimms: Pimms) -> None:
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("sncf", "R-26-0009999")


def test_claim_about_an_unknown_journey_creates_nothing(pimms: Pimms) -> None:
    with pytest.raises(InvalidInput, match="TGV-INOUI-6611-20260305"):
        pimms.open_claim(
            "sncf", "ABC123", "other", "x", last_name="Martin", service_id="TER-1-20260305"
        )
    assert claims_at_simulator(pimms) == {}


# --- idempotency --------------------------------------------------------------------------------


def test_a_claim_opened_twice_with_one_key_exists_once(pimms: Pimms, clock: Clock) -> None:
    first = pimms.open_claim(
        "sncf", "ABC123", "G30_RETARD", "Retard.", last_name="Martin", idempotency_key="k-42"
    )
    clock.now = FIXED + timedelta(hours=2)
    again = pimms.open_claim(
        "sncf", "ABC123", "G30_RETARD", "Retard.", last_name="Martin", idempotency_key="k-42"
    )
    assert len(pimms.sandbox_state("sncf").read().get("claims", {})) == 1
    assert first.replayed is False
    assert again.replayed is True
    assert again.claim_ref == first.claim_ref
    assert again.opened_at == first.opened_at
    assert again.response_due_by == first.response_due_by
    assert again.compensation == first.compensation == Money(22.25, "EUR")


def test_a_replayed_claim_shows_its_current_status(pimms: Pimms) -> None:
    options: dict[str, Any] = {"last_name": "Martin", "idempotency_key": "k"}
    first = pimms.open_claim("sncf", "ABC123", "AUTRE", "x", **options)
    drive(pimms, first.claim_ref, "en_cours")
    again = pimms.open_claim("sncf", "ABC123", "AUTRE", "x", **options)
    assert (again.replayed, again.state) == (True, ClaimState.IN_PROGRESS)
    assert len(claims_at_simulator(pimms)) == 1


def test_one_key_on_another_booking_is_refused(pimms: Pimms) -> None:
    pimms.open_claim("sncf", "ABC123", "other", "x", last_name="Martin", idempotency_key="k")
    with pytest.raises(ClaimRejected, match="another booking"):
        pimms.open_claim("sncf", "XYZ789", "other", "x", last_name="Benali", idempotency_key="k")
    assert len(claims_at_simulator(pimms)) == 1


def test_different_keys_make_different_claims(pimms: Pimms) -> None:
    refs = {
        pimms.open_claim(
            "sncf", "ABC123", "other", "x", last_name="Martin", idempotency_key=f"k-{n}"
        ).claim_ref
        for n in range(3)
    }
    assert refs == {"R-26-0000001", "R-26-0000002", "R-26-0000003"}
    assert len(claims_at_simulator(pimms)) == 3


def test_a_refused_claim_leaves_its_key_free(pimms: Pimms) -> None:
    with pytest.raises(ClaimRejected):
        pimms.open_claim(
            "sncf", "QRS456", "G30_RETARD", "x", last_name="Nguyen", idempotency_key="k"
        )
    claim = pimms.open_claim(
        "sncf", "QRS456", "refund", "x", last_name="Nguyen", idempotency_key="k"
    )
    assert claim.replayed is False
    assert len(claims_at_simulator(pimms)) == 1
