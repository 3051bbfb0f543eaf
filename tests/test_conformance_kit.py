"""The conformance kit itself: the suite must fail a plugin that is wrong, at the right check,
saying why; its fixtures must hand out and take back what they promise.

The suite runs (through pytester) on EDF's plugin re-wrapped hook by hook, so that one hook at
a time can be broken; the sound wrapper passes everything but the entry-point check, which it
skips with its stated reason (it is a test double, not an installed distribution).
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any

import httpx
import pytest

import pimms_edf
import pimms_laposte
import pimms_veolia
from pimms_core.errors import PartnerUnavailable
from pimms_core.testing.canary import CANARY, Canary
from pimms_core.testing.partner_mock import PartnerMock, faults

pytest_plugins = ["pytester"]

WRAPPER = '''
import logging
import uuid

import attrs

import pimms_edf
from pimms_core import hookimpl
from pimms_core.errors import PartnerProtocolError, PartnerUnavailable
from pimms_core.models import ClaimState
from pimms_core.testing.conformance import ConformanceSuite


class Edf:
    """EDF's plugin, hook by hook: a subclass breaks one hook."""

    @hookimpl
    def pimms_partner_info(self):
        return pimms_edf.INFO

    @hookimpl
    def pimms_http_auth(self, partner_id, settings):
        return pimms_edf.pimms_http_auth(partner_id, settings)

    @hookimpl
    def pimms_lookup_account(self, partner, query):
        return pimms_edf.pimms_lookup_account(partner, query)

    @hookimpl
    def pimms_open_claim(self, partner, request):
        return pimms_edf.pimms_open_claim(partner, request)

    @hookimpl
    def pimms_claim_status(self, partner, claim_ref):
        return pimms_edf.pimms_claim_status(partner, claim_ref)

    @hookimpl
    def pimms_sandbox(self, partner_id, state):
        return pimms_edf.pimms_sandbox(partner_id, state)


class Base(ConformanceSuite):
    partner_id = "edf"
    known_reference = "4001234567"
    unknown_reference = "4000000000"
    invalid_reference = "12"
    skip_checks = {"test_entry_point_loads_in_isolation": "a test double, not installed"}
