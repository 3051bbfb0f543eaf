"""Serving the installed partners' simulators over real sockets, on loopback.

One port, one path prefix per partner (`http://127.0.0.1:8765/edf`, `.../laposte`...), behind
werkzeug's `DispatcherMiddleware` and its threaded server (a thread per connection), so site
software under development, `pimms check` and benchmarks can reach the simulators as they would
reach a partner. Unlike a partner, werkzeug's server closes the connection after each answer
(`Connection: close`: it does not keep connections alive), so every request opens a new one.
A configuration pointing a partner's `base_url` at its prefix makes that partner run "live"
against its simulator.

werkzeug comes with Flask, which every simulator needs; it is imported only when a server is
built, so that `pimms --help` stays light (`pip install 'pimms-core[sandbox]'` brings it).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pimms_core import calls
from pimms_core.config import is_loopback
from pimms_core.errors import InvalidInput, PimmsError

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from werkzeug.serving import BaseWSGIServer

    from pimms_core.facade import Pimms
    from pimms_core.models import PartnerInfo
    from pimms_core.sandbox import SandboxState

logger = logging.getLogger("pimms.sandbox")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LISTEN_BACKLOG = 128
"""Connections the kernel queues while every worker thread is busy (benchmarks open 32+)."""
POLL_INTERVAL = 0.2
"""Seconds between two checks for `stop()` by a serving thread (the longest `stop()` waits)."""


class ServeError(PimmsError):
    """The sandbox server could not start (address in use, no simulator to serve...)."""

    code = "sandbox_serve_error"


def env_variable(partner_id: str, setting: str) -> str:
    """The variable the printed configuration names for a setting of a served simulator."""
    return f"PIMMS_SANDBOX_{partner_id}_{setting}".upper().replace("-", "_")


class SandboxServer:
    """A bound server: `serve_forever()` here, or `start()` in a thread.

    `base_url` is where it answers; `urls` maps each partner id to the base URL of its
    simulator (empty for a lone app served by `serve_app`).
    """

    def __init__(
        self,
        server: BaseWSGIServer,
        urls: Mapping[str, str],
        base_url: str,
        *,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._server = server
        self.urls = dict(urls)
        self.base_url = base_url
        self._poll_interval = poll_interval
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.port)

    def serve_forever(self) -> None:
        """Answer requests until `stop()` (from another thread) or Ctrl-C; then close."""
        self._server.serve_forever(poll_interval=self._poll_interval)

    def start(self) -> SandboxServer:
        """Serve in a daemon thread; `stop()` ends it."""
        self._thread = threading.Thread(
            target=self.serve_forever, name="pimms-sandbox-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def bind(
    pimms: Pimms,
    *,
    partners: Iterable[str] = (),
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    latency: float = 0.0,
    allow_non_loopback: bool = False,
    state_for: Callable[[str], SandboxState] | None = None,
) -> SandboxServer:
    """Bind a server for the simulators of `partners` (all installed ones when empty).

    `port=0` takes any free port. `latency` (seconds) delays every answer. `state_for` gives
    each simulator its state (default: the facade's, a file in the data directory).
    Raises `InvalidInput` for a non-loopback host unless `allow_non_loopback`, `ServeError`
    when the port cannot be bound or no partner has a simulator, `UnknownPartner`.
    """
    if not allow_non_loopback and not is_loopback(host):
        raise InvalidInput(
            f"refusing to serve the simulators on {host}, which is not a loopback address: "
            "anyone reaching it could use them; pass --allow-non-loopback if you mean it"
        )
    if latency < 0:
        raise InvalidInput("the latency must be zero or more")
    apps = simulator_apps(pimms, partners, state_for or pimms.sandbox_state)
    return _bind_apps(apps, host=host, port=port, latency=latency)


def start_in_thread(
    pimms: Pimms,
    *,
    partners: Iterable[str] = (),
    host: str = DEFAULT_HOST,
    port: int = 0,
    latency: float = 0.0,
    allow_non_loopback: bool = False,
    state_for: Callable[[str], SandboxState] | None = None,
) -> SandboxServer:
    """Bind and serve in a daemon thread (tests, benchmarks); `.urls`, `.stop()`.

    ```python
    with serve.start_in_thread(pimms, partners=["edf"]) as server:
        httpx.get(server.urls["edf"] + "/...")
    ```
    """
    return bind(
        pimms,
        partners=partners,
        host=host,
        port=port,
        latency=latency,
        allow_non_loopback=allow_non_loopback,
        state_for=state_for,
    ).start()


def simulator_apps(
    pimms: Pimms, partners: Iterable[str], state_for: Callable[[str], SandboxState]
) -> dict[str, WSGIApplication]:
    """The WSGI app of each partner asked for, built by its plugin's `pimms_sandbox` hook.

    Asked for by name, a partner whose plugin ships no simulator is an error; when serving
    every installed partner, it is left out (and logged).
    """
    wanted = list(dict.fromkeys(partners))
    targets = wanted or [entry.info.id for entry in pimms.partners()]
    apps: dict[str, WSGIApplication] = {}
    for partner_id in targets:
        pimms.info(partner_id)  # UnknownPartner, listing the installed ones
        app = calls.sandbox_app(pimms.host, partner_id, state_for(partner_id))
        if app is None:
            if wanted:
                raise ServeError(f"{partner_id}: its plugin ships no simulator", partner=partner_id)
            logger.info("%s: its plugin ships no simulator; not served", partner_id)
            continue
        apps[partner_id] = app
    if not apps:
        raise ServeError("no installed partner ships a simulator: nothing to serve")
    return apps


def _no_werkzeug() -> ServeError:
    return ServeError("serving the simulators needs werkzeug: pip install 'pimms-core[sandbox]'")


def serve_app(
    app: WSGIApplication,
    host: str = DEFAULT_HOST,
    port: int = 0,
    *,
    poll_interval: float = POLL_INTERVAL,
    quiet: bool = False,
) -> SandboxServer:
    """Bind werkzeug's threaded server for one WSGI app; `.start()` serves it in a thread.

    ```python
    with serve.serve_app(app).start() as server:
        httpx.get(server.base_url + "/...")
    ```

    `port=0` takes any free port. Requests are logged (method and status only) at DEBUG on
    `pimms.sandbox`, or not at all when `quiet`. Raises `ServeError` when the port cannot be
    bound. The host is not checked: `bind` refuses non-loopback addresses.
    """
    handler = _request_handler(prefixed=False, quiet=quiet)
    return _serve(app, host, port, handler=handler, poll_interval=poll_interval)


def _serve(
    app: WSGIApplication, host: str, port: int, *, handler: Any, poll_interval: float
) -> SandboxServer:
    try:
        from werkzeug.serving import make_server
    except ImportError:  # pragma: no cover - werkzeug comes with every simulator's Flask
        raise _no_werkzeug() from None

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    address = host.strip("[]")
    try:
        listener = socket.create_server((address, port), family=family, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        raise ServeError(
            f"cannot listen on {host}:{port}: {reason} (choose another --port, or 0 for any "
            "free port)"
        ) from None
    try:
        server = make_server(
            address,
            listener.getsockname()[1],
            app,
            threaded=True,
            request_handler=handler,
            fd=listener.fileno(),
        )
    finally:
        listener.close()  # the server holds its own duplicate of the socket
    shown = f"[{address}]" if family == socket.AF_INET6 else address
    return SandboxServer(server, {}, f"http://{shown}:{server.port}", poll_interval=poll_interval)


def _bind_apps(
    apps: Mapping[str, WSGIApplication], *, host: str, port: int, latency: float
) -> SandboxServer:
    try:
        from werkzeug.middleware.dispatcher import DispatcherMiddleware
    except ImportError:  # pragma: no cover - werkzeug comes with every simulator's Flask
        raise _no_werkzeug() from None

    mounts = {f"/{partner_id}": app for partner_id, app in apps.items()}
    app: WSGIApplication = DispatcherMiddleware(_index(list(apps)), mounts)
    if latency > 0:
        app = _delayed(app, latency)
    handler = _request_handler(prefixed=True)
    server = _serve(app, host, port, handler=handler, poll_interval=POLL_INTERVAL)
    server.urls = {partner_id: f"{server.base_url}/{partner_id}" for partner_id in apps}
    return server


def _index(partners: list[str]) -> WSGIApplication:
    """The answer outside every prefix: which simulators are served where (JSON)."""

    def index(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        found = environ.get("PATH_INFO", "") in ("", "/")
        body: dict[str, Any] = {"simulators": {p: f"/{p}" for p in partners}}
        if not found:
            body = {"error": "not_found", **body}
        payload = json.dumps(body).encode("utf-8")
        start_response(
            "200 OK" if found else "404 NOT FOUND",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return iter([payload])

    return index


def _delayed(app: WSGIApplication, seconds: float) -> WSGIApplication:
    """Every answer `seconds` late, as a distant partner would be (each request its thread)."""

    def delayed(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        time.sleep(seconds)
        return app(environ, start_response)

    return delayed


def _request_handler(*, prefixed: bool, quiet: bool = False) -> Any:
    """werkzeug's handler, logging method and status only (a path holds references), and the
    partner (the path's prefix) when `prefixed`; nothing at all when `quiet`."""
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if quiet:
                return
            if prefixed:
                prefix = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
                logger.debug("%s %s -> HTTP %s", prefix or "-", self.command, code)
            else:
                logger.debug("%s -> HTTP %s", self.command, code)

        def log(self, type: str, message: str, *args: Any) -> None:
            if not quiet:
                logger.debug("sandbox server: %s (details withheld)", type)

    return QuietHandler


# --- what to paste into pimms.toml -------------------------------------------------------------


def config_snippet(infos: Iterable[PartnerInfo], urls: Mapping[str, str]) -> str:
    """A `pimms.toml` fragment pointing each served partner at its simulator.

    Secret settings name a variable (`*_env`), as the configuration requires; `sandbox_env`
    gives the values the simulators accept for them.
    """
    lines: list[str] = []
    for info in infos:
        if info.id not in urls:
            continue
        lines += [f"[partners.{info.id}]", f"base_url = {json.dumps(urls[info.id])}"]
        for spec in info.settings:
            if spec.secret:
                lines.append(f"{spec.name}_env = {json.dumps(env_variable(info.id, spec.name))}")
            elif spec.sandbox_value is not None:
                lines.append(f"{spec.name} = {json.dumps(spec.sandbox_value)}")
        lines.append("")
    return "\n".join(lines)


def sandbox_env(infos: Iterable[PartnerInfo], urls: Mapping[str, str]) -> dict[str, str]:
    """The variables `config_snippet` names, set to the simulators' published sandbox values.

    These are the fictional credentials each plugin declares for its simulator, not secrets;
    a secret setting with no declared sandbox value is left out (set it yourself).
    """
    return {
        env_variable(info.id, spec.name): spec.sandbox_value
        for info in infos
        if info.id in urls
        for spec in info.settings
        if spec.secret and spec.sandbox_value is not None
    }
