"""Transport policy, owned by the core: retries, and what guards each request to a partner.

Reads are retried on transient failures (`PartnerUnavailable`: timeouts, connection errors,
5xx, 429), waiting the partner's Retry-After when it gives one, else an exponential backoff
with jitter, within a number of attempts and an overall deadline. A claim creation is retried
only where sending it twice is safe: the partner declared an idempotency mechanism, or the
request never left (connection refused) or was turned away unprocessed (429).

Each request also goes through the partner's `PartnerGuard`: its circuit breaker
(`pimms_core.breaker`) and a limit on the requests in flight at once.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity
from attrs import frozen

from pimms_core.breaker import (
    DEFAULT_COOLDOWN,
    DEFAULT_FAILURES,
    CircuitBreaker,
)
from pimms_core.config import DEFAULT_MAX_CONCURRENT
from pimms_core.errors import PartnerUnavailable
from pimms_core.models import Idempotency

T = TypeVar("T")


@frozen
class RetryPolicy:
    attempts: int = 3
    backoff: float = 0.25
    """First backoff in seconds; doubles at each attempt, with jitter up to the same amount."""
    max_backoff: float = 5.0
    retry_after_cap: float = 30.0
    """A Retry-After longer than this is not waited for: the error goes to the caller."""
    deadline: float = 30.0
    """Seconds after which no new attempt is started (a call's own deadline may be shorter)."""


NO_RETRY = RetryPolicy(attempts=1)


def safe_to_resend(error: BaseException, idempotency: Idempotency | None) -> bool:
    """Whether a failed attempt may be sent again. `idempotency` None means a read."""
    if not isinstance(error, PartnerUnavailable):
        return False
    if idempotency is None or idempotency is not Idempotency.NONE:
        return True
    return error.request_sent is False or error.status == 429


def call_with_retries(
    policy: RetryPolicy,
    fn: Callable[[], T],
    *,
    idempotency: Idempotency | None = None,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `fn`, retrying per `policy`; the last error is raised as it was.

    The first attempt runs before any retry machinery is built: most calls succeed, and they
    should not pay for it.
    """
    started = time.monotonic()
    try:
        return fn()
    except Exception as exc:
        if policy.attempts <= 1 or not safe_to_resend(exc, idempotency):
            raise
        first_failure: list[Exception] = [exc]

    def attempt() -> T:
        if first_failure:
            raise first_failure.pop()  # tenacity counts the attempt already made
        return fn()

    end = started + policy.deadline
    if deadline is not None:
        end = min(end, deadline)
    backoff = tenacity.wait_exponential_jitter(
        multiplier=policy.backoff, max=policy.max_backoff, jitter=policy.backoff
    )

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return retry_after if retry_after is not None else backoff(state)

    def should_stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.attempts:
            return True
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > policy.retry_after_cap:
            return True
        return time.monotonic() + wait(state) > end

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda exc: safe_to_resend(exc, idempotency)),
        stop=should_stop,
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)


class ConcurrencyLimit:
    """At most `limit` requests in flight to one partner; a caller waits for a slot, up to a
    deadline, then gets `PartnerUnavailable` (nothing sent) rather than waiting forever."""

    def __init__(self, partner: str, limit: int = DEFAULT_MAX_CONCURRENT) -> None:
        if limit < 1:
            raise ValueError("a concurrency limit must allow at least one call")
        self.partner = partner
        self.limit = limit
        # Slots as tokens in a C-implemented queue: taking and giving one back costs a tenth
        # of what `threading.Semaphore` (written in Python) does, on every request.
        self._slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(limit):
            self._slots.put(None)

    def acquire(self, deadline: float | None = None, *, wait: float = 30.0) -> None:
        """Take a slot, waiting for one up to `wait` seconds or the deadline; `release` it."""
        try:
            self._slots.get_nowait()
            return
        except queue.Empty:
            pass
        timeout = wait if deadline is None else max(min(wait, deadline - time.monotonic()), 0.0)
        try:
            self._slots.get(timeout=timeout)
        except queue.Empty:
            raise PartnerUnavailable(
                self.partner,
                f"{self.limit} calls to it are already in progress from this site",
                request_sent=False,
            ) from None

    def release(self) -> None:
        self._slots.put(None)


class PartnerGuard:
    """What every request to one partner goes through: its circuit breaker and its
    concurrency limit (the request budget is kept by the partner's HTTP client)."""

    def __init__(self, breaker: CircuitBreaker, limit: ConcurrencyLimit) -> None:
        self.breaker = breaker
        self.limit = limit

    @classmethod
    def for_partner(
        cls,
        partner: str,
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        failures: int = DEFAULT_FAILURES,
        cooldown: float = DEFAULT_COOLDOWN,
    ) -> PartnerGuard:
        return cls(
            CircuitBreaker(partner, failures=failures, cooldown=cooldown),
            ConcurrencyLimit(partner, max_concurrent),
        )

    def enter(self, deadline: float | None = None) -> None:
        """Before one request: fails fast while the circuit is open (`CircuitOpen`), then waits
        for a free slot (`PartnerUnavailable` past the deadline). Nothing is held on failure;
        on success, `leave` must follow."""
        self.breaker.before_call()
        try:
            self.limit.acquire(deadline)
        except BaseException:
            self.breaker.release()
            raise

    def leave(self, error: BaseException | None) -> None:
        """After one request: frees its slot and tells the breaker how it ended (None: an
        answer; else the exception it raised)."""
        self.limit.release()
        self.breaker.record(error)

    def run(self, request: Callable[[], T], deadline: float | None = None) -> T:
        """`request()` between `enter` and `leave`."""
        self.enter(deadline)
        try:
            result = request()
        except BaseException as exc:
            self.leave(exc)
            raise
        self.leave(None)
        return result
