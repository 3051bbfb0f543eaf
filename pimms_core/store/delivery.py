"""Store-and-forward: sending one outbox entry, and settling what became of it.

`Deliverer.deliver(local_ref, mechanism, send)` leases the entry (so no other process sends it
at the same time), sends it with `send` (the facade's call to the partner's plugin), and
records the outcome:

- the partner acknowledged it: `delivered`, in the ledger, personal data removed;
- it surely did not reach the partner (connection refused, rate limit, circuit open, our
  credentials refused): `queued`, sent again by the next flush;
- it may have reached the partner (timeout after sending, 5xx, an unreadable answer, a plugin
  that crashed): `uncertain`, reconciled at the next flush by the partner's mechanism: the
  same key again (`header`), a lookup by the key first (`lookup`, done by `calls.open_claim`),
  or the existing claim named in the duplicate answer (`unique_key`); for a partner with no
  mechanism (`none`) it is never sent again by itself: `needs_check`, for a person;
- the partner refused it, or the input was wrong: `failed`, personal data removed, not retried.

An entry left in `sending` by a killed process is taken over by the next flush and treated as
possibly sent. Nothing here knows a plugin: `send` is a plain function, so the engine is tested
with fakes that time out or die at chosen moments.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from attrs import frozen

from pimms_core.errors import (
    AccountNotFound,
    ClaimRejected,
    ConfigError,
    InvalidInput,
    PartnerAuthError,
    PartnerUnavailable,
    PimmsError,
    UnsupportedOperation,
)
from pimms_core.models import (
    Claim,
    ClaimRequest,
    Idempotency,
    OutboxState,
    QueuedClaim,
)
from pimms_core.policy import safe_to_resend
from pimms_core.redaction import logger as redacted_logger
from pimms_core.store.base import Store
from pimms_core.store.lease import owner_id
from pimms_core.store.records import LedgerEntry, OutboxEntry, utc_now

logger = redacted_logger("pimms.outbox")

DEFINITIVE = (ClaimRejected, AccountNotFound, InvalidInput, UnsupportedOperation)
"""Errors that say the claim will never be accepted as it is: it is failed, not retried."""
NOT_PROCESSED = (PartnerAuthError, ConfigError)
"""Errors that say the partner did not process the request (our side must be fixed)."""

Send = Callable[[ClaimRequest], Claim]


@frozen
class DeliveryOutcome:
    """What became of one attempt to deliver an outbox entry."""

    entry: OutboxEntry
    """The entry after the attempt (its state says where it stands)."""
    claim: Claim | None = None
    """The partner's claim, when delivered."""
    queued: QueuedClaim | None = None
    """What to tell the caller, when it is still in the outbox."""
    error: PimmsError | None = None
    """Why it was not delivered (the partner's refusal, when failed)."""

    @property
    def delivered(self) -> bool:
        return self.claim is not None

    def result(self) -> Claim | QueuedClaim:
        """The claim, or the queued claim; a refusal is raised."""
        if self.claim is not None:
            return self.claim
        if self.queued is not None:
            return self.queued
        assert self.error is not None
        raise self.error


def settled_state(error: BaseException, mechanism: Idempotency, before: OutboxState) -> OutboxState:
    """The state an entry is left in after `error`, given what it was before this attempt."""
    if isinstance(error, DEFINITIVE):
        return OutboxState.FAILED
    maybe_sent_before = before is not OutboxState.QUEUED
    surely_not_received = isinstance(error, NOT_PROCESSED) or safe_to_resend(
        error, Idempotency.NONE
    )
    if surely_not_received and not maybe_sent_before:
        return OutboxState.QUEUED
    return OutboxState.NEEDS_CHECK if mechanism is Idempotency.NONE else OutboxState.UNCERTAIN


def queued_claim(entry: OutboxEntry, reason: str, error: PimmsError | None = None) -> QueuedClaim:
    retry_after = error.retry_after if isinstance(error, PartnerUnavailable) else None
    return QueuedClaim(
        partner=entry.partner,
        local_ref=entry.local_ref,
        state=entry.state,
        reason=reason,
        queued_at=entry.created_at,
        idempotency_key=entry.idempotency_key,
        retry_after=retry_after,
        plugin=error.plugin if error is not None else None,
    )


