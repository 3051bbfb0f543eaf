"""The store on SQLite: one file per site, safe for several processes at once.

- WAL mode, so readers never block the writer and a writer never blocks readers;
- every write is one `BEGIN IMMEDIATE` transaction: it takes the write lock at its start, so
  two processes never deadlock upgrading a read to a write, and it waits for the lock up to
  the busy timeout instead of failing with "database is locked";
- `synchronous=FULL` for claims (outbox, ledger records, `write()`): a committed claim
  survives a power cut, not only a crash. Journal rows and status updates are committed with
  `synchronous=NORMAL` (`write(durable=False)`, the connection's default): in WAL mode they
  survive a crash of the process, and a power cut may lose the last few, which the next
  refresh and operation re-create; this keeps an fsync off every lookup and status check;
- the journal rows of lookups and status checks are written behind (`journal.defer`, see
  `write_behind`): in batches, within 0.2 s;
- `secure_delete`: the personal data removed from a delivered claim is overwritten, not left
  in a free page of the file;
- the database itself enforces two promises: the journal refuses UPDATE and DELETE (triggers),
  and an outbox row cannot be delivered, failed or cancelled while still holding personal data
  (a CHECK constraint).

One connection per store, shared by the threads of the process under a lock: each statement
takes milliseconds, and no lock is held while a partner is called.
"""

from __future__ import annotations

import functools
import operator
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import tenacity

from pimms_core.errors import StoreError
from pimms_core.models import CallContext, ClaimRequest, ClaimState, ClaimStatus, OutboxState
from pimms_core.redaction import logger as redacted_logger
from pimms_core.redaction import mask_reference
from pimms_core.serialization import converter
from pimms_core.store.lease import owner_gone
from pimms_core.store.records import (
    DeferredEntry,
    JournalEntry,
    LedgerEntry,
    OutboxEntry,
    new_local_ref,
    utc_now,
)
from pimms_core.store.write_behind import WriteBehind

logger = redacted_logger("pimms.store")

SCHEMA_VERSION = 1
DEFAULT_BUSY_TIMEOUT = 30.0
_PENDING = tuple(s.value for s in OutboxState if s.pending)
_CLOSED = ("delivered", "failed", "cancelled")

SCHEMA: Sequence[str] = (
    """
    CREATE TABLE IF NOT EXISTS ledger (
        partner TEXT NOT NULL,
        claim_ref TEXT NOT NULL,
        local_ref TEXT,
        account_ref TEXT NOT NULL,
        category TEXT NOT NULL,
        state TEXT NOT NULL,
        partner_status TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        response_due_by TEXT,
        last_checked TEXT NOT NULL,
        site_id TEXT NOT NULL,
        plugin TEXT,
        plugin_version TEXT,
        PRIMARY KEY (partner, claim_ref)
    )
    """,
    "CREATE INDEX IF NOT EXISTS ledger_by_state ON ledger (state, last_checked)",
    f"""
    CREATE TABLE IF NOT EXISTS outbox (
        local_ref TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        account_ref TEXT NOT NULL,
        category TEXT NOT NULL,
        partner_category TEXT NOT NULL,
        description TEXT,
        last_name TEXT,
        contact_email TEXT,
        contact_phone TEXT,
        service_id TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        claim_ref TEXT,
        error_code TEXT,
        error_message TEXT,
        owner TEXT,
        lease_until TEXT,
        site_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        correlation_id TEXT NOT NULL,
        UNIQUE (partner, idempotency_key),
        CHECK (state NOT IN {_CLOSED!r} OR (description IS NULL AND last_name IS NULL
               AND contact_email IS NULL AND contact_phone IS NULL))
    )
    """,
    "CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, created_at)",
    """
    CREATE TABLE IF NOT EXISTS journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        site_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        partner TEXT,
        operation TEXT NOT NULL,
        account TEXT,
        outcome TEXT NOT NULL,
        error_type TEXT,
        duration_ms REAL NOT NULL,
        correlation_id TEXT NOT NULL,
        plugin TEXT,
        plugin_version TEXT,
        local_ref TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS journal_by_time ON journal (at)",
    """
    CREATE TRIGGER IF NOT EXISTS journal_refuses_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only: a row cannot be changed'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS journal_refuses_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only: a row cannot be deleted'); END
    """,
)


# --- conversions --------------------------------------------------------------------------------


def _ts(value: datetime | None) -> str | None:
    """A timestamp as sortable text: aware ones in UTC with microseconds, naive ones as given."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(timespec="microseconds")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # the naive time formats twice as fast as the aware one (journal rows are made by the
    # thousand in a thread holding the GIL)
    return f"{value.replace(tzinfo=None).isoformat(timespec='microseconds')}+00:00"


