"""Measure 3: a refresh of 10,000 ledger claims against the simulators served on loopback with
50 ms of latency, concurrency 32, budgets not binding; against 10,000 x 50 ms / 32.

Two processes, as in production: the simulators (`refresh_simulators.py`: it opens the claims
at the four simulators, then serves them) and the site (`refresh_site.py`: it writes the
claims into its ledger, a SQLite file, then runs `refresh_claims`, timed, and reports its own
peak RSS). The refresh is timed `RUNS` times, each on a fresh ledger, and the median kept: on
a small shared machine one run varies by 20%. The yardstick is the time the 50 ms answers take
when exactly 32 are always in flight, with nothing else costing anything.

Between two refreshes, a reference run makes the same checks with the plugins' own functions
and no core around them (`refresh_site.py ... plugins`): its median, printed with the raw
figures, is what the machine and the simulators' server take on their own, so that the
difference is what the core adds.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from common import Measured

MEASURE = "refresh of 10,000 ledger claims"
FLOOR = 1.3
CLAIMS = 10_000
LATENCY = 0.050
CONCURRENCY = 32
PEAK_RSS_MB = 200
RUNS = 3
"""Refreshes timed (each on a fresh ledger, the simulators kept): the median is reported."""
HERE = Path(__file__).resolve().parent


def measure(workdir: Path, *, claims: int = CLAIMS, runs: int = RUNS) -> Measured:
    workdir.mkdir(parents=True, exist_ok=True)
    simulators = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "refresh_simulators.py"),
            str(workdir),
            str(claims),
            str(LATENCY),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    results: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    try:
        assert simulators.stdout is not None
        served = simulators.stdout.readline()
        if not served:
            raise RuntimeError("the simulators' process ended before serving")
        for run in range(runs):
            results.append(_site(workdir, f"site-{run}", served, "core"))
            if run < max(runs - 1, 1):  # interleaved, so that the machine's drift hits both
                references.append(_site(workdir, f"reference-{run}", served, "plugins"))
    finally:
        simulators.terminate()
        simulators.wait(timeout=30)
    yardstick = claims * LATENCY / CONCURRENCY
    seconds = statistics.median(result["seconds"] for result in results)
    complete = all(r["checked"] == claims and not r["failed"] for r in results)
    peak = max(result["peak_rss_mb"] for result in results)
    last = results[-1]
    runs_text = ", ".join(f"{result['seconds']:.2f}" for result in results)
    alone = statistics.median(reference["seconds"] for reference in references)
    complete = complete and all(r["checked"] == claims and not r["failed"] for r in references)
    return Measured(
        f"{MEASURE} (peak RSS {peak:.0f} MB, limit {PEAK_RSS_MB} MB)",
        seconds / yardstick,
        FLOOR,
        f"median of {runs_text} s for {last['checked']} claims ({last['changed']} changed,"
        f" failed {last['failed'] or 'none'}), yardstick {yardstick:.2f} s;"
        f" peak RSS of the site's process {peak:.0f} MB; the plugins alone, without the core:"
        f" {alone:.2f} s, {alone / yardstick:.2f}x",
        extra_ok=complete and peak < PEAK_RSS_MB,
    )


def _site(workdir: Path, name: str, served: str, mode: str) -> dict[str, Any]:
    """One run of `refresh_site.py` (`core`: the refresh; `plugins`: the reference)."""
    site = subprocess.run(
        [sys.executable, str(HERE / "refresh_site.py"), str(workdir), name, str(CONCURRENCY), mode],
        input=served,
        capture_output=True,
        text=True,
        check=False,
    )
    if site.returncode != 0:
        raise RuntimeError(f"the {mode} run failed:\n{site.stderr}")
    result: dict[str, Any] = json.loads(site.stdout.splitlines()[-1])
    return result
