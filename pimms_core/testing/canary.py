"""Canary values: a fake secret and fake personal data that must never come back out.

Feed them through every path (as credentials, names, descriptions, contact data), then look for
them in everything a site operator could see: log records, exception text, CLI output. A value
counts as found in any of the forms it could be written in (as is, case-folded, URL-quoted,
base64 as in a Basic auth header).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from attrs import field, frozen


@frozen
class Canary:
    """The canary values. Each one is unlikely to appear anywhere by chance."""

    secret: str = "canary-secret-Q7v3X9pLw2"
    last_name: str = "Canarilastname"
    description: str = "Canary description 5e1f: the resident's private story"
    email: str = "canary.resident.5e1f@example.invalid"
    phone: str = "0699551234"
    extra: Mapping[str, str] = field(factory=dict)
    """More values to look for, by what they are ("holder name": a name a partner returned)."""

    def personal(self) -> dict[str, str]:
        """The personal data canaries, by what they are."""
        return {
            "last name": self.last_name,
            "description": self.description,
            "email": self.email,
            "phone": self.phone,
        }

    def values(self) -> dict[str, str]:
        """Every value that must stay hidden, by what it is."""
        return {"secret": self.secret, **self.personal(), **self.extra}

    def with_values(self, **named: str | None) -> Canary:
        """The same canaries plus other values to hide (empty or very short ones are ignored:
        a two-letter value would be found everywhere by chance)."""
        kept = {k.replace("_", " "): v for k, v in named.items() if v and len(v.strip()) >= 4}
        return Canary(
            self.secret,
            self.last_name,
            self.description,
            self.email,
            self.phone,
            {**self.extra, **kept},
        )

    def leaks(self, texts: Iterable[tuple[str, str]]) -> list[str]:
        """Where any canary shows: one line per finding, `"<what> found in <where>: <text>"`.

        `texts` are (where, text) pairs, such as ("log record", message).
        """
        forms = {what: _forms(value) for what, value in self.values().items()}
        found = []
        for where, text in texts:
            folded = text.casefold()
            for what, variants in forms.items():
                at = min((i for v in variants if (i := folded.find(v.casefold())) >= 0), default=-1)
                if at >= 0:
                    start = max(at - 100, 0)
                    excerpt = ("..." if start else "") + text[start : at + 200]
                    found.append(f"{what} found in {where}: {excerpt!r}")
        return found


def _forms(value: str) -> set[str]:
    encoded = {
        base64.b64encode(f"{value}:".encode()).decode().rstrip("="),
        base64.b64encode(value.encode()).decode().rstrip("="),
    }
    return {value, quote(value, safe=""), quote_plus(value), *{e[:-2] for e in encoded}}


CANARY = Canary()
"""The default canaries."""
