"""Writing one journal row per operation, whatever the operation's fate.

The facade wraps each operation in `journaled(...)`: the row is written when the operation
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
from pimms_core.store.records import JournalEntry, utc_now

logger = redacted_logger("pimms.journal")

_PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")
REFUSED = (InvalidInput, UnknownPartner, UnsupportedOperation, ConfigError)
"""Errors raised before anything is sent: the journal says `refused`."""


class OperationRecord:
    """What the journal will say about one operation, filled in as it goes."""

    def __init__(self, operation: str, partner: str | None, call: CallContext) -> None:
        self.operation = operation
        self.partner = partner if partner and _PARTNER_ID.fullmatch(partner) else "(invalid)"
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

    def entry(self, duration_ms: float) -> JournalEntry:
        return JournalEntry(
            at=utc_now(),
            operation=self.operation,
            outcome=self.outcome,
            duration_ms=duration_ms,
            site_id=self.call.site_id,
            agent_id=self.call.agent_id,
            partner=self.partner,
            account=self.account,
            error_type=self.error_type,
            correlation_id=self.call.correlation_id,
            plugin=self.plugin.name if self.plugin else None,
            plugin_version=self.plugin.version if self.plugin else None,
            local_ref=self.local_ref,
        )


class Journaled:
    """`with Journaled(...) as record:` journals the operation run in the block (its outcome,
    error type and duration), raised errors included.

    `deferred` rows (read-only operations) are written behind, in batches (`Journal.defer`).
    A class rather than a generator context manager: it wraps every lookup, and costs less.
    """

    __slots__ = ("_deferred", "_journal", "_plugin_of", "_started", "record")

    def __init__(
        self,
        journal: Callable[[], Journal],
        operation: str,
        partner: str | None,
        call: CallContext,
        *,
        plugin_of: Callable[[str], PluginRef | None] = lambda _partner: None,
        deferred: bool = False,
    ) -> None:
        self._journal = journal
        self._plugin_of = plugin_of
        self._deferred = deferred
        self.record = OperationRecord(operation, partner, call)
        self._started = 0.0

    def __enter__(self) -> OperationRecord:
        self._started = time.perf_counter()
        return self.record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        record = self.record
        if exc is not None:
            record.failed(exc)
        if record.plugin is None and record.partner != "(invalid)" and record.partner:
            record.plugin = self._plugin_of(record.partner)
        duration_ms = (time.perf_counter() - self._started) * 1000
        write(self._journal, record.entry(duration_ms), deferred=self._deferred)


def write(journal: Callable[[], Journal], entry: JournalEntry, *, deferred: bool = False) -> None:
    try:
        if deferred:
            journal().defer(entry)
        else:
            journal().append(entry)
    except Exception as exc:
        logger.error(
            "the journal could not record a %s operation (%s)", entry.operation, type(exc).__name__
        )
