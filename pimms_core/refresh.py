"""Batch refresh: ask each partner where every open claim of the ledger stands.

```python
from pimms_core.refresh import Refresh

refresh = Refresh(pimms, partner="edf")          # every open claim (of one partner)
for check in refresh.run():                       # each claim as soon as its partner answered
    ...
print(refresh.summary.checked, refresh.summary.changed, refresh.summary.failed)
```

Each claim is asked through the facade (as `Pimms.claim_status` asks it), which does what it
always does: it checks the reference, retries what may be retried, keeps the partner's
budget, concurrency limit and circuit breaker, and writes a journal row; the fresh statuses
are written to the ledger by the run itself, `STATUS_BATCH` claims to a transaction (32
threads each writing its own claim's row queued behind one another for the store's lock: a
status took ~5 ms to write).
Partners are asked concurrently (`fanout.run_jobs`: at most `per_partner` calls in flight per
partner, partners taking turns for the `concurrency` slots), so one slow or budget-bound
partner never holds up the others.

A refresh paces itself to `budget_share` (90% by default) of each partner's declared quotas,
on top of the core's own budget, which stays the hard limit: the partner counts requests as
they arrive, and a batch job that used the whole budget would see the smallest network jitter
push a window over it (and leave nothing for a desk of the site calling the same partner).

Interruptible and re-runnable without harm: a status check changes nothing at the partner, and
stopping the iteration (Ctrl-C) starts nothing new, waits for the calls in flight and writes
the statuses of every check it yielded (a check finished after the stop is asked again next
time; a process killed outright loses at most its last batch, asked again next time too).
`older_than` skips the claims heard of recently, so a run stopped half-way can be resumed
where it stopped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from attrs import define, field, frozen

from pimms_core.errors import PimmsError
from pimms_core.fanout import Job, partner_limit, run_jobs
from pimms_core.models import CallContext, ClaimState, ClaimStatus, new_correlation_id
from pimms_core.quota import Budget
from pimms_core.redaction import logger as redacted_logger

if TYPE_CHECKING:
    from pimms_core.facade import Pimms
    from pimms_core.store.records import LedgerEntry

logger = redacted_logger("pimms.refresh")

DEFAULT_CONCURRENCY = 32
STATUS_BATCH = 100
"""Fresh statuses written to the ledger in one transaction (or every `STATUS_INTERVAL`)."""
STATUS_INTERVAL = 1.0
"""Seconds at most between two writes of fresh statuses (a slow run shows progress)."""
DEFAULT_BUDGET_SHARE = 0.9
REFRESH_AGENT = "pimms-refresh"
"""The agent the journal names for a refresh's checks (they share one correlation id)."""


class RefreshOptions(TypedDict, total=False):
    """The options of `refresh_claims` (and of `Refresh`), for the facades that pass them on."""

    partner: str | None
    older_than: float | None
    concurrency: int
    per_partner: int | None
    budget_share: float
    call: CallContext | None


@frozen
class ClaimCheck:
    """What one claim's check found: the new status, or why there is none."""

    partner: str
    claim_ref: str
    before: ClaimState
    before_status: str
    status: ClaimStatus | None = None
    error: PimmsError | None = None

    @property
    def changed(self) -> bool:
        """The partner moved the claim since the ledger last heard of it."""
        return self.status is not None and (
            self.status.state is not self.before or self.status.partner_status != self.before_status
        )


@define
class PartnerTally:
    """The counts of one partner (and, summed, of the whole run)."""

    checked: int = 0
    changed: int = 0
    failed: Counter[str] = field(factory=Counter)
    """By error type (`partner_unavailable`, `claim_not_found`...)."""

    def add(self, check: ClaimCheck) -> None:
        self.checked += 1
        if check.error is not None:
            self.failed[check.error.code] += 1
        elif check.changed:
            self.changed += 1

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def unchanged(self) -> int:
        return self.checked - self.changed - self.failed_total


@define
class RefreshSummary(PartnerTally):
    """The whole run: claims selected, checked, changed, failed by type, and per partner."""

    selected: int = 0
    partners: dict[str, PartnerTally] = field(factory=dict)
    changes: list[ClaimCheck] = field(factory=list)
    """The checks that found a claim moved, in the order they came."""
    interrupted: bool = False
    seconds: float = 0.0

    def record(self, check: ClaimCheck) -> None:
        self.add(check)
        self.partners.setdefault(check.partner, PartnerTally()).add(check)
        if check.changed:
            self.changes.append(check)

    @property
    def complete(self) -> bool:
        return not self.interrupted and self.checked == self.selected

    def to_json(self) -> dict[str, object]:
        """The summary as the CLI prints it with `--json` (no personal data: references and
        states only)."""
        return {
            "selected": self.selected,
            "checked": self.checked,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "failed": dict(sorted(self.failed.items())),
            "failed_total": self.failed_total,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
            "partners": {
                partner: {
                    "checked": tally.checked,
                    "changed": tally.changed,
                    "failed": dict(sorted(tally.failed.items())),
                }
                for partner, tally in sorted(self.partners.items())
            },
            "changes": [
                {
                    "partner": check.partner,
                    "claim_ref": check.claim_ref,
                    "from": check.before.value,
                    "to": check.status.state.value,
                    "partner_status": check.status.partner_status,
                }
                for check in self.changes
                if check.status is not None
            ],
        }


