"""Many partner calls at once: a desk never waits for one partner after another.

`lookup_many(pimms, [("edf", "4001234567"), ("veolia", "100200300")])` looks up several
accounts concurrently and returns one `Outcome` per target, in the order given, each holding
the account or the typed error, attributed to its partner (and to the plugin, through the
error's or result's `plugin`). The engine underneath, `run_jobs`, is shared with the batch
refresh: it keeps at most `per_partner` calls in flight for each partner (so one partner is
never flooded and a slow or budget-bound partner never takes the slots of the others), yields
each outcome as soon as it is known, and, given a time limit, gives up waiting for what is
still running when it expires.

Threads, not asyncio: hook calls are synchronous by contract (plugins are plain functions),
and an HTTP call releases the GIL while it waits, so a thread per call in flight costs little.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs
from attrs import field, frozen

from pimms_core.errors import InvalidInput, PartnerUnavailable, PimmsError
from pimms_core.models import CallContext

if TYPE_CHECKING:
    from pimms_core.facade import Pimms
    from pimms_core.models import Account

T = TypeVar("T")

logger = logging.getLogger("pimms.fanout")

DEFAULT_PER_PARTNER = 4
"""Calls in flight per partner for `run_jobs` when its mapping names no limit; the lookups
default to each partner's `max_concurrent` setting (the facade's own limit)."""


def _redacted(_value: object) -> str:
    return "'***'"


@frozen
class LookupTarget:
    """One account to look up: partner, reference, and the holder's last name where needed."""

    partner: str
    reference: str
    last_name: str | None = field(default=None, repr=_redacted)

    @classmethod
    def parse(cls, text: str) -> LookupTarget:
        """Read `PARTNER:REFERENCE` or `PARTNER:REFERENCE:LAST_NAME` (the CLI's form).

        The last name may itself hold a colon; partner and reference may not.
        """
        partner, sep, rest = text.partition(":")
        reference, _, last_name = rest.partition(":")
        if not sep or not partner.strip() or not reference.strip():
            raise InvalidInput(
                "a lookup target must read PARTNER:REFERENCE or PARTNER:REFERENCE:LAST_NAME "
                "(for example edf:4001234567 or sncf:ABC123:Martin)"
            )
        return cls(partner.strip(), reference.strip(), last_name.strip() or None)

    @classmethod
    def of(cls, item: LookupTarget | Sequence[str | None]) -> LookupTarget:
        """A target from itself or from a `(partner, reference[, last_name])` tuple."""
        if isinstance(item, LookupTarget):
            return item
        if isinstance(item, str) or not 2 <= len(item) <= 3:
            raise InvalidInput(
                "a lookup target is a LookupTarget or a (partner, reference[, last_name]) tuple"
            )
        partner, reference, *rest = item
        if not isinstance(partner, str) or not isinstance(reference, str):
            raise InvalidInput("a lookup target's partner and reference must be text")
        return cls(partner, reference, rest[0] if rest else None)


@frozen
class Job(Generic[T]):
    """One call to make for one partner (`run` raises `PimmsError` on failure)."""

    partner: str
    run: Callable[[], T] = field(repr=False)


