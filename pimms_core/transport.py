"""Building each partner's `httpx.Client`: the one place transport is configured.

Plugins never build a client. The core gives each partner one, with its base URL, auth,
timeouts and user agent, pointed at the live endpoint or, in sandbox mode, at the partner's
simulator through `httpx.WSGITransport` (no socket, no network).
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import certifi
import httpx

from pimms_core import __version__
from pimms_core.auth import TokenAuth
from pimms_core.config import is_loopback
from pimms_core.quota import Budget

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

logger = logging.getLogger("pimms.http")

SANDBOX_HOST = "sandbox.pimms.invalid"
DEADLINE_FACTOR = 3.0
"""An exchange (connect, send, whole body) may take at most this many times the timeout."""


def sandbox_base_url(partner_id: str) -> str:
    """A base URL no real host answers, so a sandbox request can never leave the machine."""
    return f"http://{partner_id}.{SANDBOX_HOST}"


def build_client(
    partner_id: str,
    *,
    base_url: str,
    timeout: float,
    auth: httpx.Auth | None = None,
    budget: Budget | None = None,
    wsgi_app: WSGIApplication | None = None,
    proxy: str | None = None,
) -> httpx.Client:
    """The partner's client; with `wsgi_app`, requests go to the simulator in-process.

    `budget` keeps the partner under its declared quotas: a request waits for its turn
    rather than earning a 429. Every exchange has an overall deadline of
    `DEADLINE_FACTOR * timeout`: httpx's timeouts bound each read, so a partner dripping one
    byte at a time would otherwise hold a call for ever.
    """
    on_request: list[Callable[[httpx.Request], Any]] = [_stamp]
    if budget is not None:
        on_request.insert(0, lambda _request: budget.acquire())
    # The deadline guards against a peer that drips its answer: a network matter. An
    # in-process simulator answers at once, and its exchanges skip that layer.
    transport: httpx.BaseTransport = (
        httpx.WSGITransport(app=wsgi_app)
        if wsgi_app is not None
        else DeadlineTransport(
            httpx.HTTPTransport(verify=_tls_context(), proxy=proxy), DEADLINE_FACTOR * timeout
        )
    )
    client = httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={
            "User-Agent": f"pimms/{__version__} (+{partner_id})",
            "Accept": "application/json",
        },
        follow_redirects=False,
        transport=transport,
        event_hooks={
            "request": on_request,
            "response": [lambda response: _log_response(partner_id, response)],
        },
    )
    if isinstance(auth, TokenAuth):
        auth.base_url = client.base_url
    return client


class _DeadlineStream(httpx.SyncByteStream):
    """A response body that stops with `ReadTimeout` once its exchange's deadline has passed."""

    def __init__(
        self, inner: httpx.SyncByteStream, request: httpx.Request, deadline: float
    ) -> None:
        self._inner = inner
        self._request = request
        self._deadline = deadline

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if time.monotonic() > self._deadline:
                raise httpx.ReadTimeout("the answer outlasted its deadline", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class DeadlineTransport(httpx.BaseTransport):
    """Wraps a transport so that each exchange, body included, ends within `total` seconds."""

    def __init__(self, inner: httpx.BaseTransport, total: float) -> None:
        self._inner = inner
        self._total = total

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self._total
        response = self._inner.handle_request(request)
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)
        response.stream = _DeadlineStream(stream, request, deadline)
        return response

    def close(self) -> None:
        self._inner.close()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
    minus `NO_PROXY`), as httpx would pick it: the core builds its own transport, which
    otherwise would not look. A loopback endpoint (a local simulator) is never proxied."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host or is_loopback(host) or urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client (the CA bundle httpx uses by default,
    certifi's): loading it costs ~60 ms, so it is loaded once, not per partner client."""
    return ssl.create_default_context(cafile=certifi.where())


def _stamp(request: httpx.Request) -> None:
    if logger.isEnabledFor(logging.DEBUG):  # the time is only for the debug line
        request.extensions["pimms_started"] = time.perf_counter()


def _log_response(partner_id: str, response: httpx.Response) -> None:
    """One line per exchange: method, status, time. Never the path, query, headers or body,
    which may carry a reference, a name or a credential."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    started: Any = response.request.extensions.get("pimms_started")
    elapsed = (time.perf_counter() - started) * 1000 if started else 0.0
    logger.debug(
        "%s %s -> HTTP %s in %.1f ms",
        partner_id,
        response.request.method,
        response.status_code,
        elapsed,
    )
