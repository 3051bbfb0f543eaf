"""Batch refresh: every open claim of the ledger checked, the ledger and journal updated, a
summary by outcome; a partner failing never spoils the others; interrupted, then run again."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pimms_core.cli import cli
from pimms_core.errors import UnknownPartner
from pimms_core.facade import Pimms
from pimms_core.models import ClaimState
from pimms_core.refresh import REFRESH_AGENT, Refresh, refresh_claims
from pimms_core.sandbox import SandboxState
from pimms_core.store.records import LedgerEntry
from tests.simulated import SimulatedAcme, facade, simulator

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


def test_statuses_reach_the_ledger_in_batches_and_the_journal_names_each_claim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pimms_core import refresh

    monkeypatch.setattr(refresh, "STATUS_BATCH", 2)
    monkeypatch.setattr(refresh, "STATUS_INTERVAL", 3600.0)  # batches by count only
    pimms = two_partners()
    for number in range(5):
        ledger_claim(pimms, "acme", f"A-{number}")
    batches: list[int] = []
    write = pimms.store.ledger.update_statuses

    def counted(fresh: Any, *, checked_at: datetime) -> int:
        batches.append(len(fresh))
        return write(fresh, checked_at=checked_at)

    monkeypatch.setattr(pimms.store.ledger, "update_statuses", counted)
    summary = refresh_claims(pimms)
    assert summary.checked == 5
    assert batches == [2, 2, 1]
    assert all(entry.last_checked > LONG_AGO for entry in pimms.store.ledger.list())
    rows = [row for row in pimms.store.journal.list() if row.operation == "claim_status"]
    assert len(rows) == 5
    assert {row.account for row in rows} == {"*****678"}  # from the ledger, masked


def test_a_ledger_that_cannot_be_written_is_logged_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pimms_core.errors import StoreError

    pimms = two_partners()
    ledger_claim(pimms, "acme", "A-1")
    ledger_claim(pimms, "acme", "A-9")

    def broken(fresh: Any, *, checked_at: datetime) -> int:
        raise StoreError("the database is locked")

    monkeypatch.setattr(pimms.store.ledger, "update_statuses", broken)
    with caplog.at_level("ERROR", logger="pimms.refresh"):
        summary = refresh_claims(pimms)
    assert summary.checked == 2 and summary.complete
    assert "the ledger could not record 2 statuses (store_error)" in caplog.text
    assert all(entry.last_checked == LONG_AGO for entry in pimms.store.ledger.list())


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Refresh(two_partners(), concurrency=0)


# --- the command line, on EDF's sandbox ------------------------------------------------------


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"PIMMS_LOAD_PLUGINS": "edf"})


def open_edf_claim(key: str) -> str:
    result = run_cli(
        "claim",
        "open",
        "edf",
        "--account",
        "4001234567",
        "--category",
        "billing",
        "--description",
        "Facture contestée",
        "--idempotency-key",
        key,
        "--json",
    )
    assert result.exit_code == 0, result.output
    claim_ref: str = json.loads(result.stdout)["claim_ref"]
    return claim_ref


def move_edf_claim(data_dir: Path, claim_ref: str, status: str) -> None:
    """What EDF does on its side: the simulator's admin route, on the sandbox's state file."""
    from pimms_edf.simulator import create_app

    app = create_app(SandboxState(data_dir / "sandbox" / "edf.json"))
    answer = app.test_client().post(f"/_sandbox/claims/{claim_ref}/status", json={"status": status})
    assert answer.status_code == 200


def test_cli_refresh_records_what_changed(isolated: Path) -> None:
    first, second = open_edf_claim("K-1"), open_edf_claim("K-2")
    quiet = run_cli("claims", "refresh", "--json")
    assert quiet.exit_code == 0, quiet.output
    data = json.loads(quiet.stdout)
    assert (data["selected"], data["checked"], data["changed"], data["failed"]) == (2, 2, 0, {})
    assert "SANDBOX edf" in quiet.stderr
    move_edf_claim(isolated, first, "IN_PROGRESS")
    human = run_cli("claims", "refresh")
    assert human.exit_code == 0, human.output
    assert "Checked 2 of 2 open claim(s)" in human.stdout
    assert "1 changed, 1 unchanged, 0 failed" in human.stdout
    assert f"changed: edf {first}: received -> in_progress (IN_PROGRESS)" in human.stdout
    assert second not in human.stdout  # only what changed is listed
    ledger = json.loads(run_cli("claims", "--json").stdout)["claims"]
    assert {c["claim_ref"]: c["state"] for c in ledger} == {
        first: "in_progress",
        second: "received",
    }
    move_edf_claim(isolated, first, "SOLVED")
    assert json.loads(run_cli("claims", "refresh", "--json").stdout)["changed"] == 1
    after = json.loads(run_cli("claims", "refresh", "--json").stdout)
    assert after["selected"] == 1  # resolved: no longer open, no longer asked


def test_cli_refresh_failures_by_type_exit_1() -> None:
    open_edf_claim("K-3")
    assert run_cli("sandbox", "reset").exit_code == 0  # EDF forgets the claim
    result = run_cli("claims", "refresh", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["failed"] == {"claim_not_found": 1} and data["partners"]["edf"]["checked"] == 1
    human = run_cli("claims", "refresh")
    assert "1 failed (claim_not_found 1)" in human.stdout


def test_cli_refresh_unknown_partner() -> None:
    result = run_cli("claims", "refresh", "--partner", "nope")
    assert result.exit_code == 1 and "unknown partner 'nope'" in result.stderr


def test_cli_refresh_shows_a_progress_bar_on_a_terminal() -> None:
    open_edf_claim("K-4")
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "pimms_core", "claims", "refresh"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "PIMMS_LOAD_PLUGINS": "edf"},
    )
    os.close(slave)
    stdout, _ = process.communicate(timeout=60)
    terminal = b""
    with contextlib.suppress(OSError):  # EIO once the terminal's buffer is drained
        while chunk := os.read(master, 4096):
            terminal += chunk
    os.close(master)
    assert process.returncode == 0, terminal
    assert b"Checking claims" in terminal and b"1/1" in terminal
    assert b"Checked 1 of 1 open claim(s)" in stdout
    plain = run_cli("claims", "refresh")  # not a terminal: no bar
    assert "Checking claims" not in plain.output


SLOW_PLUGIN = """
import time
from pimms_core import hookimpl
from pimms_core.models import (
    CategoryCode, ClaimStatus, PartnerInfo, ReferenceFormat, StatusCode,
)

