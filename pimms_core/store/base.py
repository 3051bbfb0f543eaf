"""The store's interface: what the core asks of a ledger, an outbox and a journal.

`SqliteStore` implements it for one site; a multi-site deployment can implement the same
protocols on PostgreSQL (the SQL is plain, the state changes are single-row transactions).
Implementations must be safe for several threads and several processes at once, and must make
every write durable before returning (the outbox promise rests on it), except the journal rows
handed to `Journal.defer`, which may be written a fraction of a second later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from pimms_core.models import CallContext, ClaimRequest, ClaimState, ClaimStatus, OutboxState
from pimms_core.store.records import DeferredEntry, JournalEntry, LedgerEntry, OutboxEntry


class Ledger(Protocol):
    """Every claim a partner acknowledged through pimms, one row per (partner, claim_ref)."""

    def record(self, entry: LedgerEntry) -> LedgerEntry:
        """Add a claim, or update the state of one already there (a replayed claim keeps its
        first local ref and opening date). Returns the row as stored."""
        ...

    def get(self, partner: str, claim_ref: str) -> LedgerEntry | None: ...

    def update_status(
        self,
        partner: str,
        claim_ref: str,
        *,
        state: ClaimState,
        partner_status: str,
        checked_at: datetime,
    ) -> LedgerEntry | None:
        """Record a fresh status and return the updated entry; None when the claim is not in
        the ledger (nothing added)."""
        ...

    def update_statuses(self, statuses: Sequence[ClaimStatus], *, checked_at: datetime) -> int:
        """Record many fresh statuses in one transaction (a refresh writes them in batches,
        not one transaction a claim); claims not in the ledger are skipped. Returns how many
        rows were updated."""
        ...

    def list(
        self,
        *,
        open_only: bool = False,
        partner: str | None = None,
        checked_before: datetime | None = None,
        limit: int | None = None,
    ) -> list[LedgerEntry]:
        """Claims, oldest opened first. `open_only`: not resolved, rejected nor closed.
        `checked_before`: last heard of before that moment (what a refresh should ask)."""
        ...


class Outbox(Protocol):
    """Claims written before they are sent, until their partner acknowledges them.

    The life of an entry: `enqueue` (queued) -> `take` (sending, leased to one process) ->
    `acknowledge` (delivered, recorded in the ledger, personal data removed) or `release`
    (queued / uncertain / needs_check, with the error) or `fail` (failed for good, personal
    data removed). A person settles a `needs_check` entry with `acknowledge`, `requeue` or
    `cancel`. Only `take` hands an entry to a sender, atomically, so two processes flushing at
    once never send the same entry twice.
    """

    def enqueue(
        self, request: ClaimRequest, *, partner: str, call: CallContext
    ) -> tuple[OutboxEntry, bool]:
        """Write a claim durably, in state `queued`. If (partner, idempotency key) is already
        there, nothing is written: returns that entry and False."""
        ...

    def get(self, local_ref: str) -> OutboxEntry | None: ...

    def find(self, partner: str, idempotency_key: str) -> OutboxEntry | None: ...

    def list(
        self,
        *,
        states: Iterable[OutboxState] | None = None,
        partner: str | None = None,
    ) -> list[OutboxEntry]:
        """Entries in these states (default: the pending ones), oldest first."""
        ...

    def take(
        self, local_ref: str, *, owner: str, lease_seconds: float
    ) -> tuple[OutboxEntry, OutboxState] | None:
        """Lease an entry for sending: a `queued` or `uncertain` one, or a `sending` one whose
        owner is gone (killed) or whose lease expired. Returns the entry (now `sending`) and
        its state before, which says whether it may already have reached the partner (a
        `sending` entry taken over may have); None when it cannot be taken."""
        ...

    def release(
        self,
        local_ref: str,
        *,
        owner: str,
        state: OutboxState,
        error: tuple[str, str] | None = None,
    ) -> OutboxEntry:
        """End a send that did not deliver: the new state (queued, uncertain, needs_check)
        and the error (code, message). Ignored if `owner` no longer holds the lease."""
        ...

    def acknowledge(self, local_ref: str, *, ledger: LedgerEntry) -> OutboxEntry:
        """The partner has the claim: state `delivered`, its reference kept, the personal data
        removed, and the claim recorded in the ledger, all in one transaction."""
        ...

    def fail(self, local_ref: str, *, error: tuple[str, str]) -> OutboxEntry:
        """Refused for good: state `failed`, personal data removed; never sent again."""
        ...

    def requeue(self, local_ref: str, request: ClaimRequest | None = None) -> OutboxEntry:
        """Back to `queued`, with `request` (same partner and key) or the request kept."""
        ...

    def cancel(self, local_ref: str, *, reason: str) -> OutboxEntry:
        """Dropped by a person: state `cancelled`, personal data removed."""
        ...


class Journal(Protocol):
    """The audit trail: one row per operation, append-only (the database refuses changes)."""

    def append(self, entry: JournalEntry) -> JournalEntry:
        """Add a row now, after any deferred ones (so the journal keeps its order); returns it
        with its id."""
        ...

    def defer(self, entry: JournalEntry | DeferredEntry) -> None:
        """Add a row soon: within a fraction of a second, in a batch (for the rows of
        read-only operations, which should not wait for a transaction each). A backend may
        write it at once.

        `entry` may be the row's fields as a plain tuple (`DeferredEntry`), made into a
        `JournalEntry` (`deferred_entry`) when the row is written: the caller's thread is
        spared building it, and the waiting row costs the garbage collector nothing (a
        tuple that cannot be made into an entry loses its row, and the loss is logged)."""
        ...

    def flush(self) -> None:
        """Write every deferred row now (`list` does it first, so it sees them)."""
        ...

    def list(
        self,
        *,
        since: datetime | None = None,
        partner: str | None = None,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Rows at or after `since`, oldest first (the last `limit` of them)."""
        ...


class Store(Protocol):
    """A site's store: its ledger, outbox and journal, in one database."""

    @property
    def ledger(self) -> Ledger: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def journal(self) -> Journal: ...

    def close(self) -> None: ...
