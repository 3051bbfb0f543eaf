"""Batch refresh: every open claim of the ledger checked, the ledger and journal updated, a
summary by outcome; a partner failing never spoils the others; interrupted, then run again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pimms_core.errors import UnknownPartner
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState
from pimms_core.refresh import REFRESH_AGENT, Refresh, refresh_claims
from pimms_core.store.records import LedgerEntry
from tests.test_fanout import SimulatedAcme, facade, simulator

LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


def ledger_claim(
    pimms: Pimms, partner: str, claim_ref: str, *, state: str = "received", status: str = "NEW"
) -> None:
    pimms.store.ledger.record(
        LedgerEntry(
            partner=partner,
            claim_ref=claim_ref,
            account_ref="12345678",
            category="billing",
            state=ClaimState(state),
            partner_status=status,
            opened_at=LONG_AGO,
            last_checked=LONG_AGO,
        )
    )


def two_partners(down: bool = False) -> Pimms:
    def broken(_path: str) -> Any:
        return "<html>Service Unavailable</html>", 503

    return facade(
        SimulatedAcme("acme", simulator("acme")),
        SimulatedAcme("bolt", simulator("bolt", broken if down else None)),
    )


def test_every_open_claim_is_checked_and_the_ledger_updated() -> None:
    pimms = two_partners()
    ledger_claim(pimms, "acme", "A-1")  # stays NEW
    ledger_claim(pimms, "acme", "A-9")  # the simulator says DONE: resolved
    ledger_claim(pimms, "bolt", "B-9")
    ledger_claim(pimms, "bolt", "B-0", state="closed", status="DONE")  # not open: not asked
    summary = refresh_claims(pimms, concurrency=4)
    assert (summary.selected, summary.checked, summary.changed, summary.unchanged) == (3, 3, 2, 1)
    assert summary.failed_total == 0 and summary.complete
    assert {c.claim_ref for c in summary.changes} == {"A-9", "B-9"}
    assert summary.partners["acme"].changed == 1 and summary.partners["bolt"].checked == 1
    resolved = pimms.store.ledger.get("acme", "A-9")
    assert resolved is not None and resolved.state is ClaimState.RESOLVED
    assert resolved.last_checked > LONG_AGO
    assert [e.claim_ref for e in pimms.store.ledger.list(open_only=True)] == ["A-1"]
    journal = [e for e in pimms.store.journal.list() if e.operation == "claim_status"]
    assert len(journal) == 3 and {e.agent_id for e in journal} == {REFRESH_AGENT}
    assert len({e.correlation_id for e in journal}) == 1  # one run, one correlation id
    data = summary.to_json()
    assert data["failed"] == {} and data["checked"] == 3
    assert sorted(data["changes"], key=lambda change: change["claim_ref"]) == [
        {
            "partner": p,
            "claim_ref": r,
            "from": "received",
            "to": "resolved",
            "partner_status": "DONE",
        }
        for p, r in (("acme", "A-9"), ("bolt", "B-9"))
    ]


def test_a_failing_partner_is_counted_by_error_type_and_spoils_nothing() -> None:
    pimms = two_partners(down=True)
    for ref in ("A-1", "A-9"):
        ledger_claim(pimms, "acme", ref)
    for ref in ("B-1", "B-2", "B-3"):
        ledger_claim(pimms, "bolt", ref)
    summary = refresh_claims(pimms)
    assert summary.checked == 5 and summary.changed == 1
    assert dict(summary.failed) == {"partner_unavailable": 3}
    assert dict(summary.partners["bolt"].failed) == {"partner_unavailable": 3}
    assert summary.partners["acme"].failed_total == 0
    untouched = pimms.store.ledger.get("bolt", "B-1")
    assert untouched is not None and untouched.last_checked == LONG_AGO  # failure: not "heard"
    journal = [e for e in pimms.store.journal.list() if e.partner == "bolt"]
    assert {e.error_type for e in journal} == {"partner_unavailable"}


def test_one_partner_only() -> None:
    pimms = two_partners()
    ledger_claim(pimms, "acme", "A-1")
    ledger_claim(pimms, "bolt", "B-1")
    summary = refresh_claims(pimms, partner="bolt")
    assert summary.selected == 1 and set(summary.partners) == {"bolt"}
    with pytest.raises(UnknownPartner):
        Refresh(pimms, partner="nope")


def test_interrupted_then_resumed_where_it_stopped() -> None:
    pimms = two_partners()
    refs = [f"A-{i}" for i in range(6)]
    for ref in refs:
        ledger_claim(pimms, "acme", ref)
    first = Refresh(pimms, concurrency=1, per_partner=1)
    checks = first.run()
    next(checks)
    next(checks)
    checks.close()  # what Ctrl-C does to the loop
    assert first.summary.interrupted and not first.summary.complete
    assert first.summary.checked == 2
    heard = [e for e in pimms.store.ledger.list() if e.last_checked > LONG_AGO]
    assert len(heard) >= 2  # every finished check is in the ledger
    second = Refresh(pimms, older_than=3600)  # only what the first run did not reach
    assert second.summary.selected == 6 - len(heard)
    for _ in second.run():
        pass
    assert second.summary.complete
    assert all(e.last_checked > LONG_AGO for e in pimms.store.ledger.list())


def test_running_again_is_harmless() -> None:
    pimms = two_partners()
    ledger_claim(pimms, "acme", "A-9")
    ledger_claim(pimms, "acme", "A-1")
    assert refresh_claims(pimms).changed == 1
    again = refresh_claims(pimms)
    assert again.selected == 1 and again.changed == 0 and again.unchanged == 1  # A-9 closed


def test_nothing_to_refresh() -> None:
    summary = refresh_claims(two_partners())
    assert summary.selected == summary.checked == 0 and summary.complete


def test_a_recent_check_is_skipped_with_older_than() -> None:
    pimms = two_partners()
    ledger_claim(pimms, "acme", "A-1")
    pimms.store.ledger.update_status(
        "acme",
        "A-1",
        state=ClaimState.RECEIVED,
        partner_status="NEW",
        checked_at=datetime.now(UTC) - timedelta(minutes=5),
    )
    assert Refresh(pimms, older_than=3600).summary.selected == 0
    assert Refresh(pimms, older_than=60).summary.selected == 1


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Refresh(two_partners(), concurrency=0)
