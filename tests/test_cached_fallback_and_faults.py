"""Cached fallback (last good value, with its age) and the fault-injecting
stand-ins of ``buttress.testing``."""

from __future__ import annotations

import asyncio

import pytest

from buttress import CachedFallback, Pipeline, Retry, pipeline
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


def test_cached_fallback_answers_a_failure_with_the_last_good_value_and_its_age() -> None:
    clock = VirtualClock()
    ages: list[float] = []
    rate = ScriptedCall(1.10, 1.12, ConnectionError("down"))
    cached = CachedFallback(max_age=60.0, clock=clock,
                            on_fallback=lambda exc, age: ages.append(age))(rate)
    assert cached("EUR") == 1.10
    clock.advance(5.0)
    assert cached("EUR") == 1.12
    clock.advance(20.0)
    assert cached("EUR") == 1.12  # the source failed: last good value, 20 s old
    assert ages == [20.0]
    assert rate.calls == 3


def test_cached_fallback_does_not_serve_values_older_than_max_age() -> None:
    clock = VirtualClock()
    cached = CachedFallback(max_age=10.0, clock=clock)(ScriptedCall("v1", ConnectionError))
    assert cached() == "v1"
    clock.advance(10.5)
    with pytest.raises(ConnectionError):
        cached()


def test_cached_fallback_keeps_values_per_arguments_and_stays_bounded() -> None:
    calls = {"fail": False}

    def lookup(key: str, *, scale: int = 1) -> str:
        if calls["fail"]:
            raise TimeoutError("slow")
        return f"{key}x{scale}"

    strategy = CachedFallback(maxsize=2, clock=VirtualClock())
    cached = strategy(lookup)
    assert [cached("a"), cached("b", scale=2), cached("c")] == ["ax1", "bx2", "cx1"]
    calls["fail"] = True
    assert cached("b", scale=2) == "bx2"
    assert cached("c") == "cx1"
    with pytest.raises(TimeoutError):
        cached("a")  # evicted: only the two most recent argument sets are kept
    with pytest.raises(TimeoutError):
        cached("b")  # different arguments, nothing cached for them


def test_cached_fallback_skips_unhashable_arguments_without_breaking_the_call() -> None:
    cached = CachedFallback(clock=VirtualClock())(ScriptedCall("ok", ConnectionError))
    assert cached(["unhashable"]) == "ok"
    with pytest.raises(ConnectionError):
        cached(["unhashable"])


async def test_cached_fallback_protects_coroutines_and_never_answers_cancellation() -> None:
    fetch = AsyncScriptedCall("fresh", ConnectionError, asyncio.CancelledError)
    cached = CachedFallback(clock=VirtualClock())(fetch)
    assert await cached() == "fresh"
    assert await cached() == "fresh"
    with pytest.raises(asyncio.CancelledError):
        await cached()


def test_cached_fallback_is_the_outermost_stage_of_a_pipeline() -> None:
    clock = VirtualClock()
    source = ScriptedCall("good", ConnectionError)
    protect = Pipeline(Retry(max_attempts=3, base_delay=1.0, jitter=0, clock=clock),
                       CachedFallback(clock=clock))
    assert [type(s).__name__ for s in protect.strategies] == ["CachedFallback", "Retry"]
    wrapped = protect(source)
    assert wrapped() == "good"
    assert wrapped() == "good"  # three failed attempts, then the cached answer
    assert source.calls == 4
    assert clock.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_age": -1}, "CachedFallback.max_age must be >= 0, got -1"),
        ({"maxsize": 0}, "CachedFallback.maxsize must be >= 1, got 0"),
        ({"on_fallback": 3}, "CachedFallback.on_fallback must be callable or None, got 3"),
    ],
)
def test_cached_fallback_validates_its_options(options: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        CachedFallback(**options)  # type: ignore[arg-type]


def test_scripted_call_plays_its_outcomes_then_repeats_the_last() -> None:
    call = ScriptedCall(ValueError("bad"), "ok")
    with pytest.raises(ValueError, match="bad"):
        call(1, key="a")
    assert call(2) == "ok"
    assert call(3) == "ok"
    assert call.calls == 3
    assert call.arguments == [((1,), {"key": "a"}), ((2,), {}), ((3,), {})]


def test_scripted_call_then_answers_after_the_script() -> None:
    call = ScriptedCall(ConnectionError, then="steady")
    with pytest.raises(ConnectionError):
        call()
    assert call() == "steady"


def test_scripted_call_spends_its_latency_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    call = ScriptedCall("ok", latency=2.5, clock=clock)
    assert call() == "ok"
    assert clock.now == 2.5


def test_scripted_call_needs_an_outcome_and_a_clock_for_latency() -> None:
    with pytest.raises(TypeError, match="at least one outcome"):
        ScriptedCall()
    with pytest.raises(TypeError, match="clock"):
        ScriptedCall("ok", latency=1.0)


async def test_async_scripted_call_is_seen_as_a_coroutine_function_by_strategies() -> None:
    clock = VirtualClock()
    flaky = AsyncScriptedCall(ConnectionError, ConnectionError, "done")
    protected = pipeline(retry=Retry(max_attempts=3, base_delay=0.5, jitter=0, clock=clock))(flaky)
    assert await protected() == "done"
    assert flaky.calls == 3
    assert clock.sleeps == [0.5, 1.0]


def test_pipeline_takes_a_cached_fallback_as_its_fallback_stage() -> None:
    clock = VirtualClock()
    protect = pipeline(retry=Retry(max_attempts=2, base_delay=0, clock=clock),
                       fallback=CachedFallback(clock=clock))
    assert [type(s).__name__ for s in protect.strategies] == ["CachedFallback", "Retry"]
    source = ScriptedCall("good", ConnectionError)
    wrapped = protect(source)
    assert wrapped() == "good"
    assert wrapped() == "good"
    assert source.calls == 3
