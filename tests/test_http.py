"""The helpers plugins share: path quoting, status mapping, Retry-After, JSON reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from pimms_core.errors import (
    AccountNotFound,
    ClaimRejected,
    PartnerAuthError,
    PartnerProtocolError,
    PartnerUnavailable,
)
from pimms_core.http import json_body, raise_for_status, retry_after, url_path
from pimms_core.payload import Payload


def answer(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "https://x.test/"), **kwargs)  # type: ignore[arg-type]


def test_url_path_quotes_every_character_that_could_change_the_path() -> None:
    assert url_path("/a/{}/b/{}", "../x", "y?z=1#f") == "/a/..%2Fx/b/y%3Fz%3D1%23f"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, PartnerAuthError),
        (403, PartnerAuthError),
        (404, AccountNotFound),
        (408, PartnerUnavailable),
        (429, PartnerUnavailable),
        (500, PartnerUnavailable),
        (502, PartnerUnavailable),
        (422, ClaimRejected),
        (418, PartnerProtocolError),
        (302, PartnerProtocolError),
    ],
)
def test_raise_for_status_rules(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        raise_for_status(
            answer(status),
            "acme",
            not_found=AccountNotFound,
            rejected=lambda p: ClaimRejected(p, "refused"),
        )


def test_success_raises_nothing() -> None:
    raise_for_status(answer(201), "acme")


def test_by_status_wins() -> None:
    with pytest.raises(ClaimRejected):
        raise_for_status(answer(409), "acme", by_status={409: lambda p: ClaimRejected(p, "dup")})


def test_404_without_a_mapping_is_a_protocol_error() -> None:
    with pytest.raises(PartnerProtocolError, match="unexpected HTTP 404"):
        raise_for_status(answer(404), "acme")


def test_retry_after_in_seconds_and_as_a_date() -> None:
    assert retry_after(answer(429, headers={"Retry-After": "12"})) == 12.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    value = retry_after(answer(503, headers={"Retry-After": later}))
    assert value is not None and 50 <= value <= 61
    assert retry_after(answer(503, headers={"Retry-After": "soon"})) is None
    assert retry_after(answer(503, headers={"Retry-After": "99999999"})) == 3600.0
    assert retry_after(answer(503)) is None


def test_unavailable_carries_retry_after_and_status() -> None:
    with pytest.raises(PartnerUnavailable) as caught:
        raise_for_status(answer(429, headers={"Retry-After": "3"}), "acme")
    assert caught.value.retry_after == 3.0
    assert caught.value.status == 429


def test_json_body_refuses_html() -> None:
    with pytest.raises(PartnerProtocolError, match="not JSON"):
        json_body(answer(200, text="<html>", headers={"Content-Type": "text/html"}), "acme")


def test_payload_names_the_missing_field_never_its_value() -> None:
    payload = Payload({"customer": {"name": "Canary", "n": "x", "items": [1]}}, "acme")
    with pytest.raises(PartnerProtocolError, match=r"customer\.status is missing"):
        payload.obj("customer").text("status")
    with pytest.raises(PartnerProtocolError, match=r"customer\.n is not a number") as caught:
        payload.number("customer", "n")
    assert "Canary" not in str(caught.value)
    with pytest.raises(PartnerProtocolError, match=r"customer.items\[0\] is not an object"):
        payload.objects("customer", "items")
    assert payload.objects("customer", "absent") == []
    assert payload.opt_text("customer", "absent") is None


def test_payload_reads_typed_values() -> None:
    payload = Payload(
        {"at": "2026-11-02T09:30:00+01:00", "day": "2026-11-17", "n": 3, "f": True}, "acme"
    )
    assert payload.timestamp("at").utcoffset() == timedelta(hours=1)
    assert payload.day("day").isoformat() == "2026-11-17"
    assert payload.integer("n") == 3 and payload.flag("f") is True
    with pytest.raises(PartnerProtocolError, match="not a date-time"):
        Payload({"at": "yesterday"}, "acme").timestamp("at")
