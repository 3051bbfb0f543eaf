"""A fault-injecting HTTP proxy on loopback, in front of a partner's simulator.

The fault suite runs a partner plugin in live mode against real sockets: the plugin's simulator
is served on 127.0.0.1 (`pimms_core.serve.serve_app`), and a `FaultProxy` sits in front of it.
Armed with a `Fault`, the proxy does to the matching requests what a broken partner or network
does: refuse connections, accept and stay silent, take the request (forwarding it or not) and
never answer, reset the connection halfway through the body, answer an HTML error page or a
429 with Retry-After, garble, cut or rename the JSON of the answer, or drip it slowly.
Disarmed, it forwards faithfully.

```python
with (
    serve_app(app, poll_interval=SIMULATOR_POLL, quiet=True).start() as simulator,
    FaultProxy(simulator.base_url) as proxy,
):
    proxy.arm(Fault.hold(forward=True), match=Match(methods=("POST",)))
    ...  # the client times out; the simulator holds the claim
    proxy.disarm()
```

Requests are parsed with the standard library (`http.server`) and forwarded with httpx; the
faulty bodies come from `fault_bodies`. Every answer is sent with `Connection: close`, so each
request comes on a connection of its own and a connection-level fault (refused, silence)
applies to each request. Nothing here knows any partner; nothing is logged.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self, cast

import attrs
import httpx
from attrs import field, frozen

from pimms_core.testing.fault_bodies import html_page, phrase

LOOPBACK = "127.0.0.1"
HOLD_LIMIT = 120.0
"""Seconds after which a held connection is let go even if nobody released it."""
SIMULATOR_POLL = 0.05
"""`serve_app`'s poll interval for a simulator behind a proxy: the matrix closes hundreds."""

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
    }
)


# --- what to do ----------------------------------------------------------------------------------


class FaultKind(StrEnum):
    REFUSE = "refuse"
    """Nothing listens: connections are refused by the kernel."""
    SILENCE = "silence"
    """The connection is accepted and nothing is read or written."""
    HOLD = "hold"
    """The request is read (and forwarded, with `forward`), and no answer ever comes."""
    RESPOND = "respond"
    """A canned answer (an HTML error page, a 429...) instead of the partner's."""
    REWRITE = "rewrite"
    """The partner's answer with its body rewritten (garbled, cut, renamed fields...)."""
    RESET = "reset"
    """The partner's answer, cut halfway through its body by a TCP reset."""
    STALL = "stall"
    """The partner's answer, stopped halfway through its body; the connection stays open."""
    DRIP = "drip"
    """The partner's answer, sent in `drip_chunks` pieces `drip_gap` seconds apart."""


Rewrite = Callable[[bytes], bytes]


@frozen
class Fault:
    """One misbehaviour of the partner or the network. Build them with the class methods."""

    name: str
    kind: FaultKind
    forward: bool = False
    """Whether the request reaches the partner before the fault (it may then have acted)."""
    status: int | None = None
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    rewrite: Rewrite | None = field(default=None, eq=False)
    drip_chunks: int = 0
    drip_gap: float = 0.0
    endless: bool = False
    """DRIP only: after the answer's head, drip the body forever (it never completes)."""

    @classmethod
    def refuse(cls) -> Fault:
        return cls("refused", FaultKind.REFUSE)

    @classmethod
    def silence(cls) -> Fault:
        return cls("silence", FaultKind.SILENCE)

    @classmethod
    def hold(cls, *, forward: bool) -> Fault:
        return cls("hold_forwarded" if forward else "hold", FaultKind.HOLD, forward=forward)

    @classmethod
    def respond(
        cls,
        status: int,
        *,
        body: bytes | None = None,
        content_type: str = "text/html; charset=utf-8",
        headers: tuple[tuple[str, str], ...] = (),
        forward: bool = False,
        name: str | None = None,
    ) -> Fault:
        return cls(
            name or f"http_{status}",
            FaultKind.RESPOND,
            forward=forward,
            status=status,
            body=html_page(status) if body is None else body,
            content_type=content_type,
            headers=headers,
        )

    @classmethod
    def rewritten(cls, name: str, rewrite: Rewrite) -> Fault:
        return cls(name, FaultKind.REWRITE, forward=True, rewrite=rewrite)

    @classmethod
    def reset(cls) -> Fault:
        return cls("reset_mid_body", FaultKind.RESET, forward=True)

    @classmethod
    def stall(cls) -> Fault:
        return cls("stall_mid_body", FaultKind.STALL, forward=True)

    @classmethod
    def drip(cls, *, chunks: int, gap: float, endless: bool = False) -> Fault:
        name = "endless_drip" if endless else "slow_drip"
        return cls(
            name, FaultKind.DRIP, forward=True, drip_chunks=chunks, drip_gap=gap, endless=endless
        )