'''


def suite(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_plugin=WRAPPER + textwrap.dedent(body))
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def failed(result: pytest.RunResult) -> set[str]:
    """`Class::test[param]` of each failed check."""
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    return {r.nodeid.split("::", 1)[1] for r in reports if r.failed}


def test_a_sound_plugin_passes_and_the_skip_reason_is_reported(pytester: pytest.Pytester) -> None:
    result = suite(pytester, "class TestSound(Base):\n    plugin = Edf()\n")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes["skipped"] == 1 and outcomes["passed"] > 40
    result.stdout.fnmatch_lines(
        [
            "*pimms conformance: checks not passed as such*",
            "SKIPPED *test_entry_point_loads_in_isolation: edf: test_entry_point_loads_in_"
            "isolation skipped: a test double, not installed",
        ]
    )


def test_a_plugin_that_crashes_on_a_changed_answer_fails_the_protocol_checks(
    pytester: pytest.Pytester,
) -> None:
    body = """
    class Careless(Edf):
        @hookimpl
        def pimms_lookup_account(self, partner, query):
            data = partner.http.get(f"/customers/v1/accounts/{query.reference}").json()
            return pimms_edf.pimms_lookup_account(partner, query) if data["customer"] else None

    class TestCareless(Base):
        plugin = Careless()
    """
    result = suite(pytester, body, "-k", "unreadable and lookup_account")
    assert failed(result) == {
        f"TestCareless::test_unreadable_answer_is_a_protocol_error[lookup_account-{answer}]"
        for answer in ("html_page", "empty_body", "json_null", "truncated", "renamed_fields")
    }
    result.stdout.fnmatch_lines(["*expected PartnerProtocolError, got PluginError*"])


def test_a_plugin_that_maps_5xx_wrongly_fails_the_unavailable_check(
    pytester: pytest.Pytester,
) -> None:
    body = """
    class Gloomy(Edf):
        @hookimpl
        def pimms_claim_status(self, partner, claim_ref):
            try:
                return pimms_edf.pimms_claim_status(partner, claim_ref)
            except PartnerUnavailable:
                raise PartnerProtocolError(partner.id, "the partner is broken") from None

    class TestGloomy(Base):
        plugin = Gloomy()
    """
    result = suite(pytester, body, "-k", "server_error or rate_limit")
    assert failed(result) == {
        "TestGloomy::test_server_error_is_unavailable[claim_status-500]",
        "TestGloomy::test_server_error_is_unavailable[claim_status-502]",
        "TestGloomy::test_server_error_is_unavailable[claim_status-503]",
        "TestGloomy::test_rate_limit_is_unavailable_with_retry_after[claim_status]",
    }


def test_a_plugin_that_logs_personal_data_fails_the_canary_check(
    pytester: pytest.Pytester,
) -> None:
    body = """
    class Chatty(Edf):
        @hookimpl
        def pimms_open_claim(self, partner, request):
            logging.getLogger("chatty").debug("claim: %s", request.description)
            return pimms_edf.pimms_open_claim(partner, request)

    class TestChatty(Base):
        plugin = Chatty()
    """
    result = suite(pytester, body, "-k", "canary")
    assert failed(result) == {"TestChatty::test_canary_values_stay_out_of_logs_and_errors"}
    result.stdout.fnmatch_lines(["*description found in log record: ?claim: Canary description*"])


def test_a_plugin_that_leaks_the_secret_in_an_error_fails_the_canary_checks(
    pytester: pytest.Pytester,
) -> None:
    body = """
    class Blabbing(Edf):
        @hookimpl
        def pimms_open_claim(self, partner, request):
            try:
                return pimms_edf.pimms_open_claim(partner, request)
            except PartnerUnavailable as exc:
                secret = partner.settings.secret("client_secret")
                raise PartnerUnavailable(partner.id, f"down (we sent {secret})") from exc

    class TestBlabbing(Base):
        plugin = Blabbing()
    """
    result = suite(pytester, body, "-k", "canary")
    assert failed(result) == {
        "TestBlabbing::test_canary_values_stay_out_of_logs_and_errors",
        "TestBlabbing::test_canary_values_stay_out_of_cli_output",
    }
    result.stdout.fnmatch_lines(["*secret found in PartnerUnavailable text*"])
    result.stdout.fnmatch_lines(["*secret found in output of pimms claim open*"])


def test_a_plugin_that_sends_a_new_key_each_time_fails_the_idempotency_checks(
    pytester: pytest.Pytester,
) -> None:
    body = """
    class Forgetful(Edf):
        @hookimpl
        def pimms_open_claim(self, partner, request):
            fresh = attrs.evolve(request, idempotency_key=uuid.uuid4().hex)
            return pimms_edf.pimms_open_claim(partner, fresh)

    class TestForgetful(Base):
        plugin = Forgetful()
    """
    result = suite(pytester, body, "-k", "twice or lost_answer")
    assert failed(result) == {
        "TestForgetful::test_claim_opened_twice_with_one_key_exists_once",
        "TestForgetful::test_claim_sent_again_after_a_lost_answer_exists_once",
    }


def test_a_plugin_that_hides_an_undeclared_status_fails_the_unknown_status_check(
    pytester: pytest.Pytester,
) -> None:
    body = """
    class Tidy(Edf):
        @hookimpl
        def pimms_claim_status(self, partner, claim_ref):
            status = pimms_edf.pimms_claim_status(partner, claim_ref)
            if status.state is ClaimState.UNKNOWN:
                return attrs.evolve(status, state="received", partner_status="OPEN")
            return status

    class TestTidy(Base):
        plugin = Tidy()
    """
    result = suite(pytester, body, "-k", "undeclared")
    assert failed(result) == {"TestTidy::test_undeclared_status_is_unknown_with_its_raw_code"}


def test_an_unsound_declaration_fails_the_info_check_listing_each_problem(
    pytester: pytest.Pytester,
) -> None:
    body = """
    from pimms_core.models import SandboxAccount, StatusCode

    class Muddled(Edf):
        @hookimpl
        def pimms_partner_info(self):
            return attrs.evolve(
                pimms_edf.INFO,
                statuses=[*pimms_edf.INFO.statuses, StatusCode("LIMBO", "unknown")],
                sandbox_accounts=[*pimms_edf.INFO.sandbox_accounts, SandboxAccount("12")],
            )

    class TestMuddled(Base):
        plugin = Muddled()
    """
    result = suite(pytester, body, "-k", "partner_info or every_sandbox")
    assert failed(result) == {
        "TestMuddled::test_partner_info_is_complete_and_consistent",
        "TestMuddled::test_every_sandbox_account_is_found",
    }
    result.stdout.fnmatch_lines(
        [
            "*the partner's declaration is unsound:*",
            "*- status 'LIMBO' maps to 'unknown'*",
            "*- sandbox account '12' does not match the reference format*",
        ]
    )


def test_the_suite_settings_are_checked(pytester: pytest.Pytester) -> None:
    body = """
    class TestMisnamed(Base):
        plugin = Edf()
        skip_checks = {"test_does_not_exist": "typo", "test_unknown_claim_is_not_found": " "}
        expected_failures = {"test_unknown_account_is_not_found": "it is fixed by now"}

    class TestIncomplete(ConformanceSuite):
        plugin = Edf()
        partner_id = "edf"
    """
    result = suite(pytester, body, "-k", "named_skips or unknown_account")
    assert failed(result) == {
        "TestMisnamed::test_named_skips_are_real_checks",
        "TestMisnamed::test_unknown_account_is_not_found",  # strict xfail, and it passed
        "TestIncomplete::test_named_skips_are_real_checks",
        "TestIncomplete::test_unknown_account_is_not_found",
    }
    result.stdout.fnmatch_lines(["*skip_checks: no check named 'test_does_not_exist'*"])
    result.stdout.fnmatch_lines(
        ["*TestIncomplete must set known_reference, unknown_reference, invalid_reference*"]
    )
    result.stdout.fnmatch_lines(["*[[]XPASS(strict)[]]*it is fixed by now*"])


def test_fixtures_hand_out_fresh_pieces_and_take_them_back(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_fixtures="""
        import pimms_edf
        from pimms_core.testing.partner_mock import faults
        from pimms_core.errors import PartnerUnavailable

        seen = {}

        def test_use(pimms_host, pimms_sandbox, pimms_simulator, pimms_partner_mock,
                     pimms_canary):
            host = pimms_host(pimms_edf)
            assert host.pm.get_plugins() == {pimms_edf}
            seen["host"] = host
            pimms = pimms_sandbox(pimms_edf)
            assert pimms.lookup_account("edf", "4001234567").partner == "edf"
            seen["sandbox"] = pimms
            simulator = pimms_simulator(pimms_edf)
            assert simulator.client.post("/oauth2/v3/token").status_code == 400
            assert simulator.claims() == 0
            mock = pimms_partner_mock(pimms_edf)
            seen["mock"] = mock
            live = mock.live(secret=pimms_canary.secret)
            assert live.lookup_account("edf", "4001234567").partner == "edf"
            mock.fail(faults.status(503, html=True))
            try:
                live.lookup_account("edf", "4001234567")
            except PartnerUnavailable:
                pass
            assert mock.auth_paths == {"/oauth2/v3/token"}

        def test_after():
            assert not seen["host"].pm.get_plugins()
            assert not seen["sandbox"].host.pm.get_plugins()
            assert not seen["mock"].host.pm.get_plugins()
            assert seen["mock"].router not in seen["mock"].router.Mocker.routers  # stopped
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


# --- the pieces, directly -------------------------------------------------------------------------


def test_partner_mock_detects_login_paths_or_takes_them_as_given() -> None:
    with PartnerMock(pimms_veolia) as veolia:
        assert veolia.auth_paths == {"/auth/v1/token"}
    with PartnerMock(pimms_laposte) as laposte:
        assert laposte.auth_paths == set()
    with PartnerMock(pimms_edf, base_url="https://edf.test/v2", auth_paths=["login"]) as edf:
        assert edf.auth_paths == {"/v2/login"}
        assert edf.base_url == "https://edf.test/v2"


def test_partner_mock_resigns_requests_so_canary_credentials_get_through() -> None:
    with PartnerMock(pimms_edf) as mock, mock.live(secret=CANARY.secret) as pimms:
        account = pimms.lookup_account("edf", "4001234567")
        assert account.holder_name == "Mme Camille Martin"
        login, lookup = mock.requests
        assert CANARY.secret in login.content.decode()  # what the plugin sent
        assert lookup.url.path == "/customers/v1/accounts/4001234567"
        assert mock.api_requests() == [lookup]


def test_faults_spoil_the_simulator_answer_as_described() -> None:
    with PartnerMock(pimms_edf) as mock, mock.live() as pimms:
        seen: list[Any] = []

        def spy(request: httpx.Request, forward: Any) -> httpx.Response:
            answer = faults.renamed_fields()(request, forward)
            seen.append(answer.json())
            return answer

        mock.fail(spy)
        with pytest.raises(Exception, match="field customer is missing"):
            pimms.lookup_account("edf", "4001234567")
        assert set(seen[0]) == {"customer_v2"}
        assert "customer_id_v2" in seen[0]["customer_v2"]


def test_lost_answer_reaches_the_partner_once_then_answers_normally() -> None:
    with PartnerMock(pimms_edf) as mock, mock.live() as pimms:
        mock.fail(faults.lost_answer())
        with pytest.raises(PartnerUnavailable):
            pimms.open_claim("edf", "4001234567", "other", "x", idempotency_key="K-lost")
        assert mock.claims_at_partner() == 1
        mock.heal()


def test_canary_leaks_find_every_form_a_value_can_take(caplog: pytest.LogCaptureFixture) -> None:
    canary = Canary().with_values(holder_name="Camille Martin", tiny="ab")
    assert "tiny" not in canary.values()
    import base64

    texts = [
        ("plain", "nothing here"),
        ("quoted", "GET /x?email=canary.resident.5e1f%40example.invalid"),
        (
            "basic",
            "Authorization: Basic " + base64.b64encode(f"{CANARY.secret}:".encode()).decode(),
        ),
        ("folded", "hello CAMILLE MARTIN"),
    ]
    assert [line.split(" found in ")[0] for line in canary.leaks(texts)] == [
        "email",
        "secret",
        "holder name",
    ]
    caplog.set_level(logging.DEBUG)
    assert canary.leaks([("log", caplog.text)]) == []
