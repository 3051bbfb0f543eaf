"""Fan-out: several lookups at once, each outcome attributed to its partner, none held up by
another partner. Partners here are the fake `acme` plugin under several ids, each served by a
small simulator whose handler the test controls (block until released, fail, count)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from pimms_core import hookimpl
from pimms_core.cli import cli
from pimms_core.errors import (
    AccountNotFound,
    InvalidInput,
    InvalidReference,
    PartnerUnavailable,
    UnknownPartner,
)
from pimms_core.fanout import Job, LookupTarget, iter_lookups, lookup_many, run_jobs
from pimms_core.models import Account
from tests.simulated import Gate, SimulatedAcme, facade, simulator


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.release()


def test_each_outcome_in_order_and_attributed() -> None:
    pimms = facade(
        SimulatedAcme("acme", simulator("acme")), SimulatedAcme("bolt", simulator("bolt"))
    )
    outcomes = lookup_many(
        pimms,
        [("acme", "12345678"), ("bolt", "00000000"), ("bolt", "123"), ("nope", "12345678")],
    )
    assert [o.index for o in outcomes] == [0, 1, 2, 3]
    assert [o.partner for o in outcomes] == ["acme", "bolt", "bolt", "nope"]
    found = outcomes[0]
    assert found.ok and isinstance(found.value, Account)
    assert found.value.holder_name == "Holder of acme"
    assert found.value.plugin is not None and found.value.plugin.name == "pimms-acme"
    assert isinstance(outcomes[1].error, AccountNotFound)
    assert outcomes[1].error.partner == "bolt"
    assert outcomes[1].error.plugin is not None and outcomes[1].error.plugin.name == "pimms-bolt"
    assert isinstance(outcomes[2].error, InvalidReference)  # refused before any request
    assert isinstance(outcomes[3].error, UnknownPartner)
    assert all(o.value is None for o in outcomes[1:])


def test_a_slow_partner_does_not_hold_up_the_others(gate: Gate) -> None:
    pimms = facade(
        SimulatedAcme("slow", simulator("slow", gate)), SimulatedAcme("fast", simulator("fast"))
    )
    arrived = iter_lookups(pimms, [("slow", "12345678"), ("fast", "12345678")])
    first = next(arrived)  # the slow partner is held until released: the fast one comes first
    assert first.partner == "fast" and first.ok
    assert gate.arrived.is_set()
    gate.release()
    second = next(arrived)
    assert second.partner == "slow" and second.ok
    assert list(arrived) == []


def test_a_timeout_returns_what_finished_and_reports_the_rest(gate: Gate) -> None:
    pimms = facade(
        SimulatedAcme("slow", simulator("slow", gate)), SimulatedAcme("fast", simulator("fast"))
    )
    targets = [("slow", "12345678"), ("fast", "12345678"), ("slow", "87654321")]
    outcomes = lookup_many(pimms, targets, per_partner=1, timeout=0.5)
    slow_running, fast, slow_queued = outcomes
    assert fast.ok and fast.value is not None
    assert isinstance(slow_running.error, PartnerUnavailable)
    assert "no answer within the time allowed" in slow_running.error.message
    assert isinstance(slow_queued.error, PartnerUnavailable)
    assert slow_queued.error.request_sent is False  # never started: per_partner=1


def test_a_failing_partner_does_not_spoil_the_others() -> None:
    def broken(_path: str) -> Any:
        return "<html>Bad gateway</html>", 502

    pimms = facade(
        SimulatedAcme("down", simulator("down", broken)), SimulatedAcme("up", simulator("up"))
    )
    down, up = lookup_many(pimms, [LookupTarget("down", "12345678"), ("up", "12345678")])
    assert up.ok
    assert isinstance(down.error, PartnerUnavailable) and down.error.status == 502
    assert down.error.partner == "down"


def test_concurrency_is_bounded_per_partner() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    pair = threading.Barrier(2, timeout=5)

    def counted(_path: str) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            pair.wait()  # proceeds only when two requests are in flight together
        except threading.BrokenBarrierError:
            return {"error": "not concurrent"}, 500
        finally:
            with lock:
                in_flight -= 1
        return None

    pimms = facade(SimulatedAcme("acme", simulator("acme", counted)))
    outcomes = lookup_many(pimms, [("acme", f"1234567{i}") for i in range(8)], per_partner=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert peak == 2


def test_partners_take_turns_for_a_shared_limit() -> None:
    order: list[str] = []
    jobs = [Job("a", lambda: order.append("a")) for _ in range(3)]
    jobs += [Job("b", lambda: order.append("b")) for _ in range(3)]
    outcomes = list(run_jobs(jobs, per_partner=1, concurrency=1))
    assert len(outcomes) == 6 and all(o.ok for o in outcomes)
    assert order == ["a", "b", "a", "b", "a", "b"]


def test_workers_go_on_to_the_next_job_while_the_consumer_is_busy() -> None:
    """A freed slot is taken by the worker that freed it, not handed out by the consumer."""
    done = threading.Semaphore(0)

    def job() -> None:
        done.release()

    outcomes = run_jobs([Job("a", job) for _ in range(10)], per_partner=2)
    first = next(outcomes)  # then the consumer does nothing for a while
    assert first.ok
    for _ in range(10):
        assert done.acquire(timeout=5), "the jobs stopped while the consumer was busy"
    rest = list(outcomes)
    assert sorted(o.index for o in [first, *rest]) == list(range(10))


def test_closing_early_starts_nothing_more_and_waits_for_the_jobs_in_flight(gate: Gate) -> None:
    started: list[int] = []
    finished: list[int] = []

    def job(number: int) -> Any:
        def run() -> None:
            started.append(number)
            if number == 1:
                gate("")  # held in flight until released
            finished.append(number)

        return run

    outcomes = run_jobs([Job("a", job(n)) for n in range(6)], per_partner=1)
    assert next(outcomes).index == 0
    assert gate.arrived.wait(5)  # job 1 is in flight
    threading.Timer(0.05, gate.release).start()
    outcomes.close()  # it ends before close() returns, and nothing else starts
    assert finished == [0, 1]
    assert started == [0, 1]


def test_a_job_raising_system_exit_is_an_error_and_frees_its_slot() -> None:
    def leaves() -> None:
        raise SystemExit(3)

    jobs = [Job("a", leaves), Job("a", lambda: "next")]
    outcomes = sorted(run_jobs(jobs, per_partner=1, timeout=5), key=lambda o: o.index)
    assert outcomes[0].error is not None and "SystemExit" in outcomes[0].error.message
    assert outcomes[1].value == "next"


def test_an_unexpected_exception_becomes_an_error_outcome() -> None:
    def boom() -> None:
        raise RuntimeError("holder Jane Canary")

    [outcome] = run_jobs([Job("acme", boom)])
    assert outcome.error is not None and outcome.error.partner == "acme"
    assert "RuntimeError" in outcome.error.message and "Canary" not in outcome.error.message


def test_the_deadline_reaches_each_call(gate: Gate) -> None:
    seen: list[float | None] = []

    class Recording(SimulatedAcme):
        @hookimpl(wrapper=True)
        def pimms_lookup_account(self, partner: Any, query: Any) -> Any:
            seen.append(partner.call.deadline)
            return (yield)

    pimms = facade(Recording("acme", simulator("acme")))
    lookup_many(pimms, [("acme", "12345678")], timeout=5)
    assert seen and seen[0] is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("edf:4001234567", LookupTarget("edf", "4001234567")),
        ("sncf:ABC123:Martin", LookupTarget("sncf", "ABC123", "Martin")),
        (" sncf : ABC123 : Le Goff ", LookupTarget("sncf", "ABC123", "Le Goff")),
    ],
)
def test_target_forms(text: str, expected: LookupTarget) -> None:
    assert LookupTarget.parse(text) == expected


@pytest.mark.parametrize("text", ["edf", "edf:", ":4001234567", ""])
def test_malformed_targets_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="PARTNER:REFERENCE"):
        LookupTarget.parse(text)


def test_target_repr_hides_the_last_name() -> None:
    assert "Martin" not in repr(LookupTarget("sncf", "ABC123", "Martin"))


# --- the command line, on the real sandbox partners ------------------------------------------


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"PIMMS_LOAD_PLUGINS": "edf,sncf,veolia"})


def test_cli_lookup_many_json() -> None:
    result = run(
        "lookup-many", "edf:4001234567", "sncf:ABC123:Martin", "veolia:000000000", "--json"
    )
    assert result.exit_code == 1  # one of them failed
    data = json.loads(result.stdout)["results"]
    assert [r["partner"] for r in data] == ["edf", "sncf", "veolia"]
    assert data[0]["ok"] and data[0]["account"]["holder_name"] == "Mme Camille Martin"
    assert data[0]["mode"] == "sandbox" and data[0]["account"]["plugin"] == "pimms-edf"
    assert data[1]["ok"] and data[1]["account"]["reference"] == "ABC123"
    assert not data[2]["ok"] and data[2]["error"]["error"] == "account_not_found"
    assert data[2]["error"]["plugin"] == "pimms-veolia"
    assert "1 of 3 lookup(s) failed" in result.stderr
    assert "SANDBOX edf" in result.stderr


def test_cli_lookup_many_human() -> None:
    result = run("lookup-many", "edf:4001234567", "edf:24115050654321")
    assert result.exit_code == 0, result.output
    lines = sorted(result.stdout.splitlines())
    assert lines[0].startswith("[1] edf 4001234567: Mme Camille Martin, active")
    assert lines[1].startswith("[2] edf 4007654321: M. Karim Benali")  # found by PDL


def test_cli_lookup_many_usage_error() -> None:
    result = run("lookup-many", "edf")
    assert result.exit_code == 2
    assert "PARTNER:REFERENCE" in result.output
