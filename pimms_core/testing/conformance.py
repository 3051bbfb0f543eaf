"""The conformance suite every partner plugin runs on itself.

```python
import pimms_edf
from pimms_core.testing.conformance import ConformanceSuite

class TestConformance(ConformanceSuite):
    plugin = pimms_edf                 # the plugin module (or object) under test
    partner_id = "edf"
    known_reference = "4001234567"     # a seeded sandbox account
    known_last_name = None             # where the reference needs a last name
    unknown_reference = "4000000000"   # valid format, not found at the simulator
    invalid_reference = "12"           # wrong format
    claim_category = "other"           # a common category the partner accepts
```

It runs against the plugin's simulator: in sandbox mode, and in live mode with respx standing
in for the partner's base URL and answering from the simulator (`PartnerMock`), which is how
faults are injected without knowing any partner's paths. Each test is one check, named for
what it proves. To leave a check out, name it in `skip_checks` with the reason, which the test
report shows; a known failure goes in `expected_failures` (strict: it fails once fixed).
Needs respx (pimms-core[test]).
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any, ClassVar, TypeVar

import pluggy
import pytest
from attrs import frozen

from pimms_core import hookspecs
from pimms_core.checks import UNKNOWN_CLAIM_REF, implemented_hooks, info_problems
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    InvalidReference,
    PartnerAuthError,
    PartnerProtocolError,
    PartnerUnavailable,
    PimmsError,
)
from pimms_core.facade import Pimms
from pimms_core.markers import ENTRY_POINT_GROUP, PROJECT_NAME
from pimms_core.models import (
    Account,
    Claim,
    ClaimState,
    ClaimStatus,
    Contact,
    Idempotency,
    Operation,
    PartnerInfo,
)
from pimms_core.plugins import discover
from pimms_core.policy import RetryPolicy
from pimms_core.sandbox import SandboxState
from pimms_core.testing import fresh_host, release, sandbox_pimms
from pimms_core.testing.canary import CANARY, Canary
from pimms_core.testing.partner_mock import Fault, PartnerMock, faults

E = TypeVar("E", bound=PimmsError)

UNDECLARED_STATUS = "PIMMS_UNDECLARED_STATUS"
"""A status code no partner declares, put in place of a claim's status by the suite."""
OPERATIONS = [op.value for op in Operation]
REQUIRED = ("plugin", "partner_id", "known_reference", "unknown_reference", "invalid_reference")
_RETRYING = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, deadline=10.0)
_UNREADABLE: dict[str, Fault] = {
    "html_page": faults.body(b"<html><body>Maintenance</body></html>", content_type="text/html"),
    "empty_body": faults.body(b""),
    "json_null": faults.body(b"null"),
    "truncated": faults.truncated(),
    "renamed_fields": faults.renamed_fields(),
}


@frozen
class SandboxRun:
    """A facade in sandbox mode, and its simulator's state."""

    pimms: Pimms
    state: SandboxState


def _module_name(plugin: Any) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return type(plugin).__module__


