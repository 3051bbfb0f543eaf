"""`AsyncPimms`: the facade for asyncio site software (a FastAPI app, say).

```python
from pimms_core.async_facade import AsyncPimms

async with AsyncPimms.from_config() as pimms:
    account = await pimms.lookup_account("edf", "4001234567")
    outcomes = await pimms.lookup_many([("edf", "4001234567"), ("veolia", "100200300")])
```

Same operations (`lookup_account`, `open_claim`, `submit_claim`, `claim_status`,
`flush_outbox`, plus `lookup_many` and `refresh_claims`), arguments, results and errors as
`Pimms` (it wraps one, `.pimms`), and the event loop is never blocked: each call runs the
synchronous facade in a bounded thread pool of its own.

Why threads rather than an `httpx.AsyncClient`: hook calls are synchronous by contract (a
plugin is plain functions, easy to write and test), so an async transport would need a second,
async, implementation of every plugin; the validation, routing, retries, quotas and journal
stay the one tested code path. An HTTP call waits with the GIL released, so a thread per call
in flight costs little. Each partner has at most `per_partner` calls in the pool at once; the
others wait in the event loop, so one slow partner never takes the threads of the others.

Cancelling an awaiting task (a client gone, a `wait_for` timeout) returns at once, but the
call already sent runs to its end in its thread: a claim being opened is still opened (and
recorded), never cut half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pimms_core import fanout
from pimms_core.fanout import LookupTarget, Outcome

if TYPE_CHECKING:
    from typing import Unpack

    from pimms_core.facade import PartnerEntry, Pimms
    from pimms_core.models import (
        Account,
        CallContext,
        Claim,
        ClaimStatus,
        Contact,
        PartnerInfo,
        PluginRef,
        QueuedClaim,
    )
    from pimms_core.refresh import RefreshOptions, RefreshSummary
    from pimms_core.store.delivery import DeliveryOutcome

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_MAX_WORKERS = 32


class AsyncPimms:
    """The asyncio facade: every operation of `Pimms`, awaited, off the event loop."""

    def __init__(
        self,
        pimms: Pimms,
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        per_partner: int | None = None,
    ) -> None:
        """Wrap `pimms`. `max_workers` threads in all; `per_partner` calls in flight each
        (default: the partner's `max_concurrent` setting, the facade's own limit, so that no
        thread of the pool waits inside the facade for a slot)."""
        self.pimms = pimms
        self.per_partner = None if per_partner is None else max(1, per_partner)
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, max_workers), thread_name_prefix="pimms-async"
        )
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._closed = False

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        sandbox: bool = False,
        plugins: Iterable[tuple[Any, PluginRef]] = (),
        use_entry_points: bool = True,
        env: Mapping[str, str] | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        per_partner: int | None = None,
    ) -> AsyncPimms:
        """As `Pimms.from_config` (reading one small TOML file; plugins load on first use)."""
        from pimms_core.facade import Pimms

        pimms = Pimms.from_config(
            path, sandbox=sandbox, plugins=plugins, use_entry_points=use_entry_points, env=env
        )
        return cls(pimms, max_workers=max_workers, per_partner=per_partner)

    # --- running off the loop ---------------------------------------------------------------

    def _submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Start `fn` in the pool, with the caller's context variables (logging, tracing)."""
        if self._closed:
            raise RuntimeError("this AsyncPimms is closed")
        context = contextvars.copy_context()
        return self._executor.submit(functools.partial(context.run, fn, *args, **kwargs))

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.wrap_future(self._submit(fn, *args, **kwargs))

    async def _for_partner(
        self, partner: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn` once the partner has a free slot; the slot is held until the thread is
        done, not merely until the await ends, so an abandoned call still counts."""
        gate = self._gates.get(partner)
        if gate is None:
            limit = self.per_partner or fanout.partner_limit(self.pimms, partner)
            gate = self._gates[partner] = asyncio.Semaphore(limit)
        await gate.acquire()
        loop = asyncio.get_running_loop()
        try:
            future = self._submit(fn, *args, **kwargs)
        except BaseException:
            gate.release()
            raise

        def release(_done: Future[T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(gate.release)

        future.add_done_callback(release)
        return await asyncio.wrap_future(future)

    # --- partners ---------------------------------------------------------------------------

    async def partners(self) -> list[PartnerEntry]:
        """Installed partners (loading plugins on first use, off the loop)."""
        return await self._run(self.pimms.partners)

    async def info(self, partner_id: str) -> PartnerInfo:
        return await self._run(self.pimms.info, partner_id)

    # --- operations -------------------------------------------------------------------------

    async def lookup_account(
        self,
        partner: str,
        reference: str,
        *,
        last_name: str | None = None,
        call: CallContext | None = None,
    ) -> Account:
        """As `Pimms.lookup_account`."""
        return await self._for_partner(
            partner, self.pimms.lookup_account, partner, reference, last_name=last_name, call=call
        )

    async def open_claim(
        self,
        partner: str,
        account_ref: str,
        category: str,
        description: str,
        *,
        contact: Contact | None = None,
        last_name: str | None = None,
        service_id: str | None = None,
        idempotency_key: str | None = None,
        call: CallContext | None = None,
    ) -> Claim:
        """As `Pimms.open_claim`. A cancelled await does not cancel the claim (see above)."""
        return await self._for_partner(
            partner,
            self.pimms.open_claim,
            partner,
            account_ref,
            category,
            description,
            contact=contact,
            last_name=last_name,
            service_id=service_id,
            idempotency_key=idempotency_key,
            call=call,
        )

    async def submit_claim(
        self,
        partner: str,
        account_ref: str,
        category: str,
        description: str,
        *,
        contact: Contact | None = None,
        last_name: str | None = None,
        service_id: str | None = None,
        idempotency_key: str | None = None,
        call: CallContext | None = None,
    ) -> Claim | QueuedClaim:
        """As `Pimms.submit_claim`: the partner's claim, or the claim kept in the outbox."""
        return await self._for_partner(
            partner,
            self.pimms.submit_claim,
            partner,
            account_ref,
            category,
            description,
            contact=contact,
            last_name=last_name,
            service_id=service_id,
            idempotency_key=idempotency_key,
            call=call,
        )

    async def flush_outbox(
        self, partner: str | None = None, *, call: CallContext | None = None
    ) -> list[DeliveryOutcome]:
        """As `Pimms.flush_outbox`: send the claims waiting in the outbox."""
        return await self._run(self.pimms.flush_outbox, partner, call=call)

    async def claim_status(
        self, partner: str, claim_ref: str, *, call: CallContext | None = None
    ) -> ClaimStatus:
        """As `Pimms.claim_status`."""
        return await self._for_partner(
            partner, self.pimms.claim_status, partner, claim_ref, call=call
        )

    async def refresh_claims(self, **options: Unpack[RefreshOptions]) -> RefreshSummary:
        """As `pimms_core.refresh.refresh_claims` (same options, same defaults), in a thread of
        its own (it runs its own pool of checks, outside this facade's pool)."""
        from pimms_core.refresh import refresh_claims

        return await asyncio.to_thread(refresh_claims, self.pimms, **options)

    async def lookup_many(
        self,
        targets: Iterable[LookupTarget | Sequence[str | None]],
        *,
        timeout: float | None = None,
        call: CallContext | None = None,
    ) -> list[Outcome[Account]]:
        """As `pimms_core.fanout.lookup_many`: all at once, one outcome per target, in order.

        With `timeout`, the lookups not finished by then are `PartnerUnavailable` outcomes
        (their threads finish in the background); the others are kept.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        jobs = fanout.lookup_jobs(self.pimms, targets, call=call, deadline=deadline)

        async def one(index: int, job: fanout.Job[Account]) -> Outcome[Account]:
            started = time.monotonic()
            left = None if deadline is None else max(0.0, deadline - started)
            try:
                value, error, seconds = await asyncio.wait_for(
                    self._for_partner(job.partner, fanout.timed, job), left
                )
            except TimeoutError:
                error = fanout.expired(job.partner)
                return Outcome(index, job.partner, error=error, seconds=time.monotonic() - started)
            return Outcome(index, job.partner, value, error, seconds)

        return list(await asyncio.gather(*(one(i, job) for i, job in enumerate(jobs))))

    # --- lifecycle --------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Wait for the calls in flight (off the loop), then close every partner's client."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self.pimms.close()

    async def __aenter__(self) -> AsyncPimms:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
