"""`pimms claims`, `pimms outbox` (list, flush, resolve) on the EDF sandbox and a real store."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner, Result

from pimms_core.cli import cli
from pimms_core.cli.store import claims
from pimms_core.models import CallContext, Category, ClaimRequest, OutboxState
from pimms_core.store import open_store


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"PIMMS_LOAD_PLUGINS": "edf"})


def open_claim(key: str) -> dict[str, object]:
    result = run(
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
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_claims_is_a_group_others_can_add_commands_to() -> None:
    assert isinstance(claims, click.Group) and claims.invoke_without_command


def test_claims_lists_the_ledger_open_ones_and_as_json() -> None:
    first = open_claim("k-1")
    second = open_claim("k-2")
    assert first["queued"] is False and str(first["local_ref"]).startswith("PIMMS-")
    table = run("claims")
    assert table.exit_code == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["LOCAL", "REF", "PARTNER"]
    assert [row.split()[2] for row in rows] == [first["claim_ref"], second["claim_ref"]]
    assert "received (OPEN)" in rows[0]
    data = json.loads(run("claims", "--open", "--json").stdout)
    assert [c["claim_ref"] for c in data["claims"]] == [first["claim_ref"], second["claim_ref"]]
    assert data["waiting_in_outbox"] == 0
    assert data["claims"][0]["account_ref"] == "4001234567"
    assert "No claim in the ledger." in run("claims", "--partner", "veolia").stdout


def test_the_status_of_a_claim_updates_the_ledger(isolated: Path) -> None:
    opened = open_claim("k-1")
    with open_store(isolated / "pimms.sqlite3") as store:
        before = store.ledger.list()[0].last_checked
    assert run("claim", "status", "edf", str(opened["claim_ref"])).exit_code == 0
    with open_store(isolated / "pimms.sqlite3") as store:
        assert store.ledger.list()[0].last_checked > before


def _needs_check(data_dir: Path) -> str:
    """A claim left for a person: its outcome unknown at a partner with no mechanism."""
    with open_store(data_dir / "pimms.sqlite3") as store:
        request = ClaimRequest("4001234567", Category.BILLING, "FACTURATION", "Texte", "k-9")
        entry, _ = store.outbox.enqueue(request, partner="edf", call=CallContext())
        store.outbox.take(entry.local_ref, owner="h:1", lease_seconds=60)
        store.outbox.release(entry.local_ref, owner="h:1", state=OutboxState.NEEDS_CHECK)
        return entry.local_ref


def test_outbox_lists_claims_needing_a_check_and_resolve_settles_them(isolated: Path) -> None:
    assert "No claim waits in the outbox." in run("outbox").stdout
    local_ref = _needs_check(isolated)
    listed = run("outbox")
    assert f"{local_ref}  edf      4001234567  needs_check" in listed.stdout
    assert "need a person to check with the partner" in listed.stdout
    flushed = run("outbox", "flush")
    assert "Nothing to send" in flushed.stdout and flushed.exit_code == 0
    resolved = run("outbox", "resolve", local_ref, "--resend")
    assert resolved.exit_code == 0 and f"{local_ref}  edf  queued" in resolved.stdout
    delivered = run("outbox", "flush", "--json")
    assert delivered.exit_code == 0, delivered.output
    [outcome] = json.loads(delivered.stdout)["flushed"]
    assert outcome["delivered"] is True and outcome["claim_ref"].startswith("EDF-C-")
    assert "No claim waits in the outbox." in run("outbox").stdout
    every = json.loads(run("outbox", "--all", "--json").stdout)["outbox"]
    assert [(e["local_ref"], e["state"]) for e in every] == [(local_ref, "delivered")]
    assert "description" not in every[0]


def test_resolve_cancels_a_claim_and_refuses_a_settled_one(isolated: Path) -> None:
    local_ref = _needs_check(isolated)
    cancelled = run("outbox", "resolve", local_ref, "--cancel", "--json")
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    again = run("outbox", "resolve", local_ref, "--cancel")
    assert again.exit_code == 1 and "is cancelled: there is nothing to settle" in again.stderr


def test_resolve_with_the_partner_reference_checks_it_first(isolated: Path) -> None:
    opened = open_claim("k-1")
    local_ref = _needs_check(isolated)
    wrong = run("outbox", "resolve", local_ref, "--claim-ref", "EDF-C-999999")
    assert wrong.exit_code == 1 and "no claim matches" in wrong.stderr
    right = run("outbox", "resolve", local_ref, "--claim-ref", str(opened["claim_ref"]))
    assert right.exit_code == 0, right.output
    assert f"delivered as {opened['claim_ref']}" in right.stdout


def test_desks_opening_claims_at_once_in_real_processes_lose_nothing(isolated: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PIMMS_LOAD_PLUGINS": "edf", "PIMMS_DATA_DIR": str(isolated)}
    command = [sys.executable, "-m", "pimms_core", "claim", "open", "edf", "--account"]
    desks = [
        subprocess.Popen(
            [*command, "4001234567", "--category", "billing", "--description", f"desk {n}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(6)
    ]
    outputs = [desk.communicate(timeout=60) for desk in desks]
    assert [desk.returncode for desk in desks] == [0] * 6, outputs
    assert not any("locked" in err for _, err in outputs)
    with open_store(isolated / "pimms.sqlite3") as store:
        assert len(store.ledger.list()) == 6
        assert len({e.local_ref for e in store.ledger.list()}) == 6
        assert [row.outcome for row in store.journal.list()] == ["ok"] * 6
