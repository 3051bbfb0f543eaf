"""The fault matrix: every fault x every partner x every operation, over real loopback sockets.

```
python -m pimms_core.testing.faults                  # every installed partner
python -m pimms_core.testing.faults --partner edf    # one plugin (yours)
```

For each case the partner's simulator is served on 127.0.0.1 behind a `FaultProxy`, the
plugin runs in live mode against the proxy (short timeout, short retry policy, its sandbox
credentials as its secret settings), the fault is armed and the operation called on a fresh
client. The case passes when:

- within the deadline (never a hang), the call gives a typed `PimmsError` of the kind the
  fault calls for (naming, for a claim, the claim kept in the outbox), or the right result
  (the healthy simulator's answer);
- for a claim, after `flush_outbox` against the healthy simulator, the partner holds exactly
  one claim, the one the outbox records as delivered (none lost, none duplicated); or, where
  the partner offers no idempotency mechanism, the claim waits for a person (`needs_check`)
  instead of being sent again;
- no canary shows in a record of the `pimms`, `httpx` or `httpcore` loggers (at DEBUG), in the
  error's text or chain, in the result's `repr()`, in the journal or a settled outbox row:
  the partner's secret settings, every credential that crossed the wire, the canary
  description, contact and name sent, the holder's name and address received.

Each partner that opens claims also gets two crash cases (`pimms_core.testing.crash`): a real
`pimms claim open` killed with SIGKILL before and after its request reached the partner, then
`pimms outbox flush`. The last line of the report is

    faults: tried N, passed N, lost N, duplicated N, leaks N

Cases run concurrently (each with its own simulator, proxy and SQLite store), so the whole
matrix takes seconds, not minutes.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import click
from attrs import frozen

from pimms_core import calls
from pimms_core.errors import PimmsError
from pimms_core.facade import Pimms
from pimms_core.models import Operation
from pimms_core.plugins import PluginHost
from pimms_core.policy import RetryPolicy
from pimms_core.sandbox import SandboxState, utc_now
from pimms_core.serve import serve_app
from pimms_core.testing.crash import KillPoint, crash_claim
from pimms_core.testing.fault_catalogue import FaultCase, catalogue
from pimms_core.testing.fault_checks import (
    Called,
    Settled,
    Texts,
    error_texts,
    judge,
    settle,
    store_texts,
)
from pimms_core.testing.fault_logs import NO_CASE, LogCapture, as_case, captured_logs
from pimms_core.testing.fault_partner import PartnerNotReady, PartnerSetup, prepare
from pimms_core.testing.fault_report import Outcome, Report
from pimms_core.testing.fault_server import SIMULATOR_POLL, FaultProxy, Match, credentials

DEFAULT_TIMEOUT = 0.5
"""The partner's read timeout in the matrix (seconds): short, so faults cost little time."""
DEFAULT_WORKERS = 12
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def fast_policy(timeout: float = DEFAULT_TIMEOUT) -> RetryPolicy:
    """A short retry policy: two attempts, short backoff, a Retry-After cap of two seconds."""
    return RetryPolicy(
        attempts=2,
        backoff=timeout / 10,
        max_backoff=timeout / 2,
        retry_after_cap=2.0,
        deadline=4 * timeout,
    )


@frozen
class Case:
    partner: str
    operation: Operation
    fault: FaultCase

    @property
    def key(self) -> str:
        return f"{self.partner}/{self.operation.value}/{self.fault.name}"


# --- one case ---------------------------------------------------------------------------------


@frozen
class _Run:
    host: PluginHost
    setups: dict[str, PartnerSetup]
    timeout: float
    policy: RetryPolicy
    workdir: Path
    logs: LogCapture
    started: datetime = attrs.field(factory=utc_now)
    """The simulators' clock, frozen for the whole run."""

    @property
    def limit(self) -> float:
        """How long a call may take before it counts as a hang: the policy's deadline, then
        one more attempt of a few requests, each at most the timeout, plus a margin."""
        return self.policy.deadline + 4 * self.timeout + 1.0


def _call(key: str, fn: Callable[[], Any], limit: float) -> Called:
    """Run `fn` in a thread of its own, giving up on it after `limit` seconds (a hang)."""
    box: dict[str, Called] = {}

    def target() -> None:
        with as_case(key):
            started = time.monotonic()
            try:
                value = fn()
            except BaseException as exc:
                box["done"] = Called(error=exc, seconds=time.monotonic() - started)
            else:
                box["done"] = Called(value=value, seconds=time.monotonic() - started)

    thread = threading.Thread(target=target, name=f"fault-call:{key}", daemon=True)
    thread.start()
    thread.join(limit)
    return box.get("done") or Called(seconds=limit, hung=True)