class Refresh:
    """One refresh run over the open claims of the ledger (all partners, or one)."""

    def __init__(
        self,
        pimms: Pimms,
        *,
        partner: str | None = None,
        older_than: float | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        per_partner: int | None = None,
        budget_share: float = DEFAULT_BUDGET_SHARE,
        call: CallContext | None = None,
    ) -> None:
        """`older_than` (seconds): only claims not heard of for that long. `per_partner`:
        calls in flight per partner (default: the partner's configured `max_concurrent`, the
        facade's own limit, capped by `concurrency`). `budget_share`: the part of each
        partner's quotas this run may use (0 < share <= 1)."""
        if concurrency < 1 or (per_partner is not None and per_partner < 1):
            raise ValueError("concurrency and per_partner must be at least 1")
        if not 0 < budget_share <= 1:
            raise ValueError("budget_share must be more than 0 and at most 1")
        self.budget_share = budget_share
        self.pimms = pimms
        self.partner = partner
        self.concurrency = concurrency
        self.per_partner = per_partner
        self.call = call or CallContext(
            site_id=pimms.config.site_id,
            agent_id=REFRESH_AGENT,
            correlation_id=f"refresh-{new_correlation_id()[:12]}",
        )
        if partner is not None:
            pimms.info(partner)  # UnknownPartner, listing the installed ones
        checked_before = None
        if older_than is not None:
            checked_before = datetime.now(UTC) - timedelta(seconds=older_than)
        self.claims: list[LedgerEntry] = pimms.store.ledger.list(
            open_only=True, partner=partner, checked_before=checked_before
        )
        self.summary = RefreshSummary(selected=len(self.claims))

    def _limit(self, partner: str) -> int:
        if self.per_partner is not None:
            return min(self.per_partner, self.concurrency)
        return min(partner_limit(self.pimms, partner), self.concurrency)

    def _pace(self, partner: str) -> Budget:
        """This run's share of the partner's quotas: N calls per (window / share)."""
        return Budget.for_quotas(self.pimms.info(partner).quotas, share=self.budget_share)

    def _job(self, entry: LedgerEntry, pace: Budget) -> Job[ClaimStatus]:
        def check() -> ClaimStatus:
            pace.acquire()
            return self.pimms._claim_status(entry.partner, entry.claim_ref, self.call, known=entry)

        return Job(entry.partner, check)

    def _write(self, fresh: list[ClaimStatus]) -> None:
        """Write the fresh statuses to the ledger, and forget them; a ledger that cannot be
        written is logged (the claims are asked again next time)."""
        if not fresh:
            return
        try:
            self.pimms.store.ledger.update_statuses(fresh, checked_at=datetime.now(UTC))
        except PimmsError as exc:
            logger.error("the ledger could not record %d statuses (%s)", len(fresh), exc.code)
        fresh.clear()

    def run(self) -> Iterator[ClaimCheck]:
        """Check every selected claim; yield each check as soon as it is done.

        The summary is kept up to date as checks come. Closing the iterator early (a `break`,
        Ctrl-C) marks the summary interrupted, starts nothing new, and waits for the calls in
        flight, whose results the ledger keeps.
        """
        started = time.monotonic()
        partners = sorted({entry.partner for entry in self.claims})
        paces = {partner: self._pace(partner) for partner in partners}
        limits = {partner: self._limit(partner) for partner in partners}
        jobs = [self._job(entry, paces[entry.partner]) for entry in self.claims]
        outcomes = run_jobs(jobs, per_partner=limits, concurrency=self.concurrency)
        fresh: list[ClaimStatus] = []
        written = time.monotonic()
        try:
            for outcome in outcomes:
                if outcome.value is not None:
                    fresh.append(outcome.value)
                    if len(fresh) >= STATUS_BATCH or time.monotonic() - written >= STATUS_INTERVAL:
                        self._write(fresh)
                        written = time.monotonic()
                entry = self.claims[outcome.index]
                check = ClaimCheck(
                    entry.partner,
                    entry.claim_ref,
                    entry.state,
                    entry.partner_status,
                    outcome.value,
                    outcome.error,
                )
                self.summary.record(check)
                yield check
        except BaseException:
            self.summary.interrupted = True
            raise
        finally:
            outcomes.close()
            self._write(fresh)
            if self.summary.checked < self.summary.selected:
                self.summary.interrupted = True
            self.summary.seconds = time.monotonic() - started


def refresh_claims(
    pimms: Pimms,
    *,
    partner: str | None = None,
    older_than: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_partner: int | None = None,
    budget_share: float = DEFAULT_BUDGET_SHARE,
    call: CallContext | None = None,
) -> RefreshSummary:
    """Check every open claim of the ledger (see `Refresh`) and return the summary."""
    refresh = Refresh(
        pimms,
        partner=partner,
        older_than=older_than,
        concurrency=concurrency,
        per_partner=per_partner,
        budget_share=budget_share,
        call=call,
    )
    for _check in refresh.run():
        pass
    return refresh.summary
