"""Simulator state: shared through a file between processes, reset on demand."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from pimms_core.sandbox import SandboxState


def _add_claims(path: str, prefix: str, count: int) -> None:
    state = SandboxState(Path(path))
    for index in range(count):
        with state.transaction() as data:
            data.setdefault("claims", {})[f"{prefix}-{index}"] = {"n": index}


def test_two_instances_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sandbox" / "acme.json"
    with SandboxState(path).transaction() as data:
        data["claims"] = {"C-1": {}}
    assert SandboxState(path).read() == {"claims": {"C-1": {}}}


def test_concurrent_processes_lose_no_claim(tmp_path: Path) -> None:
    path = tmp_path / "acme.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_claims, args=(str(path), f"p{i}", 25)) for i in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(SandboxState(path).read()["claims"]) == 75


def test_reset_forgets_everything(tmp_path: Path) -> None:
    state = SandboxState(tmp_path / "acme.json")
    with state.transaction() as data:
        data["claims"] = {"C-1": {}}
    state.reset()
    assert state.read() == {}
    memory = SandboxState(None)
    with memory.transaction() as data:
        data["x"] = 1
    memory.reset()
    assert memory.read() == {}
