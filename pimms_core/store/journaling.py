"""Writing one journal row per operation, whatever the operation's fate.

The facade wraps each operation in `Journaled(...)`: the row is written when the operation
ends, by a result, a queued claim or an error, with its duration. Why plain code in the call
layer rather than a pluggy wrapper around the hooks: an operation refused before any hook runs
(a bad reference, an unknown partner, a circuit open) must be journaled too, and so must the
outcomes only the core knows (queued, needs_check, flushed); a wrapper sees neither, and a
plugin could reorder or shadow it. A journal that cannot be written is logged, and never turns
a successful operation into a failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from types import TracebackType

from pimms_core.errors import (
    ConfigError,
    InvalidInput,
    PimmsError,
    UnknownPartner,
    UnsupportedOperation,
)
from pimms_core.models import CallContext, OutboxState, PluginRef
from pimms_core.redaction import logger as redacted_logger
from pimms_core.store.base import Journal
from pimms_core.store.delivery import DeliveryOutcome
from pimms_core.store.records import DeferredEntry, JournalEntry, deferred_entry

logger = redacted_logger("pimms.journal")

_PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
REFUSED = (InvalidInput, UnknownPartner, UnsupportedOperation, ConfigError)
"""Errors raised before anything is sent: the journal says `refused`."""


class Journaled:
    """What the journal will say about one operation, filled in as it goes; as a context
    manager, it writes that row when the block ends, raised errors included.

    ```python
    with Journaled(journal, "lookup_account", "edf", call, deferred=True) as record:
        record.account = reference
        ...
    ```

    `deferred` rows (read-only operations) are written behind, in batches (`Journal.defer`).
    One slotted object rather than a generator context manager and a record: it wraps every
    lookup.
    """

    __slots__ = (
        "_deferred",
        "_duration_ms",
        "_ended_at",
        "_journal",
        "_plugin_of",
        "_started",
        "account",
        "call",
        "error_type",
        "local_ref",
        "operation",
        "outcome",
        "partner",
        "plugin",
    )

    def __init__(
        self,
        journal: Callable[[], Journal],
        operation: str,
        partner: str | None,
        call: CallContext,
        *,
        plugin_of: Callable[[str], PluginRef | None] | None = None,
        deferred: bool = False,
    ) -> None:
        self._journal = journal
        self._plugin_of = plugin_of
        self._deferred = deferred
        self._started = self._ended_at = self._duration_ms = 0.0
        self.operation = operation
        self.partner = partner
        self.call = call
        self.account: str | None = None
        """The account reference, once it is known to be well formed (masked when written)."""
        self.local_ref: str | None = None
        self.plugin: PluginRef | None = None
        self.outcome = "ok"
        self.error_type: str | None = None

    def failed(self, error: BaseException) -> None:
        if isinstance(error, PimmsError):
            self.outcome = "refused" if isinstance(error, REFUSED) else "failed"
            self.error_type = error.code
            self.plugin = self.plugin or error.plugin
            self.local_ref = self.local_ref or error.local_ref
        else:
            self.outcome = "error"
            self.error_type = type(error).__name__

    def settle(self, outcome: DeliveryOutcome) -> None:
        """Record how a claim delivery ended."""
        self.local_ref = outcome.entry.local_ref
        if outcome.claim is not None:
            self.outcome = "ok"
            self.plugin = outcome.claim.plugin
            return
        state = outcome.entry.state
        self.outcome = "failed" if state is OutboxState.FAILED else state.value
        if outcome.queued is not None and outcome.queued.state is not state:
            self.outcome = outcome.queued.state.value
        if outcome.error is not None:
            self.error_type = outcome.error.code
            self.plugin = self.plugin or outcome.error.plugin

    def values(self) -> DeferredEntry:
        """The row as a plain tuple, once the operation has ended: what a deferred row is
        handed over as (see `DeferredEntry` for why not an object)."""
        plugin = self.plugin
        call = self.call
        partner = self.partner
        return (
            self._ended_at,
            self._duration_ms,
            call.site_id,
            call.agent_id,
            partner if partner and _PARTNER_ID.fullmatch(partner) else "(invalid)",
            self.operation,
            self.account,
            self.outcome,
            self.error_type,
            call.correlation_id,
            plugin.name if plugin else None,
            plugin.version if plugin else None,
            self.local_ref,
        )

    def entry(self) -> JournalEntry:
        """The row, once the operation has ended."""
        return deferred_entry(self.values())

    def __enter__(self) -> Journaled:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._duration_ms = (time.perf_counter() - self._started) * 1000
        self._ended_at = time.time()
        if exc is not None:
            self.failed(exc)
        if self.plugin is None and self._plugin_of is not None and self.partner:
            self.plugin = self._plugin_of(self.partner)
        try:
            if self._deferred:
                self._journal().defer(self.values())
            else:
                self._journal().append(self.entry())
        except Exception as error:
            logger.error(
                "the journal could not record a %s operation (%s)",
                self.operation,
                type(error).__name__,
            )
