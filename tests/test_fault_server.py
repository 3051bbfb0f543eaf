"""The fault-injecting proxy: each fault does on a real loopback socket what it says.

A tiny WSGI app stands for a partner: it records what reached it, so each test can tell a fault
that let the request through from one that did not.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from pimms_core.http import json_or_none
from pimms_core.serve import serve_app
from pimms_core.testing.fault_bodies import (
    UNKNOWN_STATUS,
    html_page,
    malformed_json,
    renamed_fields,
    truncated_json,
    unknown_status,
)
from pimms_core.testing.fault_server import Fault, FaultProxy, Match

TIMEOUT = 0.3
BODY = {"id": "C-1", "status": "OPEN", "history": [{"statut": "NEW", "at": "2026-01-01"}]}


class Partner:
    """A WSGI app answering every request with BODY, remembering what reached it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:]: v for k, v in environ.items() if k.startswith("HTTP_")}
        with self._lock:
            self.received.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], body, headers))
        payload = json.dumps(BODY).encode()
        status = "201 Created" if environ["REQUEST_METHOD"] == "POST" else "200 OK"
        start_response(status, [("Content-Type", "application/json"), ("X-Partner", "yes")])
        return [payload]


@pytest.fixture
def partner() -> Partner:
    return Partner()


@pytest.fixture
def proxy(partner: Partner) -> Iterator[FaultProxy]:
    with (
        serve_app(partner, quiet=True).start() as simulator,
        FaultProxy(simulator.base_url) as proxy,
    ):
        yield proxy


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=TIMEOUT, trust_env=False) as client:
        yield client


