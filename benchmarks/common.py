"""What the measures share: the four partners with budgets that cannot bind, facades built on
them, simulators served on loopback, a timer, and the machine's details.

Budgets "not binding": each plugin is registered through a proxy whose `PartnerInfo` declares
its quotas a millionfold (the core still counts every request against them, so the budget's
cost is measured) and whose simulator is built without its 429s. Everything else is the
plugin's own code.

Simulator state: `ResidentState` keeps it in memory and hands it out without the defensive
deep copy `SandboxState.read()` makes (a JSON round trip of the whole document on every
read), which would make a simulator holding thousands of claims, not the core, the thing
measured.
"""

from __future__ import annotations

import importlib
import os
import platform
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from pimms_core import hookimpl
from pimms_core.config import Config
from pimms_core.facade import Pimms
from pimms_core.models import PartnerInfo, Quota
from pimms_core.plugins import PluginHost
from pimms_core.sandbox import SandboxState
from pimms_core.testing import plugin_ref

PLUGINS = ("pimms_edf", "pimms_laposte", "pimms_sncf", "pimms_veolia")
QUOTA_LIFT = 1_000_000


def _first_sandbox_accounts() -> dict[str, tuple[str, str | None]]:
    lookups: dict[str, tuple[str, str | None]] = {}
    for name in PLUGINS:
        info: PartnerInfo = importlib.import_module(name).pimms_partner_info()
        seeded = info.sandbox_accounts[0]
        lookups[info.id] = (seeded.reference, seeded.last_name)
    return lookups


LOOKUPS: dict[str, tuple[str, str | None]] = _first_sandbox_accounts()
"""One seeded sandbox account per partner (each partner's first declared sandbox account):
partner id to (reference, last name)."""


class ResidentState(SandboxState):
    """A simulator's state in memory, read without copying the whole document each time."""

    def __init__(self) -> None:
        super().__init__(None)

    def read(self) -> dict[str, Any]:
        with self.transaction() as data:
            return data


def unmetered(module: ModuleType, app: Any = None) -> ModuleType:
    """`module`'s hooks, with quotas lifted `QUOTA_LIFT`-fold and a simulator without 429s.

    With `app`, the simulator is that WSGI app (to share one between a facade and a bare
    client)."""
    proxy = ModuleType(f"{module.__name__}_unmetered")
    for name in dir(module):
        if name.startswith("pimms_"):
            setattr(proxy, name, getattr(module, name))
    info: PartnerInfo = module.pimms_partner_info()
    lifted = attrs.evolve(
        info, quotas=[Quota(q.calls * QUOTA_LIFT, q.seconds) for q in info.quotas]
    )
    simulator = importlib.import_module(f"{module.__name__}.simulator")

    @hookimpl
    def pimms_partner_info() -> PartnerInfo:
        return lifted

    @hookimpl
    def pimms_sandbox(partner_id: str, state: SandboxState) -> Any:
        if partner_id != info.id:
            return None
        return app if app is not None else simulator.create_app(state, quotas=False)

    proxy.pimms_partner_info = pimms_partner_info  # type: ignore[attr-defined]
    proxy.pimms_sandbox = pimms_sandbox  # type: ignore[attr-defined]
    return proxy


def host(*, apps: Mapping[str, Any] | None = None, only: tuple[str, ...] = PLUGINS) -> PluginHost:
    """A plugin host with the unmetered proxies of the plugins named in `only`."""
    plugins = []
    for name in only:
        module = importlib.import_module(name)
        partner_id = module.pimms_partner_info().id
        proxy = unmetered(module, (apps or {}).get(partner_id))
        plugins.append((proxy, plugin_ref(module)))
    return PluginHost(use_entry_points=False, plugins=plugins, strict=True, env={})


