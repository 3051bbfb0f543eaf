"""The write-behind buffer of the journal: rows written in order, in batches, soon, and never
dropped silently; and the SQLite journal built on it."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pimms_core.store import JournalEntry, open_store
from pimms_core.store.records import DeferredEntry
from pimms_core.store.write_behind import WriteBehind

WAIT = 5.0
"""Seconds a test waits for the writer thread before failing (it takes milliseconds)."""


class Sink:
    """A `write` function that records its batches, and can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.failing: Exception | None = None
        self.wrote = threading.Event()

    def __call__(self, rows: list[int]) -> None:
        if self.failing is not None:
            raise self.failing
        self.batches.append(list(rows))
        self.wrote.set()

    @property
    def rows(self) -> list[int]:
        return [row for batch in self.batches for row in batch]


def test_rows_are_written_by_the_writer_within_the_interval_in_order() -> None:
    sink = Sink()
    buffer = WriteBehind(sink, name="test", interval=0.05, batch=1000)
    for row in range(5):
        buffer.defer(row)
    assert sink.wrote.wait(WAIT)
    assert sink.batches == [[0, 1, 2, 3, 4]]
    assert buffer.waiting == 0
    buffer.close()


def test_a_full_batch_is_written_without_waiting_for_the_interval() -> None:
    sink = Sink()
    buffer = WriteBehind(sink, name="test", interval=3600, batch=3)
    for row in range(3):
        buffer.defer(row)
    assert sink.wrote.wait(WAIT)
    assert sink.rows == [0, 1, 2]
    buffer.close()


def test_flush_writes_everything_now_and_close_writes_the_rest() -> None:
    sink = Sink()
    buffer = WriteBehind(sink, name="test", interval=3600, batch=1000)
    buffer.defer(1)
    buffer.defer(2)
    buffer.flush()
    assert sink.batches == [[1, 2]]
    buffer.flush()  # nothing waits: nothing written
    buffer.defer(3)
    buffer.close()
    assert sink.batches == [[1, 2], [3]]
    with pytest.raises(RuntimeError, match="the test is closed"):
        buffer.defer(4)


def test_rows_that_cannot_be_written_are_kept_logged_and_written_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    sink.failing = OSError("disk full at /secret/path")
    buffer = WriteBehind(sink, name="test", interval=0.02, batch=1000)
    with caplog.at_level(logging.ERROR, logger="pimms.store"):
        buffer.defer(1)
        buffer.defer(2)
        with pytest.raises(OSError):
            buffer.flush()
        assert buffer.waiting == 2
        deadline = threading.Event()
        for _ in range(250):  # the writer tries too, and logs each failure
            if "could not write 2 rows (OSError)" in caplog.text:
                break
            deadline.wait(0.02)
        sink.failing = None
        assert sink.wrote.wait(WAIT)
    assert sink.rows == [1, 2]
    assert "the test could not write 2 rows (OSError)" in caplog.text
    assert "/secret/path" not in caplog.text
    buffer.close()


def test_beyond_capacity_the_oldest_rows_are_dropped_and_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    buffer = WriteBehind(sink, name="test", interval=3600, batch=1000, capacity=3)
    for row in range(2):
        buffer.defer(row)
    with caplog.at_level(logging.ERROR, logger="pimms.store"):
        buffer.give_back([10, 11])  # as a failed write of older rows would
    assert "the test dropped 1 rows it could not write" in caplog.text
    buffer.flush()
    assert sink.rows == [11, 0, 1]
    buffer.close()


def entry(operation: str) -> JournalEntry:
    return JournalEntry(
        at=datetime.now(UTC),
        site_id="lyon-8",
        agent_id="agent",
        operation=operation,
        outcome="ok",
        duration_ms=1.0,
        correlation_id="c",
        partner="edf",
    )


def test_the_sqlite_journal_keeps_order_between_deferred_and_appended_rows(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "pimms.sqlite3")
    store.journal.defer(entry("lookup_account"))
    store.journal.defer(entry("claim_status"))
    appended = store.journal.append(entry("open_claim"))
    store.journal.defer(entry("lookup_account"))
    listed = store.journal.list()
    assert [(row.id, row.operation) for row in listed] == [
        (1, "lookup_account"),
        (2, "claim_status"),
        (3, "open_claim"),
        (4, "lookup_account"),
    ]
    assert appended == listed[2]
    store.close()


