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
PERSONAL_CAPACITY = 2000
"""How many recent personal values are remembered (raw values: each has up to four written forms,
so about as many forms as the 5000 once counted, and as much work per filtered record)."""
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
    """The values that must never appear in a log record, and how to take them out of text.

    Personal values are registered on every call of the facade but read only when a record is
    logged, which is rare (debug logs are usually off). So registering only remembers the raw
    value; its written forms are worked out when a record is next filtered, for the values
    registered since the last time only, and the longest-first list is rebuilt only when the set
    of forms actually changed.
    """

    def __init__(self, capacity: int = PERSONAL_CAPACITY) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._personal: OrderedDict[str, None] = OrderedDict()
        """Raw personal values, least recently registered first: the eviction order."""
        self._pending: dict[str, None] = {}
        """Personal values registered since the last `values()`: their forms are not known yet."""
        self._forms: dict[str, tuple[str, ...]] = {}
        """The written forms of every other personal value still remembered."""
        self._released: list[tuple[str, ...]] = []
        """The forms of values forgotten since the last `values()`, to be let go of then."""
        self._counts: dict[str, int] = {}
        """Form -> how many remembered values have it (a secret's forms are held forever)."""
        self._by_length: dict[int, set[str]] = {}
        """The forms in `_counts`, by length: the longest-first list without a sort."""
        self._changed = False
        self._sorted: tuple[str, ...] = ()

    def add_secrets(self, values: Iterable[str | None]) -> None:
        """Remember secrets for good (a handful, once per partner: their forms are taken now)."""
        with self._lock:
            for value in values:
                if value and len(value.strip()) >= MIN_LENGTH:
                    for form in written_forms(value):
                        self._hold(form)

    def add_personal(self, values: Iterable[str | None]) -> None:
        """Remember recent personal values: cheap, as it runs on every call of the facade.

        A value already known only becomes the most recent again; beyond `capacity` values, the
        least recent is forgotten.
        """
        fresh = [value for value in values if value and len(value.strip()) >= MIN_LENGTH]
        if not fresh:
            return
        with self._lock:
            personal = self._personal
            for value in fresh:
                if value in personal:
                    personal.move_to_end(value)
                else:
                    personal[value] = None
                    self._pending[value] = None
            while len(personal) > self._capacity:
                oldest, _ = personal.popitem(last=False)
                if oldest in self._pending:
                    del self._pending[oldest]
                else:
                    self._released.append(self._forms.pop(oldest))

    def values(self) -> tuple[str, ...]:
        """Every form of every value, longest first (so a value containing another is masked whole).

        A snapshot, rebuilt only when the forms changed: a record being filtered in one thread
        is not disturbed by values registered in another.
        """
        with self._lock:
            if self._pending or self._released:
                self._settle()
            if self._changed:
                self._sorted = tuple(
                    form
                    for length in sorted(self._by_length, reverse=True)
                    for form in self._by_length[length]
                )
                self._changed = False
            return self._sorted

    def redact(self, text: str) -> str:
        for value in self.values():
            if value in text:
                text = text.replace(value, MASK)
        return text

    def clear(self) -> None:
        """Forget every value (tests)."""
        with self._lock:
            self._personal.clear()
            self._pending.clear()
            self._forms.clear()
            self._released.clear()
            self._counts.clear()
            self._by_length.clear()
            self._changed = False
            self._sorted = ()

    def _settle(self) -> None:
        """Let go of the forms of forgotten values, then work out those of new ones (locked)."""
        for forms in self._released:
            for form in forms:
                self._let_go(form)
        self._released.clear()
        for value in self._pending:
            forms = tuple(written_forms(value))
            self._forms[value] = forms
            for form in forms:
                self._hold(form)
        self._pending.clear()

    def _hold(self, form: str) -> None:
        """Count one more value with this form (locked): a form is masked while any value has it."""
        count = self._counts.get(form, 0)
        self._counts[form] = count + 1
        if not count:
            self._by_length.setdefault(len(form), set()).add(form)
            self._changed = True

    def _let_go(self, form: str) -> None:
        """Count one value fewer (locked): " Dupont " gone, "Dupont" may still need its form."""
        count = self._counts[form] - 1
        if count:
            self._counts[form] = count
            return
        del self._counts[form]
        same_length = self._by_length[len(form)]
        same_length.discard(form)
        if not same_length:
            del self._by_length[len(form)]
        self._changed = True


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
