"""The outbox over real sockets and real processes: EDF's simulator served on loopback.

With the simulator stopped, `pimms claim open edf ...` says the claim is queued and gives its
local reference; once it is back, `pimms outbox flush` delivers it, once. A process killed
after EDF created the claim but before pimms recorded the answer loses nothing and duplicates
nothing either: the next flush takes the claim over and EDF's idempotency key settles it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pimms_core.sandbox import SandboxState
from pimms_core.serve import serve_app
from pimms_core.store import open_store
from pimms_core.testing.fault_server import Fault, FaultProxy
from pimms_edf.seed import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from pimms_edf.simulator import create_app

CANARY_DESCRIPTION = "Canary description 5f3e: facture de mars contestée"
CANARY_EMAIL = "canary.resident.9c1d@example.org"


@pytest.fixture
def edf_state(tmp_path: Path) -> SandboxState:
    return SandboxState(tmp_path / "edf-simulator.json")


@pytest.fixture
def edf_server(edf_state: SandboxState) -> Iterator[FaultProxy]:
    """EDF's simulator behind a proxy that can make it unreachable (refused) on its address."""
    app = create_app(edf_state, quotas=False)
    with serve_app(app, quiet=True).start() as server, FaultProxy(server.base_url) as proxy:
        yield proxy


@pytest.fixture
def live_config(tmp_path: Path, edf_server: FaultProxy) -> Path:
    config = tmp_path / "pimms.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [pimms]
            site_id = "test-site"
            data_dir = "data"

            [partners.edf]
            base_url = "{edf_server.url}"
            client_id_env = "EDF_CLIENT_ID"
            client_secret_env = "EDF_CLIENT_SECRET"
            timeout = 2
            """
        )
    )
    return config


def pimms_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PIMMS_LOAD_PLUGINS": "edf",
        "EDF_CLIENT_ID": SANDBOX_CLIENT_ID,
        "EDF_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
    }
    return subprocess.run(
        [sys.executable, "-m", "pimms_core", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def claims_at_edf(state: SandboxState) -> dict[str, Any]:
    claims: dict[str, Any] = state.read().get("claims", {})
    return claims


OPEN = (
    "claim",
    "open",
    "edf",
    "--account",
    "4001234567",
    "--category",
    "billing",
    "--description",
    CANARY_DESCRIPTION,
    "--email",
    CANARY_EMAIL,
)


def test_partner_down_the_claim_is_queued_then_flushed_exactly_once(
    live_config: Path, edf_server: FaultProxy, edf_state: SandboxState
) -> None:
    edf_server.arm(Fault.refuse())
    opened = pimms_cli(live_config, *OPEN)
    assert opened.returncode == 0, opened.stderr
    assert "QUEUED" in opened.stdout
    assert "local ref: PIMMS-" in opened.stdout
    local_ref = opened.stdout.split("local ref: ")[1].split()[0]
    assert "SANDBOX" not in opened.stderr

    listed = pimms_cli(live_config, "outbox", "--json")
    [waiting] = json.loads(listed.stdout)["outbox"]
    assert waiting["local_ref"] == local_ref and waiting["state"] == "queued"
    assert "description" not in waiting

    still_down = pimms_cli(live_config, "outbox", "flush")
    assert still_down.returncode == 1
    assert f"{local_ref}  edf  queued" in still_down.stdout
    assert claims_at_edf(edf_state) == {}

    edf_server.disarm()
    flushed = pimms_cli(live_config, "outbox", "flush", "--json")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    [delivered] = json.loads(flushed.stdout)["flushed"]
    assert delivered["delivered"] is True and delivered["local_ref"] == local_ref
    assert list(claims_at_edf(edf_state)) == [delivered["claim_ref"]]

    again = pimms_cli(live_config, "outbox", "flush")
    assert again.returncode == 0
    assert "Nothing to send" in again.stdout
    assert len(claims_at_edf(edf_state)) == 1

    ledger = json.loads(pimms_cli(live_config, "claims", "--json").stdout)["claims"]
    assert [(c["claim_ref"], c["local_ref"]) for c in ledger] == [
        (delivered["claim_ref"], local_ref)
    ]
    with open_store(live_config.parent / "data" / "pimms.sqlite3") as store:
        entry = store.outbox.get(local_ref)
        assert entry is not None and entry.state.value == "delivered"
        assert entry.description is None and entry.contact_email is None
        outcomes = [(row.operation, row.outcome) for row in store.journal.list()]
    assert outcomes == [
        ("open_claim", "queued"),
        ("flush", "queued"),
        ("flush", "ok"),
    ]


def test_the_same_claim_opened_again_while_queued_is_still_one_claim(
    live_config: Path, edf_server: FaultProxy, edf_state: SandboxState
) -> None:
    edf_server.arm(Fault.refuse())
    keyed = (*OPEN, "--idempotency-key", "desk-3-mediation-77", "--json")
    first = json.loads(pimms_cli(live_config, *keyed).stdout)
    assert first["queued"] is True and first["state"] == "queued"
    edf_server.disarm()
    second = json.loads(pimms_cli(live_config, *keyed).stdout)
    assert second["queued"] is False
    assert second["local_ref"] == first["local_ref"]
    assert pimms_cli(live_config, "outbox", "flush").stdout.startswith("Nothing to send")
    assert list(claims_at_edf(edf_state)) == [second["claim_ref"]]


KILLER = """
import os, signal, sys
from pimms_core import Pimms, hookimpl
from pimms_core.models import PluginRef

WHEN = sys.argv[2]


class Killer:
    '''Kills this process at a chosen moment of a claim's opening, as a power cut would.'''

    @hookimpl(wrapper=True)
    def pimms_open_claim(self, partner, request):
        if WHEN == "before-send":
            os.kill(os.getpid(), signal.SIGKILL)
        claim = yield
        if WHEN == "after-send":
            os.kill(os.getpid(), signal.SIGKILL)
        return claim


pimms = Pimms.from_config(sys.argv[1], plugins=[(Killer(), PluginRef("killer", "0"))])
pimms.submit_claim("edf", "4001234567", "billing", "killed mid-call", idempotency_key="crash-1")
"""


@pytest.mark.parametrize("when", ["before-send", "after-send"])
def test_a_process_killed_mid_claim_loses_nothing_and_duplicates_nothing(
    live_config: Path, edf_state: SandboxState, tmp_path: Path, when: str
) -> None:
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    env = {
        **os.environ,
        "PIMMS_LOAD_PLUGINS": "edf",
        "EDF_CLIENT_ID": SANDBOX_CLIENT_ID,
        "EDF_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
    }
    killed = subprocess.run(
        [sys.executable, str(script), str(live_config), when],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    expected_before = 1 if when == "after-send" else 0
    assert len(claims_at_edf(edf_state)) == expected_before
    with open_store(live_config.parent / "data" / "pimms.sqlite3") as store:
        [left] = store.outbox.list()
        assert left.state.value == "sending"  # the killed process never recorded an answer

    flushed = pimms_cli(live_config, "outbox", "flush", "--json")
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    [delivered] = json.loads(flushed.stdout)["flushed"]
    assert delivered["delivered"] is True
    assert list(claims_at_edf(edf_state)) == [delivered["claim_ref"]]
