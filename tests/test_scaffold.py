"""`pimms new-plugin`: names, the files written, their style, and the generated plugin at work.

The last test is the whole author's path for real, in a fresh virtual environment: pimms-core
installed from this tree (a built wheel, so the template must be in it), `pimms new-plugin`,
`pip install -e` of the result with its test extra, `pimms partners`, then its own tests.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from pimms_core.cli import cli
from pimms_core.errors import InvalidInput
from pimms_core.models import ClaimState
from pimms_core.scaffold import PluginNames, create_plugin, render, template_files
from pimms_core.testing import fresh_host, sandbox_pimms

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    "README.md",
    "pimms_keolis_demo/__init__.py",
    "pimms_keolis_demo/client.py",
    "pimms_keolis_demo/info.py",
    "pimms_keolis_demo/py.typed",
    "pimms_keolis_demo/simulator.py",
    "pyproject.toml",
    "tests/test_client.py",
    "tests/test_conformance.py",
]


def test_names_follow_from_the_partner_name() -> None:
    names = PluginNames.of("keolis-demo")
    assert names == PluginNames(
        partner_id="keolis-demo",
        distribution="pimms-keolis-demo",
        package="pimms_keolis_demo",
        display_name="Keolis Demo",
        env_prefix="KEOLIS_DEMO",
        claim_prefix="KEOLIS-DEMO",
    )
    assert PluginNames.of(" saur ").package == "pimms_saur"


INVALID_NAMES = ["", "k", "Keolis", "keolis_demo", "keolis--demo", "-keolis", "keolis-", "1keolis"]


@pytest.mark.parametrize("name", [*INVALID_NAMES, "kéolis", "keolis demo", "a" * 33, "../evil"])
def test_invalid_names_are_refused_saying_what_is_valid(name: str) -> None:
    with pytest.raises(InvalidInput, match="lowercase letters and digits") as caught:
        PluginNames.of(name)
    assert "keolis-demo" in str(caught.value)


def test_the_pimms_prefix_is_refused_with_the_name_to_give() -> None:
    with pytest.raises(InvalidInput, match="without the pimms- prefix"):
        PluginNames.of("pimms-keolis")


def test_the_longest_name_is_accepted() -> None:
    assert PluginNames.of("a" * 32).package == "pimms_" + "a" * 32


def test_the_files_written_with_every_name_in_place(tmp_path: Path) -> None:
    created = create_plugin("keolis-demo", tmp_path)
    assert created.path == tmp_path / "pimms-keolis-demo"
    assert sorted(created.files) == FILES
    written = sorted(
        str(p.relative_to(created.path)) for p in created.path.rglob("*") if p.is_file()
    )
    assert written == FILES
    for relative in FILES:
        text = (created.path / relative).read_text()
        assert "$" not in text, f"{relative}: a placeholder was left"
        assert "[doc:" not in text and "[/doc:" not in text, f"{relative}: a doc marker was left"
    pyproject = tomllib.loads((created.path / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "pimms-keolis-demo"
    assert pyproject["project"]["entry-points"]["pimms"] == {"keolis-demo": "pimms_keolis_demo"}
    assert pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == [
        "pimms_keolis_demo"
    ]
    assert "pimms-core>=0.1.0" in pyproject["project"]["dependencies"]
    assert 'PARTNER_ID = "keolis-demo"' in (created.path / "pimms_keolis_demo/info.py").read_text()


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "pimms-acme").mkdir()
    (tmp_path / "pimms-acme" / "mine.txt").write_text("keep")
    with pytest.raises(InvalidInput, match="already exists and is not empty: nothing was written"):
        create_plugin("acme", tmp_path)
    assert [p.name for p in (tmp_path / "pimms-acme").iterdir()] == ["mine.txt"]
    (tmp_path / "pimms-bolt").mkdir()  # an empty folder is fine
    assert create_plugin("bolt", tmp_path).path == tmp_path / "pimms-bolt"


def test_every_template_file_renders_and_no_file_is_forgotten() -> None:
    """Placeholders are all known (`substitute` raises on any other), and every template file
    lands somewhere in the plugin."""
    rendered = render(PluginNames.of("acme"))
    assert len(rendered) == len(template_files()) == len(FILES)


@pytest.mark.parametrize("name", ["ab", "keolis-demo", "abcdefghij-klmnopqrst-uvwxyz-123"])
def test_generated_code_is_lint_clean_and_formatted_whatever_the_name_length(
    tmp_path: Path, name: str
) -> None:
    created = create_plugin(name, tmp_path)
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=created.path,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[ModuleType]:
    """The generated plugin imported in this process (as installed editable, minus the entry
    point), removed again afterwards."""
    created = create_plugin("keolis-demo", tmp_path)
    sys.path.insert(0, str(created.path))
    try:
        yield importlib.import_module("pimms_keolis_demo")
    finally:
        sys.path.remove(str(created.path))
        for name in [m for m in sys.modules if m.split(".")[0] == "pimms_keolis_demo"]:
            del sys.modules[name]


def test_the_generated_plugin_loads_strictly_and_declares_a_complete_partner(
    generated: ModuleType,
) -> None:
    host = fresh_host(generated)  # strict: any load error raises
    [(partner_id, loaded)] = host.partners.items()
    assert partner_id == "keolis-demo" and loaded.plugin is generated
    info = loaded.info
    assert info.name == "Keolis Demo"
    assert {op.value for op in info.operations} == {"lookup_account", "open_claim", "claim_status"}
    assert set(host.sandbox_apps()) == {"keolis-demo"}
    assert [s.state for s in info.statuses] == [
        s for s in ClaimState if s is not ClaimState.UNKNOWN
    ]


def test_the_generated_plugin_works_against_its_simulator(generated: ModuleType) -> None:
    with sandbox_pimms(generated) as pimms:
        account = pimms.lookup_account("keolis-demo", "10000001")
        assert (account.holder_name, account.status) == ("Dominique Exemple", "active")
        claim = pimms.open_claim("keolis-demo", "10000001", "billing", "x", idempotency_key="k")
        again = pimms.open_claim("keolis-demo", "10000001", "billing", "x", idempotency_key="k")
        assert (claim.claim_ref, claim.replayed) == ("KEOLIS-DEMO-000001", False)
        assert (again.claim_ref, again.replayed) == (claim.claim_ref, True)
        status = pimms.claim_status("keolis-demo", claim.claim_ref)
        assert (status.state, status.partner_status, status.partner_label) == (
            ClaimState.RECEIVED,
            "NEW",
            "Reçue",
        )
        assert len(pimms.sandbox_state("keolis-demo").read()["claims"]) == 1


def test_cli_new_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")  # the folder is not below here: shown in full
    result = CliRunner().invoke(cli, ["new-plugin", "keolis-demo", "--directory", str(tmp_path)])
    assert result.exit_code == 0, result.output
    where = str(tmp_path / "pimms-keolis-demo")
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"Created pimms-keolis-demo in {where} (partner id keolis-demo, package pimms_keolis_demo):"
    )
    assert lines[1 : 1 + len(FILES)] == [f"  {path}" for path in sorted(FILES)]
    assert f"  pip install -e '{where}[test]'" in lines
    again = CliRunner().invoke(cli, ["new-plugin", "keolis-demo", "--directory", str(tmp_path)])
    assert again.exit_code == 1 and again.stderr.startswith(f"error: {where} already exists")


def test_cli_new_plugin_json_and_a_relative_folder(tmp_path: Path) -> None:
    assert Path.cwd() == tmp_path  # the autouse fixture's working directory
    result = CliRunner().invoke(cli, ["new-plugin", "acme", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "path": str((tmp_path / "pimms-acme").resolve()),
        "distribution": "pimms-acme",
        "package": "pimms_acme",
        "partner_id": "acme",
        "files": sorted(f.replace("keolis_demo", "acme") for f in FILES),
    }
    human = CliRunner().invoke(cli, ["new-plugin", "bolt"])
    assert human.stdout.startswith(f"Created pimms-bolt in .{os.sep}pimms-bolt ")


def test_cli_new_plugin_refuses_a_bad_name() -> None:
    result = CliRunner().invoke(cli, ["new-plugin", "Keolis"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 'Keolis' is not a valid plugin name")


# --- the author's whole path, for real ---------------------------------------------------------


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_a_generated_plugin_installs_is_listed_and_passes_its_tests_in_a_fresh_venv(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIMMS_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))
    }
    env["PIMMS_DATA_DIR"] = str(tmp_path / "data")
    venv = tmp_path / "venv"
    bin_dir = venv / "bin"
    pip = [bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    timings: dict[str, float] = {}

    def timed(step: str, command: list[str | Path], cwd: Path = tmp_path) -> str:
        started = time.perf_counter()
        output = run(command, cwd, env)
        timings[step] = round(time.perf_counter() - started, 1)
        return output

    timed("venv", [sys.executable, "-m", "venv", venv])
    timed("install pimms-core", [*pip, ROOT])  # a wheel: the template must be in it
    timed("new-plugin", [bin_dir / "pimms", "new-plugin", "keolis-demo"])
    plugin = tmp_path / "pimms-keolis-demo"
    timed("install plugin", [*pip, "-e", f"{plugin}[test]"])
    listed = json.loads(timed("pimms partners", [bin_dir / "pimms", "partners", "--json"]))
    assert [(p["id"], p["plugin"], p["mode"]) for p in listed["partners"]] == [
        ("keolis-demo", "pimms-keolis-demo", "sandbox")
    ]
    assert listed["errors"] == []
    report = timed(
        "its tests", [bin_dir / "python", "-m", "pytest", "-p", "no:cacheprovider"], plugin
    )
    passed = re.search(r"(\d+) passed", report)
    assert passed and int(passed.group(1)) > 20, report
    assert not re.search(r"\d+ (failed|error|skipped)", report), report
    print(f"fresh venv timings (s): {timings}")