class ConformanceSuite:
    """Subclass it as `TestConformance` and set the first seven attributes below (see the
    module's example); nothing else to write. The optional ones adapt it to an unusual
    partner; `skip_checks` leaves a check out, saying why."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.pimms_conformance]

    plugin: ClassVar[Any] = None
    """The plugin module (or object) under test."""
    partner_id: ClassVar[str] = ""
    known_reference: ClassVar[str] = ""
    """A seeded sandbox account."""
    known_last_name: ClassVar[str | None] = None
    """Its holder's last name, where the reference needs one."""
    unknown_reference: ClassVar[str] = ""
    """Of the right form, but no account at the simulator."""
    invalid_reference: ClassVar[str] = ""
    """Of the wrong form: refused before any request."""
    claim_category: ClassVar[str] = "other"
    """A common category (or a code of the partner's) the partner accepts on that account."""

    # Optional.
    base_url: ClassVar[str | None] = None
    """The live endpoint respx stands in for (default: the declared `base_url`)."""
    auth_paths: ClassVar[tuple[str, ...] | None] = None
    """Paths of login exchanges, let through to the simulator when faults are injected.
    None detects the token path of a `pimms_core.auth.TokenAuth`; () says there is none."""
    unknown_claim_ref: ClassVar[str] = UNKNOWN_CLAIM_REF
    sandbox_claims_key: ClassVar[str] = "claims"
    """Where the simulator keeps its claims in its `SandboxState` (counted by the suite)."""
    skip_checks: ClassVar[Mapping[str, str]] = {}
    """Checks left out: test name (or `name[param]`) -> the reason, shown in the report."""
    expected_failures: ClassVar[Mapping[str, str]] = {}
    """Known failures: test name -> the reason (strict xfail: it fails once fixed)."""
    canary: ClassVar[Canary] = CANARY

    # --- fixtures ------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _conformance_rules(self, request: pytest.FixtureRequest) -> None:
        missing = [name for name in REQUIRED if not getattr(self, name, None)]
        if missing:
            pytest.fail(
                f"{type(self).__name__} must set {', '.join(missing)} (see ConformanceSuite)",
                pytrace=False,
            )
        node = request.node
        if getattr(node, "originalname", node.name) == "test_named_skips_are_real_checks":
            return
        for name in (node.name, getattr(node, "originalname", node.name)):
            if name in self.skip_checks:
                pytest.skip(f"{self.partner_id}: {name} skipped: {self.skip_checks[name]}")
            if name in self.expected_failures:
                reason = f"{self.partner_id}: known failure: {self.expected_failures[name]}"
                request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
                return

    @contextmanager
    def sandbox(self) -> Iterator[SandboxRun]:
        """The plugin in sandbox mode on a fresh in-memory simulator."""
        state = SandboxState(None)
        pimms = sandbox_pimms(self.plugin, state=state)
        try:
            yield SandboxRun(pimms, state)
        finally:
            pimms.close()
            release(pimms.host)

    def partner(self, state: SandboxState | None = None) -> PartnerMock:
        """respx in front of the partner's base URL, answering from a fresh simulator."""
        return PartnerMock(
            self.plugin,
            partner_id=self.partner_id,
            base_url=self.base_url,
            auth_paths=self.auth_paths,
            state=state,
        )

    # --- operations ----------------------------------------------------------------------------

    @functools.cached_property
    def info(self) -> PartnerInfo:
        host = fresh_host(self.plugin)
        try:
            return host.partner(self.partner_id).info
        finally:
            release(host)

    def need(self, operation: str) -> None:
        if Operation(operation) not in self.info.operations:
            pytest.skip(f"{self.partner_id} does not declare {operation}")

    def lookup(self, pimms: Pimms, reference: str | None = None, **kwargs: Any) -> Account:
        kwargs.setdefault("last_name", self.known_last_name)
        return pimms.lookup_account(self.partner_id, reference or self.known_reference, **kwargs)

    def open_claim(self, pimms: Pimms, key: str | None = None, **kwargs: Any) -> Claim:
        kwargs.setdefault("last_name", self.known_last_name)
        kwargs.setdefault("description", "Conformance suite claim")
        return pimms.open_claim(
            self.partner_id,
            kwargs.pop("account_ref", self.known_reference),
            self.claim_category,
            kwargs.pop("description"),
            idempotency_key=key or f"conformance-{uuid.uuid4().hex}",
            **kwargs,
        )

    def claim_ref_for(self, pimms: Pimms, operation: str) -> str:
        """A claim the simulator holds, for a claim_status check (opened first)."""
        if operation != Operation.CLAIM_STATUS.value:
            return ""
        if Operation.OPEN_CLAIM not in self.info.operations:
            pytest.skip(f"needs a claim at the simulator: {self.partner_id} cannot open one")
        return self.open_claim(pimms).claim_ref

    def run_operation(self, pimms: Pimms, operation: str, claim_ref: str) -> Any:
        if operation == Operation.LOOKUP_ACCOUNT.value:
            return self.lookup(pimms)
        if operation == Operation.OPEN_CLAIM.value:
            return self.open_claim(pimms)
        return pimms.claim_status(self.partner_id, claim_ref)

    def expect(self, error: type[E], call: Callable[[], Any]) -> E:
        """Run `call`; it must raise `error` (a PimmsError naming this partner)."""
        try:
            result = call()
        except error as exc:
            assert exc.partner == self.partner_id, f"the error names partner {exc.partner!r}"
            return exc
        except PimmsError as exc:
            pytest.fail(
                f"expected {error.__name__}, got {type(exc).__name__}: {exc}", pytrace=False
            )
        pytest.fail(f"expected {error.__name__}, got a result: {type(result).__name__}")

    # --- the plugin and its declaration --------------------------------------------------------

    def test_entry_point_loads_in_isolation(self) -> None:
        """The installed entry point loads the plugin in a fresh interpreter, alone, strictly."""
        module = _module_name(self.plugin)
        names = [ep.name for ep in discover() if ep.module == module]
        assert names, (
            f"no entry point of group {ENTRY_POINT_GROUP!r} names module {module}: declare "
            f'[project.entry-points.{ENTRY_POINT_GROUP}] {self.partner_id} = "{module}" in '
            "pyproject.toml and install the distribution (pip install -e .)"
        )
        script = (
            "import json, sys\n"
            "from pimms_core.plugins import PluginHost\n"
            "host = PluginHost(only=[sys.argv[1]], strict=True, env={})\n"
            "print(json.dumps({pid: getattr(p.plugin, '__name__', type(p.plugin).__module__)"
            " for pid, p in host.partners.items()}))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, names[0]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"loading entry point {names[0]} failed:\n{done.stderr}"
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        assert loaded.get(self.partner_id) == module, f"entry point {names[0]} gave {loaded}"

    def test_plugin_registers_on_a_fresh_manager(self) -> None:
        """pluggy accepts the plugin and every hook it implements is one of the contract's."""
        pm = pluggy.PluginManager(PROJECT_NAME)
        pm.add_hookspecs(hookspecs)
        pm.register(self.plugin)
        try:
            pm.check_pending()
            assert pm.get_plugins() == {self.plugin}
        finally:
            pm.unregister(self.plugin)
        assert not pm.get_plugins()

    def test_partner_info_is_complete_and_consistent(self) -> None:
        host = fresh_host(self.plugin)
        try:
            loaded = host.partner(self.partner_id)
            implemented = implemented_hooks(host, loaded.plugin)
            has_sandbox = self.partner_id in host.sandbox_apps()
        finally:
            release(host)
        info = loaded.info
        assert info.id == self.partner_id
        assert has_sandbox, "the plugin ships no simulator (pimms_sandbox): the suite needs one"
        problems = info_problems(info, implemented, has_sandbox=has_sandbox)
        assert not problems, "the partner's declaration is unsound:\n- " + "\n- ".join(problems)

    def test_suite_references_fit_the_declared_format(self) -> None:
        """The suite's own inputs are what they say they are, so every other check means it."""
        fmt = self.info.reference
        assert fmt.matches(self.known_reference), "known_reference does not fit the format"
        assert fmt.matches(self.unknown_reference), "unknown_reference does not fit the format"
        assert not fmt.matches(self.invalid_reference.strip()), "invalid_reference fits it"
        assert self.unknown_reference not in {a.reference for a in self.info.sandbox_accounts}
        if fmt.needs_last_name:
            assert self.known_last_name, "the reference needs a last name: set known_last_name"
        if Operation.OPEN_CLAIM in self.info.operations:
            self.info.category_code(self.claim_category)  # UnknownCategory names the accepted

    def test_simulator_answers_only_for_its_partner(self) -> None:
        """`pimms_sandbox` returns an app for its partner and None for any other id."""
        host = fresh_host(self.plugin)
        try:
            state = SandboxState(None)
            hook = host.caller("pimms_sandbox", self.partner_id)
            assert callable(hook(partner_id=self.partner_id, state=state))
            assert hook(partner_id="pimms-conformance-other", state=state) is None
        finally:
            release(host)

    # --- sandbox behaviour ---------------------------------------------------------------------

    def test_every_sandbox_account_is_found(self) -> None:
        self.need(Operation.LOOKUP_ACCOUNT.value)
        accounts = self.info.sandbox_accounts
        assert accounts, "the plugin declares no sandbox account"
        with self.sandbox() as run:
            for seeded in accounts:
                account = self.lookup(run.pimms, seeded.reference, last_name=seeded.last_name)
                assert account.partner == self.partner_id
            if self.known_reference not in {seeded.reference for seeded in accounts}:
                assert self.lookup(run.pimms).partner == self.partner_id

    def test_unknown_account_is_not_found(self) -> None:
        self.need(Operation.LOOKUP_ACCOUNT.value)
        with self.sandbox() as run:
            self.expect(AccountNotFound, lambda: self.lookup(run.pimms, self.unknown_reference))

    def test_unknown_claim_is_not_found(self) -> None:
        self.need(Operation.CLAIM_STATUS.value)
        with self.sandbox() as run:
            self.expect(
                ClaimNotFound,
                lambda: run.pimms.claim_status(self.partner_id, self.unknown_claim_ref),
            )

    def test_claim_opened_twice_with_one_key_exists_once(self) -> None:
        """The same key again, from this site and from another one (a second process that
        knows nothing of the first send), gives the same claim, held once by the partner."""
        self.need(Operation.OPEN_CLAIM.value)
        key = f"conformance-twice-{uuid.uuid4().hex}"
        with self.sandbox() as run:
            before = self.claims_held(run.state)
            first = self.open_claim(run.pimms, key)
            again = self.open_claim(run.pimms, key)
            elsewhere = sandbox_pimms(self.plugin, state=run.state)
            try:
                replayed = self.open_claim(elsewhere, key)
            finally:
                elsewhere.close()
                release(elsewhere.host)
            assert first.replayed is False, "a first send must not be marked replayed"
            assert again.claim_ref == first.claim_ref
            assert replayed.claim_ref == first.claim_ref, "the partner opened a second claim"
            assert replayed.replayed is True, "a claim found again must be marked replayed"
            assert self.claims_held(run.state) == before + 1

    def test_results_carry_the_partner_raw_status(self) -> None:
        with self.sandbox() as run:
            if Operation.LOOKUP_ACCOUNT in self.info.operations:
                account = self.lookup(run.pimms)
                assert account.partner_status, "Account.partner_status: keep the partner's own"
                assert account.raw, "Account.raw: keep the partner's payload"
                assert account.plugin is not None
            if Operation.OPEN_CLAIM not in self.info.operations:
                return
            claim = self.open_claim(run.pimms)
            self.assert_declared_status(claim.partner_status, claim.state)
            assert claim.raw, "Claim.raw: keep the partner's payload"
            if Operation.CLAIM_STATUS in self.info.operations:
                status = run.pimms.claim_status(self.partner_id, claim.claim_ref)
                assert status.claim_ref == claim.claim_ref
                self.assert_declared_status(status.partner_status, status.state)
                assert status.raw, "ClaimStatus.raw: keep the partner's payload"
                for step in status.history:
                    assert step.state is self.info.state_of(step.partner_status)

    def assert_declared_status(self, partner_status: str, state: ClaimState) -> None:
        assert partner_status, "the partner's own status code was not kept"
        declared = self.info.state_of(partner_status)
        assert declared is not ClaimState.UNKNOWN, f"status {partner_status!r} is not declared"
        assert state is declared, f"state {state} but {partner_status!r} is declared {declared}"

    def claims_held(self, state: SandboxState) -> int:
        try:
            return len(state.claim_refs(self.sandbox_claims_key))
        except TypeError:
            raise AssertionError("the simulator's claims are odd") from None

    # --- live mode against the simulator, with faults ------------------------------------------

    def test_invalid_reference_is_refused_before_any_request(self) -> None:
        with self.partner() as mock, mock.live() as pimms:
            if Operation.LOOKUP_ACCOUNT in self.info.operations:
                error = self.expect(
                    InvalidReference, lambda: self.lookup(pimms, self.invalid_reference)
                )
                assert error.example == self.info.reference.example
            if Operation.OPEN_CLAIM in self.info.operations:
                self.expect(
                    InvalidReference,
                    lambda: self.open_claim(pimms, account_ref=self.invalid_reference),
                )
            assert mock.requests == [], "a request was sent for a reference of the wrong form"

    @pytest.mark.parametrize("status", [401, 403])
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_refused_credentials_are_an_auth_error(self, operation: str, status: int) -> None:
        """The API refusing the calls, and (where there is a login) the login refused."""
        self.need(operation)
        refusal = faults.status(status, json_body={"error": "access_denied"})
        with self.partner() as mock, mock.live() as pimms:
            claim_ref = self.claim_ref_for(pimms, operation)
            mock.fail(refusal)
            self.expect(PartnerAuthError, lambda: self.run_operation(pimms, operation, claim_ref))
            if mock.auth_paths:
                mock.fail(refusal, login=True)
                with mock.live() as fresh:
                    self.expect(
                        PartnerAuthError, lambda: self.run_operation(fresh, operation, claim_ref)
                    )

    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_rate_limit_is_unavailable_with_retry_after(self, operation: str) -> None:
        self.need(operation)
        limited = faults.status(
            429, headers={"Retry-After": "7"}, json_body={"error": "too_many_requests"}
        )
        with self.partner() as mock, mock.live() as pimms:
            claim_ref = self.claim_ref_for(pimms, operation)
            mock.fail(limited)
            error = self.expect(
                PartnerUnavailable, lambda: self.run_operation(pimms, operation, claim_ref)
            )
            assert error.retry_after == 7.0, "the partner's Retry-After was not carried"

    @pytest.mark.parametrize("status", [500, 502, 503])
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_server_error_is_unavailable(self, operation: str, status: int) -> None:
        """A 5xx with an HTML page (as a gateway sends it) is `PartnerUnavailable`."""
        self.need(operation)
        with self.partner() as mock, mock.live() as pimms:
            claim_ref = self.claim_ref_for(pimms, operation)
            mock.fail(faults.status(status, html=True))
            self.expect(PartnerUnavailable, lambda: self.run_operation(pimms, operation, claim_ref))

    @pytest.mark.parametrize("answer", list(_UNREADABLE))
    @pytest.mark.parametrize("operation", OPERATIONS)
    def test_unreadable_answer_is_a_protocol_error(self, operation: str, answer: str) -> None:
        """Not JSON, empty, null, cut short, or every field renamed: `PartnerProtocolError`,
        never a crash and never a result made of nothing."""
        self.need(operation)
        with self.partner() as mock, mock.live() as pimms:
            claim_ref = self.claim_ref_for(pimms, operation)
            mock.fail(_UNREADABLE[answer])
            self.expect(
                PartnerProtocolError, lambda: self.run_operation(pimms, operation, claim_ref)
            )

    def test_undeclared_status_is_unknown_with_its_raw_code(self) -> None:
        self.need(Operation.CLAIM_STATUS.value)
        with self.partner() as mock, mock.live() as pimms:
            claim_ref = self.claim_ref_for(pimms, Operation.CLAIM_STATUS.value)
            declared = pimms.claim_status(self.partner_id, claim_ref).partner_status
            mock.fail(faults.replaced_values(declared, UNDECLARED_STATUS))
            status = pimms.claim_status(self.partner_id, claim_ref)
        assert isinstance(status, ClaimStatus)
        assert status.state is ClaimState.UNKNOWN
        assert status.partner_status == UNDECLARED_STATUS, "the raw status code was not kept"

    def test_claim_sent_again_after_a_lost_answer_exists_once(self) -> None:
        """The partner took the claim but its answer was lost: sending it again with the same
        key (by the core's retry, or by the site later) must not open a second one."""
        self.need(Operation.OPEN_CLAIM.value)
        if self.info.idempotency is Idempotency.NONE:
            pytest.skip(
                f"{self.partner_id} declares no idempotency mechanism: a claim whose answer was "
                "lost is left for a person to check, never sent again"
            )
        key = f"conformance-lost-{uuid.uuid4().hex}"
        with self.partner() as mock:
            with mock.live(policy=_RETRYING) as pimms:
                mock.fail(faults.lost_answer())
                try:
                    claim = self.open_claim(pimms, key)
                except PartnerUnavailable:
                    mock.heal()
                    with mock.live(policy=_RETRYING) as later:
                        claim = self.open_claim(later, key)
            assert mock.claims_at_partner(self.sandbox_claims_key) == 1, "opened twice"
            mock.heal()
            if Operation.CLAIM_STATUS in self.info.operations:
                with mock.live() as reader:
                    assert reader.claim_status(self.partner_id, claim.claim_ref).claim_ref

    # --- no secret and no personal data shows ---------------------------------------------------

    def test_canary_values_stay_out_of_logs_and_errors(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A canary secret (every secret setting) and canary personal data go through every
        operation, good and bad; none shows in a log record (DEBUG, every logger), an error's
        text, or a result's repr, nor does the personal data the partner returned."""
        for logger in ("", "httpx", "httpcore", "pimms"):  # whatever an earlier test set
            caplog.set_level(logging.DEBUG, logger=logger)
        canary = self.canary.with_values(known_last_name=self.known_last_name)
        name = self.known_last_name or canary.last_name
        contact = Contact(email=canary.email, phone=canary.phone)
        results: list[Any] = []
        errors: list[PimmsError] = []
        ops = self.info.operations
        returned: dict[str, str | None] = {}

        def attempt(call: Callable[[], Any]) -> None:
            try:
                results.append(call())
            except PimmsError as exc:
                errors.append(exc)

        with self.partner() as mock, mock.live(secret=canary.secret) as pimms:
            if Operation.LOOKUP_ACCOUNT in ops:
                account = self.lookup(pimms, last_name=name)
                results.append(account)
                returned = {"holder_name": account.holder_name, "address": account.address}
            if Operation.OPEN_CLAIM in ops:
                claim = self.open_claim(
                    pimms, last_name=name, description=canary.description, contact=contact
                )
                results.append(claim)
                if Operation.CLAIM_STATUS in ops:
                    results.append(pimms.claim_status(self.partner_id, claim.claim_ref))
        with self.partner() as mock:
            bad: list[tuple[Fault | None, Callable[[Pimms], Any]]] = []
            if Operation.LOOKUP_ACCOUNT in ops:
                bad += [
                    (None, lambda p: self.lookup(p, self.unknown_reference, last_name=name)),
                    (None, lambda p: self.lookup(p, self.invalid_reference, last_name=name)),
                    (faults.renamed_fields(), lambda p: self.lookup(p, last_name=name)),
                ]
            if Operation.OPEN_CLAIM in ops:

                def claim_with_canaries(p: Pimms) -> Claim:
                    return self.open_claim(
                        p, last_name=name, description=canary.description, contact=contact
                    )

                bad += [
                    (faults.status(401, json_body={"error": "denied"}), claim_with_canaries),
                    (faults.status(503, html=True), claim_with_canaries),
                    (faults.truncated(), claim_with_canaries),
                ]
            for fault, call in bad:
                if fault is None:
                    mock.heal()
                else:
                    mock.fail(fault)
                with mock.live(secret=canary.secret) as pimms:
                    attempt(functools.partial(call, pimms))
        texts = [("log record", record.getMessage()) for record in caplog.records]
        texts.append(("the captured log", caplog.text))
        for error in errors:
            texts += [
                (f"{type(error).__name__} text", str(error)),
                (f"{type(error).__name__} repr", repr(error)),
                (f"{type(error).__name__} JSON", json.dumps(error.to_dict(), default=str)),
            ]
        # What the partner returned may show in the result itself (a product standing in for
        # a holder's name, say), but not in logs or errors; what was sent shows nowhere.
        leaks = canary.with_values(**returned).leaks(texts) + canary.leaks(
            (f"repr of {type(r).__name__}", repr(r)) for r in results
        )
        assert not leaks, "canary values showed:\n- " + "\n- ".join(leaks)

    def test_canary_values_stay_out_of_cli_output(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The CLI, run on the plugin in live mode with the canaries, prints none of them
        (the account it was asked for is the one thing it shows)."""
        from click.testing import CliRunner

        from pimms_core.cli import cli
        from pimms_core.cli.base import State

        canary = self.canary
        name = self.known_last_name or canary.last_name
        ops = self.info.operations
        outputs: list[tuple[str, str]] = []
        with self.partner() as mock, mock.live(secret=canary.secret) as pimms:
            monkeypatch.setattr(State, "pimms", lambda _state, **_kw: pimms)

            def run(*args: str) -> None:
                result = CliRunner().invoke(cli, list(args))
                assert "Traceback" not in result.output, result.output
                outputs.append((f"output of pimms {' '.join(args[:2])}", result.output))

            name_args = ["--name", name]
            if Operation.LOOKUP_ACCOUNT in ops:
                run("lookup", self.partner_id, self.known_reference, *name_args, "--json")
                run("lookup", self.partner_id, self.unknown_reference, "--name", canary.last_name)
            claim_args = [
                "claim", "open", self.partner_id, "--account", self.known_reference,
                "--category", self.claim_category, "--description", canary.description,
                "--email", canary.email, "--phone", canary.phone, *name_args,
            ]  # fmt: skip
            if Operation.OPEN_CLAIM in ops:
                run(*claim_args, "--json")
                opened = json.loads(outputs[-1][1][outputs[-1][1].index("{") :])
                if Operation.CLAIM_STATUS in ops:
                    run("claim", "status", self.partner_id, opened["claim_ref"])
        if Operation.OPEN_CLAIM in ops:
            with self.partner() as mock, mock.live(secret=canary.secret) as pimms:
                monkeypatch.setattr(State, "pimms", lambda _state, **_kw: pimms)
                mock.fail(faults.status(401, json_body={"error": "denied"}), login=True)
                run(*claim_args)
                mock.fail(faults.status(503, html=True))
                run(*claim_args)
        leaks = canary.leaks(outputs)
        assert not leaks, "canary values showed:\n- " + "\n- ".join(leaks)

    # --- the suite's own settings --------------------------------------------------------------

    def test_named_skips_are_real_checks(self) -> None:
        """Every check named in `skip_checks` or `expected_failures` exists and says why."""
        checks = {name for name in dir(ConformanceSuite) if name.startswith("test_")}
        for attribute in ("skip_checks", "expected_failures"):
            for name, reason in getattr(self, attribute).items():
                assert name.split("[")[0] in checks, f"{attribute}: no check named {name!r}"
                assert reason.strip(), f"{attribute}: {name} needs a stated reason"
