"""Capturing what the `pimms`, `httpx` and `httpcore` loggers emit during the fault matrix,
case by case, so that each case's records can be searched for canaries.

A record is attributed to the case whose thread emitted it (`as_case` marks a thread), which
holds however many cases run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

CAPTURED_LOGGERS = ("pimms", "httpx", "httpcore")
NO_CASE = "(no case)"

_current = threading.local()


class LogCapture(logging.Handler):
    """Every record of the captured loggers, as text, by the case whose thread emitted it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._by_case: dict[str, list[str]] = {}
        self._lock_texts = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        key = getattr(_current, "case", None) or NO_CASE
        with self._lock_texts:
            self._by_case.setdefault(key, []).append(f"{record.name}: {text}")

    def texts(self, key: str) -> list[str]:
        with self._lock_texts:
            return list(self._by_case.get(key, []))


@contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Capture the loggers at DEBUG (what the most talkative site configuration would show)."""
    capture = LogCapture()
    loggers = [logging.getLogger(name) for name in CAPTURED_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(capture)
            logger.setLevel(level)


@contextmanager
def as_case(key: str) -> Iterator[None]:
    """Attribute this thread's records to the case `key` for the duration."""
    previous = getattr(_current, "case", None)
    _current.case = key
    try:
        yield
    finally:
        _current.case = previous