R = TypeVar("R")


def _record(kind: type[R], row: sqlite3.Row) -> R:
    """A row as the record it stores: the columns are named after the record's fields, and
    the JSON converter reads dates, enums and optional values back."""
    return converter.structure(dict(zip(row.keys(), tuple(row), strict=True)), kind)


def _is_busy(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


# --- the store ----------------------------------------------------------------------------------


class SqliteStore:
    """Ledger, outbox and journal in one SQLite file (or in memory, for tests: `":memory:"`)."""

    def __init__(self, path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = str(path)
        self._in_memory = self.path == ":memory:"
        self._lock = threading.RLock()
        try:
            if not self._in_memory:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"the database {self.path} cannot be opened: {exc}") from None
        self._conn.row_factory = sqlite3.Row
        self._setup(busy_timeout)
        self.ledger = SqliteLedger(self)
        self.outbox = SqliteOutbox(self)
        self.journal = SqliteJournal(self)

    @tenacity.retry(
        retry=tenacity.retry_if_exception(_is_busy),
        stop=tenacity.stop_after_attempt(20),
        wait=tenacity.wait_random(0.02, 0.2),
        reraise=True,
    )
    def _setup(self, busy_timeout: float) -> None:
        """Pragmas and schema. Several processes may open a new file at once: switching it to
        WAL can be refused while another one does, hence the retries."""
        conn = self._conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not self._in_memory:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA secure_delete = ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database {self.path} was made by a newer pimms "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}): upgrade pimms"
                )
            if version < SCHEMA_VERSION:
                with self.write() as tx:
                    for statement in SCHEMA:
                        tx.execute(statement)
                    tx.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc):
                raise
            raise StoreError(f"the database {self.path} cannot be used: {exc}") from None

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its start.

        `durable=False` commits without waiting for the disk (see the module's docstring).
        """
        with self._lock:
            if durable:
                self._conn.execute("PRAGMA synchronous = FULL")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            finally:
                if durable:
                    self._conn.execute("PRAGMA synchronous = NORMAL")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Write the journal rows still waiting, then close the database."""
        try:
            self.journal.close()  # not under the lock: its writer thread may be waiting for it
        finally:
            with self._lock:
                self._conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class SqliteLedger:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        with self._store.write() as tx:
            return _record(LedgerEntry, _upsert_ledger(tx, entry))

    def get(self, partner: str, claim_ref: str) -> LedgerEntry | None:
        rows = self._store.query(
            "SELECT * FROM ledger WHERE partner = ? AND claim_ref = ?", (partner, claim_ref)
        )
        return _record(LedgerEntry, rows[0]) if rows else None

    def update_status(
        self,
        partner: str,
        claim_ref: str,
        *,
        state: ClaimState,
        partner_status: str,
        checked_at: datetime,
    ) -> LedgerEntry | None:
        with self._store.write(durable=False) as tx:
            row = tx.execute(
                "UPDATE ledger SET state = ?, partner_status = ?, last_checked = ? "
                "WHERE partner = ? AND claim_ref = ? RETURNING *",
                (state.value, partner_status, _ts(checked_at), partner, claim_ref),
            ).fetchone()
        return _record(LedgerEntry, row) if row is not None else None

    def update_statuses(self, statuses: Sequence[ClaimStatus], *, checked_at: datetime) -> int:
        if not statuses:
            return 0
        checked = _ts(checked_at)
        rows = [(s.partner, s.claim_ref, s.state.value, s.partner_status) for s in statuses]
        with self._store.write(durable=False) as tx:
            if not _UPDATE_FROM:
                return tx.executemany(
                    "UPDATE ledger SET state = ?, partner_status = ?, last_checked = ? "
                    "WHERE partner = ? AND claim_ref = ?",
                    [(state, status, checked, p, c) for p, c, state, status in rows],
                ).rowcount
            updated = 0
            for some in _chunks(tx, rows, width=4, reserved=1):
                params = [checked, *(value for row in some for value in row)]
                updated += tx.execute(_status_update(len(some)), params).rowcount
            return updated

    def list(
        self,
        *,
        open_only: bool = False,
        partner: str | None = None,
        checked_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[LedgerEntry]:
        where, params = ["1 = 1"], []
        if open_only:
            closed = [s.value for s in ClaimState if not s.is_open]
            where.append(f"state NOT IN ({', '.join('?' * len(closed))})")
            params.extend(closed)
        if partner is not None:
            where.append("partner = ?")
            params.append(partner)
        if checked_before is not None:
            where.append("last_checked < ?")
            params.append(_ts(checked_before) or "")
        sql = f"SELECT * FROM ledger WHERE {' AND '.join(where)} ORDER BY opened_at, claim_ref"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_record(LedgerEntry, row) for row in self._store.query(sql, params)]


def _upsert_ledger(tx: sqlite3.Connection, entry: LedgerEntry) -> sqlite3.Row:
    row: sqlite3.Row = tx.execute(
        """
        INSERT INTO ledger (partner, claim_ref, local_ref, account_ref, category, state,
            partner_status, opened_at, response_due_by, last_checked, site_id, plugin,
            plugin_version)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (partner, claim_ref) DO UPDATE SET
            state = excluded.state,
            partner_status = excluded.partner_status,
            last_checked = excluded.last_checked,
            response_due_by = COALESCE(excluded.response_due_by, ledger.response_due_by),
            local_ref = COALESCE(ledger.local_ref, excluded.local_ref),
            plugin = excluded.plugin,
            plugin_version = excluded.plugin_version
        RETURNING *
        """,
        (
            entry.partner,
            entry.claim_ref,
            entry.local_ref,
            entry.account_ref,
            entry.category,
            entry.state.value,
            entry.partner_status,
            _ts(entry.opened_at),
            entry.response_due_by.isoformat() if entry.response_due_by else None,
            _ts(entry.last_checked),
            entry.site_id,
            entry.plugin,
            entry.plugin_version,
        ),
    ).fetchone()
    return row


_SCRUB = "description = NULL, last_name = NULL, contact_email = NULL, contact_phone = NULL"


class SqliteOutbox:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def _get(self, tx: sqlite3.Connection, local_ref: str) -> OutboxEntry:
        row = tx.execute("SELECT * FROM outbox WHERE local_ref = ?", (local_ref,)).fetchone()
        if row is None:
            raise StoreError(f"no outbox entry {local_ref!r}")
        return _record(OutboxEntry, row)

    def enqueue(
        self, request: ClaimRequest, *, partner: str, call: CallContext
    ) -> tuple[OutboxEntry, bool]:
        now = _ts(utc_now())
        contact = request.contact
        with self._store.write() as tx:
            known = tx.execute(
                "SELECT * FROM outbox WHERE partner = ? AND idempotency_key = ?",
                (partner, request.idempotency_key),
            ).fetchone()
            if known is not None:
                return _record(OutboxEntry, known), False
            local_ref = new_local_ref()
            while tx.execute("SELECT 1 FROM outbox WHERE local_ref = ?", (local_ref,)).fetchone():
                local_ref = new_local_ref()
            tx.execute(
                """
                INSERT INTO outbox (local_ref, partner, idempotency_key, account_ref, category,
                    partner_category, description, last_name, contact_email, contact_phone,
                    service_id, state, created_at, updated_at, site_id, agent_id,
                    correlation_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)
                """,
                (
                    local_ref,
                    partner,
                    request.idempotency_key,
                    request.account_ref,
                    request.category.value,
                    request.partner_category,
                    request.description,
                    request.last_name,
                    contact.email if contact else None,
                    contact.phone if contact else None,
                    request.service_id,
                    now,
                    now,
                    call.site_id,
                    call.agent_id,
                    call.correlation_id,
                ),
            )
            return self._get(tx, local_ref), True

    def get(self, local_ref: str) -> OutboxEntry | None:
        rows = self._store.query("SELECT * FROM outbox WHERE local_ref = ?", (local_ref,))
        return _record(OutboxEntry, rows[0]) if rows else None

    def find(self, partner: str, idempotency_key: str) -> OutboxEntry | None:
        rows = self._store.query(
            "SELECT * FROM outbox WHERE partner = ? AND idempotency_key = ?",
            (partner, idempotency_key),
        )
        return _record(OutboxEntry, rows[0]) if rows else None

    def list(
        self,
        *,
        states: Iterable[OutboxState] | None = None,
        partner: str | None = None,
    ) -> list[OutboxEntry]:
        wanted = [OutboxState(s).value for s in states] if states is not None else list(_PENDING)
        if not wanted:
            return []
        sql = f"SELECT * FROM outbox WHERE state IN ({', '.join('?' * len(wanted))})"
        params: list[str] = list(wanted)
        if partner is not None:
            sql += " AND partner = ?"
            params.append(partner)
        sql += " ORDER BY created_at, local_ref"
        return [_record(OutboxEntry, row) for row in self._store.query(sql, params)]

    def take(
        self, local_ref: str, *, owner: str, lease_seconds: float
    ) -> tuple[OutboxEntry, OutboxState] | None:
        now = utc_now()
        with self._store.write() as tx:
            row = tx.execute("SELECT * FROM outbox WHERE local_ref = ?", (local_ref,)).fetchone()
            if row is None:
                return None
            entry = _record(OutboxEntry, row)
            before = entry.state
            if before is OutboxState.SENDING:
                expired = entry.lease_until is None or entry.lease_until <= now
                if not (expired or owner_gone(entry.owner)):
                    return None
            elif before not in (OutboxState.QUEUED, OutboxState.UNCERTAIN):
                return None
            tx.execute(
                "UPDATE outbox SET state = 'sending', owner = ?, lease_until = ?, "
                "attempts = attempts + 1, updated_at = ? WHERE local_ref = ?",
                (owner, _ts(now + timedelta(seconds=lease_seconds)), _ts(now), local_ref),
            )
            return self._get(tx, local_ref), before

    def release(
        self,
        local_ref: str,
        *,
        owner: str,
        state: OutboxState,
        error: tuple[str, str] | None = None,
    ) -> OutboxEntry:
        if state not in (OutboxState.QUEUED, OutboxState.UNCERTAIN, OutboxState.NEEDS_CHECK):
            raise ValueError(
                f"an entry is released as queued, uncertain or needs_check, not {state}"
            )
        code, message = error or (None, None)
        with self._store.write() as tx:
            cursor = tx.execute(
                "UPDATE outbox SET state = ?, error_code = ?, error_message = ?, owner = NULL, "
                "lease_until = NULL, updated_at = ? "
                "WHERE local_ref = ? AND state = 'sending' AND owner = ?",
                (state.value, code, message, _ts(utc_now()), local_ref, owner),
            )
            if cursor.rowcount == 0:
                logger.warning("outbox entry %s was taken over by another process", local_ref)
            return self._get(tx, local_ref)

    def acknowledge(self, local_ref: str, *, ledger: LedgerEntry) -> OutboxEntry:
        with self._store.write() as tx:
            self._get(tx, local_ref)
            tx.execute(
                f"UPDATE outbox SET state = 'delivered', claim_ref = ?, {_SCRUB}, "
                "error_code = NULL, error_message = NULL, owner = NULL, lease_until = NULL, "
                "updated_at = ? WHERE local_ref = ?",
                (ledger.claim_ref, _ts(utc_now()), local_ref),
            )
            _upsert_ledger(tx, ledger)
            return self._get(tx, local_ref)

    def fail(self, local_ref: str, *, error: tuple[str, str]) -> OutboxEntry:
        with self._store.write() as tx:
            self._get(tx, local_ref)
            tx.execute(
                f"UPDATE outbox SET state = 'failed', {_SCRUB}, error_code = ?, "
                "error_message = ?, owner = NULL, lease_until = NULL, updated_at = ? "
                "WHERE local_ref = ?",
                (error[0], error[1], _ts(utc_now()), local_ref),
            )
            return self._get(tx, local_ref)

    def requeue(self, local_ref: str, request: ClaimRequest | None = None) -> OutboxEntry:
        with self._store.write() as tx:
            entry = self._get(tx, local_ref)
            if request is None:
                if entry.scrubbed:
                    raise StoreError(
                        f"outbox entry {local_ref} no longer holds its claim: open it again"
                    )
                request = entry.request()
            if request.idempotency_key != entry.idempotency_key:
                raise ValueError("a requeued request must keep the entry's idempotency key")
            contact = request.contact
            tx.execute(
                "UPDATE outbox SET state = 'queued', account_ref = ?, category = ?, "
                "partner_category = ?, description = ?, last_name = ?, contact_email = ?, "
                "contact_phone = ?, service_id = ?, claim_ref = NULL, owner = NULL, "
                "lease_until = NULL, updated_at = ? WHERE local_ref = ?",
                (
                    request.account_ref,
                    request.category.value,
                    request.partner_category,
                    request.description,
                    request.last_name,
                    contact.email if contact else None,
                    contact.phone if contact else None,
                    request.service_id,
                    _ts(utc_now()),
                    local_ref,
                ),
            )
            return self._get(tx, local_ref)

    def cancel(self, local_ref: str, *, reason: str) -> OutboxEntry:
        with self._store.write() as tx:
            self._get(tx, local_ref)
            tx.execute(
                f"UPDATE outbox SET state = 'cancelled', {_SCRUB}, error_code = 'cancelled', "
                "error_message = ?, owner = NULL, lease_until = NULL, updated_at = ? "
                "WHERE local_ref = ?",
                (reason, _ts(utc_now()), local_ref),
            )
            return self._get(tx, local_ref)


_JOURNAL_COLUMNS = (
    "at, duration_ms, site_id, agent_id, partner, operation, account, outcome, error_type, "
    "correlation_id, plugin, plugin_version, local_ref"
)
_JOURNAL_WIDTH = _JOURNAL_COLUMNS.count(",") + 1
_JOURNAL_INSERT = (
    f"INSERT INTO journal ({_JOURNAL_COLUMNS}) VALUES ({', '.join('?' * _JOURNAL_WIDTH)})"
)


@functools.lru_cache(maxsize=64)
def _journal_insert(rows: int) -> str:
    """One INSERT statement for `rows` rows."""
    values = ", ".join([f"({', '.join('?' * _JOURNAL_WIDTH)})"] * rows)
    return f"INSERT INTO journal ({_JOURNAL_COLUMNS}) VALUES {values}"


_UPDATE_FROM = sqlite3.sqlite_version_info >= (3, 33, 0)
"""SQLite has UPDATE ... FROM (3.33, 2020): many claims' statuses in one statement."""


@functools.lru_cache(maxsize=16)
def _status_update(rows: int) -> str:
    """One UPDATE for the statuses of `rows` claims: (partner, claim_ref, state, status) each.

    One statement rather than `executemany`: SQLite lets go of the GIL at each statement, and
    a thread taking it back while 32 others run waits up to 5 ms each time (see
    `_insert_journal_rows`): a batch of 100 statements held up the refresh's refills.
    """
    values = ", ".join(["(?, ?, ?, ?)"] * rows)
    return (
        "UPDATE ledger SET state = v.column3, partner_status = v.column4, last_checked = ? "
        f"FROM (VALUES {values}) AS v "
        "WHERE ledger.partner = v.column1 AND ledger.claim_ref = v.column2"
    )


def _rows(entries: Iterable[JournalEntry | DeferredEntry]) -> list[tuple[Any, ...]]:
    """The columns of each entry; a deferred one that cannot be made is dropped and said so
    (a bug: it must not hold up the rows after it)."""
    rows = []
    for entry in entries:
        if isinstance(entry, JournalEntry):
            rows.append(_journal_row(entry))
            continue
        try:
            rows.append(_deferred_row(entry))
        except Exception as exc:
            logger.error("a journal row could not be made (%s): it is lost", type(exc).__name__)
    return rows


def _insert_journal_rows(
    tx: sqlite3.Connection, pending: Sequence[JournalEntry | DeferredEntry]
) -> None:
    """Rows written many to a statement, not one by one (`executemany`).

    SQLite lets go of the GIL at each statement, and a writer thread taking it back while the
    site's threads run waits up to 5 ms each time: one statement a row made a batch of 250
    rows take a second and a half. Each statement carries as many rows as `_chunks` allows.
    """
    for some in _chunks(tx, _rows(pending), width=_JOURNAL_WIDTH):
        tx.execute(_journal_insert(len(some)), [value for row in some for value in row])


def _chunks(
    tx: sqlite3.Connection, rows: Sequence[R], *, width: int, reserved: int = 0
) -> Iterator[Sequence[R]]:
    """`rows` in chunks that one statement can carry: `width` parameters a row, plus
    `reserved` for the statement itself, within the build's limit (999 on the oldest SQLite,
    32766 since 3.32), and at most 256 rows."""
    limit = tx.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    size = max(1, min(256, (limit - reserved) // width))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _deferred_row(values: DeferredEntry) -> tuple[Any, ...]:
    """The columns of a deferred row, straight from its tuple (already in column order): what
    `deferred_entry` then `_journal_row` give (a test holds them equal), without the entry in
    between, as the writer thread holds the GIL while it makes them."""
    if len(values) != _JOURNAL_WIDTH:
        raise ValueError(f"a deferred journal row has {_JOURNAL_WIDTH} fields, not {len(values)}")
    at = _ts(datetime.fromtimestamp(values[0], UTC))
    return (at, round(values[1], 3), *values[2:6], mask_reference(values[6]), *values[7:])


_JOURNAL_FIELDS = operator.attrgetter(
    "site_id",
    "agent_id",
    "partner",
    "operation",
    "account",
    "outcome",
    "error_type",
    "correlation_id",
    "plugin",
    "plugin_version",
    "local_ref",
)
"""The columns of `_JOURNAL_COLUMNS` after `at` and `duration_ms`, read in one C call: the
writer thread holds the GIL while it turns entries into rows, and the site's threads wait."""


def _journal_row(entry: JournalEntry) -> tuple[Any, ...]:
    return (_ts(entry.at), round(entry.duration_ms, 3), *_JOURNAL_FIELDS(entry))


class SqliteJournal:
    """The journal table; rows of read-only operations are written behind, in batches."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._behind: WriteBehind[JournalEntry | DeferredEntry] = WriteBehind(
            self._insert_batch, name="journal", lock=store._lock
        )

    def _insert_batch(self, entries: list[JournalEntry | DeferredEntry]) -> None:
        with self._store.write(durable=False) as tx:
            _insert_journal_rows(tx, entries)

    def append(self, entry: JournalEntry) -> JournalEntry:
        waiting: list[JournalEntry | DeferredEntry] = []
        try:
            with self._store.write(durable=False) as tx:
                waiting = self._behind.take()  # the rows deferred before this one go first
                _insert_journal_rows(tx, waiting)
                row = tx.execute(_JOURNAL_INSERT + " RETURNING *", _journal_row(entry)).fetchone()
        except BaseException:
            self._behind.give_back(waiting)
            raise
        return _record(JournalEntry, row)

    def defer(self, entry: JournalEntry | DeferredEntry) -> None:
        self._behind.defer(entry)

    def flush(self) -> None:
        self._behind.flush()

    def close(self) -> None:
        self._behind.close()

    def list(
        self,
        *,
        since: datetime | None = None,
        partner: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("at >= ?")
            params.append(_ts(since))
        if partner is not None:
            where.append("partner = ?")
            params.append(partner)
        self.flush()
        sql = f"SELECT * FROM journal WHERE {' AND '.join(where)} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_record(JournalEntry, row) for row in reversed(self._store.query(sql, params))]
