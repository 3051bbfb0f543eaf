"""HTTP helpers every plugin uses, so that no plugin rewrites path quoting or error mapping.

`url_path` quotes each value into a path template; `raise_for_status` turns an answer into the
core's errors by the common rules (401/403 auth, 404 not found, 408/429/5xx unavailable with
Retry-After, other 4xx per the plugin's choice); `json_body` reads JSON or raises
`PartnerProtocolError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from pimms_core.errors import (
    PartnerAuthError,
    PartnerProtocolError,
    PartnerUnavailable,
    PimmsError,
)

ErrorFactory = Callable[[str], PimmsError]
"""Builds an error for a partner id (an error class taking the partner id fits)."""

RETRY_AFTER_CAP = 3600.0
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]+")
"""Text `quote` leaves as it is: most references are, and skip it."""


def url_path(template: str, *values: str) -> str:
    """Fill `{}` placeholders with URL-quoted values: a value can never add a path segment.

    >>> url_path("/accounts/{}", "../admin?x=1")
    '/accounts/..%2Fadmin%3Fx%3D1'
    """
    return template.format(*[_quoted(str(value)) for value in values])


def _quoted(value: str) -> str:
    return value if _URL_SAFE.fullmatch(value) else quote(value, safe="")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped; else None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def json_body(response: httpx.Response, partner: str) -> Any:
    """The answer's JSON, or `PartnerProtocolError` saying it was not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise PartnerProtocolError(
            partner, f"HTTP {response.status_code} with a body that is not JSON ({kind})"
        ) from None


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON if it is JSON, else None: for reading error bodies of any shape."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def raise_for_status(
    response: httpx.Response,
    partner: str,
    *,
    not_found: ErrorFactory | None = None,
    rejected: ErrorFactory | None = None,
    by_status: Mapping[int, ErrorFactory] | None = None,
    partner_code: str | None = None,
) -> None:
    """Raise the core's error for a non-2xx answer; return quietly on 2xx.

    - `by_status[status]`, when given, wins over the rules below;
    - 401, 403: `PartnerAuthError`;
    - 404: `not_found(partner)` (for example `AccountNotFound`), else `PartnerProtocolError`;
    - 408, 429, 5xx: `PartnerUnavailable` carrying Retry-After;
    - 400, 409, 422: `rejected(partner)` when given;
    - any other status: `PartnerProtocolError` naming the status (and `partner_code`, the
      partner's machine-readable error code, which the plugin extracts from its error shape).
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    if by_status and status in by_status:
        raise by_status[status](partner)
    suffix = f" ({partner_code})" if partner_code else ""
    if status in (401, 403):
        raise PartnerAuthError(partner, f"the partner refused our credentials (HTTP {status})")
    if status == 404 and not_found is not None:
        raise not_found(partner)
    if status in (408, 429) or status >= 500:
        detail = "rate limit reached" if status == 429 else f"HTTP {status}{suffix}"
        raise PartnerUnavailable(
            partner, detail, retry_after=retry_after(response), status=status, request_sent=True
        )
    if status in (400, 409, 422) and rejected is not None:
        raise rejected(partner)
    raise PartnerProtocolError(partner, f"unexpected HTTP {status}{suffix}")
