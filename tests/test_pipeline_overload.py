"""``pipeline()``'s keywords for the overload strategies: ``rate_limit=``,
``hedge=``, ``throttle=``, ``chaos=`` and ``budget=``, placed in the standard
order, built on the given clock, and refusing bad values by name."""

from __future__ import annotations

import asyncio
import random

import pytest

from buttress import (
    AdaptiveThrottle,
    Bulkhead,
    Chaos,
    CircuitBreaker,
    ConfigurationError,
    Hedge,
    RateLimitedError,
    RateLimiter,
    Retry,
    RetryExhaustedError,
    Timeout,
    TokenBucketBudget,
    pipeline,
)
from buttress._core.errors import ConfigurationTypeError
from buttress.chaos import ChaosConfig, FaultInjected
from buttress.events import AttemptFailed, AttemptStarted, CallRejected, GaveUp, RetryScheduled
from buttress.hedge import HedgeConfig, HedgeStarted
from buttress.ratelimit import RateLimiterConfig
from buttress.retry import RetryConfig
from buttress.testing import VirtualClock
from buttress.throttle import AdaptiveThrottleConfig


class Attempts:
    """Async attempts that each wait for the test to finish them."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[str]] = []
        self.cancelled: list[int] = []

    async def __call__(self) -> str:
        number = len(self.futures) + 1
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        try:
            return await future
        except asyncio.CancelledError:
            self.cancelled.append(number)
            raise


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_every_keyword_stage_lands_in_the_standard_order() -> None:
    clock = VirtualClock()
    protect = pipeline(
        chaos=ChaosConfig(seed=1), bulkhead=4, timeout=1.0,
        rate_limit=RateLimiterConfig(rate=5), circuit_breaker=CircuitBreaker("kw-order"),
        throttle=AdaptiveThrottleConfig(seed=1), hedge=HedgeConfig(delay=0.1),
        retry=RetryConfig(max_attempts=2), fallback_value=None, clock=clock)
    assert [type(s).__name__ for s in protect.strategies] == [
        "Fallback", "Retry", "Hedge", "AdaptiveThrottle", "CircuitBreaker", "RateLimiter",
        "Timeout", "Bulkhead", "Chaos"]
    assert [s.order for s in protect.strategies] == [10, 20, 22, 25, 30, 35, 40, 50, 60]


def test_stages_built_from_configs_run_on_the_given_clock() -> None:
    clock = VirtualClock()
    protect = pipeline(rate_limit=5.0, hedge=HedgeConfig(), throttle=AdaptiveThrottleConfig(),
                       chaos=ChaosConfig(), clock=clock)
    assert [s.clock for s in protect.strategies] == [clock] * 4  # type: ignore[attr-defined]


def test_ready_made_strategies_are_used_as_given() -> None:
    limiter = RateLimiter(rate=1, clock=VirtualClock())
    hedge, throttle, chaos = Hedge(), AdaptiveThrottle(), Chaos()
    protect = pipeline(rate_limit=limiter, hedge=hedge, throttle=throttle, chaos=chaos)
    assert protect.strategies == (hedge, throttle, limiter, chaos)


def test_the_order_shows_in_the_events_retry_outside_the_limiter_outside_chaos() -> None:
    clock = VirtualClock()
    protect = pipeline(
        retry=RetryConfig(max_attempts=2, base_delay=0.01, jitter=0),
        rate_limit=10.0,
        chaos=ChaosConfig(exception_rate=1.0, exception=ConnectionError, seed=0),
        clock=clock)
    seen: list[object] = []
    protect.events.add(seen.append, AttemptStarted, AttemptFailed, RetryScheduled,
                       FaultInjected, CallRejected, GaveUp)
    with pytest.raises(RetryExhaustedError) as info:
        protect.call(lambda: "never")
    kinds = [(type(e).__name__, e.source) for e in seen]  # type: ignore[attr-defined]
    # Attempt 1 passes the limiter and chaos fails it; attempt 2, 10 ms later,
    # is refused by the limiter before chaos sees it.
    assert kinds == [
        ("AttemptStarted", "retry"), ("FaultInjected", "chaos"), ("AttemptFailed", "retry"),
        ("RetryScheduled", "retry"), ("AttemptStarted", "retry"),
        ("CallRejected", "rate_limiter"), ("AttemptFailed", "retry"), ("GaveUp", "retry")]
    last = info.value.last_exception
    assert isinstance(last, RateLimitedError)
    assert last.retry_after == pytest.approx(0.09)
    assert clock.sleeps == [0.01]


def test_a_rate_limited_pipeline_rejects_with_retry_after_without_calling() -> None:
    clock = VirtualClock()
    protect = pipeline(rate_limit=2.0, clock=clock)
    calls: list[int] = []
    protect.call(calls.append, 1)
    clock.advance(0.1)
    with pytest.raises(RateLimitedError) as info:
        protect.call(calls.append, 2)
    assert info.value.retry_after == pytest.approx(0.4)
    assert (info.value.rate, info.value.reason) == (2.0, "no_wait")
    assert calls == [1]
    clock.advance(0.4)
    assert protect.call(lambda: "third") == "third"
    assert clock.sleeps == []


async def test_an_async_rate_limited_pipeline_rejects_the_same_way() -> None:
    clock = VirtualClock()
    protect = pipeline(rate_limit=4.0, clock=clock)

    async def answer() -> str:
        return "ok"

    assert await protect.acall(answer) == "ok"
    with pytest.raises(RateLimitedError) as info:
        await protect.acall(answer)
    assert info.value.retry_after == pytest.approx(0.25)


def test_a_rate_limit_config_that_may_wait_waits_exactly_for_its_permit() -> None:
    clock = VirtualClock()
    protect = pipeline(rate_limit=RateLimiterConfig(rate=2, burst=2, max_wait=1.0), clock=clock)
    assert [protect.call(str, n) for n in range(3)] == ["0", "1", "2"]
    assert clock.sleeps == [0.5]


def test_one_limiter_given_to_two_pipelines_is_shared() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=1, clock=clock)
    orders, payments = pipeline(rate_limit=limiter), pipeline(rate_limit=limiter)
    orders.call(lambda: None)
    with pytest.raises(RateLimitedError):
        payments.call(lambda: None)


async def test_a_hedge_in_a_pipeline_starts_after_its_delay_and_cancels_the_loser() -> None:
    clock = VirtualClock()
    protect = pipeline(hedge=HedgeConfig(delay=0.1), clock=clock)
    started: list[HedgeStarted] = []
    protect.events.add(started.append, HedgeStarted)
    attempts = Attempts()
    call = asyncio.ensure_future(protect.acall(attempts))
    await _settle()
    clock.advance(0.099)
    await _settle()
    assert len(attempts.futures) == 1
    clock.advance(0.001)
    await _settle()
    assert len(attempts.futures) == 2
    attempts.futures[1].set_result("second")
    assert await call == "second"
    assert attempts.cancelled == [1]
    assert [(e.attempt, e.elapsed, e.reason) for e in started] == [(2, 0.1, "slow")]


async def test_a_pipeline_budget_bounds_the_hedges_it_builds() -> None:
    clock = VirtualClock()
    budget = TokenBucketBudget(max_tokens=2, token_ratio=0.1)
    budget.on_failure()                     # 1 token left: not more than half
    protect = pipeline(hedge=HedgeConfig(delay=0.1), budget=budget, clock=clock)
    attempts = Attempts()
    call = asyncio.ensure_future(protect.acall(attempts))
    await _settle()
    clock.advance(1.0)
    await _settle()
    assert len(attempts.futures) == 1       # the budget refused the hedge
    attempts.futures[0].set_result("slow but only")
    assert await call == "slow but only"


def test_a_pipeline_budget_goes_to_the_retry_and_the_hedge_built_there() -> None:
    budget = TokenBucketBudget(max_tokens=4)
    protect = pipeline(retry=RetryConfig(max_attempts=4), hedge=HedgeConfig(), budget=budget)
    retry, hedge = protect.strategies
    assert isinstance(retry, Retry)
    assert isinstance(hedge, Hedge)
    assert retry.config.budget is budget
    assert hedge.budget is budget


def test_a_pipeline_budget_stops_retries_once_the_dependency_is_down() -> None:
    clock = VirtualClock()
    budget = TokenBucketBudget(max_tokens=4, token_ratio=0.1)
    protect = pipeline(retry=RetryConfig(max_attempts=4, base_delay=0.1, jitter=0,
                                         reraise=True), budget=budget, clock=clock)
    attempts = 0

    def down() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("503")

    for _ in range(10):
        with pytest.raises(ConnectionError):
            protect.call(down)
    # 4 tokens; a failure leaves 3 (> 2: one retry), the retry's failure 2
    # (not > 2: no more). 10 first attempts + 1 retry, where 40 would go.
    assert attempts == 11
    assert budget.tokens == 0.0


def test_seeded_chaos_in_a_pipeline_fails_exactly_the_calls_its_seed_draws() -> None:
    protect = pipeline(chaos=ChaosConfig(exception_rate=0.3, exception=ConnectionError, seed=42))
    injected: list[FaultInjected] = []
    protect.events.add(injected.append, FaultInjected)
    outcomes = []
    for n in range(50):
        try:
            outcomes.append(protect.call(lambda n=n: n) == n)
        except ConnectionError:
            outcomes.append(False)
    model = random.Random(42)
    expected = []
    for _ in range(50):
        model.random()                      # the latency draw
        expected.append(model.random() >= 0.3)
    assert outcomes == expected
    assert len(injected) == expected.count(False) > 0


@pytest.mark.parametrize(("keyword", "value", "field"), [
    ("rate_limit", 0, "pipeline.rate_limit"),
    ("rate_limit", -5.0, "pipeline.rate_limit"),
    ("rate_limit", float("nan"), "pipeline.rate_limit"),
    ("rate_limit", True, "pipeline.rate_limit"),
    ("rate_limit", "100/s", "pipeline.rate_limit"),
    ("hedge", 0.05, "pipeline.hedge"),
    ("hedge", Retry(), "pipeline.hedge"),
    ("throttle", 2.0, "pipeline.throttle"),
    ("chaos", 0.1, "pipeline.chaos"),
    ("chaos", AdaptiveThrottleConfig(), "pipeline.chaos"),
    ("retry", 3, "pipeline.retry"),
    ("budget", "payments", "pipeline.budget"),
])
def test_a_bad_keyword_value_is_refused_naming_the_keyword_and_value(
        keyword: str, value: object, field: str) -> None:
    options: dict[str, object] = {"retry": RetryConfig()} if keyword == "budget" else {}
    options[keyword] = value
    with pytest.raises(ConfigurationError) as info:
        pipeline(**options)  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.value is value
    assert field in str(info.value)


def test_a_number_for_a_hedge_is_refused_as_ambiguous() -> None:
    with pytest.raises(ConfigurationTypeError, match="ambiguous"):
        pipeline(hedge=0.95)  # type: ignore[arg-type]


def test_a_budget_with_nothing_to_spend_it_is_refused() -> None:
    budget = TokenBucketBudget()
    with pytest.raises(ConfigurationError) as info:
        pipeline(rate_limit=5.0, budget=budget)
    assert (info.value.field, info.value.value) == ("pipeline.budget", budget)


def test_a_budget_other_than_the_one_a_ready_made_retry_holds_is_refused() -> None:
    mine, other = TokenBucketBudget(), TokenBucketBudget()
    with pytest.raises(ConfigurationError, match="already holds"):
        pipeline(retry=Retry(budget=mine), budget=other)
    with pytest.raises(ConfigurationError, match="already holds"):
        pipeline(hedge=Hedge(budget=mine), budget=other)
    with pytest.raises(ConfigurationError, match="RetryConfig"):
        pipeline(retry=RetryConfig(budget=mine), budget=other)
    retry = Retry(budget=mine)
    assert pipeline(retry=retry, budget=mine).strategies == (retry,)


def test_a_pipeline_without_the_new_keywords_builds_what_it_built_before() -> None:
    protect = pipeline(retry=RetryConfig(), timeout=1.0, bulkhead=2)
    assert [type(s) for s in protect.strategies] == [Retry, Timeout, Bulkhead]
