"""The SQLite store: ledger, outbox life cycle, what the database itself enforces, and several
processes writing at once without losing a row or failing with "database is locked"."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pimms_core.config import Config
from pimms_core.errors import StoreError
from pimms_core.models import (
    CallContext,
    Category,
    ClaimRequest,
    ClaimState,
    ClaimStatus,
    Contact,
    OutboxState,
)
from pimms_core.store import JournalEntry, LedgerEntry, SqliteStore, open_store
from pimms_core.store.lease import owner_gone, owner_id

CALL = CallContext(site_id="lyon-8", agent_id="ana", correlation_id="c-1")
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def request(key: str = "key-1", description: str = "Facture contestée") -> ClaimRequest:
    return ClaimRequest(
        account_ref="4001234567",
        category=Category.BILLING,
        partner_category="FACTURATION",
        description=description,
        idempotency_key=key,
        contact=Contact(email="c@example.org", phone="0600000000"),
        last_name="Martin",
    )


def ledger(claim_ref: str = "C-1", state: str = "received", **changes: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "partner": "edf",
        "claim_ref": claim_ref,
        "account_ref": "4001234567",
        "category": "billing",
        "state": state,
        "partner_status": "OPEN",
        "opened_at": T0,
        "last_checked": T0,
        "response_due_by": date(2026, 3, 16),
        "local_ref": "PIMMS-AAAA-BBBB",
    }
    fields.update(changes)
    return LedgerEntry(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return open_store(tmp_path / "pimms.sqlite3")


# --- ledger ---------------------------------------------------------------------------------------


def test_ledger_records_and_lists_claims(store: SqliteStore) -> None:
    store.ledger.record(ledger("C-1"))
    store.ledger.record(ledger("C-2", "resolved", opened_at=T0 + timedelta(hours=1)))
    assert [e.claim_ref for e in store.ledger.list()] == ["C-1", "C-2"]
    assert [e.claim_ref for e in store.ledger.list(open_only=True)] == ["C-1"]
    assert store.ledger.list(partner="veolia") == []
    assert store.ledger.get("edf", "C-1") == ledger("C-1")


def test_a_replayed_claim_updates_its_row_and_keeps_its_local_ref(store: SqliteStore) -> None:
    store.ledger.record(ledger("C-1"))
    later = T0 + timedelta(days=1)
    stored = store.ledger.record(
        ledger("C-1", "in_progress", local_ref="PIMMS-OTHR-REF0", last_checked=later)
    )
    assert stored.local_ref == "PIMMS-AAAA-BBBB"
    assert stored.state is ClaimState.IN_PROGRESS and stored.last_checked == later
    assert len(store.ledger.list()) == 1


def test_status_updates_only_known_claims(store: SqliteStore) -> None:
    store.ledger.record(ledger("C-1"))
    checked = T0 + timedelta(days=2)
    assert store.ledger.update_status(
        "edf", "C-1", state=ClaimState.CLOSED, partner_status="CLOSED", checked_at=checked
    )
    assert not store.ledger.update_status(
        "edf", "C-9", state=ClaimState.CLOSED, partner_status="CLOSED", checked_at=checked
    )
    entry = store.ledger.get("edf", "C-1")
    assert entry is not None and entry.state is ClaimState.CLOSED and not entry.is_open
    assert store.ledger.list(checked_before=checked) == []
    assert len(store.ledger.list(checked_before=checked + timedelta(seconds=1))) == 1


@pytest.mark.parametrize("update_from", [True, False], ids=["update-from", "older-sqlite"])
def test_many_statuses_are_written_in_one_go_skipping_unknown_claims(
    store: SqliteStore, update_from: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pimms_core.store import sqlite

    monkeypatch.setattr(sqlite, "_UPDATE_FROM", update_from and sqlite._UPDATE_FROM)
    store.ledger.record(ledger("C-1"))
    store.ledger.record(ledger("C-2"))
    checked = T0 + timedelta(days=3)
    fresh = [
        ClaimStatus("edf", "C-1", ClaimState.CLOSED, "CLOSED"),
        ClaimStatus("edf", "C-9", ClaimState.CLOSED, "CLOSED"),  # not in the ledger
        ClaimStatus("edf", "C-2", ClaimState.IN_PROGRESS, "EN_COURS"),
    ]
    assert store.ledger.update_statuses(fresh, checked_at=checked) == 2
    assert store.ledger.update_statuses([], checked_at=checked) == 0
    first, second = store.ledger.get("edf", "C-1"), store.ledger.get("edf", "C-2")
    assert first is not None and first.state is ClaimState.CLOSED
    assert second is not None and second.partner_status == "EN_COURS"
    assert first.last_checked == second.last_checked == checked
    assert store.ledger.get("edf", "C-9") is None


def test_a_batch_larger_than_one_statement_is_written_whole(store: SqliteStore) -> None:
    refs = [f"C-{number}" for number in range(600)]  # more rows than one statement carries
    for ref in refs:
        store.ledger.record(ledger(ref))
    checked = T0 + timedelta(days=3)
    fresh = [ClaimStatus("edf", ref, ClaimState.CLOSED, f"S-{ref}") for ref in refs]
    assert store.ledger.update_statuses(fresh, checked_at=checked) == 600
    entries = {entry.claim_ref: entry for entry in store.ledger.list()}
    assert all(entries[ref].partner_status == f"S-{ref}" for ref in refs)
    assert all(entries[ref].state is ClaimState.CLOSED for ref in refs)


# --- outbox ---------------------------------------------------------------------------------------


def test_enqueue_writes_the_request_once_per_key(store: SqliteStore) -> None:
    entry, created = store.outbox.enqueue(request(), partner="edf", call=CALL)
    again, created_again = store.outbox.enqueue(request(), partner="edf", call=CALL)
    assert created and not created_again
    assert again.local_ref == entry.local_ref
    assert entry.state is OutboxState.QUEUED
    assert entry.local_ref.startswith("PIMMS-") and len(entry.local_ref) == 15
    assert entry.request() == request()
    assert (entry.site_id, entry.agent_id, entry.correlation_id) == ("lyon-8", "ana", "c-1")
    other, created_other = store.outbox.enqueue(request(), partner="veolia", call=CALL)
    assert created_other and other.local_ref != entry.local_ref


def test_repr_of_an_entry_shows_no_personal_data(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    shown = repr(entry)
    for value in ("Facture", "c@example.org", "0600000000", "Martin"):
        assert value not in shown


def test_take_leases_an_entry_to_one_process(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    taken = store.outbox.take(entry.local_ref, owner=owner_id(), lease_seconds=60)
    assert taken is not None
    sending, before = taken
    assert before is OutboxState.QUEUED
    assert sending.state is OutboxState.SENDING and sending.attempts == 1
    assert store.outbox.take(entry.local_ref, owner="other-host:1", lease_seconds=60) is None


def test_an_entry_of_a_dead_process_is_taken_over(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_owner = f"{owner_id().rpartition(':')[0]}:{dead.stdout.strip()}"
    assert owner_gone(dead_owner) and not owner_gone(owner_id())
    assert store.outbox.take(entry.local_ref, owner=dead_owner, lease_seconds=3600)
    taken = store.outbox.take(entry.local_ref, owner=owner_id(), lease_seconds=60)
    assert taken is not None and taken[1] is OutboxState.SENDING


def test_an_expired_lease_is_taken_over(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    assert store.outbox.take(entry.local_ref, owner="far-away-host:1", lease_seconds=-1)
    assert store.outbox.take(entry.local_ref, owner=owner_id(), lease_seconds=60) is not None


def test_release_keeps_the_request_and_says_why(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    store.outbox.take(entry.local_ref, owner="me:1", lease_seconds=60)
    kept = store.outbox.release(
        entry.local_ref,
        owner="me:1",
        state=OutboxState.UNCERTAIN,
        error=("partner_unavailable", "edf is unavailable: no answer in time"),
    )
    assert kept.state is OutboxState.UNCERTAIN and kept.owner is None
    assert kept.error_message == "edf is unavailable: no answer in time"
    assert kept.request() == request()
    assert [e.local_ref for e in store.outbox.list()] == [entry.local_ref]


def test_a_release_by_a_process_that_lost_its_lease_changes_nothing(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    store.outbox.take(entry.local_ref, owner="far-away-host:1", lease_seconds=-1)
    store.outbox.take(entry.local_ref, owner="me:2", lease_seconds=60)
    late = store.outbox.release(entry.local_ref, owner="far-away-host:1", state=OutboxState.QUEUED)
    assert late.state is OutboxState.SENDING and late.owner == "me:2"


def test_acknowledge_records_the_claim_and_removes_personal_data(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    done = store.outbox.acknowledge(
        entry.local_ref, ledger=ledger("C-7", local_ref=entry.local_ref)
    )
    assert done.state is OutboxState.DELIVERED and done.claim_ref == "C-7"
    assert (done.description, done.last_name, done.contact_email, done.contact_phone) == (
        None,
        None,
        None,
        None,
    )
    assert store.outbox.list() == []
    recorded = store.ledger.get("edf", "C-7")
    assert recorded is not None and recorded.local_ref == entry.local_ref
    with pytest.raises(ValueError, match="holds no request"):
        done.request()


def test_fail_and_cancel_remove_personal_data_and_requeue_restores_a_request(
    store: SqliteStore,
) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    failed = store.outbox.fail(entry.local_ref, error=("claim_rejected", "edf refused the claim"))
    assert failed.state is OutboxState.FAILED and failed.scrubbed
    with pytest.raises(StoreError, match="no longer holds its claim"):
        store.outbox.requeue(entry.local_ref)
    back = store.outbox.requeue(entry.local_ref, request(description="Corrected text"))
    assert back.state is OutboxState.QUEUED and back.description == "Corrected text"
    cancelled = store.outbox.cancel(entry.local_ref, reason="cancelled by a person")
    assert cancelled.state is OutboxState.CANCELLED and cancelled.scrubbed


def test_the_database_refuses_a_settled_row_holding_personal_data(store: SqliteStore) -> None:
    entry, _ = store.outbox.enqueue(request(), partner="edf", call=CALL)
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"), store.write() as tx:
        tx.execute("UPDATE outbox SET state = 'delivered' WHERE local_ref = ?", (entry.local_ref,))
    assert store.outbox.get(entry.local_ref) == entry


def test_personal_data_removed_from_the_outbox_is_gone_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pimms.sqlite3"
    canary = "canary-description-0b7e-" * 4
    with open_store(path) as store:
        entry, _ = store.outbox.enqueue(request(description=canary), partner="edf", call=CALL)
        store.outbox.acknowledge(entry.local_ref, ledger=ledger("C-1", local_ref=entry.local_ref))
    files = [p for p in tmp_path.iterdir() if p.name.startswith("pimms.sqlite3")]
    assert files
    for file in files:
        assert canary.encode() not in file.read_bytes(), file.name


# --- journal --------------------------------------------------------------------------------------


def journal_entry(**changes: object) -> JournalEntry:
    fields: dict[str, object] = {
        "at": T0,
        "operation": "lookup_account",
        "outcome": "ok",
        "duration_ms": 12.5,
        "partner": "edf",
        "account": "4001234567",
    }
    fields.update(changes)
    return JournalEntry(**fields)  # type: ignore[arg-type]


def test_the_journal_masks_the_account_as_it_is_built(store: SqliteStore) -> None:
    row = store.journal.append(journal_entry())
    assert row.account == "*******567" and row.id == 1
    assert store.journal.list() == [row]


def test_the_journal_is_append_only_in_the_database(store: SqliteStore) -> None:
    store.journal.append(journal_entry())
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.write() as tx:
        tx.execute("UPDATE journal SET outcome = 'failed'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), store.write() as tx:
        tx.execute("DELETE FROM journal")
    assert [row.outcome for row in store.journal.list()] == ["ok"]


def test_the_journal_lists_since_a_moment_by_partner_and_the_last_n(store: SqliteStore) -> None:
    for hour, partner in enumerate(["edf", "veolia", "edf", "sncf"]):
        store.journal.append(journal_entry(at=T0 + timedelta(hours=hour), partner=partner))
    since = store.journal.list(since=T0 + timedelta(hours=2))
    assert [row.partner for row in since] == ["edf", "sncf"]
    assert [row.id for row in store.journal.list(partner="edf")] == [1, 3]
    assert [row.id for row in store.journal.list(limit=2)] == [3, 4]


# --- the database ---------------------------------------------------------------------------------


def test_wal_mode_and_schema_are_set_up(store: SqliteStore) -> None:
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA user_version")[0][0] == 1


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pimms.sqlite3"
    open_store(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer pimms"):
        open_store(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pimms.sqlite3"
    path.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(StoreError, match=r"pimms.sqlite3 cannot be used"):
        open_store(path)


def test_the_database_path_comes_from_the_configuration(tmp_path: Path) -> None:
    default = Config.from_document({"pimms": {"data_dir": str(tmp_path)}}, env={})
    assert default.database_path == tmp_path / "pimms.sqlite3"
    config_file = tmp_path / "site" / "pimms.toml"
    named = Config.from_document(
        {"pimms": {"database": "db/site.sqlite3"}}, path=config_file, env={}
    )
    assert named.database_path == tmp_path / "site" / "db" / "site.sqlite3"


# --- several processes at once --------------------------------------------------------------------


def _desk(path: str, desk: int, claims: int) -> None:
    """One desk's process: claims written, taken, delivered; a journal row for each."""
    store = open_store(path)
    for index in range(claims):
        key = f"desk-{desk}-{index}"
        entry, _ = store.outbox.enqueue(request(key), partner="edf", call=CALL)
        owner = f"desk-{desk}:{index}"
        assert store.outbox.take(entry.local_ref, owner=owner, lease_seconds=60)
        store.outbox.acknowledge(
            entry.local_ref, ledger=ledger(f"C-{key}", local_ref=entry.local_ref)
        )
        store.journal.append(journal_entry(operation="open_claim", local_ref=entry.local_ref))
    store.close()


def _flusher(path: str, rounds: int) -> None:
    """A refresh-like job: reads the ledger and writes statuses while the desks write."""
    store = open_store(path)
    for _ in range(rounds):
        for entry in store.ledger.list(open_only=True, limit=20):
            store.ledger.update_status(
                entry.partner,
                entry.claim_ref,
                state=ClaimState.IN_PROGRESS,
                partner_status="IN_PROGRESS",
                checked_at=datetime.now(UTC),
            )
    store.close()


def test_several_processes_lose_no_row_and_never_see_a_locked_database(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    context = multiprocessing.get_context("spawn")
    desks, claims = 4, 40
    workers = [context.Process(target=_desk, args=(path, d, claims)) for d in range(desks)]
    workers.append(context.Process(target=_flusher, args=(path, 30)))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * len(workers)
    with open_store(path) as store:
        assert len(store.ledger.list()) == desks * claims
        assert len(store.outbox.list(states=[OutboxState.DELIVERED])) == desks * claims
        assert len(store.journal.list()) == desks * claims
