"""La Poste plugin through its simulator: every seeded shipment, a claim followed to its end,
and a claim sent twice with the same key that exists once at La Poste.

These run the whole chain (facade, core policy, plugin, simulator) in-process, on a clock the
test moves, so dates are fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

import pimms_laposte
from pimms_core.errors import AccountNotFound, ClaimNotFound, InvalidReference
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState, Contact
from pimms_core.testing import sandbox_pimms
from pimms_laposte.info import INFO
from pimms_laposte.seed import MOTIFS, SEED_IDSHIPS, STATUTS

START = datetime(2026, 3, 10, 10, 0, 0, tzinfo=UTC)  # 11:00 in Paris (+01:00)


class Clock:
    """The simulator's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pimms(clock: Clock) -> Iterator[Pimms]:
    with sandbox_pimms(pimms_laposte, clock=clock) as facade:
        yield facade


def claims_at_laposte(pimms: Pimms) -> dict[str, dict[str, object]]:
    claims: dict[str, dict[str, object]] = pimms.sandbox_state("laposte").read().get("claims", {})
    return claims


def set_status(pimms: Pimms, claim_ref: str, status: str, note: str) -> None:
    """Move a claim at the simulator, as La Poste's back office would."""
    response = pimms._context("laposte", None).http.post(
        f"/_sandbox/claims/{claim_ref}/status", json={"status": status, "note": note}
    )
    assert response.status_code == 200, response.text


# --- Tracking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "status", "code", "label", "events"),
    [
        ("6A00000000001", "in_transit", "ET1", "Colissimo", ["ET1", "PC1", "DR1"]),
        ("6A00000000002", "delivered", "DI1", "Colissimo", ["DI1", "MD2", "EP1", "ET1", "PC1"]),
        ("6A00000000003", "problem", "PB1", "Colissimo", ["PB1", "ET1", "PC1"]),
        (
            "EW000000001FR",
            "returned",
            "RE1",
            "Courrier international — Lettre suivie internationale",
            ["RE1", "ND1", "ET3", "ET4", "ET2", "PC2"],
        ),
    ],
)
def test_every_seeded_shipment_is_found(
    pimms: Pimms, reference: str, status: str, code: str, label: str, events: list[str]
) -> None:
    account = pimms.lookup_account("laposte", reference)
    assert account.reference == reference
    assert account.status == status
    assert account.partner_status == code
    assert account.holder_name == label
    assert [e.code for e in account.events] == events
    dates = [e.at for e in account.events]
    assert all(d is not None for d in dates)
    assert dates == sorted(dates, reverse=True), "newest first"  # type: ignore[type-var]
    assert account.raw["timeline"], "the timeline is kept"
    assert account.services[0].id == reference


def test_dates_come_from_the_clock(pimms: Pimms) -> None:
    account = pimms.lookup_account("laposte", "6A00000000001")
    assert account.events[0].at == START - timedelta(hours=6)
    assert account.services[0].details["estimDate"] == "2026-03-11"


def test_sandbox_accounts_are_the_seed() -> None:
    assert tuple(a.reference for a in INFO.sandbox_accounts) == SEED_IDSHIPS


def test_declared_codes_are_the_simulators() -> None:
    assert tuple(c.code for c in INFO.categories) == MOTIFS
    assert tuple(s.code for s in INFO.statuses) == STATUTS


def test_lower_case_reference_finds_the_shipment(pimms: Pimms) -> None:
    assert pimms.lookup_account("laposte", "ew000000001fr").reference == "EW000000001FR"


def test_unknown_valid_reference_is_not_found(pimms: Pimms) -> None:
    with pytest.raises(AccountNotFound):
        pimms.lookup_account("laposte", "6A99999999999")


def test_malformed_reference_is_refused_locally(pimms: Pimms) -> None:
    with pytest.raises(InvalidReference):
        pimms.lookup_account("laposte", "6A-1")


# --- Claims --------------------------------------------------------------------------------------