def _match(case: Case) -> Match:
    """Which requests of the operation the fault hits.

    A fault that lets the request reach the partner hits a claim's writes (the request that
    creates it), so that the partner holds the claim while the client knows nothing; any
    other fault hits every request of the operation."""
    if case.operation is Operation.OPEN_CLAIM and case.fault.fault.forward and not case.fault.cold:
        return Match(methods=WRITE_METHODS)
    return Match()


def _run_case(run: _Run, case: Case) -> Outcome:
    with as_case(case.key):
        try:
            return _run_case_inner(run, case)
        except Exception as exc:  # the matrix itself failed on this case: say so, go on
            return Outcome(
                case.partner,
                case.operation.value,
                case.fault.name,
                f"crash {type(exc).__name__}",
                0.0,
                problems=(_not_run(exc),),
            )


def _run_case_inner(run: _Run, case: Case) -> Outcome:
    setup = run.setups[case.partner]
    frozen_now = run.started
    state = SandboxState(None, clock=lambda: frozen_now)  # the same answers, second after second
    app = calls.sandbox_app(run.host, case.partner, state)
    assert app is not None
    data_dir = Path(tempfile.mkdtemp(prefix="case-", dir=run.workdir))

    def facade(url: str) -> Pimms:
        return setup.facade(run.host, url, data_dir, timeout=run.timeout, policy=run.policy)

    try:
        with (
            serve_app(app, poll_interval=SIMULATOR_POLL, quiet=True).start() as simulator,
            FaultProxy(simulator.base_url) as proxy,
            facade(proxy.url) as steady,
        ):
            # `steady` gives the healthy answer first, and flushes the outbox after the fault
            # as another desk would; the client the fault hits is another one.
            return _fault(run, case, setup, state, proxy, steady, lambda: facade(proxy.url))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _fault(
    run: _Run,
    case: Case,
    setup: PartnerSetup,
    state: SandboxState,
    proxy: FaultProxy,
    steady: Pimms,
    facade: Callable[[], Pimms],
) -> Outcome:
    """Arm the fault, call the operation on a fresh client, then check all there is to check."""
    baseline, claim_ref = _baseline(setup, steady, case.operation)
    claims_before = state.claim_refs()
    key = f"fault-{uuid.uuid4().hex}"
    with facade() as pimms:
        if not case.fault.cold:
            _warm_up(setup, pimms, case.operation, claim_ref)
        seen_before = len(proxy.requests)
        proxy.arm(case.fault.fault, match=_match(case), times=case.fault.times)
        called = _call(
            case.key, lambda: _operate(setup, pimms, case.operation, key, claim_ref), run.limit
        )
        proxy.disarm()
        faulted = sum(1 for r in proxy.requests[seen_before:] if r.fault)
    mechanism = setup.info.idempotency
    problems = judge(
        case.operation, case.fault, mechanism, called, baseline, state.claim_refs(), faulted
    )
    texts: Texts = []
    if called.error is not None:
        texts += error_texts(called.error)
    if called.value is not None:
        texts.append(("result repr", repr(called.value)))
    settled: Settled | None = None
    if case.operation is Operation.OPEN_CLAIM and not called.hung:
        settled = settle(steady, setup.id, mechanism, state, claims_before, key)
        problems += settled.problems
    texts += store_texts(steady.store)
    texts += [("log record", text) for text in run.logs.texts(case.key)]
    tokens = {f"credential {i}": c for i, c in enumerate(sorted(credentials(proxy.requests)))}
    canary = setup.canary.with_values(**tokens)
    return Outcome(
        case.partner,
        case.operation.value,
        case.fault.name,
        called.describe(),
        called.seconds,
        tuple(problems),
        settled.claims if settled else None,
        settled.outbox_state if settled else None,
        settled.lost if settled else False,
        settled.duplicated if settled else False,
        tuple(canary.leaks(texts)),
    )


def _run_crash(
    run: _Run, setup: PartnerSetup, kill_point: KillPoint, env: Mapping[str, str] | None
) -> Outcome:
    fault = _crash_name(kill_point)
    key = f"{setup.id}/{Operation.OPEN_CLAIM.value}/{fault}"
    with as_case(key):
        try:
            crashed = crash_claim(
                run.host, setup, kill_point, Path(tempfile.mkdtemp(dir=run.workdir)), env=env
            )
        except Exception as exc:
            return Outcome(
                setup.id,
                Operation.OPEN_CLAIM.value,
                fault,
                f"crash {type(exc).__name__}",
                0.0,
                problems=(_not_run(exc),),
            )
    return Outcome(
        setup.id,
        Operation.OPEN_CLAIM.value,
        fault,
        "killed, then flushed",
        crashed.seconds,
        crashed.problems,
        crashed.claims_after,
        crashed.state_after,
        crashed.lost,
        crashed.duplicated,
        crashed.leaks,
    )


