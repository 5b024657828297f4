"""Breaker semantics the peers' own suites expect (resilience4j's
CircuitBreakerStateMachineTest, Polly's circuit-breaker tests), each on a
virtual clock: the failure rate an open breaker reports, slow calls that fail,
exception groups, the rate rule alone, probes that never come back, the
recovery boundary, and the failure behind a rejection.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
    Pipeline,
    Retry,
)
from buttress.events import SlowCall
from buttress.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Boom(Exception):
    """The dependency failed."""


class NotFound(Exception):
    """An answer that says nothing about the dependency's health."""


def ok() -> str:
    return "ok"


def make(clock: VirtualClock | None = None, **options: Any) -> CircuitBreaker:
    options.setdefault("name", "svc")
    return CircuitBreaker(clock=VirtualClock() if clock is None else clock, **options)


def run(breaker: CircuitBreaker, pattern: str) -> None:
    """``S`` succeeds, ``F`` fails with Boom."""
    for mark in pattern:
        if mark == "S":
            breaker.call(ok)
        else:
            with pytest.raises(Boom):
                breaker.call(_raise, Boom("down"))


def _raise(exc: BaseException) -> None:
    raise exc


def rejection(breaker: CircuitBreaker) -> CircuitBreakerError:
    with pytest.raises(CircuitBreakerError) as info:
        breaker.call(ok)
    return info.value


# --- the failure rate of an open breaker -------------------------------------------------


def test_a_count_window_breaker_reports_the_failure_rate_that_tripped_it() -> None:
    # resilience4j shouldOpenAfterFailureRateThresholdExceeded: 60 % once open.
    breaker = make(failure_rate_threshold=0.5, window_size=5, minimum_calls=5)
    run(breaker, "FFFSS")
    assert breaker.state is OPEN
    assert breaker.stats.failure_rate == 0.6


def test_a_time_window_breaker_reports_the_failure_rate_that_tripped_it() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_rate_threshold=0.5, failure_window=10.0, minimum_calls=4)
    for mark in "SFSF":
        run(breaker, mark)
        clock.advance(1.0)
    assert breaker.state is OPEN
    assert breaker.stats.failure_rate == 0.5


def test_probing_starts_a_fresh_window_and_a_failed_probe_reports_the_probes_rate() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_rate_threshold=0.5, window_size=4, minimum_calls=4,
                   success_threshold=3, recovery_timeout=10.0)
    run(breaker, "FFFF")
    clock.advance(10.0)
    assert breaker.state is HALF_OPEN
    assert breaker.stats.failure_rate == 0.0  # nothing probed yet
    run(breaker, "S")
    assert breaker.stats.failure_rate == 0.0
    run(breaker, "F")
    assert breaker.state is OPEN
    assert breaker.stats.failure_rate == 0.5  # one of the two probes failed


def test_a_closed_breaker_starts_its_window_afresh() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_rate_threshold=0.5, window_size=4, minimum_calls=4,
                   success_threshold=1, recovery_timeout=10.0)
    run(breaker, "FFFF")
    clock.advance(10.0)
    run(breaker, "S")
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 0.0
    run(breaker, "FFF")
    assert breaker.state is CLOSED  # three calls: below minimum_calls
    run(breaker, "F")
    assert breaker.state is OPEN


# --- slow calls that fail ----------------------------------------------------------------


def test_a_slow_call_that_fails_counts_as_failed_and_as_slow() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=100, slow_call_duration=1.0)
    slow_events: list[SlowCall] = []
    breaker.events.add(slow_events.append, SlowCall)

    def slow_failure() -> None:
        clock.advance(2.0)
        raise Boom("late and wrong")

    with pytest.raises(Boom):
        breaker.call(slow_failure)
    stats = breaker.stats
    assert (stats.failed_calls, stats.slow_calls, stats.successful_calls) == (1, 1, 0)
    assert [(e.duration, e.threshold) for e in slow_events] == [(2.0, 1.0)]


def test_slow_failures_count_toward_the_slow_call_rate() -> None:
    # resilience4j shouldOpenAfterSlowCallRateThresholdExceeded: a slow onError is slow.
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=100, slow_call_duration=1.0,
                   slow_call_rate_threshold=0.5, window_size=2, minimum_calls=2)

    def slow_failure() -> None:
        clock.advance(5.0)
        raise Boom("late and wrong")

    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(slow_failure)
    assert breaker.state is OPEN
    assert breaker.stats.slow_calls == 2


# --- exception groups --------------------------------------------------------------------


def group_breaker(**options: Any) -> CircuitBreaker:
    return make(failure_threshold=1, failure_exceptions=(ConnectionError,),
                ignored_exceptions=(NotFound,), **options)


