"""Measure 1: `lookup_account` through the facade, against the same request made with a bare
`httpx.Client` on the same in-process simulator, parsed with `json`.

Both call EDF's simulator (`httpx.WSGITransport`, one app shared by both) for the seeded
customer 4001234567, with a bearer token already fetched. The facade adds what a site gets
from it: validation, routing through pluggy, the retry policy, the partner's budget, the
plugin's translation into an `Account`, attribution, and the journal: each round of lookups
ends by writing the rows it left to the write-behind buffer, inside its timing, so that the
writer thread's work is charged to the facade and not to the bare client's next round.

41 rounds of 200 calls, alternating: the ratio moves by about ±0.02 from one run to the next on
a 2-core machine (with 15 rounds, ±0.04).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from common import (
    Measured,
    ResidentPimms,
    ResidentState,
    interleaved,
    quiet_logs,
    sandbox_facade,
)

from pimms_core.transport import sandbox_base_url
from pimms_edf.seed import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from pimms_edf.simulator import create_app

MEASURE = "lookup_account through the facade"
FLOOR = 1.2
REFERENCE = "4001234567"


PATH = f"/customers/v1/accounts/{REFERENCE}"


def bare_lookup(bare: httpx.Client) -> Callable[[], object]:
    """The yardstick: the lookup's request with a bare client (a bearer token fetched first)."""
    token = bare.post(
        "/oauth2/v3/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def bare_httpx() -> object:
        response = bare.get(PATH, headers=headers)
        response.raise_for_status()
        return json.loads(response.content)

    return bare_httpx


def simulator_and_facade(workdir: Path) -> tuple[ResidentPimms, httpx.Client]:
    """A facade and a bare client on one EDF simulator, in-process (close both when done)."""
    app = create_app(ResidentState(), quotas=False)
    pimms = sandbox_facade(workdir / "lookup", apps={"edf": app}, only=("pimms_edf",))
    bare = httpx.Client(transport=httpx.WSGITransport(app=app), base_url=sandbox_base_url("edf"))
    return pimms, bare


def measure(workdir: Path, *, calls: int = 200, rounds: int = 41) -> Measured:
    pimms, bare = simulator_and_facade(workdir)
    try:
        bare_httpx = bare_lookup(bare)

        def through_facade() -> object:
            return pimms.lookup_account("edf", REFERENCE)

        with quiet_logs():
            assert pimms.lookup_account("edf", REFERENCE).reference == REFERENCE
            for _ in range(calls):  # warm both paths up: tokens, caches, code paths
                through_facade()
                bare_httpx()
            mine, theirs = interleaved(
                through_facade,
                bare_httpx,
                calls=calls,
                rounds=rounds,
                settle=pimms.store.journal.flush,  # the rows written behind are its cost too
            )
    finally:
        bare.close()
        pimms.close()
    return Measured(
        MEASURE,
        mine / theirs,
        FLOOR,
        f"facade {mine * 1e6:.0f} us per call, bare httpx {theirs * 1e6:.0f} us per call",
    )
