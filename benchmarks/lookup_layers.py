"""Where the lookup's overhead goes: measure 1 taken apart, layer by layer.

    python benchmarks/lookup_layers.py

Times, in alternating rounds, the same lookup of EDF's seeded customer on its in-process
simulator made five ways, each adding one layer to the one before, and prints each one's
time and its ratio to the bare client (the median of the per-round ratios):

    bare httpx   measure 1's yardstick: a bare `httpx.Client`, the answer parsed with `json`
    client       the same GET on the partner's client as the core builds it (token auth, the
                 budget's and the log's event hooks), parsed with `json`
    payload      the answer read by `Payload.of` (the plugin's typed JSON reading)
    plugin       the plugin's `lookup_account` function: the answer translated into an
                 `Account`
    facade       `Pimms.lookup_account`: validation, routing through pluggy, the retry
                 policy, guard and budget, attribution, the journal row (written behind;
                 each round ends by writing it, as in measure 1)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_lookup import PATH, REFERENCE, bare_lookup, simulator_and_facade
from common import machine, per_call, quiet_logs

from pimms_core.models import AccountQuery, CallContext
from pimms_core.payload import Payload
from pimms_edf import client as edf

CALLS = 200
ROUNDS = 41


def main() -> int:
    for line in machine():
        print(line)
    with tempfile.TemporaryDirectory(prefix="pimms-layers-") as workdir:
        pimms, bare = simulator_and_facade(Path(workdir))
        try:
            pimms.lookup_account("edf", REFERENCE)  # the facade fetches its token
            context = pimms._context("edf", CallContext())
            query = AccountQuery(REFERENCE)

            def client() -> object:
                response = context.http.get(PATH)
                response.raise_for_status()
                return json.loads(response.content)

            def payload() -> object:
                return Payload.of(context.http.get(PATH), "edf").obj("customer")

            def facade() -> object:
                return pimms.lookup_account("edf", REFERENCE)

            layers: dict[str, tuple[Callable[[], object], Callable[[], object] | None]] = {
                "bare httpx": (bare_lookup(bare), None),
                "client": (client, None),
                "payload": (payload, None),
                "plugin": (lambda: edf.lookup_account(context, query), None),
                "facade": (facade, pimms.store.journal.flush),
            }
            with quiet_logs():
                timings = _rounds(layers)
        finally:
            bare.close()
            pimms.close()
    base = timings["bare httpx"]
    for name, seconds in timings.items():
        ratio = statistics.median(mine / theirs for mine, theirs in zip(seconds, base, strict=True))
        print(f"{name:<11} {statistics.median(seconds) * 1e6:6.0f} us per call  {ratio:.2f}x")
    return 0


def _rounds(
    layers: dict[str, tuple[Callable[[], object], Callable[[], object] | None]],
) -> dict[str, list[float]]:
    """Seconds per call of each layer, round by round (`CALLS` calls, then its settle)."""
    for call, _settle in layers.values():  # warm every path up: tokens, caches, code
        for _ in range(CALLS):
            call()
    timings: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(ROUNDS):
        for name, (call, settle) in layers.items():
            timings[name].append(per_call(call, calls=CALLS, rounds=1, settle=settle))
    return timings


if __name__ == "__main__":
    sys.exit(main())
