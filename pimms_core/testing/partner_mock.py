"""A partner's live endpoint played by respx, backed by the plugin's own simulator.

The plugin runs in live mode, with whatever credentials the test gives (a canary secret, say),
against its production base URL; respx answers every request to that URL. By default an
answer comes from the plugin's simulator, the request signed again with the sandbox
credentials, so the plugin sees a real partner. A test then turns any answer into a fault:

```python
with PartnerMock(pimms_edf) as mock, mock.live() as pimms:
    pimms.lookup_account("edf", "4001234567")          # answered by the simulator
    mock.fail(faults.status(503, html=True))            # every request but the login
    with pytest.raises(PartnerUnavailable):
        pimms.lookup_account("edf", "4001234567")
```

Login requests (the token path of a `TokenAuth`, detected, or the `auth_paths` given) are
answered by the simulator unless a fault is set for them too (`fail(..., login=True)`), so
each partner's own paths need no route of their own. Needs respx (pimms-core[test]).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import httpx
import respx

from pimms_core import calls
from pimms_core.auth import TokenAuth
from pimms_core.config import Config, PartnerConfig, resolve_settings
from pimms_core.facade import Pimms
from pimms_core.models import PartnerInfo
from pimms_core.plugins import PluginHost
from pimms_core.policy import NO_RETRY, RetryPolicy
from pimms_core.sandbox import SandboxState
from pimms_core.testing import fresh_host, release
from pimms_core.testing.canary import CANARY

Forward = Callable[[httpx.Request], httpx.Response]
"""Sends a request to the simulator and returns its answer."""
Fault = Callable[[httpx.Request, Forward], httpx.Response]
"""Answers a request in place of the partner; may forward it first and spoil the answer."""

_HOP_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection"}


def only_partner(host: PluginHost, plugin: Any, partner_id: str | None = None) -> PartnerInfo:
    """The partner a plugin declares (`partner_id` picks one of several)."""
    declared = [loaded.info for loaded in host.partners.values() if loaded.plugin is plugin]
    if partner_id is not None:
        declared = [info for info in declared if info.id == partner_id]
    if len(declared) != 1:
        ids = ", ".join(info.id for info in declared) or "none"
        raise LookupError(f"expected the plugin to declare one partner, it declares {ids}")
    return declared[0]


class PartnerMock:
    """respx in front of one partner's base URL, answering from the partner's simulator."""

    def __init__(
        self,
        plugin: Any,
        *,
        partner_id: str | None = None,
        base_url: str | None = None,
        auth_paths: Iterable[str] | None = None,
        state: SandboxState | None = None,
    ) -> None:
        """`auth_paths`: paths (under the base URL) of login exchanges; None detects the token
        path of a `TokenAuth`. `state` is the simulator's state (a fresh in-memory one)."""
        self.plugin = plugin
        self.host = fresh_host(plugin)
        self.info = only_partner(self.host, plugin, partner_id)
        self.partner_id = self.info.id
        self.base_url = (
            base_url or self.info.base_url or f"https://{self.partner_id}.test"
        ).rstrip("/")
        self.state = state if state is not None else SandboxState(None)
        app = calls.sandbox_app(self.host, self.partner_id, self.state)
        if app is None:
            raise LookupError(f"{self.partner_id}: the plugin ships no simulator (pimms_sandbox)")
        sandbox_config = PartnerConfig(self.partner_id, {"sandbox": True})
        self.sandbox_settings = resolve_settings(self.info, sandbox_config, env={})
        self._auth = calls.http_auth(self.host, self.partner_id, self.sandbox_settings)
        if isinstance(self._auth, TokenAuth):
            self._auth.base_url = httpx.URL(self.base_url)
        transport = httpx.WSGITransport(app=app)
        self._signed = httpx.Client(transport=transport, auth=self._auth)
        self._unsigned = httpx.Client(transport=httpx.WSGITransport(app=app))
        self.auth_paths = self._auth_paths(auth_paths)
        self.requests: list[httpx.Request] = []
        """Every request the plugin sent to the partner, in order."""
        self._fault: Fault | None = None
        self._login_fault: Fault | None = None
        self.router = respx.mock(base_url=self.base_url, assert_all_called=False)
        self.router.route(name="partner").mock(side_effect=self._answer)
        self._facades: list[Pimms] = []

    # --- what answers --------------------------------------------------------------------------

    def fail(self, fault: Fault, *, login: bool = False) -> None:
        """Answer every request with `fault`; login requests too when `login`."""
        self._fault = fault
        self._login_fault = fault if login else None

    def heal(self) -> None:
        """Back to the simulator's answers."""
        self._fault = None
        self._login_fault = None

    def is_login(self, request: httpx.Request) -> bool:
        return request.url.path in self.auth_paths

    def forward(self, request: httpx.Request) -> httpx.Response:
        """The simulator's answer to `request`, signed with the sandbox credentials."""
        if self.is_login(request) and isinstance(self._auth, TokenAuth):
            answer = self._unsigned.send(self._auth.token_request(request))
        elif self.is_login(request):
            answer = self._unsigned.send(_copy(request))
        else:
            answer = self._signed.send(_copy(request))
        headers = [(k, v) for k, v in answer.headers.multi_items() if k not in _HOP_HEADERS]
        return httpx.Response(answer.status_code, headers=headers, content=answer.read())

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        fault = self._login_fault if self.is_login(request) else self._fault
        return fault(request, self.forward) if fault is not None else self.forward(request)

    def api_requests(self) -> list[httpx.Request]:
        """The requests that were not login exchanges."""
        return [r for r in self.requests if not self.is_login(r)]

    def _auth_paths(self, given: Iterable[str] | None) -> frozenset[str]:
        prefix = httpx.URL(self.base_url).path.rstrip("/")
        if given is not None:
            return frozenset(prefix + "/" + path.lstrip("/") for path in given)
        if isinstance(self._auth, TokenAuth):
            probe = httpx.Request("GET", self.base_url + "/")
            return frozenset({self._auth.token_request(probe).url.path})
        return frozenset()

    # --- the plugin's side ---------------------------------------------------------------------

    def live(
        self,
        *,
        secret: str = CANARY.secret,
        policy: RetryPolicy = NO_RETRY,
        extra_plugins: tuple[Any, ...] = (),
    ) -> Pimms:
        """A facade calling the base URL in live mode, every secret setting set to `secret`.

        Other settings take their sandbox value, else their default.
        """
        table: dict[str, Any] = {"base_url": self.base_url}
        env: dict[str, str] = {}
        for spec in self.info.settings:
            if spec.secret:
                variable = f"PIMMS_TEST_{spec.name.upper()}"
                env[variable] = secret
                table[f"{spec.name}_env"] = variable
            elif spec.sandbox_value is not None:
                table[spec.name] = spec.sandbox_value
        host = fresh_host(self.plugin, *extra_plugins)
        config = Config.from_document({"partners": {self.partner_id: table}}, env=env)
        facade = Pimms(config, host, env=env, policy=policy)
        self._facades.append(facade)
        return facade

    def claims_at_partner(self, key: str = "claims") -> int:
        """How many claims the simulator holds (kept under `state[key]`)."""
        return len(self.state.claim_refs(key))

    # --- lifetime ------------------------------------------------------------------------------

    def __enter__(self) -> PartnerMock:
        self.router.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self.router.__exit__(exc_type, exc, tb)

    def close(self) -> None:
        """Close the clients and unregister every plugin this mock registered."""
        for facade in self._facades:
            facade.close()
            release(facade.host)
        self._facades.clear()
        self._signed.close()
        self._unsigned.close()
        release(self.host)


