"""The overload strategies as pipeline stages: standard order, deadlines read
across nested layers, amplification bounded by a budget, outcomes in events."""

from __future__ import annotations

import asyncio

import pytest

from buttress import (
    AdaptiveThrottle,
    Chaos,
    ChaosError,
    CircuitBreaker,
    Hedge,
    Pipeline,
    RateLimitedError,
    RateLimiter,
    Retry,
    RetryExhaustedError,
    Timeout,
    TokenBucketBudget,
    deadline,
    remaining_time,
)
from buttress._core.operation import CallFinished
from buttress.testing import VirtualClock


def test_the_standard_order_places_each_overload_stage() -> None:
    clock = VirtualClock()
    protect = Pipeline(Chaos(clock=clock), RateLimiter(rate=1, clock=clock), Timeout(1.0),
                       CircuitBreaker("overload-order"), AdaptiveThrottle(clock=clock),
                       Hedge(clock=clock), Retry())
    assert [type(s).__name__ for s in protect.strategies] == [
        "Retry", "Hedge", "AdaptiveThrottle", "CircuitBreaker", "RateLimiter", "Timeout",
        "Chaos"]


def test_retry_outside_a_rate_limiter_waits_exactly_its_retry_after() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=4, clock=clock)
    protect = Pipeline(Retry(max_attempts=3, base_delay=10.0, jitter=0, clock=clock), limiter)
    assert protect.call(lambda: 1) == 1
    assert protect.call(lambda: 2) == 2     # refused, retried after 0.25 s (not 10 s)
    assert clock.sleeps == [0.25]


def test_a_retry_stops_when_the_next_permit_comes_after_the_deadline() -> None:
    clock = VirtualClock()
    protect = Pipeline(Retry(max_attempts=5, clock=clock), RateLimiter(rate=1, clock=clock))
    protect.call(lambda: None)
    with deadline(0.5, clock=clock), pytest.raises(RetryExhaustedError) as info:
        protect.call(lambda: None)
    assert "deadline ran out" in str(info.value)
    assert isinstance(info.value.last_exception, RateLimitedError)
    assert clock.sleeps == []


def test_nested_protected_calls_read_the_outer_deadline() -> None:
    clock = VirtualClock()
    inner = Pipeline(Retry(max_attempts=3, base_delay=0.4, jitter=0, clock=clock),
                     Chaos(exception_rate=1.0, clock=clock))
    outer = Pipeline(Timeout(1.0, clock=clock), ordered=True)
    seen: list[float | None] = []

    def handler() -> None:
        seen.append(remaining_time())
        inner.call(lambda: None)

    with pytest.raises(RetryExhaustedError) as info:
        outer.call(handler)
    assert seen == [1.0]
    # 0.4 s fits in 1.0 s; the next wait (0.8 s) would end past the deadline.
    assert clock.sleeps == [0.4]
    assert "deadline ran out" in str(info.value)


def test_a_budget_bounds_amplification_at_total_failure() -> None:
    clock = VirtualClock()
    chaos = Chaos(exception_rate=1.0, seed=1, clock=clock)
    bare = Pipeline(Retry(max_attempts=4, base_delay=0, jitter=0, clock=clock), chaos)
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    budgeted = Pipeline(Retry(max_attempts=4, base_delay=0, jitter=0, budget=budget,
                              clock=clock), chaos)
    attempts = {}
    for name, protect in (("bare", bare), ("budget", budgeted)):
        before = len(clock.sleeps)
        seen: list[CallFinished] = []
        protect.events.add(seen.append, CallFinished)
        for _ in range(1000):
            with pytest.raises((ChaosError, RetryExhaustedError)):
                protect.call(lambda: None)
        attempts[name] = sum(e.attempts for e in seen)
        assert len(clock.sleeps) == before
    # 4 attempts per call without a budget (4x the offered load); with one,
    # 3 retries while the bucket is above half, then one attempt per call.
    assert attempts == {"bare": 4000, "budget": 1003}


async def test_async_stages_compose_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=2, max_wait=None, clock=clock)
    protect = Pipeline(Retry(max_attempts=2, base_delay=0, jitter=0, clock=clock),
                       AdaptiveThrottle(clock=clock, seed=0), limiter)

    async def work(i: int) -> int:
        await asyncio.sleep(0)
        return i

    assert [await protect.acall(work, i) for i in range(4)] == [0, 1, 2, 3]
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_a_rate_limited_call_finishes_as_rejected() -> None:
    clock = VirtualClock()
    protect = Pipeline(RateLimiter(rate=1, clock=clock))
    seen: list[CallFinished] = []
    protect.events.add(seen.append, CallFinished)
    protect.call(lambda: None)
    with pytest.raises(RateLimitedError):
        protect.call(lambda: None)
    assert [e.outcome for e in seen] == ["success", "rejected"]


def test_metrics_count_limiter_and_throttle_refusals_as_rejections() -> None:
    from buttress import ResilienceMetrics, ThrottledError

    clock = VirtualClock()
    metrics = ResilienceMetrics()
    protect = Pipeline(RateLimiter(rate=1, clock=clock, name="partner"))
    metrics.install(protect.events)
    protect.call(lambda: None)
    for _ in range(3):
        with pytest.raises(RateLimitedError):
            protect.call(lambda: None)
    throttle = AdaptiveThrottle(clock=clock, seed=0, name="search")
    throttled = Pipeline(throttle)
    metrics.install(throttled.events)
    for _ in range(50):
        throttle.record(False)  # the dependency refused 50 requests
    refused = 0
    for _ in range(20):
        try:
            throttled.call(lambda: None)
        except ThrottledError:
            refused += 1
    assert metrics.get_metrics("partner")["rejections"] == 3
    assert metrics.get_metrics("partner")["rejected"] == 3
    assert metrics.get_metrics("search")["rejections"] == refused > 0
