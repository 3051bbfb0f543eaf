"""The circuit breaker and the concurrency limit each partner's requests go through."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import respx

from pimms_core.breaker import CircuitBreaker, CircuitState
from pimms_core.errors import AccountNotFound, CircuitOpen, PartnerUnavailable
from pimms_core.facade import Pimms
from pimms_core.policy import NO_RETRY, ConcurrencyLimit, RetryPolicy
from pimms_core.testing import live_pimms
from tests.fakes import ACCOUNT_BODY, ACME_BASE, AcmePlugin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def down() -> PartnerUnavailable:
    return PartnerUnavailable("acme", "connection failed", request_sent=False)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(PartnerUnavailable), breaker.guard():
            raise down()


def test_opens_after_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker("acme", failures=3, cooldown=30, clock=clock)
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    clock.now += 10
    ran = False
    with pytest.raises(CircuitOpen) as caught, breaker.guard():
        ran = True
    assert not ran
    assert caught.value.retry_after == pytest.approx(20.0)
    assert caught.value.request_sent is False
    assert "retry in 20 s" in str(caught.value)


def test_a_success_in_between_resets_the_count() -> None:
    breaker = CircuitBreaker("acme", failures=3, cooldown=30)
    fail(breaker, 2)
    with breaker.guard():
        pass
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED


def test_answers_of_the_partner_are_not_failures() -> None:
    breaker = CircuitBreaker("acme", failures=1, cooldown=30)
    with pytest.raises(AccountNotFound), breaker.guard():
        raise AccountNotFound("acme")
    with pytest.raises(PartnerUnavailable), breaker.guard():
        raise PartnerUnavailable("acme", "rate limit", status=429, retry_after=1)
    assert breaker.state is CircuitState.CLOSED


def test_one_probe_after_the_cooldown_closes_it_or_opens_it_longer() -> None:
    clock = Clock()
    breaker = CircuitBreaker("acme", failures=1, cooldown=10, clock=clock)
    fail(breaker, 1)
    clock.now += 10
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.before_call()  # the probe goes
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second call meanwhile does not
    breaker.record_failure()
    assert breaker.retry_after() == pytest.approx(20.0)  # doubled
    clock.now += 20
    with breaker.guard():
        pass
    assert breaker.state is CircuitState.CLOSED
    fail(breaker, 1)
    assert breaker.retry_after() == pytest.approx(10.0)  # back to the base cool-down


def test_down_and_back_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    breaker = CircuitBreaker("acme", failures=2, cooldown=5, clock=clock)
    caplog.set_level(logging.DEBUG, logger="pimms")
    fail(breaker, 2)
    for _ in range(10):
        with pytest.raises(CircuitOpen), breaker.guard():
            pass
    clock.now += 5
    fail(breaker, 1)  # a failed probe: still down, not logged again
    clock.now += 10
    for _ in range(5):
        with breaker.guard():
            pass
    messages = [r.getMessage() for r in caplog.records if r.name == "pimms.breaker"]
    assert len(messages) == 2
    assert "acme is unreachable (2 failures in a row)" in messages[0]
    assert "acme answers again" in messages[1]


# --- through the facade ---------------------------------------------------------------------------


@pytest.fixture
def acme() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ACME_BASE, assert_all_called=False) as router:
        yield router


def facade(policy: RetryPolicy = NO_RETRY, **settings: object) -> Pimms:
    return live_pimms(
        AcmePlugin(),
        ACME_BASE,
        settings={"api_key_env": "ACME_KEY", **settings},
        env={"ACME_KEY": "k"},
        policy=policy,
    )


def test_a_partner_down_is_no_longer_called_until_the_cooldown(acme: respx.MockRouter) -> None:
    route = acme.get("/accounts/12345678")
    route.side_effect = httpx.ConnectError("refused")
    pimms = facade(circuit_failures=2, circuit_cooldown=60)
    for _ in range(2):
        with pytest.raises(PartnerUnavailable):
            pimms.lookup_account("acme", "12345678")
    for _ in range(5):
        with pytest.raises(CircuitOpen, match="retry in"):
            pimms.lookup_account("acme", "12345678")
    assert route.call_count == 2
    codes = [row.error_type for row in pimms.store.journal.list()]
    assert codes == ["partner_unavailable"] * 2 + ["circuit_open"] * 5


def test_retries_stop_when_the_circuit_opens(acme: respx.MockRouter) -> None:
    route = acme.get("/accounts/12345678")
    route.side_effect = httpx.ConnectError("refused")
    pimms = facade(RetryPolicy(attempts=10, backoff=0.0, max_backoff=0.0), circuit_failures=3)
    with pytest.raises(CircuitOpen):
        pimms.lookup_account("acme", "12345678")
    assert route.call_count == 3


def test_requests_in_flight_stay_within_the_limit(acme: respx.MockRouter) -> None:
    in_flight, peak = 0, 0
    lock = threading.Lock()

    def slow(_request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return httpx.Response(200, json=ACCOUNT_BODY)

    acme.get("/accounts/12345678").mock(side_effect=slow)
    pimms = facade(max_concurrent=2)
    threads = [
        threading.Thread(target=pimms.lookup_account, args=("acme", "12345678")) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak == 2
    assert [row.outcome for row in pimms.store.journal.list()] == ["ok"] * 8


def test_a_caller_past_its_deadline_does_not_wait_for_a_slot() -> None:
    limit = ConcurrencyLimit("acme", 1)
    limit.acquire()
    started = time.monotonic()
    with pytest.raises(PartnerUnavailable, match="1 calls to it are already in progress"):
        limit.acquire(deadline=time.monotonic() + 0.05)
    assert time.monotonic() - started < 1.0
    limit.release()
    limit.acquire(deadline=time.monotonic() + 0.05)  # the slot given back is free again


def test_bad_breaker_settings_are_refused() -> None:
    from pimms_core.errors import ConfigError

    with pytest.raises(ConfigError, match="max_concurrent must be a whole number greater than 0"):
        facade(max_concurrent=0).lookup_account("acme", "12345678")
    with pytest.raises(ConfigError, match="circuit_cooldown must be a number greater than 0"):
        facade(circuit_cooldown="soon").lookup_account("acme", "12345678")
