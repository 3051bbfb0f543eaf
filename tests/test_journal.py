"""The journal: one row per operation, whatever its outcome, masked, and `pimms journal`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from click.testing import CliRunner

from pimms_core.cli import cli
from pimms_core.errors import PimmsError
from pimms_core.facade import Pimms
from pimms_core.models import CallContext
from pimms_core.policy import NO_RETRY
from pimms_core.store import JournalEntry
from pimms_core.store.sqlite import SCHEMA
from pimms_core.testing import live_pimms
from tests.fakes import ACCOUNT_BODY, ACME_BASE, AcmePlugin

CALL = CallContext(site_id="lyon-8", agent_id="agent-12", correlation_id="corr-1")


@pytest.fixture
def acme() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def pimms() -> Pimms:
    return live_pimms(
        AcmePlugin(), ACME_BASE, settings={"api_key_env": "K"}, env={"K": "k"}, policy=NO_RETRY
    )


def rows(pimms: Pimms) -> list[JournalEntry]:
    return pimms.store.journal.list()


def test_each_operation_writes_one_row_with_who_what_and_how(
    acme: respx.MockRouter, pimms: Pimms
) -> None:
    acme.get("/accounts/12345678").respond(200, json=ACCOUNT_BODY)
    acme.post("/claims").respond(201, json={"id": "C-1", "status": "NEW", "at": "2026-03-01"})
    acme.get("/claims/C-1").respond(200, json={"status": "DONE"})
    pimms.lookup_account("acme", "12345678", call=CALL)
    claim = pimms.open_claim("acme", "12345678", "billing", "Texte", call=CALL)
    pimms.claim_status("acme", "C-1", call=CALL)
    lookup, opened, status = rows(pimms)
    assert [r.operation for r in (lookup, opened, status)] == [
        "lookup_account",
        "open_claim",
        "claim_status",
    ]
    for row in (lookup, opened, status):
        assert (row.site_id, row.agent_id, row.partner) == ("lyon-8", "agent-12", "acme")
        assert row.correlation_id == "corr-1"
        assert row.outcome == "ok" and row.error_type is None
        assert row.account == "*****678"
        assert row.plugin and row.plugin_version
        assert row.duration_ms >= 0
        assert row.at.tzinfo is not None
    assert opened.local_ref == claim.local_ref == status.local_ref
    assert lookup.local_ref is None


def test_a_correlation_id_is_given_when_the_caller_gives_none(
    acme: respx.MockRouter, pimms: Pimms
) -> None:
    acme.get("/accounts/12345678").respond(200, json=ACCOUNT_BODY)
    pimms.lookup_account("acme", "12345678")
    pimms.lookup_account("acme", "12345678")
    first, second = rows(pimms)
    assert first.correlation_id and second.correlation_id
    assert first.correlation_id != second.correlation_id


@pytest.mark.parametrize(
    ("call", "outcome", "error_type", "account"),
    [
        (lambda p: p.lookup_account("acme", "1234"), "refused", "invalid_reference", None),
        (lambda p: p.lookup_account("nope", "12345678"), "refused", "unknown_partner", None),
        (
            lambda p: p.open_claim("acme", "12345678", "lottery", "x"),
            "refused",
            "unknown_category",
            None,
        ),
        (
            lambda p: p.open_claim("acme", "12345678", "billing", " "),
            "refused",
            "invalid_input",
            None,
        ),
        (lambda p: p.lookup_account("acme", "87654321"), "failed", "account_not_found", "*****321"),
        (lambda p: p.claim_status("acme", "bad ref!"), "refused", "invalid_input", None),
    ],
)
def test_failures_are_journaled_with_their_error_type(
    acme: respx.MockRouter,
    pimms: Pimms,
    call: object,
    outcome: str,
    error_type: str,
    account: str | None,
) -> None:
    acme.get("/accounts/87654321").respond(404)
    with pytest.raises(PimmsError):
        call(pimms)  # type: ignore[operator]
    [row] = rows(pimms)
    assert (row.outcome, row.error_type, row.account) == (outcome, error_type, account)


def test_an_unknown_partner_name_is_not_copied_into_the_journal(pimms: Pimms) -> None:
    with pytest.raises(PimmsError):
        pimms.lookup_account("Camille Martin", "12345678")
    [row] = rows(pimms)
    assert row.partner == "(invalid)"


def test_a_queued_claim_and_its_flush_are_journaled(acme: respx.MockRouter, pimms: Pimms) -> None:
    route = acme.post("/claims")
    route.side_effect = [
        httpx.ConnectError("refused"),
        httpx.Response(201, json={"id": "C-1", "status": "NEW", "at": "2026-03-01"}),
    ]
    pimms.submit_claim("acme", "12345678", "billing", "Texte")
    pimms.flush_outbox()
    queued, flushed = rows(pimms)
    assert (queued.operation, queued.outcome, queued.error_type) == (
        "open_claim",
        "queued",
        "partner_unavailable",
    )
    assert (flushed.operation, flushed.outcome) == ("flush", "ok")
    assert flushed.local_ref == queued.local_ref and flushed.account == "*****678"


def test_a_journal_that_cannot_be_written_does_not_fail_the_operation(
    acme: respx.MockRouter, pimms: Pimms, caplog: pytest.LogCaptureFixture
) -> None:
    acme.post("/claims").respond(201, json={"id": "C-1", "status": "NEW", "at": "2026-03-01"})
    with pimms.store.write() as tx:  # type: ignore[attr-defined]
        tx.execute("DROP TABLE journal")
    claim = pimms.open_claim("acme", "12345678", "billing", "Texte")
    assert claim.claim_ref == "C-1"
    assert "the journal could not record a open_claim operation" in caplog.text


def test_a_lookup_row_that_cannot_be_written_yet_is_kept_and_written_later(
    acme: respx.MockRouter, pimms: Pimms
) -> None:
    acme.get("/accounts/12345678").respond(200, json=ACCOUNT_BODY)
    with pimms.store.write() as tx:  # type: ignore[attr-defined]
        tx.execute("DROP TABLE journal")
    assert pimms.lookup_account("acme", "12345678").reference == "12345678"
    with pytest.raises(sqlite3.OperationalError, match="no such table: journal"):
        pimms.store.journal.flush()
    with pimms.store.write() as tx:  # type: ignore[attr-defined]
        for statement in SCHEMA:
            if "journal" in statement:
                tx.execute(statement)
    assert [(row.operation, row.outcome) for row in rows(pimms)] == [("lookup_account", "ok")]


# --- pimms journal --------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"PIMMS_LOAD_PLUGINS": "edf"})
    return result.exit_code, result.stdout, result.stderr


def test_pimms_journal_lists_operations_as_json_and_as_a_table() -> None:
    run("--agent", "ana", "lookup", "edf", "4001234567")
    run("lookup", "edf", "40012")
    code, out, _ = run("journal", "--json")
    assert code == 0
    ok, refused = json.loads(out)["journal"]
    assert (ok["agent_id"], ok["outcome"], ok["account"]) == ("ana", "ok", "*******567")
    assert (refused["agent_id"], refused["outcome"], refused["error_type"]) == (
        "cli",
        "refused",
        "invalid_reference",
    )
    assert ok["plugin"] == "pimms-edf"
    code, table, _ = run("journal")
    assert table.splitlines()[0].split()[:4] == ["AT", "SITE", "AGENT", "PARTNER"]
    assert "*******567" in table and "4001234567" not in table
    assert "Camille" not in table and "Martin" not in table


def test_pimms_journal_since_a_date() -> None:
    run("lookup", "edf", "4001234567")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    code, out, _ = run("journal", "--since", tomorrow)
    assert code == 0 and "No operation in the journal since then." in out
    code, out, _ = run("journal", "--since", "2000-01-01", "--json")
    assert len(json.loads(out)["journal"]) == 1
    code, _, err = run("journal", "--since", "last tuesday")
    assert code == 2 and "expected an ISO date" in err
