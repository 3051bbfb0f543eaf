"""Crash cases: a process opening a claim is killed (SIGKILL), then a fresh one flushes.

A real `python -m pimms_core claim open ...` runs against the partner's simulator behind a
`FaultProxy`, with its store in a SQLite file of its own. It is killed at one of two moments:

- `before_send`: the claim is in the outbox and its request has reached the proxy, which
  holds it without forwarding: the partner never saw it;
- `after_send`: the proxy forwarded the request (the partner holds the claim) and withholds
  the answer: the process never learnt that it was opened.

Then `python -m pimms_core outbox flush` runs against the healthy simulator. With an
idempotency mechanism, the partner must then hold exactly one claim, the one the outbox
records as delivered. With none, the claim must wait for a person (`needs_check`) and not be
sent again. Nothing here knows a partner: the plugin's sandbox settings and seeded accounts say
what to send.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from pimms_core import calls
from pimms_core.config import Config
from pimms_core.models import Idempotency, OutboxState
from pimms_core.plugins import PluginHost
from pimms_core.sandbox import SandboxState
from pimms_core.serve import serve_app
from pimms_core.store.sqlite import SqliteStore
from pimms_core.testing.fault_partner import PartnerSetup
from pimms_core.testing.fault_server import (
    SIMULATOR_POLL,
    Fault,
    FaultProxy,
    Match,
    credentials,
)

WAIT = 30.0
"""Seconds to wait for the process to reach the chosen moment (it is far quicker)."""
PROCESS_TIMEOUT = 60.0
"""The killed process's own partner timeout: longer than the test, so only the kill ends it."""


class KillPoint(StrEnum):
    BEFORE_SEND = "before_send"
    """In the outbox, request held by the proxy before it reached the partner."""
    AFTER_SEND = "after_send"
    """The partner holds the claim; its answer never reached the process."""

    @property
    def summary(self) -> str:
        if self is KillPoint.BEFORE_SEND:
            return "`claim open` killed after the outbox write, before the partner got it"
        return "`claim open` killed after the partner took the claim, before its answer"


@frozen
class CrashOutcome:
    partner: str
    kill_point: KillPoint
    seconds: float
    state_at_kill: str | None
    """The outbox entry's state when the process was killed (`sending` expected)."""
    claims_at_kill: int
    claims_after: int
    state_after: str | None
    """The outbox entry's state after the flush (`delivered`, or `needs_check` with none)."""
    problems: tuple[str, ...] = ()
    lost: bool = False
    duplicated: bool = False
    leaks: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not (self.problems or self.lost or self.duplicated or self.leaks)


def pimms_command(*args: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "pimms_core", *args]


def write_config(path: Path, setup: PartnerSetup, base_url: str, data_dir: Path) -> Path:
    """A `pimms.toml` giving the partner live at `base_url` (its secrets named, not written)."""
    table = {**setup.table, "base_url": base_url, "timeout": PROCESS_TIMEOUT}
    lines = ["[pimms]", f"data_dir = {_toml(str(data_dir))}", 'site_id = "crash-test"', ""]
    lines.append(f"[partners.{setup.id}]")
    lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: Any) -> str:
    """A TOML value: a JSON string is a TOML basic string; numbers are the same."""
    return json.dumps(value)


