"""The circuit breaker, one behaviour per test, on a virtual clock (nothing sleeps)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import buttress
from buttress import (
    ButtressError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitBreakerState,
    CircuitState,
    ConfigurationError,
    OperationTimeoutError,
)
from buttress.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Boom(Exception):
    """The dependency failed."""


class NotFound(Exception):
    """An answer from the dependency that says nothing about its health."""


def ok(value: object = "ok") -> object:
    return value


def fail() -> None:
    raise Boom("down")


def raise_(exc: BaseException) -> None:
    raise exc


async def aok(value: object = "ok") -> object:
    return value


async def afail() -> None:
    raise Boom("down")


def make(clock: VirtualClock | None = None, **options: Any) -> CircuitBreaker:
    options.setdefault("name", "svc")
    return CircuitBreaker(clock=VirtualClock() if clock is None else clock, **options)


def failures(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            breaker.call(fail)


def trip(breaker: CircuitBreaker) -> None:
    failures(breaker, breaker.config.failure_threshold)
    assert breaker.state is OPEN


def rejection(breaker: CircuitBreaker, fn: Callable[..., Any] = ok) -> CircuitBreakerError:
    with pytest.raises(CircuitBreakerError) as info:
        breaker.call(fn)
    return info.value


class Counting:
    """A sync function that counts how often it really ran."""

    def __init__(self, outcome: BaseException | None = None) -> None:
        self.calls = 0
        self.outcome = outcome
        self.__name__ = "counting"

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.outcome is not None:
            raise self.outcome
        return "ok"


# --- usage forms ------------------------------------------------------------------------


def _with(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    with breaker:
        return fn()


SYNC_FORMS: dict[str, Callable[[CircuitBreaker, Callable[[], Any]], Any]] = {
    "decorator": lambda b, fn: b(fn)(),
    "protect": lambda b, fn: b.protect(fn)(),
    "call": lambda b, fn: b.call(fn),
    "with": _with,
}


async def _async_decorator(b: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> Any:
    return await b(fn)()


async def _async_protect(b: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> Any:
    return await b.protect(fn)()


async def _async_call(b: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> Any:
    return await b.acall(fn)


async def _async_with(b: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> Any:
    async with b:
        return await fn()


ASYNC_FORMS: dict[str, Callable[[CircuitBreaker, Callable[[], Awaitable[Any]]], Awaitable[Any]]]
ASYNC_FORMS = {
    "decorator": _async_decorator,
    "protect": _async_protect,
    "acall": _async_call,
    "async with": _async_with,
}

LEAN_AND_GUARDED = pytest.mark.parametrize(
    "extra",
    [{}, {"failure_rate_threshold": 1.0, "minimum_calls": 100}],
    ids=["lean", "windowed"],
)


@pytest.mark.parametrize("form", SYNC_FORMS)
@LEAN_AND_GUARDED
def test_every_sync_form_counts_outcomes_trips_and_rejects(
    form: str, extra: dict[str, Any]
) -> None:
    run = SYNC_FORMS[form]
    breaker = make(failure_threshold=2, **extra)
    assert run(breaker, lambda: "value") == "value"
    for _ in range(2):
        with pytest.raises(Boom):
            run(breaker, fail)
    assert breaker.state is OPEN
    spy = Counting()
    with pytest.raises(CircuitBreakerError):
        run(breaker, spy)
    assert spy.calls == 0
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.rejected_calls) == (1, 2, 1)
    assert stats.total_calls == 4


@pytest.mark.parametrize("form", ASYNC_FORMS)
@LEAN_AND_GUARDED
async def test_every_async_form_counts_outcomes_trips_and_rejects(
    form: str, extra: dict[str, Any]
) -> None:
    run = ASYNC_FORMS[form]
    breaker = make(failure_threshold=2, **extra)
    assert await run(breaker, aok) == "ok"
    for _ in range(2):
        with pytest.raises(Boom):
            await run(breaker, afail)
    assert breaker.state is OPEN
    ran = []

    async def spy() -> None:
        ran.append(True)

    with pytest.raises(CircuitBreakerError):
        await run(breaker, spy)
    assert ran == []
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.rejected_calls) == (1, 2, 1)


def test_decorated_function_keeps_its_name_and_passes_arguments_through() -> None:
    breaker = make()

    @breaker
    def greet(name: str, *, punctuation: str = "!") -> str:
        """Say hello."""
        return f"hello {name}{punctuation}"

    assert greet("ada", punctuation="?") == "hello ada?"
    assert greet.__name__ == "greet"
    assert greet.__doc__ == "Say hello."


async def test_decorated_coroutine_function_stays_a_coroutine_function() -> None:
    breaker = make()

    @breaker.protect
    async def fetch(key: str) -> str:
        return key.upper()

    assert asyncio.iscoroutinefunction(fetch)
    assert await fetch("k") == "K"


def test_call_and_acall_pass_positional_and_keyword_arguments() -> None:
    breaker = make()
    assert breaker.call(lambda a, b=0: a + b, 1, b=2) == 3

    async def add(a: int, b: int = 0) -> int:
        return a + b

    assert asyncio.run(breaker.acall(add, 1, b=2)) == 3


def test_with_statement_returns_the_breaker_and_does_not_swallow_errors() -> None:
    breaker = make()
    with breaker as entered:
        assert entered is breaker
    with pytest.raises(Boom), breaker:
        fail()
    assert breaker.stats.failed_calls == 1


def test_breaker_accepts_name_and_config_positionally() -> None:
    config = CircuitBreakerConfig(failure_threshold=7)
    breaker = CircuitBreaker("payments", config)
    assert breaker.name == "payments"
    assert breaker.config.failure_threshold == 7
    assert breaker.config.name == "payments"


def test_breaker_accepts_name_and_options_as_keywords() -> None:
    breaker = CircuitBreaker(name="payments", failure_threshold=3, recovery_timeout=10.0)
    assert breaker.name == "payments"
    assert (breaker.config.failure_threshold, breaker.config.recovery_timeout) == (3, 10.0)


def test_breaker_accepts_a_config_alone_and_takes_its_name() -> None:
    config = CircuitBreakerConfig(name="inventory", success_threshold=4)
    breaker = CircuitBreaker(config)
    assert breaker.name == "inventory"
    assert breaker.config is config


def test_options_next_to_a_config_override_it() -> None:
    breaker = CircuitBreaker("db", CircuitBreakerConfig(failure_threshold=7), failure_threshold=2)
    assert breaker.config.failure_threshold == 2
    assert breaker.name == "db"


def test_breaker_refuses_a_config_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="CircuitBreakerConfig"):
        CircuitBreaker("db", {"failure_threshold": 2})  # type: ignore[arg-type]


def test_breaker_validates_its_keyword_options() -> None:
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        CircuitBreaker(name="db", failure_threshold=0)


def test_default_config_matches_the_documented_defaults() -> None:
    config = CircuitBreakerConfig()
    assert (config.name, config.failure_threshold, config.recovery_timeout) == ("default", 5, 30.0)
    assert (config.success_threshold, config.half_open_max_calls) == (2, 3)
    assert config.failure_exceptions == (Exception,)
    assert config.ignored_exceptions == ()
    assert config.timeout is None
    assert config.fallback is None


def test_repr_names_the_breaker_and_its_state() -> None:
    breaker = make(name="payments", failure_threshold=1)
    assert repr(breaker) == "CircuitBreaker('payments', state=closed)"
    trip(breaker)
    assert repr(breaker) == "CircuitBreaker('payments', state=open)"


# --- closed -> open ----------------------------------------------------------------------


@LEAN_AND_GUARDED
def test_breaker_opens_after_exactly_failure_threshold_consecutive_failures(
    extra: dict[str, Any],
) -> None:
    breaker = make(failure_threshold=3, **extra)
    failures(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.stats.failure_count == 2
    failures(breaker, 1)
    assert breaker.state is OPEN
    assert breaker.is_open


@LEAN_AND_GUARDED
def test_a_success_between_failures_resets_the_streak(extra: dict[str, Any]) -> None:
    breaker = make(failure_threshold=3, **extra)
    failures(breaker, 2)
    breaker.call(ok)
    assert breaker.stats.failure_count == 0
    failures(breaker, 2)
    assert breaker.state is CLOSED
    failures(breaker, 1)
    assert breaker.state is OPEN


async def test_an_async_success_between_failures_resets_the_streak() -> None:
    breaker = make(failure_threshold=2)
    with pytest.raises(Boom):
        await breaker.acall(afail)
    await breaker.acall(aok)
    with pytest.raises(Boom):
        await breaker.acall(afail)
    assert breaker.state is CLOSED


# --- open --------------------------------------------------------------------------------


def test_open_breaker_rejects_without_calling_and_says_when_to_come_back() -> None:
    clock = VirtualClock(start=100.0)
    breaker = make(clock, name="payments", failure_threshold=1, recovery_timeout=30.0)
    trip(breaker)
    clock.advance(12.5)
    spy = Counting()
    error = rejection(breaker, spy)
    assert spy.calls == 0
    assert isinstance(error, ButtressError)
    assert error.name == "payments"
    assert error.state is OPEN
    assert error.remaining_timeout == 17.5
    assert error.retry_after == 17.5
    assert "payments" in str(error)
    assert breaker.stats.remaining_timeout == 17.5


def test_open_breaker_still_rejects_one_millisecond_before_recovery_timeout() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=30.0)
    trip(breaker)
    clock.advance(29.999)
    assert breaker.is_open
    error = rejection(breaker)
    assert error.remaining_timeout == pytest.approx(0.001)
    clock.advance(math.nextafter(30.0, 0.0) - clock.now)  # the last instant before 30 s
    assert rejection(breaker).remaining_timeout > 0.0
    assert breaker.state is OPEN


def test_open_breaker_admits_a_probe_exactly_at_recovery_timeout() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=30.0, success_threshold=2)
    trip(breaker)
    clock.advance(30.0)
    assert not breaker.is_open
    assert breaker.stats.remaining_timeout == 0.0
    seen: list[CircuitState] = []
    assert breaker.call(lambda: seen.append(breaker.state) or "probed") == "probed"
    assert seen == [HALF_OPEN]
    assert breaker.state is HALF_OPEN


def test_recovery_timeout_of_zero_probes_on_the_next_call() -> None:
    breaker = make(failure_threshold=1, recovery_timeout=0.0, success_threshold=1)
    failures(breaker, 1)
    assert breaker.state is HALF_OPEN  # no time to wait: reading the state starts recovery
    assert breaker.call(ok) == "ok"
    assert breaker.state is CLOSED


# --- half-open ---------------------------------------------------------------------------


def half_open(clock: VirtualClock, **options: Any) -> CircuitBreaker:
    options.setdefault("failure_threshold", 1)
    options.setdefault("recovery_timeout", 30.0)
    breaker = make(clock, **options)
    trip(breaker)
    clock.advance(breaker.config.recovery_timeout)
    return breaker


@LEAN_AND_GUARDED
def test_half_open_breaker_closes_after_exactly_success_threshold_successes(
    extra: dict[str, Any],
) -> None:
    breaker = half_open(VirtualClock(), success_threshold=3, **extra)
    breaker.call(ok)
    breaker.call(ok)
    assert breaker.state is HALF_OPEN
    breaker.call(ok)
    assert breaker.state is CLOSED
    stats = breaker.stats
    assert (stats.state_changes, stats.trips) == (3, 1)


@LEAN_AND_GUARDED
def test_one_failure_in_half_open_reopens_for_a_full_recovery_timeout(
    extra: dict[str, Any],
) -> None:
    clock = VirtualClock()
    breaker = half_open(clock, success_threshold=3, **extra)
    breaker.call(ok)
    with pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is OPEN
    assert rejection(breaker).remaining_timeout == 30.0
    clock.advance(29.0)
    assert rejection(breaker).remaining_timeout == 1.0
    clock.advance(1.0)
    breaker.call(ok)
    assert breaker.state is HALF_OPEN
    assert breaker.stats.trips == 2


def test_closing_again_needs_a_full_new_streak_of_failures() -> None:
    breaker = half_open(VirtualClock(), failure_threshold=2, success_threshold=1)
    breaker.call(ok)
    assert breaker.state is CLOSED
    failures(breaker, 1)
    assert breaker.state is CLOSED
    failures(breaker, 1)
    assert breaker.state is OPEN


def test_half_open_admits_max_calls_probes_and_rejects_the_next() -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=2, success_threshold=5)
    with breaker, breaker:
        error = rejection(breaker)
    assert error.state is HALF_OPEN
    # Until the taken permits are given back: a probe that never answers holds
    # its permit for at most recovery_timeout (tests/test_breaker_semantics.py).
    assert error.remaining_timeout == 30.0
    assert breaker.stats.rejected_calls == 1


def test_a_finished_probe_gives_its_permit_back() -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=1, success_threshold=3)
    breaker.call(ok)
    breaker.call(ok)
    assert breaker.state is HALF_OPEN
    breaker.call(ok)
    assert breaker.state is CLOSED


def test_probes_left_running_when_the_breaker_closes_do_not_reopen_it() -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=2, success_threshold=1)
    with pytest.raises(Boom), breaker:  # the slow probe, admitted first, fails last
        breaker.call(ok)
        assert breaker.state is CLOSED
        fail()
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 2


# --- failure_window mode -----------------------------------------------------------------


def test_threshold_failures_within_failure_window_trip() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, failure_window=10.0)
    for _ in range(2):
        failures(breaker, 1)
        clock.advance(5.0)
    failures(breaker, 1)  # failures at t=0, 5 and 10: all within 10 s
    assert breaker.state is OPEN


def test_failures_spread_wider_than_failure_window_do_not_trip() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, failure_window=10.0)
    for _ in range(3):
        failures(breaker, 1)  # t=0, 6, 12: the three span 12 s
        clock.advance(6.0)
    assert breaker.state is CLOSED
    assert breaker.stats.failure_count == 1  # at t=18 only the one at t=12 is recent
    clock.advance(1.0)
    failures(breaker, 1)  # the last three at t=6, 12, 19 span 13 s
    assert breaker.state is CLOSED
    failures(breaker, 1)  # t=12, 19, 19 span 7 s
    assert breaker.state is OPEN


def test_successes_do_not_forgive_failures_within_failure_window() -> None:
    breaker = make(failure_threshold=3, failure_window=60.0)
    for _ in range(2):
        failures(breaker, 1)
        breaker.call(ok)
    assert breaker.stats.failure_count == 2
    failures(breaker, 1)
    assert breaker.state is OPEN


# --- failure-rate rule -------------------------------------------------------------------


def rate_breaker(clock: VirtualClock | None = None, **options: Any) -> CircuitBreaker:
    options.setdefault("failure_threshold", 1000)
    return make(clock, **options)


def outcomes(breaker: CircuitBreaker, pattern: str) -> None:
    """Run calls by pattern: ``S`` succeeds, ``F`` fails."""
    for mark in pattern:
        if mark == "S":
            breaker.call(ok)
        else:
            failures(breaker, 1)


def test_failure_rate_rule_waits_for_minimum_calls() -> None:
    breaker = rate_breaker(failure_rate_threshold=0.5, window_size=10, minimum_calls=5)
    outcomes(breaker, "FFFF")
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 1.0
    outcomes(breaker, "F")
    assert breaker.state is OPEN


def test_failure_rate_rule_trips_once_the_rate_reaches_the_threshold() -> None:
    breaker = rate_breaker(failure_rate_threshold=0.5, window_size=10, minimum_calls=5)
    outcomes(breaker, "SSFFS")
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 0.4
    outcomes(breaker, "F")
    assert breaker.state is OPEN


def test_failure_rate_counts_only_the_last_window_size_calls() -> None:
    breaker = rate_breaker(failure_rate_threshold=0.75, window_size=4, minimum_calls=2)
    outcomes(breaker, "FSSSFF")  # the window holds S S F F
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 0.5
    outcomes(breaker, "F")  # S F F F: 3 of the last 4, although only 4 of all 7 failed
    assert breaker.state is OPEN


def test_failure_rate_over_a_time_window_forgets_calls_older_than_the_window() -> None:
    clock = VirtualClock()
    breaker = rate_breaker(clock, failure_rate_threshold=0.5, failure_window=10.0,
                           minimum_calls=4)
    outcomes(breaker, "FF")
    clock.advance(15.0)
    outcomes(breaker, "SSFS")  # the two old failures have left the window
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 0.25
    clock.advance(5.0)
    outcomes(breaker, "F")
    assert breaker.state is CLOSED
    outcomes(breaker, "F")  # 3 of 6 within the last 10 s
    assert breaker.state is OPEN


def test_failure_rate_over_a_time_window_trips_within_the_window() -> None:
    clock = VirtualClock()
    breaker = rate_breaker(clock, failure_rate_threshold=0.75, failure_window=10.0,
                           minimum_calls=4)
    for mark in "FFS":
        outcomes(breaker, mark)
        clock.advance(3.0)
    assert breaker.state is CLOSED
    outcomes(breaker, "F")
    assert breaker.state is OPEN


def test_minimum_calls_may_exceed_window_size_in_time_window_mode() -> None:
    config = CircuitBreakerConfig(failure_rate_threshold=0.5, failure_window=10.0,
                                  window_size=5, minimum_calls=20)
    assert config.minimum_calls == 20


# --- slow-call rule ----------------------------------------------------------------------


def test_slow_call_rate_trips_the_breaker() -> None:
    clock = VirtualClock()
    breaker = rate_breaker(clock, slow_call_duration=1.0, slow_call_rate_threshold=0.5,
                           window_size=4, minimum_calls=4)

    def fast() -> str:
        clock.advance(0.5)
        return "fast"

    def slow() -> str:
        clock.advance(2.0)
        return "slow"

    for fn in (fast, slow, fast):
        breaker.call(fn)
    assert breaker.state is CLOSED
    assert breaker.call(slow) == "slow"
    assert breaker.state is OPEN
    stats = breaker.stats
    assert (stats.slow_calls, stats.successful_calls, stats.failed_calls) == (2, 4, 0)


async def test_slow_async_calls_and_async_with_blocks_count_as_slow() -> None:
    clock = VirtualClock()
    breaker = rate_breaker(clock, slow_call_duration=1.0, slow_call_rate_threshold=1.0,
                           window_size=2, minimum_calls=2)

    async def slow() -> None:
        await clock.async_sleep(5.0)

    await breaker.acall(slow)
    async with breaker:
        await clock.async_sleep(5.0)
    assert breaker.state is OPEN
    assert breaker.stats.slow_calls == 2


def test_slow_calls_are_counted_but_never_trip_without_a_rate_threshold() -> None:
    clock = VirtualClock()
    breaker = rate_breaker(clock, slow_call_duration=1.0)
    for _ in range(20):
        with breaker:
            clock.advance(3.0)
    assert breaker.state is CLOSED
    assert breaker.stats.slow_calls == 20


# --- which exceptions count --------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["ignored_exceptions", "exception_whitelist"])
@LEAN_AND_GUARDED
def test_ignored_exceptions_count_as_neither_success_nor_failure(
    spelling: str, extra: dict[str, Any]
) -> None:
    breaker = make(failure_threshold=2, **{spelling: (NotFound,)}, **extra)
    failures(breaker, 1)
    with pytest.raises(NotFound):
        breaker.call(raise_, NotFound())
    assert breaker.stats.failure_count == 1
    failures(breaker, 1)
    assert breaker.state is OPEN
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.ignored_calls) == (0, 2, 1)
    assert stats.total_calls == 3
    assert breaker.config.exception_whitelist == (NotFound,)


def test_ignored_exception_in_a_probe_gives_its_permit_back() -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=1, success_threshold=1,
                        ignored_exceptions=NotFound)
    with pytest.raises(NotFound):
        breaker.call(raise_, NotFound())
    assert breaker.state is HALF_OPEN
    breaker.call(ok)
    assert breaker.state is CLOSED


@LEAN_AND_GUARDED
def test_exceptions_outside_failure_exceptions_count_as_success(extra: dict[str, Any]) -> None:
    breaker = make(failure_threshold=2, failure_exceptions=(ConnectionError,), **extra)
    with pytest.raises(ConnectionError):
        breaker.call(raise_, ConnectionError())
    with pytest.raises(NotFound):
        breaker.call(raise_, NotFound())
    with pytest.raises(ConnectionError):
        breaker.call(raise_, ConnectionError())
    assert breaker.state is CLOSED
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls) == (1, 2)


def test_an_uncounted_exception_in_a_probe_counts_as_probe_success() -> None:
    breaker = half_open(VirtualClock(), success_threshold=1, failure_exceptions=Boom)
    with pytest.raises(NotFound):
        breaker.call(raise_, NotFound())
    assert breaker.state is CLOSED


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("form", ["call", "with"])
@LEAN_AND_GUARDED
def test_interrupts_and_exits_are_never_counted_as_failures(
    exc_type: type[BaseException], form: str, extra: dict[str, Any]
) -> None:
    breaker = make(failure_threshold=1, **extra)
    with pytest.raises(exc_type):
        SYNC_FORMS[form](breaker, lambda: raise_(exc_type()))
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 0


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("form", ["call", "with"])
def test_interrupted_probe_gives_its_permit_back(
    exc_type: type[BaseException], form: str
) -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=1, success_threshold=1)
    with pytest.raises(exc_type):
        SYNC_FORMS[form](breaker, lambda: raise_(exc_type()))
    assert breaker.state is HALF_OPEN
    assert breaker.stats.failed_calls == 1  # only the one that tripped it
    breaker.call(ok)
    assert breaker.state is CLOSED


@pytest.mark.parametrize("form", ASYNC_FORMS)
async def test_cancelled_probe_gives_its_permit_back(form: str) -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=1, success_threshold=1)
    entered, never = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        entered.set()
        await never.wait()

    task = asyncio.create_task(ASYNC_FORMS[form](breaker, hang))
    await entered.wait()
    with pytest.raises(CircuitBreakerError):
        await breaker.acall(aok)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is HALF_OPEN
    assert await breaker.acall(aok) == "ok"
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 1


@pytest.mark.parametrize("form", ASYNC_FORMS)
@LEAN_AND_GUARDED
async def test_cancellation_in_closed_state_is_not_a_failure(
    form: str, extra: dict[str, Any]
) -> None:
    breaker = make(failure_threshold=1, **extra)
    entered, never = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        entered.set()
        await never.wait()

    task = asyncio.create_task(ASYNC_FORMS[form](breaker, hang))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 0


# --- fallback ----------------------------------------------------------------------------


def test_fallback_answers_rejected_calls_with_the_error_and_the_arguments() -> None:
    answers: list[tuple[Any, ...]] = []

    def fallback(exc: CircuitBreakerError, *args: Any, **kwargs: Any) -> str:
        answers.append((exc.state, args, kwargs))
        return "cached"

    breaker = make(failure_threshold=1, fallback=fallback)
    trip(breaker)
    spy = Counting()
    assert breaker.call(spy, 1, key="k") == "cached"
    assert spy.calls == 0
    assert answers == [(OPEN, (1,), {"key": "k"})]
    assert breaker.stats.rejected_calls == 1


def test_fallback_does_not_hide_failures_of_admitted_calls() -> None:
    breaker = make(failure_threshold=2, fallback=lambda exc, *a, **kw: "cached")
    with pytest.raises(Boom):
        breaker.call(fail)


def test_fallback_answers_calls_rejected_in_half_open() -> None:
    breaker = half_open(VirtualClock(), half_open_max_calls=1,
                        fallback=lambda exc, *a, **kw: exc.state)
    with breaker:
        assert breaker.call(ok) is HALF_OPEN


def test_with_statement_raises_on_rejection_even_with_a_fallback() -> None:
    breaker = make(failure_threshold=1, fallback=lambda exc, *a, **kw: "cached")
    trip(breaker)
    with pytest.raises(CircuitBreakerError):
        _with(breaker, ok)


async def test_async_fallback_is_awaited_for_rejected_async_calls() -> None:
    async def fallback(exc: CircuitBreakerError, *args: Any, **kwargs: Any) -> str:
        return f"cached {args[0]}"

    breaker = make(failure_threshold=1, fallback=fallback)
    trip(breaker)
    assert await breaker.acall(aok, "x") == "cached x"


async def test_sync_fallback_answers_rejected_async_calls() -> None:
    breaker = make(failure_threshold=1, fallback=lambda exc, *a, **kw: ("cached", a, kw))
    trip(breaker)

    @breaker
    async def fetch(key: str, *, fresh: bool) -> str:
        raise AssertionError("an open breaker must not call")

    assert await fetch("k", fresh=True) == ("cached", ("k",), {"fresh": True})


# --- stats -------------------------------------------------------------------------------


def test_stats_count_every_kind_of_call_exactly() -> None:
    clock = VirtualClock(start=50.0)
    breaker = make(clock, failure_threshold=2, ignored_exceptions=NotFound)
    assert breaker.stats.last_failure_time is None
    outcomes(breaker, "SSS")
    with pytest.raises(NotFound):
        breaker.call(raise_, NotFound())
    failures(breaker, 1)
    clock.advance(4.0)
    failures(breaker, 1)  # trips at t=54
    rejection(breaker)
    rejection(breaker)
    stats = breaker.stats
    assert stats.name == "svc"
    assert stats.state is OPEN
    assert stats.total_calls == 8
    assert stats.successful_calls == 3
    assert stats.failed_calls == 2
    assert stats.ignored_calls == 1
    assert stats.rejected_calls == 2
    assert stats.slow_calls == 0
    assert stats.state_changes == 1
    assert stats.trips == 1
    assert stats.failure_rate == 0.4
    assert stats.last_failure_time == 54.0
    assert stats.failure_threshold == 2
    assert stats.remaining_timeout == 30.0


def test_failure_rate_is_failures_over_finished_calls() -> None:
    breaker = make(failure_threshold=100)
    assert breaker.stats.failure_rate == 0.0
    outcomes(breaker, "SSSF")
    assert breaker.stats.failure_rate == 0.25


def test_stats_as_dict_has_every_field_and_the_state_as_a_string() -> None:
    breaker = make(failure_threshold=1)
    trip(breaker)
    snapshot = breaker.stats.as_dict()
    assert snapshot["state"] == "open"
    assert snapshot["name"] == "svc"
    assert snapshot["failed_calls"] == 1
    assert set(snapshot) >= {
        "total_calls", "successful_calls", "failed_calls", "rejected_calls", "ignored_calls",
        "slow_calls", "state_changes", "trips", "failure_rate", "last_failure_time",
    }


def test_stats_are_a_frozen_snapshot() -> None:
    breaker = make()
    before = breaker.stats
    breaker.call(ok)
    assert before.successful_calls == 0
    assert breaker.stats.successful_calls == 1


# --- manual control ----------------------------------------------------------------------


def test_reset_closes_the_breaker_and_clears_every_counter() -> None:
    breaker = make(failure_threshold=1)
    breaker.call(ok)
    trip(breaker)
    rejection(breaker)
    breaker.reset()
    assert breaker.state is CLOSED
    stats = breaker.stats
    assert (stats.total_calls, stats.successful_calls, stats.failed_calls) == (0, 0, 0)
    assert (stats.rejected_calls, stats.state_changes, stats.trips) == (0, 0, 0)
    assert stats.last_failure_time is None
    assert breaker.call(ok) == "ok"


def test_reset_clears_a_failure_streak() -> None:
    breaker = make(failure_threshold=2)
    failures(breaker, 1)
    breaker.reset()
    failures(breaker, 1)
    assert breaker.state is CLOSED


def test_calls_admitted_before_reset_do_not_trip_the_reset_breaker() -> None:
    breaker = make(failure_threshold=1)
    with pytest.raises(Boom), breaker:
        breaker.reset()
        fail()
    assert breaker.state is CLOSED


def test_force_open_rejects_and_stays_open_past_recovery_timeout() -> None:
    clock = VirtualClock()
    breaker = make(clock, recovery_timeout=30.0)
    breaker.force_open()
    assert breaker.state is OPEN
    assert breaker.is_open
    clock.advance(10_000.0)
    error = rejection(breaker)
    assert error.remaining_timeout == math.inf
    assert breaker.stats.remaining_timeout == math.inf
    assert breaker.state is OPEN


def test_force_open_holds_an_already_open_breaker_open() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1)
    trip(breaker)
    breaker.force_open()
    clock.advance(60.0)
    assert rejection(breaker).remaining_timeout == math.inf


def test_force_closed_closes_and_keeps_the_statistics() -> None:
    breaker = make(failure_threshold=1)
    trip(breaker)
    breaker.force_closed()
    assert breaker.state is CLOSED
    assert breaker.call(ok) == "ok"
    stats = breaker.stats
    assert (stats.failed_calls, stats.successful_calls, stats.trips) == (1, 1, 1)


def test_force_closed_and_reset_release_a_forced_open_breaker() -> None:
    breaker = make()
    breaker.force_open()
    breaker.force_closed()
    assert breaker.call(ok) == "ok"
    breaker.force_open()
    breaker.reset()
    assert breaker.call(ok) == "ok"


# --- listeners ---------------------------------------------------------------------------


def test_listeners_see_every_transition_in_order() -> None:
    clock = VirtualClock()
    seen: list[tuple[CircuitBreaker, CircuitState, CircuitState]] = []
    also: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, failure_threshold=1, success_threshold=1,
                   on_state_change=lambda b, old, new: seen.append((b, old, new)))
    breaker.add_listener(lambda b, old, new: also.append((old, new)))
    trip(breaker)
    clock.advance(30.0)
    breaker.call(ok)
    breaker.force_open()
    breaker.reset()
    expected = [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (CLOSED, OPEN),
                (OPEN, CLOSED)]
    assert [(old, new) for _, old, new in seen] == expected
    assert all(b is breaker for b, _, _ in seen)
    assert also == expected


def test_listeners_are_not_called_without_a_state_change() -> None:
    seen: list[object] = []
    breaker = make(failure_threshold=3, on_state_change=lambda *a: seen.append(a))
    outcomes(breaker, "SFFS")
    breaker.reset()
    breaker.force_closed()
    assert seen == []


def test_a_listener_that_raises_does_not_break_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[CircuitState] = []

    def broken(breaker: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("listener bug")

    breaker = make(failure_threshold=1, on_state_change=broken)
    breaker.add_listener(lambda b, old, new: seen.append(new))
    with caplog.at_level(logging.ERROR, logger="buttress"), pytest.raises(Boom):
        breaker.call(fail)
    assert breaker.state is OPEN
    assert seen == [OPEN]
    assert "listener bug" in caplog.text


def test_a_listener_may_change_the_breaker_it_is_told_about() -> None:
    seen: list[tuple[CircuitState, CircuitState]] = []

    def close_again(b: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
        seen.append((old, new))
        if new is OPEN:
            b.reset()

    breaker = make(failure_threshold=1, on_state_change=close_again)
    failures(breaker, 1)
    assert breaker.state is CLOSED
    assert seen == [(CLOSED, OPEN), (OPEN, CLOSED)]


# --- the state enum ----------------------------------------------------------------------


def test_circuit_state_values_are_lower_case_strings() -> None:
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]
    assert CircuitState.OPEN == "open"
    assert CircuitState("half_open") is CircuitState.HALF_OPEN


def test_circuit_breaker_state_is_the_same_enum() -> None:
    assert CircuitBreakerState is CircuitState
    assert buttress.CircuitBreakerState.OPEN is CircuitState.OPEN


def test_gauge_values_are_the_prometheus_encoding() -> None:
    assert [s.gauge_value for s in (CLOSED, OPEN, HALF_OPEN)] == [0, 1, 2]


# --- timeout -----------------------------------------------------------------------------


@pytest.mark.parametrize("form", ASYNC_FORMS)
async def test_config_timeout_turns_an_overlong_async_call_into_a_failure(form: str) -> None:
    clock = VirtualClock()
    breaker = make(clock, name="slow-api", failure_threshold=1, timeout=5.0)

    async def overlong() -> str:
        await clock.async_sleep(1_000.0)
        return "too late"

    with pytest.raises(OperationTimeoutError) as info:
        await ASYNC_FORMS[form](breaker, overlong)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert (error.operation, error.timeout) == ("slow-api", 5.0)
    assert breaker.state is OPEN
    assert breaker.stats.failed_calls == 1


@pytest.mark.parametrize("form", ASYNC_FORMS)
async def test_config_timeout_spares_async_calls_that_finish_in_time(form: str) -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, timeout=5.0)

    async def quick() -> str:
        await clock.async_sleep(4.0)
        return "done"

    assert await ASYNC_FORMS[form](breaker, quick) == "done"
    assert breaker.state is CLOSED
    assert breaker.stats.successful_calls == 1


async def test_a_timeout_is_a_failure_even_when_failure_exceptions_names_other_errors() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, timeout=5.0, failure_exceptions=ConnectionError)

    async def overlong() -> None:
        await clock.async_sleep(60.0)

    with pytest.raises(OperationTimeoutError):
        await breaker.acall(overlong)
    assert breaker.state is OPEN
    assert breaker.stats.successful_calls == 0


async def test_timed_out_probe_reopens_the_breaker() -> None:
    clock = VirtualClock()
    breaker = half_open(clock, timeout=5.0)

    async def overlong() -> None:
        await clock.async_sleep(60.0)

    with pytest.raises(OperationTimeoutError):
        await breaker.acall(overlong)
    assert breaker.state is OPEN


def test_config_timeout_stops_waiting_for_an_overlong_sync_call() -> None:
    clock = VirtualClock()
    breaker = make(clock, name="slow-api", failure_threshold=1, timeout=5.0)
    release = threading.Event()

    def overlong() -> str:
        clock.sleep(1_000.0)
        release.wait(5.0)
        return "too late"

    try:
        with pytest.raises(OperationTimeoutError) as info:
            breaker.call(overlong)
    finally:
        release.set()
    assert info.value.timeout == 5.0
    assert breaker.state is OPEN



async def test_async_with_rejected_by_an_open_breaker_leaves_no_timer_behind() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, timeout=5.0)
    trip(breaker)
    with pytest.raises(CircuitBreakerError):
        await _async_with(breaker, aok)
    clock.advance(10.0)  # a leftover timer would cancel this very task now
    await asyncio.sleep(0)
    assert breaker.stats.rejected_calls == 1


def test_exiting_a_breaker_that_was_never_entered_is_an_error() -> None:
    breaker = make()
    with pytest.raises(RuntimeError, match="without being entered"):
        breaker.__exit__(None, None, None)


def test_nested_with_blocks_each_count_once() -> None:
    breaker = make(failure_threshold=5)
    with pytest.raises(Boom), breaker:
        with breaker:
            pass
        fail()
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls) == (1, 1)

# --- config validation -------------------------------------------------------------------

NAN = float("nan")


def bad(field: str, value: object, error: type[Exception], shown: str | None = None,
        **others: object) -> Any:
    """One row: ``field=value`` (plus ``others``) must raise ``error`` naming the
    field and showing ``shown`` (the repr of the bad value by default)."""
    return pytest.param(field, value, error, repr(value) if shown is None else shown, others,
                        id=f"{field}={value!r}")


BAD_CONFIGS = [
    bad("name", "", ValueError),
    bad("name", 42, TypeError),
    bad("name", None, TypeError),
    bad("failure_threshold", 0, ValueError),
    bad("failure_threshold", -3, ValueError),
    bad("failure_threshold", 2.5, TypeError),
    bad("failure_threshold", True, TypeError),
    bad("failure_threshold", "5", TypeError),
    bad("recovery_timeout", -1.0, ValueError),
    bad("recovery_timeout", NAN, ValueError),
    bad("recovery_timeout", "30", TypeError),
    bad("recovery_timeout", True, TypeError),
    bad("recovery_timeout", None, TypeError),
    bad("success_threshold", 0, ValueError),
    bad("success_threshold", False, TypeError),
    bad("success_threshold", 1.0, TypeError),
    bad("half_open_max_calls", 0, ValueError),
    bad("half_open_max_calls", -1, ValueError),
    bad("half_open_max_calls", True, TypeError),
    bad("failure_window", 0.0, ValueError),
    bad("failure_window", -10.0, ValueError),
    bad("failure_window", NAN, ValueError),
    bad("failure_window", "60", TypeError),
    bad("failure_window", True, TypeError),
    bad("failure_rate_threshold", 0.0, ValueError),
    bad("failure_rate_threshold", -0.5, ValueError),
    bad("failure_rate_threshold", 1.5, ValueError),
    bad("failure_rate_threshold", NAN, ValueError),
    bad("failure_rate_threshold", "0.5", TypeError),
    bad("failure_rate_threshold", True, TypeError),
    bad("minimum_calls", 0, ValueError),
    bad("minimum_calls", 5.0, TypeError),
    bad("minimum_calls", True, TypeError),
    bad("window_size", 0, ValueError),
    bad("window_size", 10.0, TypeError),
    bad("window_size", False, TypeError),
    bad("slow_call_duration", 0.0, ValueError),
    bad("slow_call_duration", -1.0, ValueError),
    bad("slow_call_duration", NAN, ValueError),
    bad("slow_call_duration", "1s", TypeError),
    bad("slow_call_rate_threshold", 0.0, ValueError, slow_call_duration=1.0),
    bad("slow_call_rate_threshold", 1.01, ValueError, slow_call_duration=1.0),
    bad("slow_call_rate_threshold", NAN, ValueError, slow_call_duration=1.0),
    bad("slow_call_rate_threshold", True, TypeError, slow_call_duration=1.0),
    bad("timeout", 0.0, ValueError),
    bad("timeout", -5.0, ValueError),
    bad("timeout", NAN, ValueError),
    bad("timeout", "5", TypeError),
    bad("timeout", True, TypeError),
    bad("timeout", math.inf, ValueError),
    bad("timeout", 1e300, ValueError),
    bad("failure_exceptions", "ValueError", TypeError),
    bad("failure_exceptions", 42, TypeError),
    bad("failure_exceptions", (ValueError, int), TypeError, repr(int)),
    bad("failure_exceptions", KeyboardInterrupt, ValueError),
    bad("failure_exceptions", (SystemExit,), ValueError, repr(SystemExit)),
    bad("failure_exceptions", BaseException, ValueError),
    bad("failure_exceptions", [asyncio.CancelledError], ValueError,
        repr(asyncio.CancelledError)),
    bad("ignored_exceptions", "NotFound", TypeError),
    bad("ignored_exceptions", (GeneratorExit,), ValueError, repr(GeneratorExit)),
    bad("ignored_exceptions", (None,), TypeError, "None"),
    bad("exception_whitelist", (KeyboardInterrupt,), ValueError, repr(KeyboardInterrupt)),
    bad("exception_whitelist", 3.5, TypeError),
    bad("fallback", 42, TypeError),
    bad("fallback", "cached", TypeError),
    bad("minimum_calls", 20, ValueError, failure_rate_threshold=0.5, window_size=10),
    bad("minimum_calls", 11, ValueError, slow_call_duration=1.0, slow_call_rate_threshold=0.5,
        window_size=10),
    bad("slow_call_rate_threshold", 0.5, ValueError),
]


@pytest.mark.parametrize(("field", "value", "error", "shown", "others"), BAD_CONFIGS)
def test_bad_config_values_are_refused_with_the_field_and_the_value(
    field: str, value: object, error: type[Exception], shown: str, others: dict[str, Any]
) -> None:
    with pytest.raises(error) as info:
        CircuitBreakerConfig(**{field: value}, **others)
    message = str(info.value)
    assert field in message
    assert shown in message


# CircuitBreaker(name=None) means "the config's name", so that row does not apply.
@pytest.mark.parametrize(("field", "value", "error", "shown", "others"),
                         [row for row in BAD_CONFIGS if row.id != "name=None"])
def test_bad_values_are_refused_through_the_breaker_constructor_too(
    field: str, value: object, error: type[Exception], shown: str, others: dict[str, Any]
) -> None:
    with pytest.raises(error, match=field):
        CircuitBreaker(clock=VirtualClock(), **{"name": "svc", field: value, **others})


def test_value_errors_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        CircuitBreakerConfig(failure_threshold=0)


def test_giving_both_spellings_of_ignored_exceptions_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        CircuitBreakerConfig(ignored_exceptions=(NotFound,), exception_whitelist=(KeyError,))
    message = str(info.value)
    assert "ignored_exceptions" in message
    assert "exception_whitelist" in message
    assert repr((NotFound,)) in message
    assert repr((KeyError,)) in message


def test_unknown_config_keys_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match="failure_treshold"):
        CircuitBreakerConfig(failure_treshold=3)  # type: ignore[call-arg]


def test_window_size_below_minimum_calls_is_fine_without_a_rate_rule() -> None:
    assert CircuitBreakerConfig(window_size=5, minimum_calls=10).window_size == 5


def test_exception_classes_are_normalised_to_a_tuple() -> None:
    config = CircuitBreakerConfig(failure_exceptions=ConnectionError,
                                  ignored_exceptions=[KeyError, NotFound])
    assert config.failure_exceptions == (ConnectionError,)
    assert config.ignored_exceptions == (KeyError, NotFound)


def test_replace_validates_the_changed_fields() -> None:
    config = CircuitBreakerConfig(name="db")
    assert config.replace(failure_threshold=9).failure_threshold == 9
    with pytest.raises(ValueError, match="recovery_timeout"):
        config.replace(recovery_timeout=-1.0)


def test_configs_are_frozen() -> None:
    config = CircuitBreakerConfig()
    with pytest.raises((AttributeError, TypeError)):
        config.failure_threshold = 1  # type: ignore[misc]


def test_a_new_breaker_is_closed() -> None:
    breaker = make()
    assert breaker.state is CLOSED
    assert breaker.is_closed
    assert not breaker.is_open


# --- reading the state, misuse ------------------------------------------------------------


def test_reading_state_after_the_recovery_timeout_turns_the_breaker_half_open() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=10.0)
    failures(breaker, 1)
    clock.advance(9.999)
    assert breaker.state is OPEN
    clock.advance(0.001)
    assert breaker.state is HALF_OPEN
    assert buttress.get_circuit_breaker_stats("svc")["state"] == "half_open"
    assert breaker.stats.state_changes == 2


def test_a_forced_open_breaker_keeps_reading_open_past_the_recovery_timeout() -> None:
    clock = VirtualClock()
    breaker = make(clock, recovery_timeout=1.0)
    breaker.force_open()
    clock.advance(100.0)
    assert breaker.state is OPEN


def test_sync_with_block_that_overruns_the_timeout_counts_as_a_failure() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, timeout=2.0)
    with breaker:
        clock.advance(1.5)  # within the limit: a success
    assert breaker.state is CLOSED
    with breaker:
        clock.advance(2.5)  # the block is not interrupted, but it overran
    assert breaker.state is OPEN
    assert breaker.stats.failed_calls == 1
    assert breaker.stats.successful_calls == 1


def test_call_with_a_coroutine_function_is_refused_instead_of_protecting_nothing() -> None:
    breaker = make()

    async def fetch() -> str:
        return "data"

    with pytest.raises(TypeError, match="acall"):
        breaker.call(fetch)
    with pytest.raises(TypeError, match="acall"):
        buttress.Retry(max_attempts=2).call(fetch)
    assert breaker.stats.total_calls == 0


async def test_acall_protects_a_coroutine_function() -> None:
    breaker = make(failure_threshold=1)

    async def fetch() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await breaker.acall(fetch)
    assert breaker.state is OPEN


def test_an_async_fallback_on_a_sync_function_is_refused_at_decoration() -> None:
    async def answer(exc: BaseException) -> str:
        return "cached"

    breaker = make(fallback=answer)
    with pytest.raises(TypeError, match="async fallback"):
        breaker(ok)