@frozen
class Outcome(Generic[T]):
    """What became of one job: its value or its error, never both; `index` is its position."""

    index: int
    partner: str
    value: T | None = None
    error: PimmsError | None = None
    seconds: float = 0.0
    """Wall time from the moment the call started (0.0 for a call never started)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def partner_limit(pimms: Pimms, partner: str) -> int:
    """The calls in flight a partner takes by default: its `max_concurrent` setting (the
    facade's own limit)."""
    return pimms.config.partner(partner).max_concurrent


def _limit(per_partner: int | Mapping[str, int], partner: str) -> int:
    if isinstance(per_partner, int):
        return max(1, per_partner)
    return max(1, per_partner.get(partner, DEFAULT_PER_PARTNER))


def unexpected_error(partner: str, exc: Exception) -> PimmsError:
    """A non-pimms exception from a job: kept to its type, as its message may hold anything."""
    logger.warning("%s: a call failed unexpectedly (%s)", partner, type(exc).__name__)
    return PimmsError(f"{partner}: internal error ({type(exc).__name__})", partner=partner)


def timed(job: Job[T]) -> tuple[T | None, PimmsError | None, float]:
    """Run `job`: its value or its error (a `PimmsError`, never anything else), and the
    seconds it took."""
    started = time.monotonic()
    try:
        value = job.run()
    except PimmsError as exc:
        return None, exc, time.monotonic() - started
    except Exception as exc:
        return None, unexpected_error(job.partner, exc), time.monotonic() - started
    return value, None, time.monotonic() - started


def run_jobs(
    jobs: Sequence[Job[T]],
    *,
    per_partner: int | Mapping[str, int] = DEFAULT_PER_PARTNER,
    concurrency: int | None = None,
    timeout: float | None = None,
) -> Generator[Outcome[T], None, None]:
    """Run `jobs` concurrently and yield each outcome as soon as it is known.

    At most `per_partner` jobs of one partner (an int for all, or a mapping by partner id) and
    `concurrency` jobs in all (default: the sum of the partners' limits) are in flight at once;
    partners take turns for free slots, so a slow partner never holds up the others. After
    `timeout` seconds, every job still running or not started yields a `PartnerUnavailable`
    and the generator ends without waiting for them (their threads finish in the background,
    each bounded by its partner's own HTTP timeout).

    Closing the generator early (a `break`, an error, Ctrl-C in the consumer) starts nothing
    new and waits for the calls already in flight, so none is cut half-way.
    """
    queues: dict[str, deque[int]] = {}
    for index, job in enumerate(jobs):
        queues.setdefault(job.partner, deque()).append(index)
    if not queues:
        return
    limits = {partner: _limit(per_partner, partner) for partner in queues}
    natural = sum(min(limits[p], len(q)) for p, q in queues.items())
    workers = max(1, min(concurrency, natural) if concurrency else natural)
    turns = deque(queues)
    running = dict.fromkeys(queues, 0)
    in_flight: dict[Future[tuple[T | None, PimmsError | None, float]], int] = {}
    finished: queue.SimpleQueue[Future[tuple[T | None, PimmsError | None, float]]] = (
        queue.SimpleQueue()
    )
    end = None if timeout is None else time.monotonic() + timeout
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pimms-fanout")
    abandon = False

    def fill() -> None:
        idle = 0
        while len(in_flight) < workers and turns and idle < len(turns):
            partner = turns[0]
            turns.rotate(-1)
            waiting = queues[partner]
            if not waiting:
                turns.remove(partner)
                continue
            if running[partner] >= limits[partner]:
                idle += 1
                continue
            idle = 0
            index = waiting.popleft()
            running[partner] += 1
            future = executor.submit(timed, jobs[index])
            in_flight[future] = index
            future.add_done_callback(finished.put)

    def settle(future: Future[tuple[T | None, PimmsError | None, float]]) -> Outcome[T]:
        index = in_flight.pop(future)
        partner = jobs[index].partner
        running[partner] -= 1
        value, error, seconds = future.result()
        return Outcome(index, partner, value, error, seconds)

    try:
        while True:
            fill()
            if not in_flight:
                return
            left = None if end is None else max(0.0, end - time.monotonic())
            try:
                future = finished.get(timeout=left)
            except queue.Empty:
                abandon = True
                yield from _expired_outcomes(jobs, in_flight.values(), queues)
                return
            yield settle(future)
    finally:
        executor.shutdown(wait=not abandon, cancel_futures=True)


def expired(partner: str, *, started: bool = True) -> PartnerUnavailable:
    """The error of a call the time allowed ran out on: one still running (`started`), or one
    never sent."""
    if started:
        return PartnerUnavailable(partner, "no answer within the time allowed")
    return PartnerUnavailable(
        partner, "not tried: the time allowed ran out first", request_sent=False
    )


def _expired_outcomes(
    jobs: Sequence[Job[T]], started: Iterable[int], queues: Mapping[str, deque[int]]
) -> Iterator[Outcome[T]]:
    for index in sorted(started):
        partner = jobs[index].partner
        yield Outcome(index, partner, error=expired(partner))
    for partner, waiting in queues.items():
        for index in waiting:
            yield Outcome(index, partner, error=expired(partner, started=False))


def deadline_context(pimms: Pimms, call: CallContext | None, deadline: float | None) -> CallContext:
    """The call context to pass with each call: the caller's, or the site's, with `deadline`."""
    base = call or CallContext(site_id=pimms.config.site_id)
    if deadline is None or (base.deadline is not None and base.deadline <= deadline):
        return base
    return attrs.evolve(base, deadline=deadline)


def lookup_jobs(
    pimms: Pimms,
    targets: Iterable[LookupTarget | Sequence[str | None]],
    *,
    call: CallContext | None = None,
    deadline: float | None = None,
) -> list[Job[Account]]:
    """One job per target, each calling `pimms.lookup_account` with the shared call context."""
    context = deadline_context(pimms, call, deadline)

    def job(target: LookupTarget) -> Job[Account]:
        return Job(
            target.partner,
            lambda: pimms.lookup_account(
                target.partner, target.reference, last_name=target.last_name, call=context
            ),
        )

    return [job(LookupTarget.of(item)) for item in targets]


def iter_lookups(
    pimms: Pimms,
    targets: Iterable[LookupTarget | Sequence[str | None]],
    *,
    per_partner: int | Mapping[str, int] | None = None,
    timeout: float | None = None,
    call: CallContext | None = None,
) -> Iterator[Outcome[Account]]:
    """Like `lookup_many`, but yields each outcome as it arrives (to show it at once)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs = lookup_jobs(pimms, targets, call=call, deadline=deadline)
    if per_partner is None:
        per_partner = {job.partner: partner_limit(pimms, job.partner) for job in jobs}
    return run_jobs(jobs, per_partner=per_partner, timeout=timeout)


def lookup_many(
    pimms: Pimms,
    targets: Iterable[LookupTarget | Sequence[str | None]],
    *,
    per_partner: int | Mapping[str, int] | None = None,
    timeout: float | None = None,
    call: CallContext | None = None,
) -> list[Outcome[Account]]:
    """Look up several accounts at once, across partners; one outcome per target, in order.

    A target is a `LookupTarget` or a `(partner, reference[, last_name])` tuple. Each call is
    validated, routed, retried and journaled as `pimms.lookup_account` does it; a failure is
    the outcome's `error` (a `PimmsError`, with its `partner` and `plugin`), never an
    exception that loses the other results. At most `per_partner` lookups of one partner are
    in flight at once (default: its `max_concurrent` setting). With `timeout` (seconds), the
    whole fan-out returns by then, the calls not finished reported as `PartnerUnavailable`;
    without it, each partner is bounded by its own deadline (its retry policy and HTTP
    timeout).
    """
    outcomes = list(
        iter_lookups(pimms, targets, per_partner=per_partner, timeout=timeout, call=call)
    )
    return sorted(outcomes, key=lambda outcome: outcome.index)
