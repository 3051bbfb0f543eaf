"""What the fault matrix checks after each case: the call's outcome, the partner's claims, and
every text a site operator could see.

- The outcome: a typed `PimmsError` of the kind the fault calls for, or the right result (the
  healthy simulator's answer), never another exception, never a hang; a claim that could not
  be delivered at once names the claim kept in the outbox (`local_ref`).
- The claims, after `flush_outbox` against the healthy simulator: exactly one at the partner,
  the one the outbox records as delivered; or, for a partner with no idempotency mechanism,
  a claim waiting for a person (`needs_check`) rather than sent again.
- The texts: the error and its chain, the result's `repr()`, the journal, settled outbox rows.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from attrs import frozen

from pimms_core.errors import PartnerUnavailable, PimmsError
from pimms_core.facade import Pimms
from pimms_core.models import (
    Account,
    Claim,
    ClaimState,
    ClaimStatus,
    Idempotency,
    Operation,
    OutboxState,
    QueuedClaim,
)
from pimms_core.sandbox import SandboxState
from pimms_core.store.base import Store
from pimms_core.testing.fault_bodies import UNKNOWN_STATUS
from pimms_core.testing.fault_catalogue import Expect, FaultCase

Texts = list[tuple[str, str]]


@frozen
class Called:
    """How a call ended: a value, an error, or no end within the limit (a hang)."""

    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    hung: bool = False

    def describe(self) -> str:
        if self.hung:
            return "hang"
        if isinstance(self.error, PimmsError):
            return f"error {self.error.code}"
        if self.error is not None:
            return f"crash {type(self.error).__name__}"
        if isinstance(self.value, QueuedClaim):
            return f"queued {self.value.state.value}"
        return "result"


@frozen
class Settled:
    """The partner's claims and the outbox entry after the flush."""

    claims: int
    outbox_state: str | None
    lost: bool
    duplicated: bool
    problems: tuple[str, ...] = ()


def judge(
    operation: Operation,
    fault: FaultCase,
    mechanism: Idempotency,
    called: Called,
    baseline: Any,
    partner_claims: set[str],
    faulted: int,
) -> list[str]:
    """What is wrong with the call's outcome, against what the fault calls for."""
    if called.hung:
        return [f"no answer within {called.seconds:g} s: the call hung"]
    error = called.error
    if error is not None and not isinstance(error, PimmsError):
        return [f"raised {type(error).__name__}, which is not a PimmsError"]
    problems: list[str] = []
    if called.seconds < fault.min_seconds:
        problems.append(
            f"answered after {called.seconds:.2f} s, before the Retry-After "
            f"({fault.min_seconds:g} s)"
        )
    if fault.single_request and faulted > 1:
        problems.append(f"sent {faulted} times: an unmapped answer must fail at once")
    if isinstance(error, PimmsError) or isinstance(called.value, QueuedClaim):
        problems += _judge_failure(operation, fault, mechanism, error, called.value)
    else:
        problems += _judge_result(operation, fault, called.value, baseline, partner_claims)
    if operation is Operation.OPEN_CLAIM and isinstance(error, PimmsError) and not error.local_ref:
        problems.append("the error does not name the claim kept in the outbox (local_ref)")
    return problems


def _judge_failure(
    operation: Operation,
    fault: FaultCase,
    mechanism: Idempotency,
    error: PimmsError | None,
    queued: QueuedClaim | None,
) -> list[str]:
    what = f"error {error.code}" if error is not None else "a queued claim"
    if fault.expect is Expect.RESULT:
        # With no idempotency mechanism, a claim that may have reached the partner is never
        # sent again: "unavailable, kept in the outbox" is then the right answer.
        unresendable = operation is Operation.OPEN_CLAIM and mechanism is Idempotency.NONE
        if not (unresendable and isinstance(error, PartnerUnavailable | None)):
            return [f"expected the right result (a transient fault), got {what}"]
        return []
    if fault.expect is Expect.UNKNOWN_STATE and operation is not Operation.LOOKUP_ACCOUNT:
        return [f"expected a result in state unknown keeping the raw code, got {what}"]
    if error is not None and not isinstance(error, fault.errors):
        wanted = " or ".join(e.__name__ for e in fault.errors)
        return [f"expected {wanted}, got {type(error).__name__} ({error.code})"]
    if fault.retry_after is not None:
        carried = error.retry_after if isinstance(error, PartnerUnavailable) else None
        if queued is not None:
            carried = queued.retry_after
        if carried != fault.retry_after:
            return [f"expected Retry-After {fault.retry_after:g} carried, got {carried}"]
    return []