@pytest.mark.parametrize(
    ("group", "counted_as"),
    [
        (ExceptionGroup("all down", [ConnectionError("a"), ConnectionError("b")]), "failure"),
        (ExceptionGroup("one down", [ConnectionError("a"), ValueError("bad input")]),
         "failure"),
        (ExceptionGroup("nested", [ValueError("x"), ExceptionGroup("inner",
                                                                   [ConnectionError()])]),
         "failure"),
        (ExceptionGroup("answered", [ValueError("bad input"), KeyError("k")]), "success"),
        (ExceptionGroup("not found", [NotFound("a"), NotFound("b")]), "ignored"),
        (ExceptionGroup("mixed", [NotFound("a"), ValueError("b")]), "success"),
        (ExceptionGroup("mixed", [NotFound("a"), ConnectionError("b")]), "failure"),
    ],
    ids=["all-failures", "failure-and-other", "nested-failure", "no-failure", "all-ignored",
         "ignored-and-other", "ignored-and-failure"],
)
def test_an_exception_group_is_judged_by_the_exceptions_it_holds(
    group: ExceptionGroup[Exception], counted_as: str
) -> None:
    breaker = group_breaker()
    with pytest.raises(ExceptionGroup):
        breaker.call(_raise, group)
    stats = breaker.stats
    counts = {"failure": stats.failed_calls, "success": stats.successful_calls,
              "ignored": stats.ignored_calls}
    assert counts == {kind: int(kind == counted_as) for kind in counts}
    assert (breaker.state is OPEN) == (counted_as == "failure")


def test_an_exception_group_class_named_in_the_config_is_judged_as_a_whole() -> None:
    breaker = make(failure_threshold=1, failure_exceptions=(ConnectionError,),
                   ignored_exceptions=(ExceptionGroup,))
    with pytest.raises(ExceptionGroup):
        breaker.call(_raise, ExceptionGroup("down", [ConnectionError()]))
    assert breaker.stats.ignored_calls == 1
    assert breaker.state is CLOSED


async def test_a_task_group_failing_with_a_failure_exception_trips_the_breaker() -> None:
    breaker = group_breaker()

    async def fan_out() -> None:
        async def fetch() -> None:
            raise ConnectionError("refused")

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(fetch())

    with pytest.raises(ExceptionGroup):
        await breaker.acall(fan_out)
    assert breaker.state is OPEN


# --- the rate rule alone -----------------------------------------------------------------


def test_with_a_rate_rule_consecutive_failures_do_not_trip_below_minimum_calls() -> None:
    breaker = make(failure_rate_threshold=0.5, window_size=10, minimum_calls=10)
    assert breaker.config.failure_threshold is None
    run(breaker, "F" * 9)  # the count rule's default of 5 used to trip here
    assert breaker.state is CLOSED
    run(breaker, "F")
    assert breaker.state is OPEN


def test_naming_failure_threshold_with_a_rate_rule_asks_for_both_rules() -> None:
    breaker = make(failure_rate_threshold=0.5, window_size=10, minimum_calls=10,
                   failure_threshold=3)
    run(breaker, "FFF")
    assert breaker.state is OPEN


def test_failure_threshold_none_needs_a_rate_rule() -> None:
    with pytest.raises(ConfigurationError, match=r"failure_threshold may only be None"):
        CircuitBreakerConfig(failure_threshold=None)
    config = CircuitBreakerConfig(failure_threshold=None, slow_call_duration=1.0,
                                  slow_call_rate_threshold=0.5)
    assert config.failure_threshold is None


def test_replace_decides_the_count_rule_again_from_the_new_fields() -> None:
    rate_only = CircuitBreakerConfig(failure_rate_threshold=0.5)
    assert rate_only.replace(name="other").failure_threshold is None
    assert rate_only.replace(failure_rate_threshold=None).failure_threshold == 5
    assert rate_only.replace(failure_threshold=7).failure_threshold == 7
    assert CircuitBreakerConfig().failure_threshold == 5


# --- probes that never return ------------------------------------------------------------


def hold(breaker: CircuitBreaker) -> contextvars.Context:
    """Enter the breaker in a context of its own and never leave: a hung probe."""
    context = contextvars.copy_context()
    context.run(breaker.__enter__)
    return context


def test_a_probe_that_never_returns_gives_its_permit_back_after_recovery_timeout() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=30.0, half_open_max_calls=1,
                   success_threshold=1)
    run(breaker, "F")
    clock.advance(30.0)
    hung = hold(breaker)
    assert rejection(breaker).remaining_timeout == 30.0
    clock.advance(29.5)
    error = rejection(breaker)
    assert (error.state, error.remaining_timeout) == (HALF_OPEN, 0.5)
    clock.advance(0.5)
    assert breaker.call(ok) == "ok"  # a new probe, which closes the breaker
    assert breaker.state is CLOSED
    # The hung probe's late failure belongs to a past round: counted, not acted on.
    hung.run(breaker.__exit__, Boom, Boom("finally"), None)
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 2


