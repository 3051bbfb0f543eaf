"""Typed reading of a partner's JSON, where a missing or mistyped field is a clear error.

Partners rename fields and send nulls; a plugin reading `data["customer"]["status"]` would
crash with a KeyError that says nothing. `Payload` reads the same path and raises
`PartnerProtocolError` naming the field (never its value), and tolerates unknown extra fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import httpx

from pimms_core.errors import PartnerProtocolError
from pimms_core.http import json_body

_MISSING = object()


class Payload:
    """A view on one JSON object of a partner's answer, with typed accessors by key path."""

    __slots__ = ("_path", "data", "partner")

    def __init__(self, data: Any, partner: str, path: str = "") -> None:
        self.data = data
        self.partner = partner
        self._path = path

    @classmethod
    def of(cls, response: httpx.Response, partner: str) -> Payload:
        """The JSON object of an answer (an object, or `PartnerProtocolError`)."""
        payload = cls(json_body(response, partner), partner)
        if not isinstance(payload.data, dict):
            raise PartnerProtocolError(partner, "expected a JSON object in the answer")
        return payload

    def _where(self, keys: tuple[str, ...]) -> str:
        return ".".join(filter(None, [self._path, *keys])) or "(root)"

    def _get(self, keys: tuple[str, ...]) -> Any:
        value = self.data
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
        return value

    def _need(self, keys: tuple[str, ...]) -> Any:
        value = self._get(keys)
        if value is _MISSING or value is None:
            raise PartnerProtocolError(self.partner, f"field {self._where(keys)} is missing")
        return value

    def _wrong(self, keys: tuple[str, ...], expected: str) -> PartnerProtocolError:
        return PartnerProtocolError(self.partner, f"field {self._where(keys)} is not {expected}")

    def has(self, *keys: str) -> bool:
        return self._get(keys) not in (_MISSING, None)

    def raw(self, *keys: str) -> Any:
        """The value at the path, or None: for fields kept as they are."""
        value = self._get(keys)
        return None if value is _MISSING else value

    def obj(self, *keys: str) -> Payload:
        value = self._need(keys)
        if not isinstance(value, dict):
            raise self._wrong(keys, "an object")
        return Payload(value, self.partner, self._where(keys))

    def opt_obj(self, *keys: str) -> Payload | None:
        return self.obj(*keys) if self.has(*keys) else None

    def objects(self, *keys: str) -> list[Payload]:
        """A list of objects (an absent or null list is empty)."""
        value = self._get(keys)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            raise self._wrong(keys, "a list")
        where = self._where(keys)
        items = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise PartnerProtocolError(self.partner, f"{where}[{index}] is not an object")
            items.append(Payload(item, self.partner, f"{where}[{index}]"))
        return items

    def __iter__(self) -> Iterator[str]:
        return iter(self.data) if isinstance(self.data, dict) else iter(())

    def text(self, *keys: str) -> str:
        value = self._need(keys)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self._wrong(keys, "text")
        return str(value)

    def opt_text(self, *keys: str) -> str | None:
        return self.text(*keys) if self.has(*keys) else None

    def integer(self, *keys: str) -> int:
        value = self._need(keys)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(keys, "an integer")
        return value

    def number(self, *keys: str) -> float:
        value = self._need(keys)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(keys, "a number")
        return float(value)

    def opt_number(self, *keys: str) -> float | None:
        return self.number(*keys) if self.has(*keys) else None

    def flag(self, *keys: str) -> bool:
        value = self._need(keys)
        if not isinstance(value, bool):
            raise self._wrong(keys, "true or false")
        return value

    def timestamp(self, *keys: str, fmt: str | None = None) -> datetime:
        """An ISO-8601 date-time (or one in `fmt`, a `strptime` format)."""
        text = self.text(*keys)
        try:
            return datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            raise self._wrong(keys, "a date-time") from None

    def opt_timestamp(self, *keys: str, fmt: str | None = None) -> datetime | None:
        return self.timestamp(*keys, fmt=fmt) if self.has(*keys) else None

    def day(self, *keys: str) -> date:
        text = self.text(*keys)
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise self._wrong(keys, "a date") from None

    def opt_day(self, *keys: str) -> date | None:
        return self.day(*keys) if self.has(*keys) else None
