"""Measure 4: `pimms --help` against `python -c "import click"`, each a fresh process.

Both run with the same interpreter, bytecode caches warm (written to a temporary
`PYTHONPYCACHEPREFIX`, so the working tree is left alone, and so that an environment with
`PYTHONDONTWRITEBYTECODE` set does not make pimms compile its sources at every start while
click's are precompiled), in alternating runs; the median of each is kept.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import Measured

MEASURE = "pimms --help"
FLOOR = 1.5


def pimms_command() -> list[str]:
    script = Path(sys.executable).with_name("pimms")
    if script.exists():
        return [str(script), "--help"]
    return [sys.executable, "-m", "pimms_core", "--help"]


def measure(workdir: Path, *, runs: int = 40) -> Measured:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    commands = {"pimms": pimms_command(), "click": [sys.executable, "-c", "import click"]}
    times: dict[str, list[float]] = {name: [] for name in commands}

    def run(command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, env=env, check=True)
        return time.perf_counter() - started

    for command in commands.values():  # warm up: bytecode caches, the OS's file cache
        for _ in range(3):
            run(command)
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(run(command))
    mine, theirs = (statistics.median(times[name]) for name in ("pimms", "click"))
    return Measured(
        MEASURE,
        mine / theirs,
        FLOOR,
        f"pimms --help {mine * 1000:.1f} ms, import click {theirs * 1000:.1f} ms",
    )