def _baseline(setup: PartnerSetup, pimms: Pimms, operation: Operation) -> tuple[Any, str | None]:
    """The right answer, from the healthy simulator (and, for a status, the claim to ask)."""
    if operation is Operation.LOOKUP_ACCOUNT:
        return setup.lookup_account(pimms), None
    if operation is Operation.CLAIM_STATUS:
        opened = setup.open_claim(pimms)
        return pimms.claim_status(setup.id, opened.claim_ref), opened.claim_ref
    return None, None


def _warm_up(
    setup: PartnerSetup, pimms: Pimms, operation: Operation, claim_ref: str | None
) -> None:
    """One healthy call first, so that the client holds its token when the fault is armed."""
    if operation is Operation.CLAIM_STATUS and claim_ref is not None:
        pimms.claim_status(setup.id, claim_ref)
    elif setup.lookup is not None:
        setup.lookup_account(pimms)


def _operate(
    setup: PartnerSetup, pimms: Pimms, operation: Operation, key: str, claim_ref: str | None
) -> Any:
    if operation is Operation.LOOKUP_ACCOUNT:
        return setup.lookup_account(pimms)
    if operation is Operation.OPEN_CLAIM:
        return setup.open_claim(pimms, key)
    assert claim_ref is not None
    return pimms.claim_status(setup.id, claim_ref)


# --- the matrix -------------------------------------------------------------------------------


def cases(
    setups: Iterable[PartnerSetup],
    faults: Sequence[FaultCase],
    operations: Iterable[Operation] | None = None,
) -> list[Case]:
    """Every fault x every partner x every operation the partner supports (and can run)."""
    wanted = set(operations) if operations is not None else set(Operation)
    chosen = []
    for setup in setups:
        for operation in sorted(setup.info.operations & wanted):
            if operation is Operation.LOOKUP_ACCOUNT and setup.lookup is None:
                continue
            if operation is not Operation.LOOKUP_ACCOUNT and setup.claim_account is None:
                continue
            chosen += [Case(setup.id, operation, fault) for fault in faults]
    return chosen


