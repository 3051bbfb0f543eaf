"""Support for partner simulators: persistent state, a clock, and quota answers.

Each plugin ships a simulator of its partner's API (a small WSGI app). The core hands it a
`SandboxState` so that a claim opened by one CLI command can be followed by the next, and so
that several processes using the same data directory see the same claims. Nothing here knows
any partner.
"""

from __future__ import annotations

from pimms_core.quota import QuotaLimiter

__all__ = ["QuotaLimiter", "SandboxState", "utc_now"]

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def utc_now() -> datetime:
    """The real clock, timezone-aware."""
    return datetime.now(UTC)


class SandboxState:
    """A simulator's state: one JSON document, kept in a file (or in memory when path is None).

    Read-modify-write goes through `transaction()`, which holds an exclusive lock on a lock file
    beside the state file, so concurrent processes never lose each other's claims.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = path
        self._clock = clock
        self._memory: dict[str, Any] = {}
        self._thread_lock = threading.Lock()

    def now(self) -> datetime:
        """The simulator's notion of now (tests may pass a fixed clock)."""
        return self._clock()

    def read(self) -> dict[str, Any]:
        """A snapshot of the state, for inspection (tests count claims with it)."""
        with self.transaction(write=False) as data:
            snapshot: dict[str, Any] = json.loads(json.dumps(data))
            return snapshot

    def claim_refs(self, key: str = "claims") -> set[str]:
        """The references of the claims the simulator holds under `state[key]`.

        The entry is a dict keyed by reference or a list of references; a missing entry is
        no claim. Anything else raises `TypeError`.
        """
        claims = self.read().get(key)
        if claims is None:
            return set()
        if isinstance(claims, dict):
            return set(claims)
        if isinstance(claims, list):
            return {str(c) for c in claims}
        raise TypeError(f"the simulator's {key!r} entry is a {type(claims).__name__}")

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[dict[str, Any]]:
        """Yield the state as a dict; changes made to it are saved atomically on exit.

        `write=False` takes a shared lock and saves nothing: for reads, which must not
        rewrite the whole file.
        """
        with self._thread_lock:
            if self.path is None:
                yield self._memory
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_suffix(self.path.suffix + ".lock")
            with open(lock_path, "a+") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
                try:
                    data = self._load()
                    yield data
                    if write:
                        self._save(data)
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)

    def reset(self) -> None:
        """Forget everything: the seed data comes back, opened claims are gone."""
        with self._thread_lock:
            self._memory = {}
            if self.path is not None and self.path.exists():
                self.path.unlink()

    def _load(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        loaded = json.loads(text) if text.strip() else {}
        return loaded if isinstance(loaded, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        assert self.path is not None
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, sort_keys=True, default=str)
        os.replace(tmp, self.path)