def ledger_entry(entry: OutboxEntry, claim: Claim, *, site_id: str) -> LedgerEntry:
    """The ledger row of a claim the partner acknowledged for this outbox entry."""
    return LedgerEntry(
        partner=claim.partner,
        claim_ref=claim.claim_ref,
        account_ref=entry.account_ref,
        category=entry.category.value,
        state=claim.state,
        partner_status=claim.partner_status,
        opened_at=claim.opened_at,
        last_checked=utc_now(),
        response_due_by=claim.response_due_by,
        local_ref=entry.local_ref,
        site_id=site_id,
        plugin=claim.plugin.name if claim.plugin else None,
        plugin_version=claim.plugin.version if claim.plugin else None,
    )


def pending_reason(entry: OutboxEntry) -> str:
    """Why an entry that was not sent now is still waiting, for a mediator."""
    if entry.state is OutboxState.NEEDS_CHECK:
        return (
            f"{entry.partner} may have received this claim, and it offers no safe way to send "
            f"it again: check with {entry.partner}, then settle it with `pimms outbox resolve`"
        )
    if entry.state is OutboxState.SENDING:
        return "another process is sending this claim right now"
    if entry.error_message:
        return entry.error_message
    return "it waits in the outbox for the next `pimms outbox flush`"


class Deliverer:
    """Delivers outbox entries of one store, as one owner (this process)."""

    def __init__(
        self, store: Store, *, lease_seconds: float = 120.0, site_id: str = "local"
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.site_id = site_id
        self.owner = owner_id()

    def deliver(self, local_ref: str, mechanism: Idempotency, send: Send) -> DeliveryOutcome:
        outbox = self.store.outbox
        taken = outbox.take(local_ref, owner=self.owner, lease_seconds=self.lease_seconds)
        if taken is None:
            current = outbox.get(local_ref)
            if current is None:
                raise ValueError(f"no outbox entry {local_ref!r}")
            return DeliveryOutcome(current, queued=queued_claim(current, pending_reason(current)))
        entry, before = taken
        if mechanism is Idempotency.NONE and before is not OutboxState.QUEUED:
            settled = outbox.release(
                local_ref,
                owner=self.owner,
                state=OutboxState.NEEDS_CHECK,
                error=("needs_check", "the last attempt may have reached the partner"),
            )
            logger.warning(
                "outbox %s: outcome unknown and no safe resend: needs a check", local_ref
            )
            return DeliveryOutcome(settled, queued=queued_claim(settled, pending_reason(settled)))
        try:
            claim = send(entry.request())
        except PimmsError as exc:
            return self._settle(entry, exc, mechanism, before)
        except BaseException:
            # Interrupted (KeyboardInterrupt, a bug): the request may have left.
            state = (
                OutboxState.NEEDS_CHECK if mechanism is Idempotency.NONE else OutboxState.UNCERTAIN
            )
            outbox.release(
                local_ref, owner=self.owner, state=state, error=("interrupted", "interrupted")
            )
            raise
        delivered = outbox.acknowledge(
            local_ref, ledger=ledger_entry(entry, claim, site_id=self.site_id)
        )
        logger.info("outbox %s delivered to %s", local_ref, entry.partner)
        return DeliveryOutcome(delivered, claim=attrs.evolve(claim, local_ref=local_ref))

    def _settle(
        self, entry: OutboxEntry, error: PimmsError, mechanism: Idempotency, before: OutboxState
    ) -> DeliveryOutcome:
        outbox = self.store.outbox
        state = settled_state(error, mechanism, before)
        error.local_ref = entry.local_ref
        if state is OutboxState.FAILED:
            failed = outbox.fail(entry.local_ref, error=(error.code, error.message))
            return DeliveryOutcome(failed, error=error)
        settled = outbox.release(
            entry.local_ref, owner=self.owner, state=state, error=(error.code, error.message)
        )
        logger.info("outbox %s kept (%s): %s", entry.local_ref, state.value, error.code)
        reason = error.message
        if state is OutboxState.NEEDS_CHECK:
            reason = f"{error.message}; {pending_reason(settled)}"
        return DeliveryOutcome(settled, queued=queued_claim(settled, reason, error), error=error)
