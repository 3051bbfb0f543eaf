"""Sites behind a proxy: a partner's `proxy` key, or the usual environment variables, route
its requests through the proxy (checked with a loopback listener playing the proxy)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from pimms_core.config import Config
from pimms_core.facade import Pimms
from pimms_core.models import PluginRef
from pimms_core.plugins import PluginHost
from pimms_core.policy import NO_RETRY
from pimms_core.transport import environment_proxy
from tests.fakes import ACCOUNT_BODY, AcmePlugin


class FakeProxy:
    """Accepts one connection, records its request line, answers with an acme account."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.request_line = ""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.request_line = data.split(b"\r\n", 1)[0].decode()
            body = json.dumps(ACCOUNT_BODY).encode()
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            connection.sendall(head.encode() + body)

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def proxy() -> Iterator[FakeProxy]:
    fake = FakeProxy()
    yield fake
    fake.close()


def facade(table: dict[str, object]) -> Pimms:
    env = {"ACME_KEY": "k"}
    host = PluginHost(
        use_entry_points=False,
        plugins=[(AcmePlugin(), PluginRef("pimms-acme", "1.0", "acme"))],
        env={},
    )
    document = {"partners": {"acme": {"api_key_env": "ACME_KEY", **table}}}
    return Pimms(Config.from_document(document, env=env), host, env=env, policy=NO_RETRY)


def test_a_configured_proxy_carries_the_partner_requests(proxy: FakeProxy) -> None:
    target = "http://127.0.0.1:9"  # nothing listens there: only the proxy can answer
    pimms = facade({"base_url": target, "proxy": f"http://127.0.0.1:{proxy.port}"})
    account = pimms.lookup_account("acme", "12345678")
    assert account.reference == "12345678"
    assert proxy.request_line == f"GET {target}/accounts/12345678 HTTP/1.1"


def test_the_environment_proxy_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert environment_proxy("https://api.acme.test/x") == "http://127.0.0.1:3128"
    # a loopback endpoint is a local simulator: never through the site's proxy
    assert environment_proxy("http://127.0.0.1:8765/edf") is None


def test_no_proxy_and_unset_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://api.acme.test") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.site.test:3128")
    assert environment_proxy("https://api.acme.test") == "http://proxy.site.test:3128"
    monkeypatch.setenv("NO_PROXY", "api.acme.test")
    assert environment_proxy("https://api.acme.test") is None
