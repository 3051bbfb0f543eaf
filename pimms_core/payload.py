"""Typed reading of a partner's JSON, where a missing or mistyped field is a clear error.

Partners rename fields and send nulls; a plugin reading `data["customer"]["status"]` would
crash with a KeyError that says nothing. `Payload` reads the same path and raises
`PartnerProtocolError` naming the field (never its value), and tolerates unknown extra fields.

Every account lookup reads dozens of fields through this class, so the success path is kept
short: one traversal per accessor, an exact-type test before the general checks, the field path
of a child kept as a reference to its parent (spelled out only when an error names it), and
batch accessors (`opt_texts`, `opt_texts_in`) reading several fields of an object in one call.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, TypeAlias

import httpx

from pimms_core.errors import PartnerProtocolError
from pimms_core.http import json_body

_MISSING: Any = object()

_Lazy: TypeAlias = "tuple[Payload, tuple[str, ...], int | None]"
"""A child's path, unjoined: its parent, the keys read from it, and its index in a list."""


class Payload:
    """A view on one JSON object of a partner's answer, with typed accessors by key path."""

    __slots__ = ("_path", "data", "partner")

    data: Any
    partner: str
    _path: str | _Lazy

    def __init__(self, data: Any, partner: str, path: str | _Lazy = "") -> None:
        self.data = data
        self.partner = partner
        self._path = path

    @classmethod
    def of(cls, response: httpx.Response, partner: str) -> Payload:
        """The JSON object of an answer (an object, or `PartnerProtocolError`)."""
        data = json_body(response, partner)
        if type(data) is not dict and not isinstance(data, dict):
            raise PartnerProtocolError(partner, "expected a JSON object in the answer")
        return cls(data, partner)

    def _where(self, keys: tuple[str, ...]) -> str:
        """The dotted path of `keys` under this view: built only for an error message."""
        path = self._path
        if not isinstance(path, str):
            parent, parent_keys, index = path
            path = parent._where(parent_keys)
            if index is not None:
                path = f"{path}[{index}]"
            self._path = path  # spelled out once; the parent can then be let go
        return ".".join(filter(None, [path, *keys])) or "(root)"

    def _get(self, keys: tuple[str, ...]) -> Any:
        """The value at `keys`, or `_MISSING`; plain dicts (all of parsed JSON) take `get`.

        The accessors look a single key up themselves (the common case, and a call saved).
        """
        value = self.data
        for key in keys:
            if type(value) is dict:
                value = value.get(key, _MISSING)
            elif isinstance(value, dict) and key in value:
                value = value[key]
            else:
                return _MISSING
        return value

    def _missing(self, keys: tuple[str, ...]) -> PartnerProtocolError:
        return PartnerProtocolError(self.partner, f"field {self._where(keys)} is missing")

    def _wrong(self, keys: tuple[str, ...], expected: str) -> PartnerProtocolError:
        return PartnerProtocolError(self.partner, f"field {self._where(keys)} is not {expected}")

    def has(self, *keys: str) -> bool:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        return value is not _MISSING and value is not None

    def raw(self, *keys: str) -> Any:
        """The value at the path, or None: for fields kept as they are."""
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        return None if value is _MISSING else value

    def obj(self, *keys: str) -> Payload:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if type(value) is not dict and not isinstance(value, dict):
            if value is _MISSING or value is None:
                raise self._missing(keys)
            raise self._wrong(keys, "an object")
        return Payload(value, self.partner, (self, keys, None))

    def opt_obj(self, *keys: str) -> Payload | None:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if value is _MISSING or value is None:
            return None
        if type(value) is not dict and not isinstance(value, dict):
            raise self._wrong(keys, "an object")
        return Payload(value, self.partner, (self, keys, None))

    def objects(self, *keys: str) -> list[Payload]:
        """A list of objects (an absent or null list is empty)."""
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if value is _MISSING or value is None:
            return []
        if type(value) is not list and not isinstance(value, list):
            raise self._wrong(keys, "a list")
        items = []
        partner = self.partner
        for index, item in enumerate(value):
            if type(item) is not dict and not isinstance(item, dict):
                raise PartnerProtocolError(
                    partner, f"{self._where(keys)}[{index}] is not an object"
                )
            items.append(Payload(item, partner, (self, keys, index)))
        return items

    def __iter__(self) -> Iterator[str]:
        return iter(self.data) if isinstance(self.data, dict) else iter(())

    def _as_text(self, value: Any, keys: tuple[str, ...]) -> str:
        """The general case of `text`: an integer is text too, a boolean is not."""
        if value is _MISSING or value is None:
            raise self._missing(keys)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self._wrong(keys, "text")
        return str(value)

    def text(self, *keys: str) -> str:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        return value if type(value) is str else self._as_text(value, keys)

    def opt_text(self, *keys: str) -> str | None:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if type(value) is str:
            return value
        if value is _MISSING or value is None:
            return None
        return self._as_text(value, keys)

    def opt_texts(self, *names: str) -> list[str | None]:
        """`opt_text` of each name (one key each) in one call: a translation reads several
        fields of one object together, and a call per field costs more than the reading.
        """
        data = self.data
        if type(data) is not dict:  # a dict subclass, or no object: `opt_text`'s general case
            return [self.opt_text(name) for name in names]
        return self._texts(data, (), names)

    def opt_texts_in(self, key: str, *names: str) -> list[str | None] | None:
        """`opt_obj(key).opt_texts(*names)` without a view on that object (None when it is
        absent or null): an object read whole, an address say, needs no view of its own.
        """
        data = self.data
        value = data.get(key) if type(data) is dict else None
        if type(value) is not dict:  # absent, null, not an object, or a dict subclass
            found = self.opt_obj(key)
            return None if found is None else found.opt_texts(*names)
        return self._texts(value, (key,), names)

    def _texts(
        self, data: dict[str, Any], where: tuple[str, ...], names: tuple[str, ...]
    ) -> list[str | None]:
        """The text of each name in `data` (the object at `where` under this view); anything
        not text nor null goes through `opt_text`: an integer's digits, or the error naming it.
        """
        values: list[str | None] = []
        for name in names:
            value = data.get(name)
            if type(value) is not str and value is not None:
                value = self.opt_text(*where, name)
            values.append(value)
        return values

    def integer(self, *keys: str) -> int:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if type(value) is int:
            return value
        if value is _MISSING or value is None:
            raise self._missing(keys)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(keys, "an integer")
        return value

    def _as_number(self, value: Any, keys: tuple[str, ...]) -> float:
        if value is _MISSING or value is None:
            raise self._missing(keys)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._wrong(keys, "a number")
        return float(value)

    def number(self, *keys: str) -> float:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        return value if type(value) is float else self._as_number(value, keys)

    def opt_number(self, *keys: str) -> float | None:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if type(value) is float:
            return value
        if value is _MISSING or value is None:
            return None
        return self._as_number(value, keys)

    def flag(self, *keys: str) -> bool:
        data = self.data
        if len(keys) == 1 and type(data) is dict:
            value = data.get(keys[0], _MISSING)
        else:
            value = self._get(keys)
        if value is True or value is False:
            return value
        if value is _MISSING or value is None:
            raise self._missing(keys)
        raise self._wrong(keys, "true or false")

    def _parse_timestamp(self, text: str, keys: tuple[str, ...], fmt: str | None) -> datetime:
        try:
            return datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
        except ValueError:
            raise self._wrong(keys, "a date-time") from None

    def timestamp(self, *keys: str, fmt: str | None = None) -> datetime:
        """An ISO-8601 date-time (or one in `fmt`, a `strptime` format)."""
        return self._parse_timestamp(self.text(*keys), keys, fmt)

    def opt_timestamp(self, *keys: str, fmt: str | None = None) -> datetime | None:
        text = self.opt_text(*keys)
        return None if text is None else self._parse_timestamp(text, keys, fmt)

    def _parse_day(self, text: str, keys: tuple[str, ...]) -> date:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise self._wrong(keys, "a date") from None

    def day(self, *keys: str) -> date:
        return self._parse_day(self.text(*keys), keys)

    def opt_day(self, *keys: str) -> date | None:
        text = self.opt_text(*keys)
        return None if text is None else self._parse_day(text, keys)
