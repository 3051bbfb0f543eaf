"""A partner simulator served on a real loopback socket, that a test can stop and start again.

Used to make a partner truly unreachable (connection refused on its port) and then reachable
again on the same address, as when a partner's API goes down and comes back.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LoopbackServer:
    """A threaded werkzeug server for one WSGI app on 127.0.0.1, on a fixed port."""

    def __init__(self, app: WSGIApplication, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
