"""The fault matrix: every fault x every installed partner x every operation, on loopback.

The matrix runs once for the module (concurrently, each case with its own simulator, proxy and
store), over the installed partners and `nokey`, a fake partner with no idempotency mechanism;
each case is then one test, so a failure names its partner, operation and fault. A careless
plugin shows the matrix catches what it is meant to: a duplicate, a leak, a crash.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import httpx
import pytest

from pimms_core import hookimpl
from pimms_core.auth import HeaderAuth
from pimms_core.config import Settings
from pimms_core.context import PartnerContext
from pimms_core.errors import PartnerUnavailable
from pimms_core.models import (
    Account,
    AccountQuery,
    Claim,
    ClaimRequest,
    ClaimStatus,
    Operation,
    PartnerInfo,
    PluginRef,
)
from pimms_core.plugins import PluginHost
from pimms_core.sandbox import SandboxState
from pimms_core.testing import plugin_ref
from pimms_core.testing.fault_catalogue import catalogue
from pimms_core.testing.fault_report import Outcome, Report
from pimms_core.testing.faults import DEFAULT_TIMEOUT, run_matrix
from tests.fakes import install_plugin
from tests.test_crash import NOKEY_SOURCE, install_nokey

FAULTS = [fault.name for fault in catalogue(DEFAULT_TIMEOUT)]


def _partners() -> dict[str, list[str]]:
    """Installed partners with a simulator, and their operations; `nokey` has all three."""
    host = PluginHost(env={})
    found = {
        pid: sorted(op.value for op in loaded.info.operations)
        for pid, loaded in host.sandbox_apps().items()
    }
    return {**found, "nokey": sorted(op.value for op in Operation)}


def _cases() -> list[Any]:
    params = []
    for partner, operations in sorted(_partners().items()):
        for operation in operations:
            for fault in FAULTS:
                params.append(
                    pytest.param(partner, operation, fault, id=f"{partner}-{operation}-{fault}")
                )
    return params


@pytest.fixture(scope="module")
def nokey(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    return install_nokey(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def report(nokey: ModuleType) -> Report:
    host = PluginHost(env={}, plugins=[(nokey, plugin_ref(nokey, "pimms-nokey"))])
    return run_matrix(host, crash=False)


def _outcome(report: Report, key: str) -> Outcome:
    found = [o for o in report.outcomes if o.key == key]
    assert len(found) == 1, f"the matrix ran {len(found)} cases {key}"
    return found[0]


def _explain(outcome: Outcome) -> str:
    lines = [f"{outcome.key}: got {outcome.got} in {outcome.seconds:.2f} s", *outcome.problems]
    if outcome.lost:
        lines.append("LOST: the partner holds no claim and nothing will send it")
    if outcome.duplicated:
        lines.append(f"DUPLICATED: the partner holds {outcome.claims_at_partner} claims")
    lines += [f"LEAK: {leak}" for leak in outcome.leaks]
    return "\n".join(lines)


@pytest.mark.parametrize(("partner", "operation", "fault"), _cases())
def test_every_fault_every_partner_every_operation(
    report: Report, partner: str, operation: str, fault: str
) -> None:
    outcome = _outcome(report, f"{partner}/{operation}/{fault}")
    assert outcome.passed, _explain(outcome)


def test_the_figures_line_reads_nothing_lost_duplicated_or_leaked(report: Report) -> None:
    assert report.tried == len(_cases())
    assert re.fullmatch(
        r"faults: tried \d+, passed \d+, lost 0, duplicated 0, leaks 0", report.figures()
    ), report.figures()
    assert report.not_ready == ()
    # Run concurrently, the whole matrix stays well within CI's patience.
    assert report.seconds < 120


@pytest.mark.parametrize(
    ("fault", "claims", "state"),
    [
        ("refused", 1, "delivered"),  # surely not sent: sent by the flush
        ("http_429_retry_after", 1, "delivered"),  # turned away unprocessed: sent by the flush
        ("timeout_unforwarded", 0, "needs_check"),  # may have arrived: a person checks
        ("timeout_forwarded", 1, "needs_check"),
        ("reset_once", 1, "needs_check"),  # never sent twice, even for a transient fault
    ],
)
def test_with_no_mechanism_a_claim_that_may_have_arrived_waits_for_a_person(
    report: Report, fault: str, claims: int, state: str
) -> None:
    outcome = _outcome(report, f"nokey/open_claim/{fault}")
    assert (outcome.claims_at_partner, outcome.outbox_state) == (claims, state), _explain(outcome)
    assert outcome.passed, _explain(outcome)


class CarelessPlugin:
    """What the matrix must catch: it declares an idempotency header it never sends, reads
    JSON without the core's helpers, puts the resident's words in an error message, and logs
    its credential base64-encoded (which no redaction of the raw value catches)."""

    def __init__(self, nokey: ModuleType) -> None:
        self.nokey = nokey
        self.info: PartnerInfo = attrs.evolve(nokey.INFO, id="careless", idempotency="header")

    @hookimpl
    def pimms_partner_info(self) -> PartnerInfo:
        return self.info

    @hookimpl
    def pimms_http_auth(self, partner_id: str, settings: Settings) -> httpx.Auth:
        key = settings.secret("api_key")
        logging.getLogger("pimms.careless").debug(
            "signing with %s", base64.b64encode(f"{key}:".encode()).decode()
        )
        return HeaderAuth("X-Api-Key", key)

    @hookimpl
    def pimms_lookup_account(self, partner: PartnerContext, query: AccountQuery) -> Account:
        result: Account = self.nokey.pimms_lookup_account(partner, query)
        return result

    @hookimpl
    def pimms_open_claim(self, partner: PartnerContext, request: ClaimRequest) -> Claim:
        response = partner.http.post(
            "/claims", json={"ref": request.account_ref, "text": request.description}
        )
        if response.status_code >= 500:
            raise PartnerUnavailable(partner.id, f"could not file {request.description!r}")
        data = response.json()
        return Claim(
            partner=partner.id,
            claim_ref=data["id"],
            state="received",
            partner_status=data["status"],
            opened_at=datetime.fromisoformat(data["at"]),
        )

    @hookimpl
    def pimms_claim_status(self, partner: PartnerContext, claim_ref: str) -> ClaimStatus:
        result: ClaimStatus = self.nokey.pimms_claim_status(partner, claim_ref)
        return result

    @hookimpl
    def pimms_sandbox(self, partner_id: str, state: SandboxState) -> Any:
        return self.nokey.create_app(state) if partner_id == "careless" else None


def test_the_matrix_catches_a_duplicate_a_leak_and_a_crash(nokey: ModuleType) -> None:
    plugin = CarelessPlugin(nokey)
    host = PluginHost(
        use_entry_points=False, plugins=[(plugin, PluginRef("careless-plugin", "0.1"))]
    )
    report = run_matrix(
        host,
        faults=["timeout_forwarded_once", "malformed_json", "http_503_html"],
        operations=[Operation.OPEN_CLAIM],
        crash=False,
    )
    assert report.tried == 3 and report.passed == 0
    duplicate = _outcome(report, "careless/open_claim/timeout_forwarded_once")
    assert duplicate.duplicated and duplicate.claims_at_partner == 2
    crash = _outcome(report, "careless/open_claim/malformed_json")
    assert any("got PluginError" in p for p in crash.problems), crash.problems
    leaky = _outcome(report, "careless/open_claim/http_503_html")
    assert any(leak.startswith("description found in exception text") for leak in leaky.leaks)
    assert any(
        leak.startswith("secret") and "log record" in leak
        for outcome in report.outcomes
        for leak in outcome.leaks
    )
    assert re.fullmatch(
        r"faults: tried 3, passed 0, lost 0, duplicated [12], leaks [1-9]\d*", report.figures()
    ), report.figures()


def _faults_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pimms_core.testing.faults ...` with only the `nokey` plugin installed."""
    site = tmp_path / "site"
    install_plugin(site, "pimms-nokey", "pimms_nokey", NOKEY_SOURCE, entry_point="nokey")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PIMMS_LOAD_PLUGINS": "nokey"}
    return subprocess.run(
        [sys.executable, "-m", "pimms_core.testing.faults", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_one_command_runs_the_matrix_on_the_installed_plugins_and_ends_with_the_figures(
    tmp_path: Path,
) -> None:
    done = _faults_command(
        tmp_path, "--fault", "http_503_html", "--fault", "timeout_forwarded", "-v"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "faults: tried 6, passed 6, lost 0, duplicated 0, leaks 0"
    assert re.fullmatch(r"6 cases over 1 partner\(s\) in [\d.]+ s \(.*\)", lines[-2])
    assert sum(line.startswith("ok   nokey/") for line in lines) == 6


def test_the_command_runs_a_crash_case_by_name_and_refuses_an_unknown_fault(
    tmp_path: Path,
) -> None:
    done = _faults_command(
        tmp_path, "--operation", "open_claim", "--fault", "refused", "--fault", "crash_after_send"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "faults: tried 2, passed 2, lost 0, duplicated 0, leaks 0"
    listed = _faults_command(tmp_path, "--list")
    assert "crash_after_send" in listed.stdout and "endless_drip" in listed.stdout
    wrong = _faults_command(tmp_path, "--fault", "gremlins")
    assert wrong.returncode == 2
    assert "unknown fault(s) gremlins" in wrong.stderr
