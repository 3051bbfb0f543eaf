"""A binding budget is respected: a partner allowing N calls per second never sees more from a
refresh, whatever its concurrency. Timestamps are taken at the simulator, as the partner would
count, and every 1-second window starting at a request is checked (a sliding window is the
strictest reading of "N per second").

The refresh runs with its default share of the budget; the core's own budget, under it, is
the hard limit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import attrs

from pimms_core.models import ClaimState, Quota
from pimms_core.refresh import refresh_claims
from pimms_core.store.records import LedgerEntry
from tests.simulated import SimulatedAcme, facade, simulator

CALLS_PER_SECOND = 4
CLAIMS = 12
LONG_AGO = datetime(2024, 1, 1, tzinfo=UTC)


def worst_window(stamps: list[float], seconds: float = 1.0) -> int:
    """The most requests in any window [t, t + seconds) that starts at a request."""
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s - start < seconds) for i, start in enumerate(stamps))


def test_worst_window_counts_what_it_should() -> None:
    assert worst_window([0.0, 0.5, 0.99, 1.0, 1.6]) == 3
    assert worst_window([0.0, 1.0, 2.0]) == 1
    assert worst_window([0.0, 0.1, 0.2, 0.3, 0.4]) == 5


def test_a_refresh_never_exceeds_the_partners_budget() -> None:
    stamps: list[float] = []
    lock = threading.Lock()

    def record(_path: str) -> Any:
        with lock:
            stamps.append(time.monotonic())
        return None

    plugin = SimulatedAcme("acme", simulator("acme", record))
    plugin.info = attrs.evolve(plugin.info, quotas=[Quota(CALLS_PER_SECOND, 1)])
    pimms = facade(plugin)
    for i in range(CLAIMS):
        pimms.store.ledger.record(
            LedgerEntry(
                partner="acme",
                claim_ref=f"A-{i}",
                account_ref="12345678",
                category="billing",
                state=ClaimState.RECEIVED,
                partner_status="NEW",
                opened_at=LONG_AGO,
                last_checked=LONG_AGO,
            )
        )
    summary = refresh_claims(pimms, concurrency=16, per_partner=16)
    assert summary.checked == CLAIMS and summary.failed_total == 0
    assert len(stamps) == CLAIMS
    assert worst_window(stamps) == CALLS_PER_SECOND  # reached (so binding), never exceeded