def crash_claim(
    host: PluginHost,
    setup: PartnerSetup,
    kill_point: KillPoint,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    python: str = sys.executable,
) -> CrashOutcome:
    """Open a claim in a process, kill it at `kill_point`, flush in another; report.

    `env` is the environment of both processes (by default this one's), to which the
    configuration file and the plugin's secret settings are added.
    """
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    state = SandboxState(None)
    app = calls.sandbox_app(host, setup.id, state)
    if app is None:
        raise ValueError(f"{setup.id}: its plugin ships no simulator")
    description = f"Crash test claim {uuid.uuid4().hex}"
    key = f"crash-{uuid.uuid4().hex}"
    data_dir = workdir / "data"
    problems: list[str] = []
    outputs: list[tuple[str, str]] = []
    with (
        serve_app(app, poll_interval=SIMULATOR_POLL, quiet=True).start() as simulator,
        FaultProxy(simulator.base_url) as proxy,
    ):
        config = write_config(workdir / "pimms.toml", setup, proxy.url, data_dir)
        process_env = {
            **(os.environ if env is None else env),
            **setup.env,
            "PIMMS_CONFIG": str(config),
            "PIMMS_LOAD_PLUGINS": host.partner(setup.id).ref.name,
        }
        process_env.pop("PIMMS_DATA_DIR", None)
        database = Config.load(config, env=process_env).database_path
        forward = kill_point is KillPoint.AFTER_SEND
        proxy.arm(Fault.hold(forward=forward), match=Match(contains=description.encode()))
        process = subprocess.Popen(
            pimms_command(*_open_args(setup, description, key), python=python),
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            reached = proxy.wait_until(
                lambda p: p.held >= 1 and (not forward or any(r.forwarded for r in p.requests)),
                timeout=WAIT,
            )
            state_at_kill = _entry_state(database, setup.id, key)
            claims_at_kill = _claims(state)
        finally:
            process.send_signal(signal.SIGKILL)
            out, err = process.communicate(timeout=WAIT)
        outputs += [
            ("killed process stdout", out.decode()),
            ("killed process stderr", err.decode()),
        ]
        if not reached:
            problems.append(
                f"the process never reached the {kill_point.value} moment "
                f"(exit {process.returncode}): {err.decode()[-300:]!r}"
            )
        if state_at_kill != OutboxState.SENDING.value:
            problems.append(f"when killed, the outbox entry was {state_at_kill or 'missing'}")
        expected_at_kill = 1 if forward else 0
        if claims_at_kill != expected_at_kill:
            problems.append(f"when killed, the partner held {claims_at_kill} claims")
        proxy.disarm()
        sent_before_flush = _creates(proxy, description)
        flush = subprocess.run(
            pimms_command("outbox", "flush", python=python),
            env=process_env,
            capture_output=True,
            timeout=WAIT,
            check=False,
        )
        outputs += [
            ("flush stdout", flush.stdout.decode()),
            ("flush stderr", flush.stderr.decode()),
        ]
        resent = _creates(proxy, description) - sent_before_flush
        claims_after = _claims(state)
        entry = _entry(database, setup.id, key)
        outputs += _journal(database)
        tokens = {f"credential {i}": c for i, c in enumerate(sorted(credentials(proxy.requests)))}
    state_after = entry.state.value if entry is not None else None
    mechanism = setup.info.idempotency
    if mechanism is Idempotency.NONE:
        if state_after != OutboxState.NEEDS_CHECK.value:
            problems.append(f"with no idempotency mechanism, the claim is {state_after} after")
        if resent:
            problems.append(f"with no idempotency mechanism, the flush sent it again {resent}x")
        lost = claims_after == 0 and state_after != OutboxState.NEEDS_CHECK.value
    else:
        if flush.returncode != 0:
            problems.append(f"outbox flush exited {flush.returncode}: {flush.stderr.decode()!r}")
        if state_after != OutboxState.DELIVERED.value:
            problems.append(f"after the flush, the claim is {state_after}")
        elif entry is not None and entry.claim_ref not in state.claim_refs():
            problems.append("the outbox records a claim reference the partner does not hold")
        lost = claims_after == 0
    leaks = tuple(setup.canary.with_values(**tokens).leaks(outputs))
    return CrashOutcome(
        setup.id,
        kill_point,
        time.monotonic() - started,
        state_at_kill,
        claims_at_kill,
        claims_after,
        state_after,
        tuple(problems),
        lost,
        claims_after > 1,
        leaks,
    )


def _open_args(setup: PartnerSetup, description: str, key: str) -> Sequence[str]:
    assert setup.claim_account is not None and setup.category is not None
    args = [
        "claim",
        "open",
        setup.id,
        "--account",
        setup.claim_account.reference,
        "--category",
        setup.category,
        "--description",
        description,
        "--idempotency-key",
        key,
    ]
    last_name = setup.last_name(setup.claim_account)
    if setup.info.reference.needs_last_name and last_name:
        args += ["--name", last_name]
    return args


def _creates(proxy: FaultProxy, description: str) -> int:
    """How many requests carrying the claim's description reached the proxy."""
    return sum(description.encode() in r.raw for r in proxy.requests)


def _claims(state: SandboxState) -> int:
    return len(state.claim_refs())


def _entry(database: Path, partner: str, key: str) -> Any:
    if not database.exists():
        return None
    with SqliteStore(database) as store:
        return store.outbox.find(partner, key)


def _entry_state(database: Path, partner: str, key: str) -> str | None:
    entry = _entry(database, partner, key)
    return entry.state.value if entry is not None else None


def _journal(database: Path) -> list[tuple[str, str]]:
    if not database.exists():
        return []
    with SqliteStore(database) as store:
        return [
            ("journal row", json.dumps(attrs.asdict(row), default=str))
            for row in store.journal.list()
        ]
