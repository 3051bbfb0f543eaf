"""The site side of measure 3, in a process of its own (its peak memory is the one reported):
write the claims into the site's ledger, then refresh them all, timed.

    python benchmarks/refresh_site.py WORKDIR SITE_NAME CONCURRENCY < simulators.json

Prints one JSON line: the refresh's seconds and counts, and the process's peak RSS.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from common import live_facade, quiet_logs

from pimms_core.models import ClaimState
from pimms_core.refresh import refresh_claims
from pimms_core.store.records import LedgerEntry

STALE_EVERY = 10
"""One claim in this many is written to the ledger in an older state, so the refresh finds it
changed (and updates it) as a nightly run would find some."""


def main(workdir: Path, site_name: str, concurrency: int) -> None:
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
        summary = refresh_claims(pimms, concurrency=concurrency)
        seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "selected": summary.selected,
                "checked": summary.checked,
                "changed": summary.changed,
                "failed": dict(summary.failed),
                "peak_rss_mb": peak_kib * 1024 / 1e6,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
