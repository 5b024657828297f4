"""``CircuitBreaker(timeout=..., fallback=...)`` is sugar for a pipeline: a Timeout
inside the breaker and a Fallback for rejections around it.

The breaker itself only decides admission and judges outcomes; these tests pin
what the two keywords still promise after they moved out of it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerError,
    CircuitState,
    OperationTimeoutError,
    remaining_time,
)
from buttress.events import FallbackUsed, TimedOut
from buttress.testing import VirtualClock


async def test_an_async_call_cut_by_the_breakers_timeout_counts_as_a_failure() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("sugar-timeout", failure_threshold=2, timeout=1.0, clock=clock)
    heard: list[TimedOut] = []
    breaker.events.add(heard.append, TimedOut)

    @breaker
    async def hang() -> None:
        await clock.async_sleep(60)

    for _ in range(2):
        with pytest.raises(OperationTimeoutError):
            await hang()
    assert breaker.state is CircuitState.OPEN
    assert [event.timeout for event in heard] == [1.0, 1.0]
    with pytest.raises(CircuitBreakerError):
        await hang()


async def test_the_breakers_timeout_is_the_calls_deadline_inside_it() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("sugar-deadline", timeout=2.5, clock=clock)
    seen: list[float | None] = []

    async def look() -> None:
        seen.append(remaining_time())

    await breaker.acall(look)
    async with breaker:
        await look()
    assert seen == [2.5, 2.5]


def test_a_fallback_answers_rejections_only_and_reports_them_on_the_breakers_hub() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("sugar-fallback", failure_threshold=1, clock=clock,
                             fallback=lambda exc, key: f"cached {key}")
    used: list[FallbackUsed] = []
    breaker.events.add(used.append, FallbackUsed)

    def lookup(key: str) -> str:
        raise KeyError(key)

    with pytest.raises(KeyError):  # a failure is not a rejection: it propagates
        breaker.call(lookup, "a")
    assert breaker.state is CircuitState.OPEN
    assert breaker.call(lookup, "b") == "cached b"
    assert len(used) == 1
    assert isinstance(used[0].exception, CircuitBreakerError)


def test_an_async_fallback_can_not_answer_a_sync_call_so_its_rejection_is_raised() -> None:
    async def fallback(exc: BaseException, *args: Any) -> str:
        return "never"

    breaker = CircuitBreaker("sugar-async-fallback", failure_threshold=1,
                             clock=VirtualClock(), fallback=fallback)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    with pytest.raises(CircuitBreakerError):
        breaker.call(lambda: "not called")
    with pytest.raises(TypeError, match="async fallback"):
        breaker(lambda: None)


async def test_the_sugar_behaves_like_the_pipeline_it_stands_for() -> None:
    from buttress import Fallback, Pipeline, Timeout

    def build(sugar: bool) -> Any:
        clock = VirtualClock()
        if sugar:
            return CircuitBreaker("same", failure_threshold=1, timeout=1.0, clock=clock,
                                  fallback=lambda exc: "fallback"), clock
        breaker = CircuitBreaker("same", failure_threshold=1, clock=clock)
        return Pipeline(Fallback(fallback=lambda exc: "fallback",
                                 exceptions=CircuitBreakerError),
                        breaker, Timeout(1.0, clock=clock), ordered=True), clock

    answers = []
    for sugar in (True, False):
        strategy, clock = build(sugar)

        async def slow(clock: VirtualClock = clock) -> str:
            await clock.async_sleep(5)
            return "late"

        slow = strategy(slow)

        outcome = []
        for _ in range(2):
            try:
                outcome.append(await slow())
            except OperationTimeoutError:
                outcome.append("timeout")
        answers.append(outcome)
    assert answers[0] == answers[1] == ["timeout", "fallback"]


def test_a_sync_timeout_still_runs_on_the_bounded_worker_pool() -> None:
    breaker = CircuitBreaker("sugar-sync-timeout", timeout=5.0)
    assert breaker.call(lambda: 41 + 1) == 42
    assert asyncio.run(breaker.acall(asyncio.sleep, 0, "done")) == "done"
