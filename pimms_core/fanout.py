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
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
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


def unexpected_error(partner: str, exc: BaseException) -> PimmsError:
    """A non-pimms exception from a job: kept to its type, as its message may hold anything."""
    logger.warning("%s: a call failed unexpectedly (%s)", partner, type(exc).__name__)
    return PimmsError(f"{partner}: internal error ({type(exc).__name__})", partner=partner)


def timed(job: Job[T]) -> tuple[T | None, PimmsError | None, float]:
    """Run `job`: its value or its error (a `PimmsError`, never anything else), and the
    seconds it took. Runs in a worker thread, where even `SystemExit` from a plugin must become
    an outcome: a worker that ended would leave its job's slot taken and the run waiting."""
    started = time.monotonic()
    try:
        value = job.run()
    except PimmsError as exc:
        return None, exc, time.monotonic() - started
    except BaseException as exc:
        return None, unexpected_error(job.partner, exc), time.monotonic() - started
    return value, None, time.monotonic() - started


class _Turns(Generic[T]):
    """Which job starts next: partners take turns, each under its own limit of jobs in flight.

    Shared by the worker threads, which each take their next job here as soon as they are done
    with one, and by the consumer, which stops it. Why not a thread pool fed by the consumer:
    the consumer's thread must then get the GIL back before a freed slot is used again, and
    with 32 threads running that wait is often the 5 ms of the interpreter's switch interval.
    """

    def __init__(
        self,
        queues: dict[str, deque[int]],
        limits: Mapping[str, int],
        outcomes: queue.SimpleQueue[Outcome[T] | None],
    ) -> None:
        self._queues = queues
        self._limits = limits
        self._turns = deque(queues)
        self._running = dict.fromkeys(queues, 0)
        self._outcomes = outcomes
        self._changed = threading.Condition(threading.Lock())
        self._started: set[int] = set()
        self._stopped = False

    def take(self) -> int | None:
        """The next job to run, once a slot of its partner is free; None when no job is left
        to start, or the run is stopped."""
        with self._changed:
            while not self._stopped and self._turns:
                for _ in range(len(self._turns)):
                    partner = self._turns[0]
                    self._turns.rotate(-1)
                    if self._running[partner] < self._limits[partner]:
                        waiting = self._queues[partner]
                        index = waiting.popleft()
                        if not waiting:
                            self._turns.remove(partner)
                        self._running[partner] += 1
                        self._started.add(index)
                        return index
                self._changed.wait()  # every partner with jobs left is at its limit
            return None

    def finish(self, outcome: Outcome[T]) -> None:
        """Hand `outcome` over and free its slot in one step: a consumer that stops the run
        finds each job either in flight or among the outcomes handed over, never in neither."""
        with self._changed:
            self._outcomes.put(outcome)
            self._started.discard(outcome.index)
            self._running[outcome.partner] -= 1
            self._changed.notify()

    def leave(self) -> None:
        """A worker thread ends: it says so to the consumer (None)."""
        with self._changed:
            self._outcomes.put(None)
            self._changed.notify()

    def stop(self) -> tuple[list[Outcome[T]], list[int], list[int]]:
        """Start nothing more. Returns the outcomes handed over and not read yet, the jobs in
        flight, and the jobs never started."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
            ready = []
            while True:
                try:
                    item = self._outcomes.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    ready.append(item)
            never = sorted(index for waiting in self._queues.values() for index in waiting)
            return ready, sorted(self._started), never


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

    Each worker thread takes its next job itself when it is done with one (`_Turns`).
    """
    queues: dict[str, deque[int]] = {}
    for index, job in enumerate(jobs):
        queues.setdefault(job.partner, deque()).append(index)
    if not queues:
        return
    limits = {partner: _limit(per_partner, partner) for partner in queues}
    natural = sum(min(limits[p], len(q)) for p, q in queues.items())
    workers = max(1, min(concurrency, natural) if concurrency else natural)
    outcomes: queue.SimpleQueue[Outcome[T] | None] = queue.SimpleQueue()
    turns: _Turns[T] = _Turns(queues, limits, outcomes)

    def work() -> None:
        try:
            while (index := turns.take()) is not None:
                job = jobs[index]
                turns.finish(Outcome(index, job.partner, *timed(job)))
        finally:
            turns.leave()

    threads = [
        threading.Thread(target=work, name=f"pimms-fanout-{number}") for number in range(workers)
    ]
    for thread in threads:
        thread.start()
    end = None if timeout is None else time.monotonic() + timeout
    working = workers
    abandon = False
    try:
        while working:
            left = None if end is None else max(0.0, end - time.monotonic())
            try:
                outcome = outcomes.get(timeout=left)
            except queue.Empty:
                abandon = True
                ready, running, never = turns.stop()
                yield from ready
                for index in running:
                    yield Outcome(index, jobs[index].partner, error=expired(jobs[index].partner))
                for index in never:
                    partner = jobs[index].partner
                    yield Outcome(index, partner, error=expired(partner, started=False))
                return
            if outcome is None:
                working -= 1
            else:
                yield outcome
    finally:
        turns.stop()
        if not abandon:
            for thread in threads:
                thread.join()


def expired(partner: str, *, started: bool = True) -> PartnerUnavailable:
    """The error of a call the time allowed ran out on: one still running (`started`), or one
    never sent."""
    if started:
        return PartnerUnavailable(partner, "no answer within the time allowed")
    return PartnerUnavailable(
        partner, "not tried: the time allowed ran out first", request_sent=False
    )


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