def test_closing_the_store_writes_the_deferred_rows(tmp_path: Path) -> None:
    path = tmp_path / "pimms.sqlite3"
    store = open_store(path)
    for _ in range(3):
        store.journal.defer(entry("lookup_account"))
    store.close()
    with open_store(path) as reopened:
        assert [row.operation for row in reopened.journal.list()] == ["lookup_account"] * 3


def test_deferred_rows_reach_another_connection_without_a_flush(tmp_path: Path) -> None:
    path = tmp_path / "pimms.sqlite3"
    store = open_store(path)
    reader = open_store(path)
    store.journal.defer(entry("lookup_account"))
    seen: list[JournalEntry] = []
    pause = threading.Event()
    for _ in range(250):
        seen = reader.journal.list()
        if seen:
            break
        pause.wait(0.02)
    assert [row.operation for row in seen] == ["lookup_account"]
    reader.close()
    store.close()


def deferred(operation: str, account: str | None = "4001234567") -> DeferredEntry:
    return (
        1_800_000_000.25,
        12.3456,
        "lyon-8",
        "agent",
        "edf",
        operation,
        account,
        "ok",
        None,
        "c",
        "pimms-edf",
        "1.0.0",
        None,
    )


def test_a_deferred_tuple_becomes_an_entry_when_written_with_its_account_masked(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "pimms.sqlite3")
    store.journal.defer(deferred("lookup_account"))
    (row,) = store.journal.list()
    assert row.operation == "lookup_account"
    assert row.at == datetime.fromtimestamp(1_800_000_000.25, UTC)
    assert row.duration_ms == 12.346
    assert (row.site_id, row.agent_id, row.partner) == ("lyon-8", "agent", "edf")
    assert row.account == "*******567"
    assert (row.plugin, row.plugin_version) == ("pimms-edf", "1.0.0")
    store.close()


def test_a_deferred_row_that_cannot_be_made_is_dropped_and_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path / "pimms.sqlite3")
    store.journal.defer(deferred("lookup_account"))
    store.journal.defer(("lookup_account", "a bug: too few fields"))  # type: ignore[arg-type]
    store.journal.defer(entry("claim_status"))
    with caplog.at_level(logging.ERROR, logger="pimms.store"):
        listed = store.journal.list()
    assert [row.operation for row in listed] == ["lookup_account", "claim_status"]
    assert "a journal row could not be made (ValueError): it is lost" in caplog.text
    store.close()


def test_a_lookups_journal_row_is_handed_over_as_a_plain_tuple(tmp_path: Path) -> None:
    """What waits in the buffer holds no object the garbage collector must follow: a plain
    tuple of text and numbers (see `DeferredEntry`), which the journal then writes."""
    from pimms_core.models import CallContext
    from pimms_core.store.journaling import Journaled

    handed: list[object] = []

    class Recording:
        def defer(self, entry: object) -> None:
            handed.append(entry)

    call = CallContext(site_id="lyon-8", correlation_id="c1")
    with Journaled(Recording, "lookup_account", "edf", call, deferred=True) as record:  # type: ignore[arg-type]
        record.account = "4001234567"
    (values,) = handed
    assert type(values) is tuple
    assert all(type(value) in (str, float, type(None)) for value in values)
    store = open_store(tmp_path / "pimms.sqlite3")
    store.journal.defer(values)  # type: ignore[arg-type]
    (row,) = store.journal.list()
    assert (row.operation, row.site_id, row.correlation_id) == ("lookup_account", "lyon-8", "c1")
    assert row.account == "*******567"
    store.close()


def test_an_idle_writer_ends_and_the_next_row_starts_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pimms_core.store import write_behind

    monkeypatch.setattr(write_behind, "IDLE_EXIT", 0.02)
    sink = Sink()
    buffer = WriteBehind(sink, name="test", interval=0.01, batch=1000)
    buffer.defer(1)
    first = buffer._writer  # started by the first row handed over
    assert first is not None
    assert sink.wrote.wait(WAIT)
    first.join(WAIT)
    assert not first.is_alive() and buffer._writer is None
    sink.wrote.clear()
    buffer.defer(2)
    assert sink.wrote.wait(WAIT)
    assert sink.rows == [1, 2]
    buffer.close()


@pytest.mark.parametrize("account", ["4001234567", None, "12"])
def test_a_deferred_row_is_written_as_the_entry_it_stands_for_would_be(
    account: str | None,
) -> None:
    from pimms_core.store.records import deferred_entry
    from pimms_core.store.sqlite import _deferred_row, _journal_row

    values = deferred("lookup_account", account)
    assert _deferred_row(values) == _journal_row(deferred_entry(values))