def _judge_result(
    operation: Operation,
    fault: FaultCase,
    value: Any,
    baseline: Any,
    partner_claims: set[str],
) -> list[str]:
    """A result must be the right one. Under a fault no read can get through, a result is
    wrong; a claim may be right even so: the core may have settled it through the partner's
    idempotency mechanism (asking for the claim by its key) when only the creating request
    was hit, and the partner's one claim is checked after the flush."""
    if fault.expect is Expect.ERROR and operation is not Operation.OPEN_CLAIM:
        return [f"expected {fault.errors[0].__name__}, got a result ({type(value).__name__})"]
    if operation is Operation.LOOKUP_ACCOUNT:
        if not isinstance(value, Account):
            return [f"expected an Account, got {type(value).__name__}"]
        if fault.expect is Expect.UNKNOWN_STATE:
            same = value.partner == baseline.partner and value.reference == baseline.reference
            return [] if same else ["the account returned is not the one asked for"]
        return [] if value == baseline else ["the account differs from the healthy answer"]
    if operation is Operation.CLAIM_STATUS:
        if not isinstance(value, ClaimStatus):
            return [f"expected a ClaimStatus, got {type(value).__name__}"]
        if fault.expect is Expect.UNKNOWN_STATE:
            return _unknown_state(value.state, value.partner_status)
        return [] if value == baseline else ["the status differs from the healthy answer"]
    if not isinstance(value, Claim):
        return [f"expected a Claim, got {type(value).__name__}"]
    problems = []
    if value.claim_ref not in partner_claims:
        problems.append("the claim returned is not one the partner holds")
    if fault.expect is Expect.UNKNOWN_STATE:
        problems += _unknown_state(value.state, value.partner_status)
    return problems


def _unknown_state(state: ClaimState, partner_status: str) -> list[str]:
    if state is ClaimState.UNKNOWN and partner_status == UNKNOWN_STATUS:
        return []
    return [
        f"an undeclared status must give state unknown with the raw code kept, got "
        f"{state.value} / {partner_status!r}"
    ]


def settle(
    pimms: Pimms,
    partner: str,
    mechanism: Idempotency,
    state: SandboxState,
    before: set[str],
    key: str,
) -> Settled:
    """Flush the outbox against the healthy simulator, then count the partner's claims."""
    pimms.flush_outbox()
    new = state.claim_refs() - before
    entry = pimms.store.outbox.find(partner, key)
    if entry is None:
        return Settled(len(new), None, not new, len(new) > 1, ("the claim is not in the outbox",))
    problems = []
    waits_for_person = entry.state is OutboxState.NEEDS_CHECK
    if waits_for_person and mechanism is not Idempotency.NONE:
        problems.append(
            f"the claim waits for a person, though the partner declares idempotency "
            f"{mechanism.value}: the flush should have settled it"
        )
    elif entry.state.pending and not waits_for_person:
        problems.append(f"after a flush against the healthy partner, the claim is {entry.state}")
    elif entry.state in (OutboxState.FAILED, OutboxState.CANCELLED):
        problems.append(f"a fault made the claim {entry.state}: it is never sent again")
    elif entry.state is OutboxState.DELIVERED and entry.claim_ref not in new:
        problems.append("the outbox records a claim reference the partner does not hold")
    lost = not new and not waits_for_person
    return Settled(len(new), entry.state.value, lost, len(new) > 1, tuple(problems))


def store_texts(store: Store) -> Texts:
    """The journal's rows, and the outbox rows no longer pending (which must hold no personal
    data any more)."""
    texts = [
        ("journal row", json.dumps(attrs.asdict(row), default=str)) for row in store.journal.list()
    ]
    settled = [s for s in OutboxState if not s.pending]
    texts += [
        ("settled outbox row", json.dumps(attrs.asdict(row), default=str))
        for row in store.outbox.list(states=settled)
    ]
    return texts


def error_texts(error: BaseException) -> Texts:
    """The error's message, repr and JSON form, and those of every error chained to it."""
    texts: Texts = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts.append(("exception text", f"{type(current).__name__}: {current}"))
        texts.append(("exception repr", repr(current)))
        if isinstance(current, PimmsError):
            texts.append(("exception JSON", json.dumps(current.to_dict(), default=str)))
        current = current.__cause__ or current.__context__
    return texts
