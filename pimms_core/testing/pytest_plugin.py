"""The pimms pytest plugin (entry point `pytest11`): fixtures for plugin authors.

Loaded automatically by pytest wherever pimms-core is installed, so it imports nothing heavy
until a fixture is used. Fixtures:

- `pimms_host(*plugins)`: a fresh plugin manager with only those plugins registered;
- `pimms_sandbox(*plugins)`: a facade running them against their simulators, in memory;
- `pimms_simulator(plugin)`: the partner's simulator (WSGI app, in-memory `SandboxState`, and
  an `httpx.Client` on it);
- `pimms_partner_mock(plugin)`: respx bound to the partner's base URL, answering from its
  simulator, with faults (`pimms_core.testing.partner_mock.faults`) and a live-mode facade;
- `pimms_canary`: the canary secret and personal data, and `leaks()` to look for them.

Everything a fixture registered is unregistered, and every client closed, after the test.
The suite itself is `pimms_core.testing.conformance.ConformanceSuite`; the report lists each
of its skipped checks with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from attrs import frozen

if TYPE_CHECKING:
    import httpx

    from pimms_core.facade import Pimms
    from pimms_core.plugins import PluginHost
    from pimms_core.sandbox import SandboxState
    from pimms_core.testing.canary import Canary
    from pimms_core.testing.partner_mock import PartnerMock

MARKER = "pimms_conformance"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a check of the pimms conformance suite")


@frozen
class Simulator:
    """A partner's simulator on an in-memory state, and a client that reaches it (no auth)."""

    partner_id: str
    app: Any
    state: SandboxState
    client: httpx.Client

    def claims(self, key: str = "claims") -> int:
        """How many claims the simulator holds."""
        return len(self.state.claim_refs(key))


@pytest.fixture
def pimms_host() -> Iterator[Callable[..., PluginHost]]:
    """`pimms_host(*plugins)`: a loaded plugin manager with exactly these plugins."""
    from pimms_core.testing import fresh_host, release

    hosts: list[PluginHost] = []

    def make(*plugins: Any) -> PluginHost:
        host = fresh_host(*plugins)
        host.load()
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        release(host)


@pytest.fixture
def pimms_sandbox() -> Iterator[Callable[..., Pimms]]:
    """`pimms_sandbox(*plugins, state=None)`: a facade on the plugins' simulators."""
    from pimms_core.testing import release, sandbox_pimms

    made: list[Pimms] = []

    def make(*plugins: Any, state: SandboxState | None = None) -> Pimms:
        pimms = sandbox_pimms(*plugins, state=state)
        made.append(pimms)
        return pimms

    yield make
    for pimms in made:
        pimms.close()
        release(pimms.host)


@pytest.fixture
def pimms_simulator() -> Iterator[Callable[..., Simulator]]:
    """`pimms_simulator(plugin, partner_id=None)`: the partner's simulator, in memory."""
    import httpx

    from pimms_core import calls
    from pimms_core.sandbox import SandboxState
    from pimms_core.testing import fresh_host, release
    from pimms_core.testing.partner_mock import only_partner
    from pimms_core.transport import sandbox_base_url

    made: list[tuple[PluginHost, httpx.Client]] = []

    def make(plugin: Any, partner_id: str | None = None) -> Simulator:
        host = fresh_host(plugin)
        info = only_partner(host, plugin, partner_id)
        state = SandboxState(None)
        app = calls.sandbox_app(host, info.id, state)
        if app is None:
            raise LookupError(f"{info.id}: the plugin ships no simulator (pimms_sandbox)")
        client = httpx.Client(
            transport=httpx.WSGITransport(app=app), base_url=sandbox_base_url(info.id)
        )
        made.append((host, client))
        return Simulator(info.id, app, state, client)

    yield make
    for host, client in made:
        client.close()
        release(host)


@pytest.fixture
def pimms_partner_mock() -> Iterator[Callable[..., PartnerMock]]:
    """`pimms_partner_mock(plugin, **options)`: respx in front of the partner's base URL,
    answering from its simulator (see `PartnerMock`); started now, stopped after the test."""
    from pimms_core.testing.partner_mock import PartnerMock

    started: list[PartnerMock] = []

    def make(plugin: Any, **options: Any) -> PartnerMock:
        mock = PartnerMock(plugin, **options)
        mock.__enter__()
        started.append(mock)
        return mock

    yield make
    for mock in reversed(started):
        mock.__exit__(None, None, None)


@pytest.fixture
def pimms_canary() -> Canary:
    """The canary secret and personal data (`pimms_core.testing.canary.CANARY`)."""
    from pimms_core.testing.canary import CANARY

    return CANARY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the conformance checks that did not run, and known failures, with their reasons."""
    lines = []
    for kind in ("skipped", "xfailed"):
        for report in terminalreporter.stats.get(kind, []):
            if MARKER not in getattr(report, "keywords", {}):
                continue
            if kind == "skipped" and isinstance(report.longrepr, tuple):
                reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            else:
                reason = str(getattr(report, "wasxfail", "") or report.longrepr)
            lines.append(f"{kind.upper():8} {report.nodeid}: {reason}")
    if lines:
        terminalreporter.write_sep("-", "pimms conformance: checks not passed as such")
        for line in lines:
            terminalreporter.write_line(line)
