"""The site side of measure 3, in a process of its own (its peak memory is the one reported):
write the claims into the site's ledger, then refresh them all, timed.

    python benchmarks/refresh_site.py WORKDIR SITE_NAME CONCURRENCY [core|plugins] < sims.json

Prints one JSON line: the refresh's seconds and counts, and the process's peak RSS.

`plugins` times a reference instead of pimms: the same status checks made by each plugin's
own `pimms_claim_status` function, on the same HTTP clients (which keep the partner's budget,
as the core builds them), from CONCURRENCY plain threads, without the core around them (no
routing, retry policy, guard, journal, ledger writes or `run_jobs`). What it takes over the
yardstick is the machine's and the simulators' share.
"""

from __future__ import annotations

import importlib
import json
import queue
import resource
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from common import PLUGINS, live_facade, quiet_logs

from pimms_core.errors import PimmsError
from pimms_core.facade import Pimms
from pimms_core.models import CallContext, ClaimState, ClaimStatus
from pimms_core.refresh import refresh_claims
from pimms_core.store.records import LedgerEntry

STALE_EVERY = 10
"""One claim in this many is written to the ledger in an older state, so the refresh finds it
changed (and updates it) as a nightly run would find some."""


def plugins_alone(pimms: Pimms, concurrency: int) -> dict[str, object]:
    """The reference run: every open claim asked by its plugin's own function, no core."""
    claims = pimms.store.ledger.list(open_only=True)
    functions = {}
    for name in PLUGINS:
        module = importlib.import_module(name)
        functions[module.pimms_partner_info().id] = module.pimms_claim_status
    call = CallContext(site_id=pimms.config.site_id, agent_id="bench-reference")
    contexts = {partner: pimms._context(partner, call) for partner in functions}
    todo = queue.SimpleQueue[LedgerEntry]()
    for entry in claims:
        todo.put(entry)
    done = queue.SimpleQueue[tuple[LedgerEntry, ClaimStatus | PimmsError] | None]()

    def work() -> None:
        while True:
            try:
                entry = todo.get_nowait()
            except queue.Empty:
                done.put(None)
                return
            check = functions[entry.partner]
            try:
                done.put((entry, check(contexts[entry.partner], entry.claim_ref)))
            except PimmsError as exc:
                done.put((entry, exc))

    threads = [threading.Thread(target=work) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    checked, changed, failed, working = 0, 0, Counter[str](), concurrency
    while working:
        item = done.get()
        if item is None:
            working -= 1
            continue
        entry, outcome = item
        checked += 1
        if isinstance(outcome, PimmsError):
            failed[outcome.code] += 1
        elif (outcome.state, outcome.partner_status) != (entry.state, entry.partner_status):
            changed += 1
    for thread in threads:
        thread.join()
    return {"selected": len(claims), "checked": checked, "changed": changed, "failed": failed}


def main(workdir: Path, site_name: str, concurrency: int, mode: str = "core") -> None:
    served = json.loads(sys.stdin.readline())
    # The facade's own limit of requests in flight per partner (4 by default) would cap the
    # run below the concurrency asked for.
    pimms = live_facade(
        workdir / site_name,
        served["snippet"],
        served["env"],
        settings={"max_concurrent": concurrency},
    )
    checked_at = datetime(2024, 1, 1, tzinfo=UTC)
    with quiet_logs(), pimms, (workdir / "claims.jsonl").open() as claims:
        for number, line in enumerate(claims):
            row = json.loads(line)
            stale = number % STALE_EVERY == 0
            pimms.store.ledger.record(
                LedgerEntry(
                    partner=row["partner"],
                    claim_ref=row["claim_ref"],
                    account_ref=row["account_ref"],
                    category=row["category"],
                    state=ClaimState.IN_PROGRESS if stale else ClaimState(row["state"]),
                    partner_status="BENCH-STALE" if stale else row["partner_status"],
                    opened_at=datetime.fromisoformat(row["opened_at"]),
                    last_checked=checked_at,
                )
            )
        started = time.perf_counter()
        if mode == "plugins":
            counts = plugins_alone(pimms, concurrency)
        else:
            summary = refresh_claims(pimms, concurrency=concurrency)
            counts = {
                "selected": summary.selected,
                "checked": summary.checked,
                "changed": summary.changed,
                "failed": dict(summary.failed),
            }
        seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                **counts,
                "peak_rss_mb": peak_kib * 1024 / 1e6,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
