"""The connector checks `pimms check` runs against a partner's endpoint, and the declaration
checks the conformance suite shares.

They are safe against a live endpoint: every check reads, except the claim checks (open a
test claim, send it again with the same key, read its status), which run only when writes are
allowed (`--allow-writes`; allowed by default in sandbox mode, where the simulator's state is
kept in memory and dropped). A failing check says why in a line a person can act on, built
from the core's error messages, which hold no secret and no personal data.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from attrs import frozen

from pimms_core.config import check_base_url
from pimms_core.errors import (
    AccountNotFound,
    ClaimNotFound,
    ConfigError,
    InvalidReference,
    PimmsError,
)
from pimms_core.models import (
    Account,
    Claim,
    ClaimState,
    Idempotency,
    Operation,
    PartnerInfo,
    ReferenceFormat,
)

if TYPE_CHECKING:
    from pimms_core.context import Mode
    from pimms_core.facade import Pimms
    from pimms_core.plugins import PluginHost

Result = Literal["pass", "fail", "skip"]

UNKNOWN_CLAIM_REF = "PIMMS-UNKNOWN-000000"
"""A claim reference of a plausible form that no partner has issued."""
CHECK_DESCRIPTION = "Connector test by pimms check: please ignore and close this claim."
_HTTP_LOGGER = "pimms.http"
_OPERATION_HOOKS = {op: f"pimms_{op.value}" for op in Operation}


# --- What a plugin declares ----------------------------------------------------------------------


def implemented_hooks(host: PluginHost, plugin: Any) -> set[str]:
    """The names of the hooks `plugin` implements on `host`'s plugin manager."""
    return {caller.name for caller in host.pm.get_hookcallers(plugin) or []}


def info_problems(
    info: PartnerInfo, implemented: Collection[str], *, has_sandbox: bool
) -> list[str]:
    """Everything incomplete or inconsistent in a partner's declaration, one line each.

    `implemented` names the hooks the plugin implements; `has_sandbox` says whether it ships
    a simulator. An empty list means the declaration is sound.
    """
    problems: list[str] = []
    for what, value in (("name", info.name), ("sector", info.sector)):
        if not value.strip():
            problems.append(f"the partner's {what} is empty")
    if not info.contract_version.strip():
        problems.append("contract_version is empty: say which version of the contract it follows")
    problems += _reference_problems(info.reference)
    if not info.operations:
        problems.append("declares no operation")
    for op, hook in sorted(_OPERATION_HOOKS.items()):
        if op in info.operations and hook not in implemented:
            problems.append(f"declares {op.value} but does not implement {hook}")
        if op not in info.operations and hook in implemented:
            problems.append(f"implements {hook} but does not declare {op.value} in operations")
    if info.idempotency is Idempotency.LOOKUP and "pimms_find_claim" not in implemented:
        problems.append("declares idempotency 'lookup' but does not implement pimms_find_claim")
    claims = {Operation.OPEN_CLAIM, Operation.CLAIM_STATUS} & info.operations
    if Operation.OPEN_CLAIM in info.operations and not info.categories:
        problems.append("declares open_claim but no claim category")
    if claims and not info.statuses:
        problems.append("declares claim operations but no claim status")
    for code in info.categories:
        if not code.code.strip():
            problems.append(f"a category code mapped to {code.category.value} is empty")
    for status in info.statuses:
        if not status.code.strip():
            problems.append(f"a status code mapped to {status.state.value} is empty")
        if status.state is ClaimState.UNKNOWN:
            problems.append(
                f"status {status.code!r} maps to 'unknown': map it to a common state "
                "(unknown is for codes the partner never declared)"
            )
    for account in info.sandbox_accounts:
        if not info.reference.matches(account.reference):
            problems.append(
                f"sandbox account {account.reference!r} does not match the reference format"
            )
        if info.reference.needs_last_name and not account.last_name:
            problems.append(
                f"the reference needs a last name but sandbox account {account.reference!r} "
                "declares none"
            )
    if has_sandbox:
        if not info.sandbox_accounts:
            problems.append(
                "ships a simulator but declares no sandbox account (demos and checks use them)"
            )
        for spec in info.settings:
            if spec.secret and spec.sandbox_value is None:
                problems.append(
                    f"secret setting {spec.name!r} has no sandbox_value: sandbox mode cannot run"
                )
    if info.base_url:
        try:
            check_base_url(info.id, info.base_url)
        except ConfigError:
            problems.append("base_url must be an https:// URL")
    return problems