@frozen
class Match:
    """Which requests a fault applies to: all of them by default.

    `methods` limits it to these HTTP methods; `contains` to requests whose request line,
    headers or body contain these bytes (an idempotency key, say). Connection-level faults
    (refused, silence) apply to every connection whatever the match: nothing is read.
    """

    methods: tuple[str, ...] = ()
    contains: bytes = b""

    def __call__(self, request: SeenRequest) -> bool:
        if self.methods and request.method not in self.methods:
            return False
        return not self.contains or self.contains in request.raw


@frozen
class SeenRequest:
    """A request the proxy received, and what it did with it."""

    method: str
    path: str
    raw: bytes = field(repr=False)
    """Request line, headers and body: for matching only."""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    fault: str | None = None
    forwarded: bool = False
    upstream_status: int | None = None


def credentials(requests: list[SeenRequest]) -> set[str]:
    """Every credential the requests carried in an Authorization header (a bearer token, the
    base64 of a Basic pair...): secrets too, though no setting holds them."""
    found = set()
    for request in requests:
        for name, value in request.headers:
            if name.lower() == "authorization" and value.strip():
                found.add(value.strip().split(" ", 1)[-1])
    return found


# --- the proxy -----------------------------------------------------------------------------------


@frozen
class _Upstream:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class _Plan:
    """The armed fault, its match and how many more times it applies (None: always)."""

    def __init__(self, fault: Fault, match: Match, times: int | None) -> None:
        self.fault = fault
        self.match = match
        self.remaining = times


