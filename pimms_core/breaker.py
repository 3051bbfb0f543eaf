"""A circuit breaker per partner: when a partner is down, stop calling it for a while.

Without it, every desk's every call would wait for its timeout and its retries against a
partner that is plainly down. After `failures` consecutive transient failures the circuit
opens: calls fail at once with `CircuitOpen` (a `PartnerUnavailable` carrying when to try
again, sent nowhere). When the cool-down has passed, one call goes through as a probe; if it
works the circuit closes, if not it opens again for a longer cool-down (doubling, capped).
The partner going down and coming back are each logged once, not once per call.

What counts: a `PartnerUnavailable` other than a rate limit (429 means the partner is up and
busy) is a failure; any answer of the partner (an account, a "not found", a refusal) is a
success; anything else (a plugin bug) leaves the count as it is. The breaker is in-process:
a short-lived CLI command starts closed, a long-lived site process keeps it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

from pimms_core.errors import CircuitOpen, PartnerUnavailable, PimmsError
from pimms_core.redaction import logger as redacted_logger

logger = redacted_logger("pimms.breaker")

DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN = 30.0
MAX_COOLDOWN = 300.0


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    """The cool-down has passed and one probe call is (or may be) in flight."""


def counts_as_failure(error: BaseException) -> bool:
    """Whether an error says the partner cannot be reached (not merely busy or refusing)."""
    return (
        isinstance(error, PartnerUnavailable)
        and not isinstance(error, CircuitOpen)
        and error.status != 429
    )


class CircuitBreaker:
    """The breaker of one partner. Thread-safe; `clock` is injectable for tests."""

    def __init__(
        self,
        partner: str,
        *,
        failures: int = DEFAULT_FAILURES,
        cooldown: float = DEFAULT_COOLDOWN,
        max_cooldown: float = MAX_COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a circuit breaker needs failures >= 1 and cooldown > 0")
        self.partner = partner
        self.threshold = failures
        self.base_cooldown = cooldown
        self.max_cooldown = max(max_cooldown, cooldown)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._cooldown = cooldown
        self._state = CircuitState.CLOSED
        self._probing = False

    @property
    def state(self) -> CircuitState:
        with self._lock:
            if self._state is CircuitState.OPEN and self._remaining() <= 0:
                return CircuitState.HALF_OPEN
            return self._state

    def retry_after(self) -> float | None:
        """Seconds until a probe may go, while the circuit is open; else None."""
        with self._lock:
            return max(self._remaining(), 0.0) if self._state is CircuitState.OPEN else None

    def _closed(self) -> bool:
        """A read without the lock (one attribute: atomic), for the fast paths; the slow
        paths look again under the lock."""
        return self._state is CircuitState.CLOSED

    def _remaining(self) -> float:
        return self._opened_at + self._cooldown - self._clock()

    def fail_fast(self) -> None:
        """Raise `CircuitOpen` while the cool-down runs; unlike `before_call`, never takes the
        probe slot (for a caller that only wants to know whether to try at all)."""
        with self._lock:
            remaining = self._remaining()
            if self._state is CircuitState.OPEN and remaining > 0:
                raise CircuitOpen(self.partner, self._failures, remaining)

    def before_call(self) -> None:
        """Let a call through, or raise `CircuitOpen` (nothing is sent)."""
        if self._closed():  # the common case, read without the lock
            return
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return
            remaining = self._remaining()
            if remaining > 0 or self._probing:
                raise CircuitOpen(self.partner, self._failures, max(remaining, 0.0))
            self._state = CircuitState.HALF_OPEN
            self._probing = True

    def record_success(self) -> None:
        if self._closed() and self._failures == 0:
            return  # nothing to change: the common case, read without the lock
        with self._lock:
            was_down = self._state is not CircuitState.CLOSED
            self._state = CircuitState.CLOSED
            self._failures = 0
            self._cooldown = self.base_cooldown
            self._probing = False
        if was_down:
            logger.warning("%s answers again: calls go through", self.partner)

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is CircuitState.HALF_OPEN:
                self._cooldown = min(self._cooldown * 2, self.max_cooldown)
                self._state = CircuitState.OPEN
                self._opened_at = self._clock()
                self._probing = False
                return
            if self._state is CircuitState.OPEN or self._failures < self.threshold:
                return
            self._state = CircuitState.OPEN
            self._opened_at = self._clock()
            cooldown, failures = self._cooldown, self._failures
        logger.warning(
            "%s is unreachable (%d failures in a row): calls fail fast for %.0f s, then a probe",
            self.partner,
            failures,
            cooldown,
        )

    def release(self) -> None:
        """A call ended without telling anything about the partner: free the probe slot."""
        with self._lock:
            self._probing = False

    def record(self, error: BaseException | None) -> None:
        """Record how a call ended: None for a result, else the exception it raised."""
        if error is None or (isinstance(error, PimmsError) and not counts_as_failure(error)):
            self.record_success()
        elif counts_as_failure(error):
            self.record_failure()
        else:
            self.release()

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Around one request to the partner: checks the circuit, then records the outcome."""
        self.before_call()
        try:
            yield
        except BaseException as exc:
            self.record(exc)
            raise
        self.record(None)
