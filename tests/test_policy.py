"""Retry policy: reads retried on transient failures honouring Retry-After; creations only
where re-sending is safe; never past the deadline."""

from __future__ import annotations

import pytest

from pimms_core.errors import AccountNotFound, PartnerUnavailable
from pimms_core.models import Idempotency
from pimms_core.policy import RetryPolicy, call_with_retries
from pimms_core.quota import Budget, QuotaLimiter


class Flaky:
    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(fn: Flaky, idempotency: Idempotency | None = None, **policy: float) -> list[float]:
    waits: list[float] = []
    result = call_with_retries(
        RetryPolicy(**policy),
        fn,
        idempotency=idempotency,
        sleep=waits.append,  # type: ignore[arg-type]
    )
    assert result == "ok"
    return waits


def test_read_retried_after_the_partner_retry_after() -> None:
    fn = Flaky(PartnerUnavailable("acme", "429", retry_after=2.0, status=429))
    assert run(fn) == [2.0]
    assert fn.calls == 2


def test_read_backoff_grows_without_retry_after() -> None:
    fn = Flaky(PartnerUnavailable("acme", "503"), PartnerUnavailable("acme", "503"))
    waits = run(fn, attempts=3, backoff=0.1, max_backoff=5)
    assert len(waits) == 2 and all(w > 0 for w in waits)


def test_non_transient_error_is_not_retried() -> None:
    fn = Flaky(AccountNotFound("acme"))
    with pytest.raises(AccountNotFound):
        call_with_retries(RetryPolicy(), fn, sleep=lambda _: None)
    assert fn.calls == 1


def test_attempts_are_bounded() -> None:
    fn = Flaky(*[PartnerUnavailable("acme", "503") for _ in range(5)])
    with pytest.raises(PartnerUnavailable):
        call_with_retries(RetryPolicy(attempts=3), fn, sleep=lambda _: None)
    assert fn.calls == 3


def test_retry_after_beyond_the_cap_goes_to_the_caller() -> None:
    fn = Flaky(PartnerUnavailable("acme", "429", retry_after=600.0, status=429))
    with pytest.raises(PartnerUnavailable):
        call_with_retries(RetryPolicy(retry_after_cap=30), fn, sleep=lambda _: None)
    assert fn.calls == 1


def test_no_attempt_starts_past_the_deadline() -> None:
    fn = Flaky(PartnerUnavailable("acme", "429", retry_after=5.0, status=429))
    with pytest.raises(PartnerUnavailable):
        call_with_retries(RetryPolicy(deadline=1.0), fn, sleep=lambda _: None)
    assert fn.calls == 1


@pytest.mark.parametrize(
    ("mechanism", "error", "retried"),
    [
        (Idempotency.HEADER, PartnerUnavailable("acme", "timeout"), True),
        (Idempotency.UNIQUE_KEY, PartnerUnavailable("acme", "500", status=500), True),
        (Idempotency.NONE, PartnerUnavailable("acme", "timeout"), False),
        (Idempotency.NONE, PartnerUnavailable("acme", "500", status=500, request_sent=True), False),
        (Idempotency.NONE, PartnerUnavailable("acme", "refused", request_sent=False), True),
        (Idempotency.NONE, PartnerUnavailable("acme", "429", status=429), True),
    ],
)
def test_creation_resent_only_where_safe(
    mechanism: Idempotency, error: PartnerUnavailable, retried: bool
) -> None:
    fn = Flaky(error)
    if retried:
        run(fn, mechanism)
        assert fn.calls == 2
    else:
        with pytest.raises(PartnerUnavailable):
            call_with_retries(RetryPolicy(), fn, idempotency=mechanism, sleep=lambda _: None)
        assert fn.calls == 1


def test_budget_waits_instead_of_exceeding_the_quota() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    budget = Budget([QuotaLimiter(3, 1.0, clock=lambda: now[0])], sleep=sleep)
    for _ in range(7):
        budget.acquire()
    assert len(waits) == 2  # calls 4 and 7 waited for the window to move
    assert now[0] == pytest.approx(2.0)


def test_limiter_answers_retry_after_in_whole_seconds() -> None:
    limiter = QuotaLimiter(1, 10.0, clock=lambda: 0.0)
    assert limiter.hit("k") is None
    assert limiter.hit("k") == 10
    assert limiter.hit("other") is None