def test_disarmed_it_forwards_requests_and_answers_faithfully(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    response = client.post(
        "/claims?x=1", json={"a": 1}, headers={"Idempotency-Key": "K1", "Authorization": "B t"}
    )
    assert response.status_code == 201
    assert response.json() == BODY
    assert response.headers["X-Partner"] == "yes"
    assert response.headers["Connection"] == "close"
    method, path, body, headers = partner.received[0]
    assert (method, path, json.loads(body)) == ("POST", "/claims", {"a": 1})
    assert headers["IDEMPOTENCY_KEY"] == "K1"
    assert headers["AUTHORIZATION"] == "B t"
    seen = proxy.requests[0]
    assert (seen.method, seen.path, seen.fault, seen.forwarded) == ("POST", "/claims", None, True)
    assert seen.upstream_status == 201


def test_refused_closes_the_port_and_disarm_opens_it_again(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.refuse())
    with pytest.raises(httpx.ConnectError):
        client.get("/accounts/1")
    proxy.disarm()
    assert client.get("/accounts/1").status_code == 200
    assert len(partner.received) == 1


def test_refused_cannot_be_counted() -> None:
    with (
        serve_app(Partner(), quiet=True).start() as simulator,
        FaultProxy(simulator.base_url) as proxy,
        pytest.raises(ValueError, match="without times"),
    ):
        proxy.arm(Fault.refuse(), times=1)


def test_silence_reads_nothing_and_says_nothing(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.silence())
    with pytest.raises(httpx.ReadTimeout):
        client.get("/accounts/1")
    assert partner.received == []
    assert proxy.held == 1


def test_a_fault_armed_for_one_time_applies_once(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.silence(), times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/accounts/1")
    assert client.get("/accounts/1").status_code == 200
    assert [r.fault for r in proxy.requests] == ["silence", None]


@pytest.mark.parametrize("forward", [False, True])
def test_hold_reads_the_request_forwards_it_or_not_and_never_answers(
    proxy: FaultProxy, partner: Partner, client: httpx.Client, forward: bool
) -> None:
    proxy.arm(Fault.hold(forward=forward))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/claims", json={"a": 1})
    assert time.monotonic() - started >= TIMEOUT * 0.9
    assert len(partner.received) == (1 if forward else 0)
    assert proxy.requests[-1].forwarded is forward
    assert proxy.wait_until(lambda p: p.held == 1, timeout=2)


def test_reset_cuts_the_answer_with_a_tcp_reset_after_the_partner_acted(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.reset())
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.post("/claims", json={"a": 1})
    assert len(partner.received) == 1


def test_stall_sends_half_the_body_then_nothing(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.stall())
    with pytest.raises(httpx.ReadTimeout):
        client.get("/accounts/1")
    proxy.disarm()
    assert client.get("/accounts/1").content == json.dumps(BODY).encode()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_respond_answers_an_html_error_page_without_the_partner(
    proxy: FaultProxy, partner: Partner, client: httpx.Client, status: int
) -> None:
    proxy.arm(Fault.respond(status))
    response = client.get("/accounts/1")
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.content == html_page(status)
    assert partner.received == []


def test_respond_after_forwarding_lets_the_partner_act_first(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.respond(500, forward=True))
    assert client.post("/claims", json={}).status_code == 500
    assert len(partner.received) == 1


def test_429_carries_its_retry_after(proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.arm(Fault.respond(429, headers=(("Retry-After", "7"),)))
    response = client.get("/accounts/1")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_an_unknown_http_status_goes_through_as_is(proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.arm(Fault.respond(461))
    assert client.get("/accounts/1").status_code == 461


@pytest.mark.parametrize(
    ("rewrite", "check"),
    [
        (malformed_json, lambda r: json_or_none(r) is None),
        (truncated_json, lambda r: json_or_none(r) is None),
        (renamed_fields, lambda r: r.json()["statusV2"] == "OPEN"),
        (unknown_status, lambda r: r.json()["status"] == UNKNOWN_STATUS),
    ],
)
def test_rewrites_change_the_partners_answer_which_stays_a_whole_http_message(
    proxy: FaultProxy, partner: Partner, client: httpx.Client, rewrite: Any, check: Any
) -> None:
    proxy.arm(Fault.rewritten("x", rewrite))
    response = client.get("/accounts/1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert check(response)
    assert len(partner.received) == 1


def test_the_rewrites_themselves() -> None:
    body = json.dumps(BODY).encode()
    assert len(truncated_json(body)) == len(body) // 2
    assert json.loads(renamed_fields(body)) == {
        "idV2": "C-1",
        "statusV2": "OPEN",
        "historyV2": [{"statutV2": "NEW", "atV2": "2026-01-01"}],
    }
    assert json.loads(unknown_status(body)) == {
        "id": "C-1",
        "status": UNKNOWN_STATUS,
        "history": [{"statut": UNKNOWN_STATUS, "at": "2026-01-01"}],
    }
    assert unknown_status(b"<html>") == b"<html>"  # not JSON: left alone
    with pytest.raises(ValueError):
        json.loads(malformed_json(body))


def test_slow_drip_delivers_the_whole_answer_in_pieces_each_within_the_timeout(
    proxy: FaultProxy, client: httpx.Client
) -> None:
    gap = TIMEOUT / 4
    proxy.arm(Fault.drip(chunks=5, gap=gap))
    started = time.monotonic()
    response = client.get("/accounts/1")
    assert response.json() == BODY
    assert time.monotonic() - started >= 4 * gap * 0.9


def test_an_endless_drip_is_never_a_read_timeout_for_the_client(proxy: FaultProxy) -> None:
    """The point of this fault: per-read timeouts never end such an answer; only an overall
    deadline does. The proxy going away ends it here."""
    proxy.arm(Fault.drip(chunks=0, gap=TIMEOUT / 4, endless=True))
    outcome: list[BaseException | int] = []

    def call() -> None:
        with httpx.Client(base_url=proxy.url, timeout=TIMEOUT, trust_env=False) as client:
            try:
                outcome.append(client.get("/accounts/1").status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(4 * TIMEOUT)
    assert thread.is_alive() and outcome == []  # still reading, long after the read timeout
    proxy.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError)


def test_match_limits_a_fault_to_some_methods_or_to_requests_carrying_a_value(
    proxy: FaultProxy, partner: Partner, client: httpx.Client
) -> None:
    proxy.arm(Fault.respond(503), match=Match(methods=("POST",)))
    assert client.get("/claims", params={"key": "K9"}).status_code == 200
    assert client.post("/claims", json={}).status_code == 503
    proxy.arm(Fault.respond(503), match=Match(contains=b"K9"))
    assert client.get("/claims", params={"key": "K9"}).status_code == 503
    assert client.post("/claims", headers={"Idempotency-Key": "K9"}).status_code == 503
    assert client.post("/claims", json={"external_id": "K9"}).status_code == 503
    assert client.post("/claims", json={"external_id": "K8"}).status_code == 201


def test_wait_until_sees_requests_as_they_arrive(proxy: FaultProxy) -> None:
    proxy.arm(Fault.hold(forward=True))
    thread = threading.Thread(target=_post_quietly, args=(proxy.url,), daemon=True)
    thread.start()
    assert proxy.wait_until(lambda p: any(r.forwarded for r in p.requests), timeout=5)
    assert not proxy.wait_until(lambda p: len(p.requests) > 5, timeout=0.1)


def _post_quietly(url: str) -> None:
    with (
        httpx.Client(base_url=url, timeout=2.0, trust_env=False) as client,
        contextlib.suppress(httpx.HTTPError),
    ):
        client.post("/claims", json={})


def test_closing_lets_held_connections_go_and_frees_the_port(partner: Partner) -> None:
    with serve_app(partner, quiet=True).start() as simulator:
        proxy = FaultProxy(simulator.base_url)
        proxy.arm(Fault.hold(forward=False))
        thread = threading.Thread(target=_post_quietly, args=(proxy.url,), daemon=True)
        thread.start()
        assert proxy.wait_until(lambda p: p.held == 1, timeout=5)
        proxy.close()
        thread.join(5)
        assert not thread.is_alive()
        assert proxy.wait_until(lambda p: p.held == 0, timeout=5)
        with pytest.raises(httpx.ConnectError):
            httpx.get(proxy.url, timeout=1.0, trust_env=False)


def test_the_simulator_server_serves_a_wsgi_app_on_loopback(partner: Partner) -> None:
    with serve_app(partner, quiet=True).start() as simulator:
        assert simulator.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(simulator.base_url + "/x", trust_env=False).json() == BODY
    with pytest.raises(httpx.ConnectError):
        httpx.get(simulator.base_url + "/x", timeout=1.0, trust_env=False)
