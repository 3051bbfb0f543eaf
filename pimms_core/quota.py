"""Sliding-window request budgets: the core keeps each partner under its quota, and the
simulators use the same class to answer 429 the way their partner does."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence


class QuotaLimiter:
    """At most `calls` per `seconds`, counted per key."""

    def __init__(
        self, calls: int, seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.calls = calls
        self.seconds = seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def delay(self, key: str = "") -> float:
        """Count one call for `key` if the budget allows it (return 0.0); else return how long
        to wait before asking again, counting nothing."""
        with self._lock:
            now = self._clock()
            window = self._hits.setdefault(key, deque())
            while window and now - window[0] >= self.seconds:
                window.popleft()
            if len(window) >= self.calls:
                return max(self.seconds - (now - window[0]), 1e-3)
            window.append(now)
            return 0.0

    def hit(self, key: str = "") -> int | None:
        """Like `delay`, for a server: None if allowed, else whole seconds for Retry-After."""
        wait = self.delay(key)
        return None if wait == 0.0 else max(1, math.ceil(wait))


class Budget:
    """Several quotas that must all allow a call (5 per second and 1000 per hour, say)."""

    def __init__(
        self,
        limiters: Sequence[QuotaLimiter],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiters = list(limiters)
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until every quota allows one more call; return the seconds waited."""
        waited = 0.0
        with self._lock:
            for limiter in self.limiters:
                while (wait := limiter.delay()) > 0.0:
                    self._sleep(wait)
                    waited += wait
        return waited