def _reference_problems(fmt: ReferenceFormat) -> list[str]:
    problems = []
    if not fmt.hint.strip():
        problems.append("the reference hint is empty: give words a mediator can read to a resident")
    if not fmt.matches(fmt.example):
        problems.append(f"the reference example {fmt.example!r} does not match its own pattern")
    if fmt.matches(""):
        problems.append("the reference pattern accepts an empty reference")
    return problems


def invalid_reference_for(fmt: ReferenceFormat) -> str:
    """A reference the format refuses (so it must be refused before any request)."""
    for candidate in ("!", "?-?", "12", "not a reference !", "x" * 70):
        if not fmt.matches(candidate):
            return candidate
    raise ValueError("the reference pattern accepts everything")


def unknown_reference_for(fmt: ReferenceFormat, known: Collection[str] = ()) -> str | None:
    """A reference of the right form that no seeded account has: the example with its digits
    and letters replaced (0/Z, then 9/Q), or None if no such variant fits the pattern."""
    for digit, letter in (("0", "Z"), ("9", "Q"), ("1", "X")):

        def swap(char: str, digit: str = digit, letter: str = letter) -> str:
            if char.isdigit():
                return digit
            if char.isalpha():
                return letter if char.isupper() else letter.lower()
            return char

        candidate = "".join(swap(char) for char in fmt.example)
        if fmt.matches(candidate) and candidate not in known and candidate != fmt.example:
            return candidate
    return None


# --- Results ------------------------------------------------------------------------------------


@frozen
class CheckResult:
    """One check's outcome and how long it took."""

    name: str
    result: Result
    seconds: float
    detail: str = ""


@frozen
class PartnerReport:
    """Every check of one partner."""

    partner: str
    name: str
    mode: Mode
    endpoint: str
    writes: bool
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """No check failed (a skipped check says why it did not run)."""
        return all(r.result != "fail" for r in self.results)

    def counts(self) -> dict[Result, int]:
        return {k: sum(r.result == k for r in self.results) for k in ("pass", "fail", "skip")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "partner": self.partner,
            "name": self.name,
            "mode": self.mode,
            "endpoint": self.endpoint,
            "writes": self.writes,
            "ok": self.ok,
            "checks": [
                {
                    "check": r.name,
                    "result": r.result,
                    "seconds": round(r.seconds, 6),
                    "detail": r.detail,
                }
                for r in self.results
            ],
        }


@frozen
class CheckOptions:
    """What `pimms check` was told."""

    allow_writes: bool | None = None
    """None: allowed in sandbox mode only."""
    reference: str | None = None
    """A known account (needed on a live endpoint; sandbox mode uses the seeded accounts)."""
    last_name: str | None = None
    unknown_reference: str | None = None
    unknown_claim: str = UNKNOWN_CLAIM_REF


class CheckFailed(Exception):
    """The check ran and the connector did not do what it should."""


class CheckSkipped(Exception):
    """The check could not run here; the message says why."""


# --- The checks ---------------------------------------------------------------------------------