def test_probes_that_answer_keep_their_round_alive() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=10.0, half_open_max_calls=2,
                   success_threshold=3)
    run(breaker, "F")
    clock.advance(10.0)
    slow_probe = hold(breaker)
    clock.advance(8.0)
    run(breaker, "S")  # progress: the round's deadline moves to t=28
    hold(breaker)
    clock.advance(9.0)  # t=27: 17 s since the slow probe began, 9 s since news
    assert rejection(breaker).remaining_timeout == 1.0
    slow_probe.run(breaker.__exit__, None, None, None)
    assert breaker.state is HALF_OPEN
    assert breaker.stats.successful_calls == 2  # the slow probe still counted


async def test_an_async_probe_that_hangs_does_not_block_recovery() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=5.0, half_open_max_calls=1,
                   success_threshold=1)
    run(breaker, "F")
    clock.advance(5.0)
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    async def answer() -> str:
        return "ok"

    probe = asyncio.create_task(breaker.acall(hang))
    await asyncio.sleep(0)
    with pytest.raises(CircuitBreakerError):
        await breaker.acall(answer)
    clock.advance(5.0)
    assert await breaker.acall(answer) == "ok"
    assert breaker.state is CLOSED
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe


# --- the recovery boundary ---------------------------------------------------------------

# (opened_at, recovery_timeout) pairs where ``now - opened_at < recovery_timeout``
# although ``now == opened_at + recovery_timeout``: float rounding made the old
# readings disagree at the boundary.
BOUNDARIES = [(760.9624, 65.16), (93.9, 89.3317), (939.16702, 23.31), (0.0, 30.0)]


@pytest.mark.parametrize(("opened_at", "recovery_timeout"), BOUNDARIES)
@pytest.mark.parametrize("first", ["state", "is_open", "stats", "call"])
def test_at_exactly_opened_at_plus_recovery_timeout_every_reading_agrees(
    opened_at: float, recovery_timeout: float, first: str
) -> None:
    clock = VirtualClock(start=opened_at)
    breaker = make(clock, failure_threshold=1, recovery_timeout=recovery_timeout,
                   success_threshold=2)
    run(breaker, "F")
    clock.advance(recovery_timeout)
    readings: dict[str, Callable[[], object]] = {
        "state": lambda: breaker.state,
        "is_open": lambda: breaker.is_open,
        "stats": lambda: breaker.stats.remaining_timeout,
        "call": lambda: breaker.call(ok),
    }
    # Read in every order: reading the state or calling turns the breaker half-open.
    order = [first, *(name for name in readings if name != first)]
    seen = {name: readings[name]() for name in order}
    assert seen == {"state": HALF_OPEN, "is_open": False, "stats": 0.0, "call": "ok"}


@pytest.mark.parametrize(("opened_at", "recovery_timeout"), BOUNDARIES)
def test_just_before_the_boundary_every_reading_says_open(
    opened_at: float, recovery_timeout: float
) -> None:
    clock = VirtualClock(start=opened_at)
    breaker = make(clock, failure_threshold=1, recovery_timeout=recovery_timeout)
    run(breaker, "F")
    step = recovery_timeout
    while opened_at + step >= opened_at + recovery_timeout:
        step = math.nextafter(step, 0.0)
    clock.advance(step)  # the last representable instant before the boundary
    assert breaker.is_open
    assert breaker.stats.remaining_timeout > 0.0
    assert rejection(breaker).remaining_timeout > 0.0
    assert breaker.state is OPEN


# --- the failure behind a rejection ------------------------------------------------------


def test_a_breaker_tripped_mid_retry_loop_keeps_the_failure_that_tripped_it() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=2)
    raised: list[Boom] = []

    def fetch() -> None:
        raised.append(Boom(f"attempt {len(raised) + 1}"))
        raise raised[-1]

    protected = Pipeline(Retry(max_attempts=5, base_delay=0.0, clock=clock), breaker)(fetch)
    with pytest.raises(CircuitBreakerError) as info:
        protected()
    assert len(raised) == 2  # the third attempt was turned away
    assert info.value.last_failure is raised[1]
    assert info.value.__cause__ is raised[1]


def test_every_rejection_while_open_carries_the_failure_that_opened_it() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, recovery_timeout=10.0)
    cause = Boom("the one")
    with pytest.raises(Boom):
        breaker.call(_raise, cause)
    clock.advance(4.0)
    assert rejection(breaker).last_failure is cause
    breaker.force_closed()
    breaker.force_open()
    forced = rejection(breaker)
    assert forced.last_failure is None
    assert forced.__cause__ is None


def test_a_rejection_keeps_its_last_failure_through_pickle() -> None:
    breaker = make(failure_threshold=1)
    run(breaker, "F")
    copy = pickle.loads(pickle.dumps(rejection(breaker)))
    assert isinstance(copy.last_failure, Boom)
    assert str(copy.last_failure) == "down"
