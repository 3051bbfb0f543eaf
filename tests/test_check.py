"""`pimms check`: the connector checks, on the sandbox and on a live endpoint played by respx.

Breaking a simulator on purpose (a WSGI middleware rewriting its answers) must make the right
check fail with a readable reason and the command exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner, Result

import pimms_edf
import pimms_edf.simulator
import pimms_laposte
from pimms_core.checks import (
    CheckOptions,
    info_problems,
    invalid_reference_for,
    run_checks,
    unknown_reference_for,
)
from pimms_core.cli import cli
from pimms_core.facade import Pimms
from pimms_core.models import ReferenceFormat, SandboxAccount, SettingSpec, StatusCode
from pimms_core.testing.canary import CANARY
from pimms_core.testing.partner_mock import PartnerMock
from tests.fakes import acme_info, install_plugin

CHECKS = [
    "partner_info",
    "invalid_reference_refused",
    "known_account_found",
    "unknown_account_not_found",
    "unknown_claim_not_found",
    "claim_opened",
    "claim_resent_same_key",
    "claim_status_read",
]
EDF_LIVE = (
    '[partners.edf]\nbase_url = "https://partenaires.api.edf.fr"\n'
    'client_id_env = "EDF_ID"\nclient_secret_env = "EDF_SECRET"\n'
)
CANARY_ENV = {"EDF_ID": CANARY.secret, "EDF_SECRET": CANARY.secret}


def run(*args: str, load: str | None = None, env: dict[str, str] | None = None) -> Result:
    variables = {**({"PIMMS_LOAD_PLUGINS": load} if load else {}), **(env or {})}
    return CliRunner().invoke(cli, list(args), env=variables)


def rows(output: str) -> dict[str, tuple[str, str]]:
    """CHECK -> (RESULT, DETAIL) from the table (one partner's)."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] in CHECKS:
            detail = line.split(" ms", 1)[1].strip() if " ms" in line else ""
            found[parts[0]] = (parts[1], detail)
    return found


def rewriting(app: Any, change: Callable[[Any], Any]) -> Any:
    """A WSGI middleware passing every JSON answer of `app` through `change`."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers)
            return lambda _data: None

        answer = app(environ, capture)
        try:
            body = b"".join(answer)
        finally:
            getattr(answer, "close", lambda: None)()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        if any(k.lower() == "content-type" and "json" in v for k, v in headers):
            body = json.dumps(change(json.loads(body))).encode()
        start_response(captured["status"], [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return middleware


@pytest.fixture
def break_edf(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[Any], Any]], None]:
    """Make EDF's simulator answer through `change` (its plugin is left as it is)."""
    original = pimms_edf.simulator.create_app

    def apply(change: Callable[[Any], Any]) -> None:
        monkeypatch.setattr(
            pimms_edf.simulator,
            "create_app",
            lambda state, **kw: rewriting(original(state, **kw), change),
        )

    return apply


# --- sandbox mode -------------------------------------------------------------------------------


def test_check_all_passes_on_the_four_partners_in_sandbox_mode() -> None:
    result = run("check", "--all")
    assert result.exit_code == 0, result.output
    blocks = result.stdout.split("\n\n")
    assert [block.split()[0] for block in blocks[:4]] == ["edf", "laposte", "sncf", "veolia"]
    for block in blocks[:4]:
        assert "SANDBOX" in block.splitlines()[0] and "writes allowed" in block.splitlines()[0]
        table = rows(block)
        assert list(table) == CHECKS
        assert {result for result, _ in table.values()} == {"PASS"}, block
        assert block.splitlines()[1].split() == ["CHECK", "RESULT", "TIME", "DETAIL"]
    assert result.stdout.rstrip().endswith("all 4 partners passed")
    assert "SANDBOX edf: answers come from the EDF simulator" in result.stderr


def test_check_json_reports_every_check_with_its_time() -> None:
    result = run("check", "laposte", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["load_errors"] == []
    [report] = data["partners"]
    assert (report["partner"], report["mode"], report["writes"]) == ("laposte", "sandbox", True)
    assert [c["check"] for c in report["checks"]] == CHECKS
    assert all(c["result"] == "pass" and c["seconds"] >= 0 for c in report["checks"])
    assert report["checks"][5]["detail"].startswith("RCL-")


def test_read_only_in_sandbox_mode_skips_the_claim_checks_saying_why() -> None:
    result = run("check", "sncf", "--read-only")
    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert table["claim_opened"] == ("SKIP", "read-only: pass --allow-writes to open a test claim")
    assert table["claim_status_read"][0] == "SKIP"
    assert table["known_account_found"] == ("PASS", "4 account(s) found")
    assert "sncf: 5 passed, 0 failed, 3 skipped" in result.stdout


def test_a_renamed_field_fails_the_lookup_check_with_a_readable_reason(
    break_edf: Callable[[Callable[[Any], Any]], None],
) -> None:
    def rename(data: Any) -> Any:
        if isinstance(data, dict) and "customer" in data:
            return {"client": data["customer"]}
        return data

    break_edf(rename)
    result = run("check", "edf")
    assert result.exit_code == 1
    table = rows(result.stdout)
    assert table["known_account_found"] == (
        "FAIL",
        "PartnerProtocolError: edf answered something unexpected: field customer is missing",
    )
    assert table["partner_info"][0] == table["unknown_account_not_found"][0] == "PASS"
    assert table["claim_opened"] == (
        "SKIP",
        "needs a known account (known_account_found did not pass)",
    )
    assert "edf: 4 passed, 1 failed, 3 skipped" in result.stdout
    assert "Traceback" not in result.output

    both = run("check", "--all", load="edf,laposte")
    assert both.exit_code == 1
    assert both.stdout.rstrip().endswith("1 of 2 partners failed: edf")
    assert "laposte: 8 passed, 0 failed, 0 skipped" in both.stdout


def test_an_undeclared_status_fails_the_claim_checks(
    break_edf: Callable[[Callable[[Any], Any]], None],
) -> None:
    def reopen(data: Any) -> Any:
        if isinstance(data, dict) and "claim_id" in data:
            return {**data, "status": "REOPENED"}
        return data

    break_edf(reopen)
    result = run("check", "edf", "--reference", "4001234567", "--json")
    assert result.exit_code == 1
    checks = {c["check"]: c for c in json.loads(result.stdout)["partners"][0]["checks"]}
    assert checks["claim_opened"]["result"] == "fail"
    assert checks["claim_opened"]["detail"] == (
        "the partner answered status 'REOPENED', which the plugin does not declare"
    )
    assert checks["known_account_found"]["result"] == "pass"


def test_a_reference_checked_only_by_the_partner_fails_the_local_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Pimms, "_check_reference", staticmethod(lambda _info, ref: ref))
    result = run("check", "laposte", "--read-only")
    assert result.exit_code == 1
    assert rows(result.stdout)["invalid_reference_refused"] == (
        "FAIL",
        "refused, but only after 1 request(s)",
    )


# --- live mode ----------------------------------------------------------------------------------


@pytest.fixture
def live_edf(tmp_path: Path) -> Iterator[tuple[Path, PartnerMock]]:
    """EDF configured live with canary credentials; respx plays EDF from its simulator."""
    config = tmp_path / "pimms.toml"
    config.write_text(EDF_LIVE)
    with PartnerMock(pimms_edf) as mock:
        yield config, mock


def test_live_endpoint_is_read_only_by_default(live_edf: tuple[Path, PartnerMock]) -> None:
    config, mock = live_edf
    result = run(
        "--config", str(config), "check", "edf", "--reference", "4001234567",
        load="edf", env=CANARY_ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "LIVE, https://partenaires.api.edf.fr; read-only" in result.stdout
    table = rows(result.stdout)
    assert table["known_account_found"] == ("PASS", "1 account(s) found")
    assert [table[name][0] for name in CHECKS[5:]] == ["SKIP", "SKIP", "SKIP"]
    assert {r.method for r in mock.api_requests()} == {"GET"}, "a read-only check wrote"
    assert mock.claims_at_partner() == 0
    assert CANARY.leaks([("output", result.output)]) == []


def test_live_endpoint_without_a_reference_says_what_to_give(
    live_edf: tuple[Path, PartnerMock],
) -> None:
    config, _mock = live_edf
    result = run("--config", str(config), "check", "edf", load="edf", env=CANARY_ENV)
    assert result.exit_code == 0, result.output
    status, detail = rows(result.stdout)["known_account_found"]
    assert status == "SKIP" and detail.startswith("give --reference (and --name)")


def test_live_endpoint_with_allow_writes_opens_one_claim(
    live_edf: tuple[Path, PartnerMock],
) -> None:
    config, mock = live_edf
    result = run(
        "--config", str(config), "check", "edf", "--reference", "4001234567",
        "--allow-writes", "--json", load="edf", env=CANARY_ENV,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)["partners"]
    assert report["mode"] == "live" and report["writes"] is True
    assert all(c["result"] == "pass" for c in report["checks"]), report
    assert mock.claims_at_partner() == 1, "the re-sent claim was opened twice"
    assert CANARY.leaks([("output", result.output)]) == []


def test_refused_credentials_fail_the_reads_with_the_core_message(
    live_edf: tuple[Path, PartnerMock],
) -> None:
    config, mock = live_edf
    from pimms_core.testing.partner_mock import faults

    mock.fail(faults.status(401, json_body={"error": "invalid_client"}), login=True)
    result = run(
        "--config", str(config), "check", "edf", "--reference", "4001234567",
        load="edf", env=CANARY_ENV,
    )  # fmt: skip
    assert result.exit_code == 1
    status, detail = rows(result.stdout)["known_account_found"]
    assert status == "FAIL" and detail.startswith("PartnerAuthError: edf: the login was refused")
    assert CANARY.leaks([("output", result.output)]) == []


# --- usage and loading --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["check"], ["check", "edf", "--all"], ["check", "--all", "--reference", "4001234567"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args).exit_code == 2


def test_unknown_partner_exits_1_listing_the_installed_ones() -> None:
    result = run("check", "nope", load="edf")
    assert result.exit_code == 1
    assert "unknown partner 'nope': expected one of edf" in result.stderr


def test_check_all_fails_when_a_plugin_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_plugin(site, "pimms-broken", "pimms_broken", 'raise ImportError("broken")\n', "broken")
    monkeypatch.syspath_prepend(str(site))
    result = run("check", "--all", load="laposte,broken")
    assert result.exit_code == 1
    assert "laposte: 8 passed" in result.stdout
    assert "plugin failed to load: pimms-broken 0.1.0: failed to import" in result.stdout


# --- the pieces -----------------------------------------------------------------------------------


def test_info_problems_name_each_inconsistency() -> None:
    info = acme_info()
    implemented = {"pimms_partner_info", "pimms_lookup_account", "pimms_claim_status"}
    assert info_problems(info, implemented | {"pimms_open_claim"}, has_sandbox=True) == []
    broken = attrs.evolve(
        info,
        statuses=[StatusCode("NEW", "received"), StatusCode("ODD", "unknown")],
        sandbox_accounts=[SandboxAccount("1234")],
        settings=[SettingSpec("api_key", "the site's key", secret=True)],
    )
    assert info_problems(broken, implemented, has_sandbox=True) == [
        "declares open_claim but does not implement pimms_open_claim",
        "status 'ODD' maps to 'unknown': map it to a common state "
        "(unknown is for codes the partner never declared)",
        "sandbox account '1234' does not match the reference format",
        "secret setting 'api_key' has no sandbox_value: sandbox mode cannot run",
    ]


def test_references_made_for_the_checks_fit_or_break_the_format() -> None:
    fmt = ReferenceFormat(r"[A-Z]{2}\d{6}", "AB123456", "two letters and six digits")
    assert not fmt.matches(invalid_reference_for(fmt))
    unknown = unknown_reference_for(fmt, known=["ZZ000000"])
    assert unknown == "QQ999999" and fmt.matches(unknown)
    assert unknown_reference_for(ReferenceFormat("4001234567", "4001234567", "only one")) is None


def test_run_checks_reports_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    from pimms_core.testing import sandbox_pimms

    pimms = sandbox_pimms(pimms_laposte)

    def boom(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("not a PimmsError")

    monkeypatch.setattr(pimms, "claim_status", boom)
    report = run_checks(pimms, "laposte", CheckOptions(allow_writes=False))
    by_name = {r.name: r for r in report.results}
    assert by_name["unknown_claim_not_found"].result == "fail"
    assert by_name["unknown_claim_not_found"].detail == "internal error (KeyError)"
    assert not report.ok
    with pytest.raises(KeyError):
        run_checks(pimms, "laposte", CheckOptions(allow_writes=False), debug=True)
    pimms.close()