def _copy(request: httpx.Request) -> httpx.Request:
    return httpx.Request(
        request.method, request.url, headers=request.headers, content=request.content
    )


# --- faults --------------------------------------------------------------------------------------


class faults:
    """Ready-made faults for `PartnerMock.fail` (a namespace: `faults.status(503)`)."""

    @staticmethod
    def status(
        code: int,
        *,
        html: bool = False,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> Fault:
        """A fixed answer: an HTML page (as proxies and gateways send), JSON, or no body."""

        def answer(_request: httpx.Request, _forward: Forward) -> httpx.Response:
            if html:
                page = f"<html><body><h1>{code} {httpx.codes.get_reason_phrase(code)}</h1>"
                return httpx.Response(
                    code,
                    headers={"Content-Type": "text/html; charset=utf-8", **(headers or {})},
                    content=(page + "</body></html>").encode(),
                )
            if json_body is not None:
                return httpx.Response(code, headers=headers, json=json_body)
            return httpx.Response(code, headers=headers)

        return answer

    @staticmethod
    def body(content: bytes, *, content_type: str = "application/json") -> Fault:
        """A 200 whose body is `content`, whatever the request."""

        def answer(_request: httpx.Request, _forward: Forward) -> httpx.Response:
            return httpx.Response(200, headers={"Content-Type": content_type}, content=content)

        return answer

    @staticmethod
    def truncated() -> Fault:
        """The simulator's answer, cut in half (framed as complete: a proxy cut it short)."""

        def answer(request: httpx.Request, forward: Forward) -> httpx.Response:
            real = forward(request)
            headers = [(k, v) for k, v in real.headers.multi_items() if k not in _HOP_HEADERS]
            return httpx.Response(
                real.status_code, headers=headers, content=real.content[: len(real.content) // 2]
            )

        return answer

    @staticmethod
    def rewritten(change: Callable[[Any], Any]) -> Fault:
        """The simulator's answer with its JSON body passed through `change`."""

        def answer(request: httpx.Request, forward: Forward) -> httpx.Response:
            real = forward(request)
            try:
                data = real.json()
            except ValueError:
                return real
            headers = [(k, v) for k, v in real.headers.multi_items() if k not in _HOP_HEADERS]
            content = json.dumps(change(data), ensure_ascii=False).encode()
            return httpx.Response(real.status_code, headers=headers, content=content)

        return answer

    @staticmethod
    def renamed_fields(suffix: str = "_v2") -> Fault:
        """Every field of the simulator's answer renamed, at every depth (a new API version)."""

        def rename(value: Any) -> Any:
            if isinstance(value, dict):
                return {f"{k}{suffix}": rename(v) for k, v in value.items()}
            if isinstance(value, list):
                return [rename(v) for v in value]
            return value

        return faults.rewritten(rename)

    @staticmethod
    def replaced_values(old: str, new: str) -> Fault:
        """Every string value equal to `old` in the simulator's answer becomes `new`."""

        def replace(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: replace(v) for k, v in value.items()}
            if isinstance(value, list):
                return [replace(v) for v in value]
            return new if value == old else value

        return faults.rewritten(replace)

    @staticmethod
    def lost_answer(methods: Iterable[str] = ("POST", "PUT")) -> Fault:
        """The first request with one of `methods` reaches the simulator, but its answer is
        lost (a read timeout); every other request is answered normally."""
        wanted = {m.upper() for m in methods}
        lost: list[httpx.Request] = []

        def answer(request: httpx.Request, forward: Forward) -> httpx.Response:
            real = forward(request)
            if request.method in wanted and not lost:
                lost.append(request)
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return real

        return answer
