"""The `pimms` command line, through click's runner and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pimms_core.cli import cli
from tests.fakes import install_plugin

CANARY_SECRET = "canary-secret-8e2b"
CANARY_ID = "canary-client-4d71"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    base = {"PIMMS_LOAD_PLUGINS": "edf"}
    return CliRunner().invoke(cli, list(args), env={**base, **(env or {})})


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("partners", "lookup", "claim", "demo", "sandbox"):
        assert command in result.output


def test_partners_json() -> None:
    result = run("partners", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [edf] = data["partners"]
    assert edf["id"] == "edf" and edf["plugin"] == "pimms-edf" and edf["mode"] == "sandbox"
    assert edf["operations"] == ["claim_status", "lookup_account", "open_claim"]
    assert data["errors"] == []


def test_partners_table() -> None:
    result = run("partners")
    assert result.exit_code == 0
    assert "pimms-edf" in result.output and "SANDBOX" in result.output


def test_lookup_by_customer_number_and_by_pdl() -> None:
    result = run("lookup", "edf", "4001234567", "--json")
    assert result.exit_code == 0, result.output
    account = json.loads(result.stdout)
    assert account["holder_name"] == "Mme Camille Martin"
    assert account["mode"] == "sandbox"
    assert "SANDBOX edf" in result.stderr
    by_pdl = json.loads(run("lookup", "edf", "24115050654321", "--json").stdout)
    assert "Karim Benali" in by_pdl["holder_name"]


def test_lookup_human_output() -> None:
    result = run("lookup", "edf", "4001234567")
    assert result.exit_code == 0
    assert "holder:   Mme Camille Martin" in result.output


def test_bad_reference_exits_1_naming_the_format() -> None:
    result = run("lookup", "edf", "123")
    assert result.exit_code == 1
    assert "10-digit customer number" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_account_exits_1() -> None:
    result = run("lookup", "edf", "4000000000")
    assert result.exit_code == 1
    assert "no account matches" in result.stderr


def test_unknown_partner_exits_1_listing_installed() -> None:
    result = run("lookup", "nope", "1")
    assert result.exit_code == 1
    assert "expected one of edf" in result.stderr


def test_usage_error_exits_2() -> None:
    assert run("claim", "open", "edf", "--category", "billing").exit_code == 2


def test_claim_open_twice_with_a_key_then_status() -> None:
    args = [
        "claim",
        "open",
        "edf",
        "--account",
        "4001234567",
        "--category",
        "billing",
        "--description",
        "Facture contestée",
        "--idempotency-key",
        "K-1",
        "--json",
    ]
    first = run(*args)
    assert first.exit_code == 0, first.output
    second = run(*args)
    first_claim, second_claim = json.loads(first.stdout), json.loads(second.stdout)
    assert first_claim["claim_ref"] == second_claim["claim_ref"]
    assert second_claim["replayed"] is True
    assert first_claim["state"] == "received"
    status = run("claim", "status", "edf", first_claim["claim_ref"], "--json")
    assert json.loads(status.stdout)["state"] == "received"
    human = run("claim", "status", "edf", first_claim["claim_ref"])
    assert "state:    received (OPEN" in human.output


def test_unknown_category_lists_the_valid_ones() -> None:
    result = run(
        "claim",
        "open",
        "edf",
        "--account",
        "4001234567",
        "--category",
        "lottery",
        "--description",
        "x",
    )
    assert result.exit_code == 1
    assert "billing" in result.stderr and "FACTURATION" in result.stderr


def test_claim_status_of_an_unknown_claim() -> None:
    result = run("claim", "status", "edf", "EDF-C-999999")
    assert result.exit_code == 1
    assert "no claim matches" in result.stderr


def test_sandbox_reset_forgets_claims() -> None:
    opened = run(
        "claim",
        "open",
        "edf",
        "--account",
        "4001234567",
        "--category",
        "billing",
        "--description",
        "x",
        "--json",
    )
    ref = json.loads(opened.stdout)["claim_ref"]
    assert run("sandbox", "reset").exit_code == 0
    assert run("claim", "status", "edf", ref).exit_code == 1


def test_demo_walks_through_edf() -> None:
    result = run("demo")
    assert result.exit_code == 0, result.output
    assert "the same claim, not a second one" in result.output
    assert "1 of 1 partner(s) went through" in result.output


def test_secrets_never_appear_in_output_or_logs(tmp_path: Path) -> None:
    config = tmp_path / "pimms.toml"
    config.write_text(
        '[partners.edf]\nbase_url = "http://127.0.0.1:9"\ntimeout = 0.5\n'
        'client_id_env = "EDF_ID"\nclient_secret_env = "EDF_SECRET"\n'
    )
    env = {"EDF_ID": CANARY_ID, "EDF_SECRET": CANARY_SECRET}
    result = run("-v", "--config", str(config), "lookup", "edf", "4001234567", env=env)
    assert result.exit_code == 1
    assert "edf is unavailable" in result.stderr
    assert CANARY_SECRET not in result.output and CANARY_ID not in result.output


def test_missing_secret_variable_is_named(tmp_path: Path) -> None:
    config = tmp_path / "pimms.toml"
    config.write_text(
        '[partners.edf]\nbase_url = "https://partenaires.api.edf.fr"\n'
        'client_id_env = "EDF_ID"\nclient_secret_env = "EDF_SECRET"\n'
    )
    result = run("--config", str(config), "lookup", "edf", "4001234567", env={"EDF_ID": "x"})
    assert result.exit_code == 1
    assert "EDF_SECRET" in result.stderr


BROKEN = 'raise ImportError("this plugin is broken on purpose")\n'


def subprocess_run(*args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "pimms_core", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def broken_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    install_plugin(site, "pimms-broken", "pimms_broken", BROKEN, entry_point="broken")
    return site


def test_real_process_lists_edf_beside_a_broken_plugin(broken_site: Path) -> None:
    env = {"PYTHONPATH": str(broken_site), "PIMMS_LOAD_PLUGINS": "edf,broken"}
    result = subprocess_run("partners", "--json", extra_env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [p["id"] for p in data["partners"]] == ["edf"]
    assert data["errors"][0]["plugin"] == "pimms-broken 0.1.0"
    assert "broken on purpose" in data["errors"][0]["error"]
    human = subprocess_run("partners", extra_env=env)
    assert "failed to load" in human.stdout and "pimms-broken" in human.stdout


def test_real_process_strict_mode_fails(broken_site: Path) -> None:
    env = {
        "PYTHONPATH": str(broken_site),
        "PIMMS_LOAD_PLUGINS": "edf,broken",
        "PIMMS_STRICT_PLUGINS": "1",
    }
    result = subprocess_run("partners", extra_env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: plugins failed to load (strict mode)")


def test_real_process_lookup_json() -> None:
    result = subprocess_run(
        "lookup", "edf", "4001234567", "--json", extra_env={"PIMMS_LOAD_PLUGINS": "edf"}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["holder_name"] == "Mme Camille Martin"