class FaultProxy:
    """An HTTP proxy on loopback that forwards to `upstream`, or misbehaves when armed."""

    def __init__(self, upstream: str, *, host: str = LOOPBACK, read_timeout: float = 30.0) -> None:
        self.host = host
        # Plain HTTP on loopback: no TLS, so no certificate store to load for each proxy.
        self._upstream = httpx.Client(
            base_url=upstream, timeout=30.0, trust_env=False, verify=False
        )
        self._read_timeout = read_timeout
        self._lock = threading.Condition()
        self._plan: _Plan | None = None
        self._seen: list[SeenRequest] = []
        self._held = 0
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        # The port stays reserved (bound, never listening) for the proxy's whole life, so that
        # "refused" can close the listener and reopen it on the same port, race-free.
        self._reservation = self._bound_socket(0)
        self.port: int = self._reservation.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._listen()

    # -- arming --------------------------------------------------------------------------------

    def arm(self, fault: Fault, *, match: Match | None = None, times: int | None = None) -> None:
        """Apply `fault` to matching requests from now on (`times` times, or always)."""
        if fault.kind is FaultKind.REFUSE and times is not None:
            raise ValueError("a refused connection cannot be counted: arm it without times")
        with self._lock:
            self._plan = _Plan(fault, match or Match(), times)
        if fault.kind is FaultKind.REFUSE:
            self._unlisten()
        else:
            self._listen()

    def disarm(self) -> None:
        """Forward faithfully again (held connections stay held until `close`)."""
        with self._lock:
            self._plan = None
        self._listen()

    @property
    def requests(self) -> list[SeenRequest]:
        """The requests received so far, oldest first."""
        with self._lock:
            return list(self._seen)

    @property
    def held(self) -> int:
        """How many connections are being held (silence, hold, stall, endless drip) right now."""
        with self._lock:
            return self._held

    def wait_until(self, condition: Callable[[FaultProxy], bool], timeout: float = 10.0) -> bool:
        """Wait until `condition(proxy)` holds (checked at each request and each hold)."""
        end = time.monotonic() + timeout
        with self._lock:
            while not condition(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
            return True

    # -- life cycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening, let every held connection go, and free the port."""
        self._closing.set()
        self._unlisten()
        with self._lock:
            connections = list(self._connections)
            self._lock.notify_all()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._reservation.close()
        self._upstream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- listening -----------------------------------------------------------------------------

    def _bound_socket(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, port))
        return sock

    def _listen(self) -> None:
        with self._lock:
            if self._listener is not None or self._closing.is_set():
                return
            listener = self._bound_socket(self.port)
            listener.listen(64)
            listener.settimeout(0.05)
            self._listener = listener
            self._accepting = threading.Thread(
                target=self._accept_loop, args=(listener,), name=f"proxy:{self.port}", daemon=True
            )
            self._accepting.start()

    def _unlisten(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            accepting, self._accepting = self._accepting, None
        if listener is not None:
            listener.close()
        if accepting is not None and accepting is not threading.current_thread():
            accepting.join(timeout=5)

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                conn, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(self._read_timeout)
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    # -- serving -------------------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._take_connection_fault():
                self._hold()
                return
            _Handler(conn, self)
        except OSError:
            pass
        finally:
            with self._lock:
                self._connections.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _take_connection_fault(self) -> bool:
        with self._lock:
            plan = self._plan
            if plan is None or plan.fault.kind is not FaultKind.SILENCE:
                return False
            if plan.remaining is not None:
                if plan.remaining <= 0:
                    return False
                plan.remaining -= 1
            self._seen.append(SeenRequest("?", "?", b"", fault=plan.fault.name))
            self._lock.notify_all()
            return True

    def _take(self, request: SeenRequest) -> tuple[Fault | None, int]:
        """Record a request; say which fault, if any, applies to it, and where it is recorded."""
        with self._lock:
            plan = self._plan
            fault: Fault | None = None
            if (
                plan is not None
                and plan.fault.kind is not FaultKind.SILENCE
                and (plan.remaining is None or plan.remaining > 0)
                and plan.match(request)
            ):
                fault = plan.fault
                if plan.remaining is not None:
                    plan.remaining -= 1
            self._seen.append(attrs.evolve(request, fault=fault.name if fault else None))
            self._lock.notify_all()
            return fault, len(self._seen) - 1

    def _forwarded(self, index: int, upstream: _Upstream) -> None:
        with self._lock:
            self._seen[index] = attrs.evolve(
                self._seen[index], forwarded=True, upstream_status=upstream.status
            )
            self._lock.notify_all()

    def _hold(self) -> None:
        """Keep the connection open, saying nothing, until the proxy closes."""
        with self._lock:
            self._held += 1
            self._lock.notify_all()
        try:
            self._closing.wait(HOLD_LIMIT)
        finally:
            with self._lock:
                self._held -= 1
                self._lock.notify_all()

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Upstream:
        kept = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
        try:
            response = self._upstream.request(method, target, headers=kept, content=body)
        except httpx.HTTPError:
            return _Upstream(502, (("Content-Type", "text/html"),), html_page(502))
        answer_headers = tuple(
            (k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP
        )
        return _Upstream(response.status_code, answer_headers, response.content)


def _head(status: int, headers: tuple[tuple[str, str], ...], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {phrase(status)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


class _Handler(BaseHTTPRequestHandler):
    """One connection, one request (`Connection: close`), through the proxy's plan."""

    protocol_version = "HTTP/1.1"

    def __init__(self, conn: socket.socket, proxy: FaultProxy) -> None:
        self.proxy = proxy
        # http.server's handler wants a server; nothing of it is used here but the proxy.
        super().__init__(conn, (proxy.host, 0), cast("socketserver.BaseServer", proxy))

    def log_message(self, format: str, *args: Any) -> None:
        return

    def handle(self) -> None:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "send a Content-Length")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = list(self.headers.items())
        raw = self.raw_requestline + bytes(self.headers) + body
        request = SeenRequest(self.command, self.path.split("?")[0], raw, tuple(headers))
        proxy = self.proxy
        fault, index = proxy._take(request)
        upstream: _Upstream | None = None
        if fault is None or fault.forward:
            upstream = proxy._forward(self.command, self.path, headers, body)
            proxy._forwarded(index, upstream)
        if fault is None:
            assert upstream is not None
            self._send(upstream.status, upstream.headers, upstream.body)
        elif fault.kind is FaultKind.HOLD:
            proxy._hold()
        elif fault.kind is FaultKind.RESPOND:
            assert fault.status is not None
            headers_out = (("Content-Type", fault.content_type), *fault.headers)
            self._send(fault.status, headers_out, fault.body)
        else:
            assert upstream is not None
            self._misbehave(fault, upstream)

    def _misbehave(self, fault: Fault, upstream: _Upstream) -> None:
        proxy = self.proxy
        body = upstream.body
        if fault.kind is FaultKind.REWRITE:
            assert fault.rewrite is not None
            self._send(upstream.status, upstream.headers, fault.rewrite(body))
        elif fault.kind is FaultKind.RESET:
            self._write(_head(upstream.status, upstream.headers, len(body)))
            self._write(body[: len(body) // 2])
            self._reset()
        elif fault.kind is FaultKind.STALL:
            self._write(_head(upstream.status, upstream.headers, len(body)))
            self._write(body[: len(body) // 2])
            proxy._hold()
        elif fault.kind is FaultKind.DRIP and fault.endless:
            self._write(_head(upstream.status, upstream.headers, len(body) + 10**9))
            for byte in body:
                if proxy._closing.wait(fault.drip_gap):
                    return
                self._write(bytes([byte]))
            while not proxy._closing.wait(fault.drip_gap):
                self._write(b" ")
        elif fault.kind is FaultKind.DRIP:
            whole = _head(upstream.status, upstream.headers, len(body)) + body
            size = max(1, -(-len(whole) // max(1, fault.drip_chunks)))
            for start in range(0, len(whole), size):
                if start and proxy._closing.wait(fault.drip_gap):
                    return
                self._write(whole[start : start + size])

    def _send(self, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> None:
        self._write(_head(status, headers, len(body)) + body)

    def _write(self, data: bytes) -> None:
        self.connection.sendall(data)

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), not a clean end of stream."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
