"""The site's store: the ledger, the outbox and the journal.

- **ledger** (`store.ledger`): every claim a partner acknowledged through pimms (partner, claim
  reference, account reference, category, state, opened at, response due by, last checked,
  local reference). `Pimms.claim_status` keeps it up to date; a refresh job lists what to
  ask with `store.ledger.list(open_only=True, checked_before=...)`.
- **outbox** (`store.outbox`): a claim is written there, with its idempotency key, before
  anything is sent; it stays until its partner acknowledges it (see `delivery` for the
  states and how an uncertain one is reconciled). `Pimms.flush_outbox()` sends what waits.
- **journal** (`store.journal`): one row per operation, append-only, with the account
  reference masked and no personal data.

```python
from pimms_core.store import open_store

with open_store("/var/lib/pimms/pimms.sqlite3") as store:
    for entry in store.outbox.list():            # queued, sending, uncertain, needs_check
        print(entry.local_ref, entry.partner, entry.state.value, entry.error_message)
    for claim in store.ledger.list(open_only=True):
        print(claim.partner, claim.claim_ref, claim.state.value, claim.last_checked)
```

The interface (`Store`, `Ledger`, `Outbox`, `Journal` in `pimms_core.store.base`) is what the
core uses; `SqliteStore` is the implementation for one site. `Pimms.from_config` opens
`[pimms] database` (default `<data_dir>/pimms.sqlite3`) on first use.
"""

from __future__ import annotations

from pathlib import Path

from pimms_core.store.base import Journal, Ledger, Outbox, Store
from pimms_core.store.records import JournalEntry, LedgerEntry, OutboxEntry, new_local_ref
from pimms_core.store.sqlite import SqliteStore

__all__ = [
    "Journal",
    "JournalEntry",
    "Ledger",
    "LedgerEntry",
    "Outbox",
    "OutboxEntry",
    "SqliteStore",
    "Store",
    "new_local_ref",
    "open_store",
]


def open_store(location: str | Path) -> SqliteStore:
    """Open (creating if needed) the store at `location`: a SQLite file, or `:memory:`."""
    return SqliteStore(location)
