"""Measure 2: a fan-out over the four partners, each simulator answering 100 ms late, against
one partner alone.

The simulators are served on loopback (`pimms_core.serve`, 100 ms of latency on every
answer) and the facade calls them "live", over real sockets. The yardstick is the slowest
partner alone (each partner's lookup timed on its own, the slowest kept): a fan-out cannot
end before its slowest member, so 1.0x means the four cost no more than one.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from common import LOOKUPS, Measured, live_facade, quiet_logs, sandbox_facade

from pimms_core import serve
from pimms_core.fanout import lookup_many

MEASURE = "fan-out over the 4 partners"
FLOOR = 1.2
LATENCY = 0.100


def measure(workdir: Path, *, rounds: int = 7) -> Measured:
    simulators = sandbox_facade(workdir / "fanout-simulators")
    targets = [(partner, ref, name) for partner, (ref, name) in LOOKUPS.items()]
    with (
        quiet_logs(),
        serve.start_in_thread(
            simulators, latency=LATENCY, state_for=simulators.sandbox_state
        ) as server,
    ):
        infos = [entry.info for entry in simulators.partners()]
        snippet = serve.config_snippet(infos, server.urls)
        pimms = live_facade(workdir / "fanout", snippet, serve.sandbox_env(infos, server.urls))
        with pimms:
            for outcome in lookup_many(pimms, targets):  # warm up: tokens, connections
                assert outcome.ok, outcome.error
            fanned: list[float] = []
            alone: dict[str, list[float]] = {partner: [] for partner in LOOKUPS}
            for _ in range(rounds):
                started = time.perf_counter()
                outcomes = lookup_many(pimms, targets)
                fanned.append(time.perf_counter() - started)
                assert all(outcome.ok for outcome in outcomes)
                for partner, ref, name in targets:
                    started = time.perf_counter()
                    pimms.lookup_account(partner, ref, last_name=name)
                    alone[partner].append(time.perf_counter() - started)
    fan = statistics.median(fanned)
    slowest, one = max(
        ((partner, statistics.median(times)) for partner, times in alone.items()),
        key=lambda item: item[1],
    )
    return Measured(
        MEASURE,
        fan / one,
        FLOOR,
        f"4 partners at once {fan * 1000:.1f} ms, slowest alone ({slowest}) {one * 1000:.1f} ms",
    )
