"""A write-behind buffer: rows handed over now, written in batches by a background thread.

Why: one journal row written on its own costs a SQLite transaction (~40 µs), as much as the
rest of what the core adds to a lookup; written 100 at a time, a row costs a few µs. The
journal rows of read-only operations (lookups, status checks) go through this buffer; claims
never do (their rows are written before the call returns, and flush the buffer first, so the
journal keeps its order).

What it promises:
- a row handed over is written within `interval` seconds, or as soon as `batch` rows wait;
- `flush()` writes everything handed over so far, in order, before it returns;
- `close()` and the interpreter's exit flush what is left;
- a failed write is logged (the number of rows and the error's type, nothing else) and tried
  again after `interval`; beyond `capacity` waiting rows the oldest are dropped, and said so.

What it does not: a process killed outright (SIGKILL, power cut) loses the rows of its last
`interval` seconds. That is the price of a lookup that costs what it should; it is the
journal of reads only, and the claims themselves never wait here.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from pimms_core.redaction import logger as redacted_logger

logger = redacted_logger("pimms.store")

T = TypeVar("T")

DEFAULT_INTERVAL = 0.2
"""Seconds a row may wait before it is written."""
DEFAULT_BATCH = 256
"""Rows that, once waiting, are written at once without waiting for the interval."""
IDLE_EXIT = 30.0
"""Seconds without a row after which the writer thread ends (a buffer nobody closes does not
keep a thread, and what it holds, for ever)."""
DEFAULT_CAPACITY = 50_000
"""Rows kept waiting at most while writes fail (the oldest are dropped beyond)."""

_LIVE: weakref.WeakSet[WriteBehind[object]] = weakref.WeakSet()


class WriteBehind(Generic[T]):
    """Rows of type `T` handed to `defer`, written by `write(rows)` from a background thread.

    `write` receives the rows in the order they were handed over and must write all of them
    or raise; it is called from one thread at a time, holding `lock` when one is given (the
    store's write lock), so that a caller writing under the same lock can `take()` what waits
    and write it first, keeping the order.
    """

    def __init__(
        self,
        write: Callable[[list[T]], None],
        *,
        name: str,
        interval: float = DEFAULT_INTERVAL,
        batch: int = DEFAULT_BATCH,
        capacity: int = DEFAULT_CAPACITY,
        lock: threading.RLock | None = None,
    ) -> None:
        self._write = write
        self._name = name
        self.interval = interval
        self.batch = batch
        self.capacity = capacity
        self._lock = lock or threading.RLock()
        self._pending: list[T] = []
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._full = threading.Event()
        self._closing = False
        self._writer: threading.Thread | None = None
        _LIVE.add(self)  # type: ignore[arg-type]

    def defer(self, row: T) -> None:
        """Hand a row over: it is written within `interval` seconds. Costs a list append."""
        if self._closing:
            raise RuntimeError(f"the {self._name} is closed")
        with self._pending_lock:
            self._pending.append(row)
            waiting = len(self._pending)
        if waiting == 1:
            if self._writer is None:
                self._start()
            self._wake.set()
        elif waiting >= self.batch:
            self._full.set()

    @property
    def waiting(self) -> int:
        """Rows handed over and not written yet."""
        return len(self._pending)

    def take(self) -> list[T]:
        """Every waiting row, removed from the buffer: for a caller that writes them itself
        (holding `lock`), and gives them back with `give_back` if its write fails."""
        with self._pending_lock:
            rows, self._pending = self._pending, []
        return rows

    def give_back(self, rows: list[T]) -> None:
        """Put rows whose write failed back in front of the buffer (the oldest beyond
        `capacity` are dropped, and the drop is logged)."""
        if not rows:
            return
        with self._pending_lock:
            self._pending[:0] = rows
            excess = len(self._pending) - self.capacity
            if excess > 0:
                del self._pending[:excess]
        if excess > 0:
            logger.error("the %s dropped %d rows it could not write", self._name, excess)

    def flush(self) -> None:
        """Write every row handed over so far; raises what `write` raised (rows kept)."""
        if not self._pending:
            return
        with self._lock:
            rows = self.take()
            if not rows:
                return
            try:
                self._write(rows)
            except BaseException:
                self.give_back(rows)
                raise

    def close(self) -> None:
        """Stop the writer and write what is left (raises if that write fails)."""
        self._closing = True
        self._wake.set()
        self._full.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=max(self.interval * 10, 5.0))
        self.flush()

    def _start(self) -> None:
        with self._pending_lock:
            if self._writer is not None:
                return
            writer = self._writer = threading.Thread(
                target=self._run, name=f"pimms-{self._name}-writer", daemon=True
            )
        writer.start()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(IDLE_EXIT):
                with self._pending_lock:
                    if not self._pending:  # nothing handed over for a while: end; the next
                        self._writer = None  # row handed over starts a new writer
                        return
                continue
            if not self._closing:
                self._full.wait(self.interval)  # let a batch gather
            self._wake.clear()
            self._full.clear()
            try:
                self.flush()
            except Exception as exc:
                logger.error(
                    "the %s could not write %d rows (%s): trying again in %.1f s",
                    self._name,
                    self.waiting,
                    type(exc).__name__,
                    self.interval,
                )
                if self._closing:
                    return
                self._full.wait(self.interval)
                self._wake.set()
                continue
            if self._closing:
                return


@atexit.register
def _flush_at_exit() -> None:
    """Rows still waiting when the interpreter exits are written (the writers are daemons)."""
    for buffer in list(_LIVE):
        try:
            buffer.flush()
        except Exception as exc:
            logger.error("rows could not be written at exit (%s)", type(exc).__name__)
