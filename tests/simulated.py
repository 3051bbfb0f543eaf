"""Small simulated partners for tests of concurrency: the fake `acme` plugin under several ids,
each served by a Flask simulator whose handler the test controls (block until released, fail,
count). Used by the fan-out, async facade, refresh and budget tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import flask

from pimms_core import hookimpl
from pimms_core.config import Config
from pimms_core.facade import Pimms
from pimms_core.plugins import PluginHost
from pimms_core.policy import NO_RETRY
from pimms_core.sandbox import SandboxState
from pimms_core.testing import plugin_ref
from tests.fakes import AcmePlugin

Hook = Callable[[str], flask.typing.ResponseReturnValue | None]


def simulator(partner_id: str, before: Hook | None = None) -> flask.Flask:
    """An acme-shaped API: `before(path)` may block, count, or answer instead (an error)."""
    app = flask.Flask(partner_id)

    @app.get("/accounts/<ref>")
    def account(ref: str) -> Any:
        if before is not None and (answer := before(flask.request.path)) is not None:
            return answer
        if ref == "00000000":
            return {"error": "not found"}, 404
        return {"ref": ref, "name": f"Holder of {partner_id}"}

    @app.get("/claims/<ref>")
    def claim(ref: str) -> Any:
        if before is not None and (answer := before(flask.request.path)) is not None:
            return answer
        return {"status": "DONE" if ref.endswith("9") else "NEW"}

    return app


class SimulatedAcme(AcmePlugin):
    """The fake acme plugin under `partner_id`, with a simulator for sandbox mode."""

    def __init__(self, partner_id: str, app: flask.Flask) -> None:
        super().__init__(partner_id)
        self.app = app

    @hookimpl
    def pimms_sandbox(self, partner_id: str, state: SandboxState) -> Any:
        return self.app if partner_id == self.info.id else None


def facade(*plugins: AcmePlugin) -> Pimms:
    """A sandbox facade over exactly these plugins."""
    host = PluginHost(
        use_entry_points=False,
        plugins=[(p, plugin_ref(p, f"pimms-{p.info.id}")) for p in plugins],
        strict=True,
        env={},
    )
    return Pimms(
        Config.from_document({}, env={}),
        host,
        sandbox=True,
        env={},
        sandbox_state=SandboxState(None),
        policy=NO_RETRY,
    )


class Gate:
    """A simulator hook that holds every request until `release()` (or 10 s, a safety net)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.arrived = threading.Event()
        self.count = 0
        self.timed_out = False

    def __call__(self, _path: str) -> None:
        self.count += 1
        self.arrived.set()
        if not self.event.wait(10):
            self.timed_out = True

    def release(self) -> None:
        self.event.set()
