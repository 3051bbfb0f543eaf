"""Sliding-window request budgets: the core keeps each partner under its quota, and the
simulators use the same class to answer 429 the way their partner does."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pimms_core.models import Quota


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
            window = self._hits.get(key)
            if window is None:
                window = self._hits[key] = deque()
            horizon = now - self.seconds  # hits at or before it are out of the window
            while window and window[0] <= horizon:
                window.popleft()
            if len(window) >= self.calls:
                return max(window[0] - horizon, 1e-3)
            window.append(now)
            return 0.0

    def hit(self, key: str = "") -> int | None:
        """Like `delay`, for a server: None if allowed, else whole seconds for Retry-After."""
        wait = self.delay(key)
        return None if wait == 0.0 else max(1, math.ceil(wait))


QUOTA_MARGIN = 1.05
"""Windows are kept 5 % longer than the partner's: requests spaced exactly one window apart
when sent can arrive closer together, and the partner counts arrivals."""


class Budget:
    """Several quotas that must all allow a call (5 per second and 1000 per hour, say)."""

    @classmethod
    def for_quotas(cls, quotas: Iterable[Quota], *, share: float = 1.0) -> Budget:
        """The budget for a partner's declared quotas; `share` < 1 keeps part of them free."""
        return cls([QuotaLimiter(q.calls, q.seconds * QUOTA_MARGIN / share) for q in quotas])

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