def run_matrix(
    host: PluginHost | None = None,
    *,
    partners: Iterable[str] | None = None,
    faults: Iterable[str] | None = None,
    operations: Iterable[Operation] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    policy: RetryPolicy | None = None,
    workers: int = DEFAULT_WORKERS,
    crash: bool = True,
    crash_env: Mapping[str, str] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Report:
    """Run the matrix: on `partners` (default: every installed one with a simulator), with
    the named `faults` (default: the whole catalogue), on `operations` (default: all).

    With `crash`, each partner that opens claims also gets the two crash cases of
    `pimms_core.testing.crash` (or those named in `faults`: `crash_before_send`,
    `crash_after_send`): a real `pimms claim open` process killed before and after its
    request reached the partner, then `pimms outbox flush`; `crash_env` is their
    environment (by default this process's)."""
    started = time.monotonic()
    faults = list(faults) if faults is not None else None
    host = host or PluginHost()
    host.load()
    policy = policy or fast_policy(timeout)
    chosen_faults = _chosen_faults(catalogue(timeout), faults)
    partner_ids = sorted(partners) if partners is not None else sorted(host.partners)
    workdir = Path(tempfile.mkdtemp(prefix="pimms-faults-"))
    setups: dict[str, PartnerSetup] = {}
    not_ready: list[tuple[str, str]] = []
    try:
        for partner_id in partner_ids:
            try:
                setups[partner_id] = prepare(host, partner_id, workdir / f"probe-{partner_id}")
            except (PartnerNotReady, PimmsError) as exc:
                not_ready.append((partner_id, str(exc)))
            except Exception as exc:  # a plugin that crashes in sandbox mode: say so, go on
                not_ready.append((partner_id, f"probing it in sandbox mode raised {exc!r}"))
        with captured_logs() as logs:
            run = _Run(host, setups, timeout, policy, workdir, logs)
            todo: list[Callable[[], Outcome]] = [
                functools.partial(_run_case, run, case)
                for case in cases(setups.values(), chosen_faults, operations)
            ]
            if crash and (operations is None or Operation.OPEN_CLAIM in operations):
                todo += [
                    functools.partial(_run_crash, run, setup, kill_point, crash_env)
                    for setup in setups.values()
                    if setup.claim_account is not None
                    for kill_point in KillPoint
                    if faults is None or _crash_name(kill_point) in faults
                ]
            outcomes: list[Outcome] = []
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for outcome in pool.map(lambda job: job(), todo):
                    outcomes.append(outcome)
                    if on_outcome is not None:
                        on_outcome(outcome)
            stray = logs.texts(NO_CASE)
            if stray:
                canaries = [setup.canary for setup in setups.values()]
                stray_leaks = [
                    leak
                    for canary in canaries
                    for leak in canary.leaks([("log record", t) for t in stray])
                ]
                if stray_leaks:
                    outcomes.append(
                        Outcome("*", "*", "(outside any case)", "-", 0.0, leaks=tuple(stray_leaks))
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Report(tuple(outcomes), time.monotonic() - started, workers, tuple(not_ready))


def _not_run(exc: BaseException) -> str:
    """Why the matrix itself could not run a case, with the cause's traceback tail."""
    cause = exc.__cause__ or exc.__context__
    where = ""
    if cause is not None:
        frames = traceback.extract_tb(cause.__traceback__)[-3:]
        where = (
            f" (cause {cause!r} at "
            + ", ".join(f"{Path(f.filename).name}:{f.lineno}" for f in frames)
            + ")"
        )
    return f"the matrix could not run this case: {type(exc).__name__}: {exc}{where}"


def _crash_name(kill_point: KillPoint) -> str:
    return f"crash_{kill_point.value}"


def _chosen_faults(all_faults: list[FaultCase], names: Iterable[str] | None) -> list[FaultCase]:
    if names is None:
        return all_faults
    by_name = {f.name: f for f in all_faults}
    unknown = sorted(set(names) - set(by_name) - {_crash_name(k) for k in KillPoint})
    if unknown:
        raise click.BadParameter(
            f"unknown fault(s) {', '.join(unknown)}: expected some of {', '.join(by_name)}, "
            + ", ".join(_crash_name(k) for k in KillPoint)
        )
    return [by_name[name] for name in names if name in by_name]


# --- the command --------------------------------------------------------------------------------


@click.command()
@click.option("--partner", "partners", multiple=True, help="Only this partner (repeatable).")
@click.option("--fault", "faults", multiple=True, help="Only this fault (repeatable).")
@click.option(
    "--operation",
    "operations",
    multiple=True,
    type=click.Choice([op.value for op in Operation]),
    help="Only this operation (repeatable).",
)
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, help="Read timeout, s.")
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, help="Cases at once.")
@click.option(
    "--crash/--no-crash",
    default=True,
    show_default=True,
    help="Also kill a `pimms claim open` process mid-send (twice per partner), then flush.",
)
@click.option("--list", "list_faults", is_flag=True, help="List the faults and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Print every case, not only failures.")
def main(
    partners: tuple[str, ...],
    faults: tuple[str, ...],
    operations: tuple[str, ...],
    timeout: float,
    workers: int,
    crash: bool,
    list_faults: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Run the fault matrix against installed partner plugins (their simulators, on
    loopback) and print one line of figures. Exit 0 when every case passed."""
    if list_faults:
        for fault in catalogue(timeout):
            click.echo(f"{fault.name:24} {fault.expect.value:14} {fault.summary}")
        for kill_point in KillPoint:
            click.echo(f"{_crash_name(kill_point):24} {'exactly once':14} {kill_point.summary}")
        return

    def progress(outcome: Outcome) -> None:
        if verbose or not outcome.passed:
            _print_outcome(outcome)

    report = run_matrix(
        partners=partners or None,
        faults=faults or None,
        operations=[Operation(op) for op in operations] or None,
        timeout=timeout,
        workers=workers,
        crash=crash,
        on_outcome=None if as_json else progress,
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    for partner, reason in report.not_ready:
        click.echo(f"{partner}: not run: {reason}", err=True)
    partner_count = len({o.partner for o in report.outcomes if o.partner != "*"})
    click.echo(
        f"{report.tried} cases over {partner_count} partner(s) in {report.seconds:.1f} s "
        f"({report.workers} at once, timeout {timeout:g} s)",
        err=as_json,
    )
    click.echo(report.figures(), err=as_json)
    sys.exit(0 if report.ok else 1)


def _print_outcome(outcome: Outcome) -> None:
    mark = "ok  " if outcome.passed else "FAIL"
    claims = (
        ""
        if outcome.claims_at_partner is None
        else f" claims={outcome.claims_at_partner} outbox={outcome.outbox_state}"
    )
    click.echo(f"{mark} {outcome.key:50} {outcome.got:32} {outcome.seconds:5.2f}s{claims}")
    for problem in outcome.problems:
        click.echo(f"       {problem}")
    if outcome.lost:
        click.echo("       LOST: the partner has no claim and nothing will send it")
    if outcome.duplicated:
        click.echo(f"       DUPLICATED: the partner holds {outcome.claims_at_partner} claims")
    for leak in outcome.leaks:
        click.echo(f"       LEAK: {leak}")


if __name__ == "__main__":
    main()