def test_a_claim_is_opened_and_followed_to_its_end(pimms: Pimms, clock: Clock) -> None:
    claim = pimms.open_claim(
        "laposte",
        "6A00000000003",
        "lost_or_damaged",
        "Colis annoncé en incident depuis une semaine (usager fictif).",
        contact=Contact(email="usager.fictif@example.org", phone="0100000000"),
        idempotency_key="pimms-test-1",
    )
    assert claim.claim_ref == "RCL-2026-000001"
    assert claim.state is ClaimState.RECEIVED
    assert claim.opened_at == START
    assert claim.response_due_by == date(2026, 3, 31)
    assert claim.replayed is False
    stored = claims_at_laposte(pimms)[claim.claim_ref]
    assert stored["motif"] == "COLIS_NON_RECU"
    assert stored["referenceExterne"] == "pimms-test-1"
    assert stored["contact"] == {"email": "usager.fictif@example.org", "telephone": "0100000000"}

    steps = [
        ("EN_COURS_DE_TRAITEMENT", ClaimState.IN_PROGRESS),
        ("ATTENTE_PIECES_CLIENT", ClaimState.AWAITING_CUSTOMER),
        ("INDEMNISATION_ACCORDEE", ClaimState.RESOLVED),
        ("CLOTUREE", ClaimState.CLOSED),
    ]
    for day, (code, state) in enumerate(steps, start=1):
        clock.now = START + timedelta(days=day)
        set_status(pimms, claim.claim_ref, code, f"Étape {day}")
        status = pimms.claim_status("laposte", claim.claim_ref)
        assert status.state is state
        assert status.partner_status == code
        assert status.partner_label == INFO.label_of(code)
        assert status.updated_at == clock.now
        assert status.history[-1].note == f"Étape {day}"

    history = pimms.claim_status("laposte", claim.claim_ref).history
    assert [h.partner_status for h in history] == ["ENREGISTREE"] + [c for c, _ in steps]
    assert [h.at for h in history] == [START + timedelta(days=d) for d in range(5)]


def test_a_rejected_claim(pimms: Pimms) -> None:
    claim = pimms.open_claim("laposte", "EW000000001FR", "other", "x", idempotency_key="k")
    set_status(pimms, claim.claim_ref, "REJETEE", "Hors délai.")
    status = pimms.claim_status("laposte", claim.claim_ref)
    assert status.state is ClaimState.REJECTED
    assert not status.state.is_open


def test_a_claim_sent_twice_with_one_key_exists_once(pimms: Pimms) -> None:
    first = pimms.open_claim(
        "laposte", "6A00000000001", "delivery_problem", "Retard", idempotency_key="same-key"
    )
    second = pimms.open_claim(
        "laposte", "6A00000000001", "delivery_problem", "Retard", idempotency_key="same-key"
    )
    assert len(claims_at_laposte(pimms)) == 1
    assert first.replayed is False
    assert second.replayed is True
    assert second.claim_ref == first.claim_ref
    assert second.opened_at == first.opened_at


def test_the_replayed_claim_shows_its_current_status(pimms: Pimms) -> None:
    first = pimms.open_claim("laposte", "6A00000000002", "other", "x", idempotency_key="k2")
    set_status(pimms, first.claim_ref, "EN_COURS_DE_TRAITEMENT", "Pris en charge.")
    again = pimms.open_claim("laposte", "6A00000000002", "other", "x", idempotency_key="k2")
    assert again.replayed is True
    assert again.state is ClaimState.IN_PROGRESS
    assert len(claims_at_laposte(pimms)) == 1


def test_different_keys_open_different_claims(pimms: Pimms) -> None:
    one = pimms.open_claim("laposte", "6A00000000001", "other", "x", idempotency_key="k-1")
    two = pimms.open_claim("laposte", "6A00000000001", "other", "x", idempotency_key="k-2")
    assert one.claim_ref != two.claim_ref
    assert len(claims_at_laposte(pimms)) == 2


@pytest.mark.parametrize("motif", MOTIFS)
def test_every_motif_is_accepted_by_la_poste(pimms: Pimms, motif: str) -> None:
    claim = pimms.open_claim("laposte", "6A00000000002", motif, "x", idempotency_key=motif)
    assert claims_at_laposte(pimms)[claim.claim_ref]["motif"] == motif


def test_a_claim_on_an_unknown_shipment_is_not_found(pimms: Pimms) -> None:
    with pytest.raises(AccountNotFound):
        pimms.open_claim("laposte", "6A99999999999", "other", "x", idempotency_key="k")
    assert claims_at_laposte(pimms) == {}


def test_an_unknown_claim_is_not_found(pimms: Pimms) -> None:
    with pytest.raises(ClaimNotFound):
        pimms.claim_status("laposte", "RCL-2026-999999")