class _Run:
    """One partner's checks, in order; later ones use what earlier ones found."""

    def __init__(self, pimms: Pimms, partner_id: str, options: CheckOptions) -> None:
        self.pimms = pimms
        self.partner_id = partner_id
        self.options = options
        self.info = pimms.info(partner_id)
        self.mode = pimms.mode(partner_id)
        self.writes = (
            options.allow_writes if options.allow_writes is not None else (self.mode == "sandbox")
        )
        self.account: tuple[Account, str | None] | None = None
        self.claim: Claim | None = None
        self._key = ""

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("partner_info", self.partner_info),
            ("invalid_reference_refused", self.invalid_reference_refused),
            ("known_account_found", self.known_account_found),
            ("unknown_account_not_found", self.unknown_account_not_found),
            ("unknown_claim_not_found", self.unknown_claim_not_found),
            ("claim_opened", self.claim_opened),
            ("claim_resent_same_key", self.claim_resent_same_key),
            ("claim_status_read", self.claim_status_read),
        ]

    def need(self, operation: Operation) -> None:
        if operation not in self.info.operations:
            raise CheckSkipped(f"{self.partner_id} does not declare {operation.value}")

    def need_writes(self) -> None:
        if not self.writes:
            raise CheckSkipped("read-only: pass --allow-writes to open a test claim")

    def partner_info(self) -> str:
        loaded = self.pimms.host.partner(self.partner_id)
        has_sandbox = self.partner_id in self.pimms.host.sandbox_apps()
        problems = info_problems(
            self.info, implemented_hooks(self.pimms.host, loaded.plugin), has_sandbox=has_sandbox
        )
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise CheckFailed("; ".join(problems[:3]) + more)
        return f"{len(self.info.categories)} categories, {len(self.info.statuses)} statuses"

    def invalid_reference_refused(self) -> str:
        self.need(Operation.LOOKUP_ACCOUNT)
        reference = invalid_reference_for(self.info.reference)
        with _exchanges() as exchanges:
            try:
                self.pimms.lookup_account(self.partner_id, reference, last_name="Check")
            except InvalidReference:
                pass
            else:
                raise CheckFailed("a reference of the wrong form was accepted")
        if exchanges:
            raise CheckFailed(f"refused, but only after {len(exchanges)} request(s)")
        return "refused before any request"

    def known_account_found(self) -> str:
        self.need(Operation.LOOKUP_ACCOUNT)
        if self.options.reference:
            accounts = [(self.options.reference, self.options.last_name)]
        elif self.mode == "sandbox":
            accounts = [(a.reference, a.last_name) for a in self.info.sandbox_accounts]
            if not accounts:
                raise CheckSkipped("the plugin declares no sandbox account")
        else:
            raise CheckSkipped(
                "give --reference (and --name) of an account known at this partner "
                "to check a lookup on a live endpoint"
            )
        for reference, last_name in accounts:
            account = self.pimms.lookup_account(self.partner_id, reference, last_name=last_name)
            if not account.partner_status:
                raise CheckFailed(f"account {reference}: the partner's own status was not kept")
            if self.account is None:
                self.account = (account, last_name)
        return f"{len(accounts)} account(s) found"

    def unknown_account_not_found(self) -> str:
        self.need(Operation.LOOKUP_ACCOUNT)
        known = [a.reference for a in self.info.sandbox_accounts]
        reference = self.options.unknown_reference or unknown_reference_for(
            self.info.reference, known
        )
        if reference is None:
            raise CheckSkipped("give --unknown-reference: no unknown reference could be made")
        last_name = self.options.last_name or next(
            (a.last_name for a in self.info.sandbox_accounts if a.last_name), "Inconnu"
        )
        try:
            self.pimms.lookup_account(self.partner_id, reference, last_name=last_name)
        except AccountNotFound:
            return f"{reference}: not found"
        raise CheckFailed(f"{reference} was found; expected AccountNotFound")

    def unknown_claim_not_found(self) -> str:
        self.need(Operation.CLAIM_STATUS)
        try:
            self.pimms.claim_status(self.partner_id, self.options.unknown_claim)
        except ClaimNotFound:
            return f"{self.options.unknown_claim}: not found"
        raise CheckFailed(f"{self.options.unknown_claim} was found; expected ClaimNotFound")

    def claim_opened(self) -> str:
        self.need(Operation.OPEN_CLAIM)
        self.need_writes()
        if self.account is None:
            raise CheckSkipped("needs a known account (known_account_found did not pass)")
        account, last_name = self.account
        key = f"pimms-check-{uuid.uuid4().hex}"
        before = self._claims_at_simulator()
        claim = self.pimms.open_claim(
            self.partner_id,
            account.reference,
            self._category(),
            CHECK_DESCRIPTION,
            last_name=last_name,
            service_id=account.services[0].id if len(account.services) > 1 else None,
            idempotency_key=key,
        )
        self._check_status(claim.partner_status, claim.state)
        after = self._claims_at_simulator()
        if before is not None and after is not None and after != before + 1:
            raise CheckFailed(f"the simulator holds {after - before} new claims, expected 1")
        self.claim = claim
        self._key = key
        return f"{claim.claim_ref} ({claim.partner_status})"

    def claim_resent_same_key(self) -> str:
        self.need(Operation.OPEN_CLAIM)
        self.need_writes()
        if self.claim is None or self.account is None:
            raise CheckSkipped("needs the claim of claim_opened")
        account, last_name = self.account
        before = self._claims_at_simulator()
        again = self.pimms.open_claim(
            self.partner_id,
            account.reference,
            self._category(),
            CHECK_DESCRIPTION,
            last_name=last_name,
            service_id=account.services[0].id if len(account.services) > 1 else None,
            idempotency_key=self._key,
        )
        if again.claim_ref != self.claim.claim_ref:
            raise CheckFailed(
                f"the same key opened a second claim ({again.claim_ref}, "
                f"first {self.claim.claim_ref})"
            )
        if before is not None and self._claims_at_simulator() != before:
            raise CheckFailed("the simulator holds a second claim for the same key")
        return f"same claim {again.claim_ref}" + (" (replayed)" if again.replayed else "")

    def claim_status_read(self) -> str:
        self.need(Operation.CLAIM_STATUS)
        if self.claim is None:
            if not self.writes:
                raise CheckSkipped("read-only: pass --allow-writes to open a test claim")
            raise CheckSkipped("needs the claim of claim_opened")
        status = self.pimms.claim_status(self.partner_id, self.claim.claim_ref)
        if status.claim_ref != self.claim.claim_ref:
            raise CheckFailed(f"asked for {self.claim.claim_ref}, got {status.claim_ref}")
        self._check_status(status.partner_status, status.state)
        return f"{status.state.value} ({status.partner_status})"

    def _category(self) -> str:
        accepted = {c.category.value for c in self.info.categories}
        return "other" if "other" in accepted else self.info.categories[0].code

    def _check_status(self, partner_status: str, state: ClaimState) -> None:
        if not partner_status:
            raise CheckFailed("the partner's own status was not kept")
        if self.info.state_of(partner_status) is ClaimState.UNKNOWN:
            raise CheckFailed(
                f"the partner answered status {partner_status!r}, which the plugin does not declare"
            )
        if state is not self.info.state_of(partner_status):
            raise CheckFailed(
                f"state {state.value} does not match the declared state of {partner_status!r}"
            )

    def _claims_at_simulator(self) -> int | None:
        if self.mode != "sandbox":
            return None
        state = self.pimms.sandbox_state(self.partner_id)
        if not isinstance(state.read().get("claims"), dict | list):
            return None
        return len(state.claim_refs())


