"""What a broken partner answers: HTML error pages, and its JSON garbled, cut or changed.

The rewrites take the partner's answer body and return the faulty one; the `FaultProxy`
applies them (`Fault.rewritten`) to answers that otherwise stay whole HTTP messages.
"""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable
from typing import Any


def html_page(status: int) -> bytes:
    """The kind of error page a gateway or a crashed application server sends."""
    reason = phrase(status)
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
        f"<body><h1>{reason}</h1><p>The server encountered a problem.</p><hr>"
        f"<address>nginx</address></body></html>\n"
    ).encode()


def malformed_json(body: bytes) -> bytes:
    """Something that starts like JSON and is not."""
    return b'{"status": "OK", "data": [1, 2,, }' + b"\x00garbage"


def truncated_json(body: bytes) -> bytes:
    """The first half of the answer, sent as if it were complete."""
    return body[: max(1, len(body) // 2)]


def renamed_fields(body: bytes) -> bytes:
    """Every key of the JSON answer renamed (`status` -> `statusV2`), as after an API change."""
    return _json_rewrite(body, lambda data: _rename(data))


UNKNOWN_STATUS = "PIMMS_FAULT_UNKNOWN_STATUS"
_STATUS_KEY = re.compile(r"(?i)status|statut|etat|état|state")


def unknown_status(body: bytes) -> bytes:
    """Every status-like field (`status`, `statut`, `etat`...) set to a code nobody declared."""
    return _json_rewrite(body, lambda data: _restatus(data))


def _json_rewrite(body: bytes, change: Callable[[Any], Any]) -> bytes:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    return json.dumps(change(data), ensure_ascii=False).encode()


def _rename(data: Any) -> Any:
    if isinstance(data, dict):
        return {f"{key}V2": _rename(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_rename(item) for item in data]
    return data


def _restatus(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            key: UNKNOWN_STATUS
            if isinstance(value, str) and _STATUS_KEY.fullmatch(key)
            else _restatus(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_restatus(item) for item in data]
    return data


def phrase(status: int) -> str:
    """The reason phrase of an HTTP status (`Unknown` for one nobody defined)."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
