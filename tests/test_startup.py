"""Start-up: `pimms --help` (and every command's `--help`) imports no plugin and no HTTP stack.

Checked in a fresh interpreter, where `sys.modules` shows exactly what start-up imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from pimms_core.markers import ENTRY_POINT_GROUP

HEAVY = {
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "ssl",
    "flask",
    "werkzeug",
    "tenacity",
    "cattrs",
    "pimms_core.facade",
    "pimms_core.plugins",
    "pimms_core.transport",
}
"""Modules start-up must not import: the HTTP stack, the simulators' web framework, the retry
and JSON libraries, and the core's machinery that loads plugins."""

PROBE = """
import json, sys
import click
from pimms_core.cli import cli

def paths(group, prefix):
    for name, command in sorted(group.commands.items()):
        yield [*prefix, name]
        if isinstance(command, click.Group):
            yield from paths(command, [*prefix, name])

helped = []
for args in [[], *paths(cli, [])]:
    try:
        cli.main([*args, "--help"], prog_name="pimms", standalone_mode=False)
    except SystemExit as exc:
        assert not exc.code, (args, exc.code)
    helped.append(" ".join(args))
print("PROBE " + json.dumps({"modules": sorted(sys.modules), "helped": helped}))
"""


def plugin_modules() -> set[str]:
    return {ep.value.split(":")[0].split(".")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}


def probe() -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("PROBE ")]
    data: dict[str, list[str]] = json.loads(line.removeprefix("PROBE "))
    return data


def test_help_of_every_command_imports_no_plugin_and_no_http_stack() -> None:
    data = probe()
    assert "" in data["helped"] and "lookup-many" in data["helped"]
    assert len(data["helped"]) > 5
    imported = {name.split(".")[0] for name in data["modules"]} | set(data["modules"])
    plugins = plugin_modules()
    assert {"pimms_edf", "pimms_laposte", "pimms_sncf", "pimms_veolia"} <= plugins
    assert imported & plugins == set()
    assert imported & HEAVY == set()
    assert "click" in imported  # the probe did run the CLI


def test_the_console_script_answers_help() -> None:
    script = Path(sys.executable).with_name("pimms")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "lookup-many" in result.stdout