@contextmanager
def _exchanges() -> Iterator[list[logging.LogRecord]]:
    """Collect the exchanges the core logs (one record per HTTP answer) while in the block."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(_HTTP_LOGGER)
    handler = Collect(logging.DEBUG)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def run_checks(
    pimms: Pimms,
    partner_id: str,
    options: CheckOptions | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
    debug: bool = False,
) -> PartnerReport:
    """Run every check of one partner, in order, and time each one.

    An unexpected exception fails its check as "internal error (its type)"; with `debug` it
    is raised instead, traceback and all.
    """
    run = _Run(pimms, partner_id, options or CheckOptions())
    results = []
    for name, check in run.checks():
        started = clock()
        try:
            detail = check()
            result: Result = "pass"
        except CheckSkipped as exc:
            result, detail = "skip", str(exc)
        except CheckFailed as exc:
            result, detail = "fail", str(exc)
        except PimmsError as exc:
            result, detail = "fail", f"{type(exc).__name__}: {exc.message}"
        except Exception as exc:  # a check must report, never crash the table
            if debug:
                raise
            result, detail = "fail", f"internal error ({type(exc).__name__})"
        results.append(CheckResult(name, result, clock() - started, detail))
    endpoint = (
        "the plugin's simulator, in memory"
        if run.mode == "sandbox"
        else _endpoint(pimms, partner_id)
    )
    return PartnerReport(partner_id, run.info.name, run.mode, endpoint, run.writes, tuple(results))


def _endpoint(pimms: Pimms, partner_id: str) -> str:
    configured = pimms.config.partner(partner_id).base_url or pimms.info(partner_id).base_url
    return re.sub(r"//[^/@]*@", "//", configured or "")  # never show credentials in a URL


__all__ = [
    "UNKNOWN_CLAIM_REF",
    "CheckOptions",
    "CheckResult",
    "PartnerReport",
    "implemented_hooks",
    "info_problems",
    "invalid_reference_for",
    "run_checks",
    "unknown_reference_for",
]
