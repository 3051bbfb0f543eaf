"""`AsyncPimms`: the same operations and errors as `Pimms`, and the event loop never blocked."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import pimms_edf
from pimms_core.async_facade import AsyncPimms
from pimms_core.errors import AccountNotFound, InvalidReference, PartnerUnavailable
from pimms_core.models import Claim, ClaimState
from pimms_core.testing import sandbox_pimms
from tests.simulated import Gate, SimulatedAcme, facade, simulator


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.release()


def test_the_loop_keeps_ticking_while_a_slow_partner_answers(gate: Gate) -> None:
    """The partner holds its answer until the loop has ticked 5 times after the request
    arrived: a blocked loop could not tick, and the answer would come only from the gate's
    10-second safety net (`timed_out`)."""
    pimms = AsyncPimms(facade(SimulatedAcme("slow", simulator("slow", gate))))
    ticks_while_held = 0

    async def ticker() -> None:
        nonlocal ticks_while_held
        while not gate.event.is_set():
            await asyncio.sleep(0.005)
            if gate.arrived.is_set():
                ticks_while_held += 1
                if ticks_while_held >= 5:
                    gate.release()

    async def main() -> Any:
        async with pimms:
            account, _ = await asyncio.gather(pimms.lookup_account("slow", "12345678"), ticker())
            return account

    account = asyncio.run(main())
    assert account.holder_name == "Holder of slow"
    assert ticks_while_held >= 5
    assert not gate.timed_out


def test_same_operations_and_errors_as_the_sync_facade() -> None:
    async def main() -> None:
        async with AsyncPimms(sandbox_pimms(pimms_edf)) as pimms:
            [entry] = await pimms.partners()
            assert entry.info.id == "edf" and (await pimms.info("edf")).name == "EDF"
            account = await pimms.lookup_account("edf", "4001234567")
            assert account.holder_name == "Mme Camille Martin"
            assert account.plugin is not None and account.plugin.name == "pimms-edf"
            with pytest.raises(InvalidReference):
                await pimms.lookup_account("edf", "123")
            with pytest.raises(AccountNotFound) as caught:
                await pimms.lookup_account("edf", "4000000000")
            assert caught.value.plugin is not None and caught.value.partner == "edf"
            args = ("edf", "4001234567", "billing", "Facture contestée")
            claim = await pimms.open_claim(*args, idempotency_key="K-async")
            again = await pimms.open_claim(*args, idempotency_key="K-async")
            assert again.claim_ref == claim.claim_ref and again.replayed
            status = await pimms.claim_status("edf", claim.claim_ref)
            assert status.state is ClaimState.RECEIVED
            submitted = await pimms.submit_claim(*args, idempotency_key="K-async-2")
            assert isinstance(submitted, Claim) and submitted.claim_ref != claim.claim_ref
            assert await pimms.flush_outbox() == []  # nothing waits
            summary = await pimms.refresh_claims()
            assert summary.checked == 2 and summary.failed_total == 0

    asyncio.run(main())


def test_lookup_many_keeps_what_finished_when_time_runs_out(gate: Gate) -> None:
    pimms = AsyncPimms(
        facade(
            SimulatedAcme("slow", simulator("slow", gate)),
            SimulatedAcme("fast", simulator("fast")),
        )
    )

    async def main() -> Any:
        outcomes = await pimms.lookup_many(
            [("slow", "12345678"), ("fast", "12345678"), ("fast", "00000000")], timeout=0.3
        )
        gate.release()
        await pimms.aclose()
        return outcomes

    slow, fast, missing = asyncio.run(main())
    assert fast.ok and fast.value is not None and fast.partner == "fast"
    assert isinstance(slow.error, PartnerUnavailable) and slow.partner == "slow"
    assert isinstance(missing.error, AccountNotFound)


def test_per_partner_limit_holds_until_the_thread_is_done(gate: Gate) -> None:
    """With one slot per partner, a cancelled await keeps its slot while its call still runs:
    the next call reaches the partner only after the first one has really finished."""
    pimms = AsyncPimms(facade(SimulatedAcme("slow", simulator("slow", gate))), per_partner=1)

    async def main() -> Any:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pimms.lookup_account("slow", "12345678"), 0.2)
        assert gate.count == 1
        second = asyncio.create_task(pimms.lookup_account("slow", "87654321"))
        await asyncio.sleep(0.2)
        assert gate.count == 1 and not second.done()  # still waiting for the slot
        gate.release()
        account = await second
        await pimms.aclose()
        return account

    assert asyncio.run(main()).reference == "87654321"
    assert gate.count == 2


def test_calls_in_flight_per_partner_are_bounded() -> None:
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    pair = threading.Barrier(3, timeout=5)

    def counted(_path: str) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            pair.wait()
        except threading.BrokenBarrierError:
            return {"error": "not concurrent"}, 500
        finally:
            with lock:
                in_flight -= 1
        return None

    pimms = AsyncPimms(facade(SimulatedAcme("acme", simulator("acme", counted))), per_partner=3)

    async def main() -> list[Any]:
        async with pimms:
            calls = [pimms.lookup_account("acme", f"1234567{i}") for i in range(9)]
            return list(await asyncio.gather(*calls))

    assert len(asyncio.run(main())) == 9
    assert peak == 3


def test_a_closed_facade_refuses_calls() -> None:
    pimms = AsyncPimms(sandbox_pimms(pimms_edf))

    async def main() -> None:
        await pimms.aclose()
        await pimms.aclose()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            await pimms.lookup_account("edf", "4001234567")

    asyncio.run(main())