class ResidentPimms(Pimms):
    """A facade whose simulators keep their state in `ResidentState`s, one per partner."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.states: dict[str, ResidentState] = {}

    def sandbox_state(self, partner_id: str) -> SandboxState:
        return self.states.setdefault(partner_id, ResidentState())


def sandbox_facade(
    data_dir: Path,
    *,
    apps: Mapping[str, Any] | None = None,
    only: tuple[str, ...] = PLUGINS,
    site_store: bool = True,
) -> ResidentPimms:
    """Every partner on its in-process simulator, as a site in sandbox mode would run them:
    the store a file of `data_dir`, as `Pimms.from_config` opens it (in memory when
    `site_store` is False: for a facade that only feeds simulators)."""
    config = Config.from_document({"pimms": {"data_dir": str(data_dir)}}, env={})
    data_dir.mkdir(parents=True, exist_ok=True)
    return ResidentPimms(
        config,
        host(apps=apps, only=only),
        sandbox=True,
        env={},
        store=config.database_path if site_store else None,
    )


def live_facade(
    data_dir: Path,
    snippet: str,
    env: Mapping[str, str],
    *,
    only: tuple[str, ...] = PLUGINS,
    settings: Mapping[str, Any] | None = None,
) -> Pimms:
    """Every partner "live" at the URLs of a `pimms.toml` snippet (simulators on loopback),
    with `settings` added to every partner's table."""
    document = tomllib.loads(snippet)
    for table in document.get("partners", {}).values():
        table.update(settings or {})
    document["pimms"] = {"data_dir": str(data_dir)}
    config = Config.from_document(document, env=env)
    data_dir.mkdir(parents=True, exist_ok=True)
    return Pimms(config, host(only=only), env=env, store=config.database_path)


# --- timing -------------------------------------------------------------------------------------


def per_call(
    fn: Callable[[], object],
    *,
    calls: int,
    rounds: int,
    settle: Callable[[], object] | None = None,
) -> float:
    """Seconds per call: the median over `rounds` of the mean of `calls` back-to-back calls.

    `settle`, run after each round's calls and timed with them, finishes the work they left
    behind (the journal rows written behind, say), so that it is charged to them and not to
    whatever runs next."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        if settle is not None:
            settle()
        samples.append((time.perf_counter() - started) / calls)
    return statistics.median(samples)


def interleaved(
    measured: Callable[[], object],
    yardstick: Callable[[], object],
    *,
    calls: int,
    rounds: int,
    settle: Callable[[], object] | None = None,
) -> tuple[float, float]:
    """Seconds per call of each, measured in alternating rounds so that drift hits both
    (`settle`: see `per_call`, for the measured side)."""
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        mine.append(per_call(measured, calls=calls, rounds=1, settle=settle))
        theirs.append(per_call(yardstick, calls=calls, rounds=1))
    return statistics.median(mine), statistics.median(theirs)


@attrs.frozen
class Measured:
    """One measure's result: the ratio to its yardstick, its floor, and the raw figures."""

    measure: str
    ratio: float
    floor: float
    detail: str = ""
    extra_ok: bool = True
    """Any other condition of the measure (peak memory, say) was met."""

    @property
    def ok(self) -> bool:
        return self.ratio <= self.floor and self.extra_ok

    def line(self) -> str:
        """`<measure>: <ratio>x (floor <floor>x)`, the form the issue asks for.

        Three decimals: with two, a ratio of 1.204 would print as 1.20x and still be reported
        above its floor of 1.2x."""
        return f"{self.measure}: {self.ratio:.3f}x (floor {self.floor:g}x)"


@contextmanager
def quiet_logs() -> Iterator[None]:
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


# --- the machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemTotal:"):
                return f"{int(row.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def machine() -> list[str]:
    """The details that make the figures comparable from one machine to another."""
    from importlib.metadata import version

    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("pimms-core", "httpx", "pluggy", "attrs", "click", "flask", "werkzeug")
    )
    return [
        f"machine: {platform.platform()}",
        f"cpu: {_cpu_model()}, {os.cpu_count()} logical CPU(s)",
        f"memory: {_memory()}",
        f"python: {platform.python_implementation()} {platform.python_version()}"
        f" ({sys.executable})",
        f"packages: {packages}",
    ]
