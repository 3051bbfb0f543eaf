"""Keeping secrets and personal data out of logs, by construction.

Messages are written without personal data in the first place (errors name the partner and the
field, never a value; the transport logs method, status and time, never a path or a body), and
`repr()` of the models masks personal fields. This module is the net under that: a logging
filter, installed on the `pimms` loggers (and on httpx's, which log URLs), that replaces every
value it has been told about with `***` before a record reaches any handler:

- secrets: each partner's secret settings, registered when its client is built;
- personal data: names, addresses, descriptions and contact data passing through the facade,
  registered as they pass (the most recent ones are kept, a bounded number).

It also gives `mask_reference`, the form in which the journal keeps an account reference.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_LENGTH = 3
"""Shorter values are not registered: masking every "a" would garble logs and hide nothing."""
PERSONAL_CAPACITY = 5000
"""How many recent personal values (in their written forms) are remembered."""
LOGGER_PREFIXES = ("pimms", "httpx", "httpcore")


def written_forms(value: str) -> set[str]:
    """A value as it may be written in a log line: as is, trimmed, or quoted into a URL."""
    stripped = value.strip()
    return {value, stripped, quote(stripped, safe=""), quote_plus(stripped)}


def mask_reference(reference: str | None, keep: int = 3) -> str | None:
    """`4001234567` -> `*******567`: enough to tell two claims apart, not to find the account."""
    if reference is None:
        return None
    if len(reference) <= keep:
        return "*" * len(reference)
    return "*" * (len(reference) - keep) + reference[-keep:]


class Redactor:
    """The values that must never appear in a log record, and how to take them out of text."""

    def __init__(self, capacity: int = PERSONAL_CAPACITY) -> None:
        self._secrets: set[str] = set()
        self._personal: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._sorted: list[str] | None = None

    def add_secrets(self, values: Iterable[str | None]) -> None:
        with self._lock:
            for value in values:
                if value and len(value.strip()) >= MIN_LENGTH:
                    self._secrets.update(written_forms(value))
                    self._sorted = None

    def add_personal(self, values: Iterable[str | None]) -> None:
        with self._lock:
            for value in values:
                if not value or len(value.strip()) < MIN_LENGTH:
                    continue
                for piece in written_forms(value):
                    if piece not in self._personal:
                        self._sorted = None
                    self._personal[piece] = None
                    self._personal.move_to_end(piece)
            while len(self._personal) > self._capacity:
                self._personal.popitem(last=False)
                self._sorted = None

    def values(self) -> list[str]:
        """Every value, longest first (so a value containing another is masked whole)."""
        with self._lock:
            if self._sorted is None:
                known = self._secrets | set(self._personal)
                self._sorted = sorted(known, key=len, reverse=True)
            return self._sorted

    def redact(self, text: str) -> str:
        for value in self.values():
            if value in text:
                text = text.replace(value, MASK)
        return text

    def clear(self) -> None:
        """Forget every value (tests)."""
        with self._lock:
            self._secrets.clear()
            self._personal.clear()
            self._sorted = None


REDACTOR = Redactor()
"""The process's redactor: the facade registers values in it, the filter reads it."""


class RedactingFilter(logging.Filter):
    """Renders a record's message (and traceback) and masks every known value in it."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep its template only, never its arguments
            message = str(record.msg)
        record.msg = self.redactor.redact(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


FILTER = RedactingFilter()


def install(extra_loggers: Iterable[str] = ()) -> None:
    """Put the filter on the `pimms` loggers, httpx's, and any named (idempotent).

    A filter on a logger does not apply to its children's records, so every existing logger
    under those names gets it; `logger(name)` gives new ones with it already on.
    """
    names = {"pimms", "httpx", "httpcore", *extra_loggers}
    names.update(
        name for name in list(logging.Logger.manager.loggerDict) if name.startswith(LOGGER_PREFIXES)
    )
    for name in names:
        target = logging.getLogger(name)
        if FILTER not in target.filters:
            target.addFilter(FILTER)


def logger(name: str) -> logging.Logger:
    """A logger with the redacting filter on: use it for every logger of the core."""
    found = logging.getLogger(name)
    if FILTER not in found.filters:
        found.addFilter(FILTER)
    return found