INFO = PartnerInfo(
    id="slowco", name="Slow Co", sector="test", contract_version="1",
    reference=ReferenceFormat("[0-9]{4}", "1234", "4 digits"),
    categories=[CategoryCode("OTHER", "other")], statuses=[StatusCode("NEW", "received")],
    operations=["claim_status"], idempotency="none",
)

@hookimpl
def pimms_partner_info():
    return INFO

@hookimpl
def pimms_sandbox(partner_id, state):
    return lambda environ, start_response: []

@hookimpl
def pimms_claim_status(partner, claim_ref):
    time.sleep(0.2)
    return ClaimStatus(
        partner="slowco", claim_ref=claim_ref, state="received", partner_status="NEW"
    )
"""


def test_cli_refresh_interrupted_by_ctrl_c_then_resumed(tmp_path: Path, isolated: Path) -> None:
    from pimms_core.store import open_store
    from tests.fakes import install_plugin

    site = tmp_path / "site"
    install_plugin(site, "pimms-slowco", "pimms_slowco", SLOW_PLUGIN, entry_point="slowco")
    database = isolated / "pimms.sqlite3"
    with open_store(database) as store:
        for i in range(20):
            store.ledger.record(
                LedgerEntry(
                    partner="slowco",
                    claim_ref=f"S-{i}",
                    account_ref="1234",
                    category="other",
                    state=ClaimState.RECEIVED,
                    partner_status="NEW",
                    opened_at=LONG_AGO,
                    last_checked=LONG_AGO,
                )
            )
    env = {**os.environ, "PYTHONPATH": str(site), "PIMMS_LOAD_PLUGINS": "slowco"}
    command = [sys.executable, "-m", "pimms_core", "claims", "refresh", "--per-partner", "1"]
    process = subprocess.Popen([*command, "--json"], stdout=subprocess.PIPE, env=env, text=True)

    def heard() -> int:
        with open_store(database) as store:
            return sum(e.last_checked > LONG_AGO for e in store.ledger.list())

    deadline = time.monotonic() + 30
    while heard() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and 2 <= summary["checked"] < 20
    done = heard()
    assert done >= summary["checked"]  # the calls in flight finished and were recorded
    resumed = subprocess.run(
        [*command, "--older-than", "600", "--per-partner", "8", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["selected"] == 20 - done and again["checked"] == again["selected"]
    assert heard() == 20
