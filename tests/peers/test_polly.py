"""Polly v8's test suite (test/Polly.Core.Tests: CircuitBreaker, Retry, Timeout,
Fallback, Issues), translated onto buttress.

Polly names: ``BreakDuration`` is ``recovery_timeout``, ``FailureRatio`` /
``MinimumThroughput`` / ``SamplingDuration`` are ``failure_rate_threshold`` /
``minimum_calls`` / ``failure_window``, ``ShouldHandle`` is
``failure_exceptions`` (breaker) or ``exceptions``/``retry_condition``/
``retry_on_result`` (retry), Isolate/Close are ``force_open``/``force_closed``,
``BrokenCircuitException`` is ``CircuitBreakerError`` (``RetryAfter`` is
``remaining_timeout``), ``OnRetry`` is ``on_retry``/``RetryScheduled``,
``DelayGenerator`` is ``retry_after``, and the ``FakeTimeProvider`` is a
``VirtualClock``.

Two differences recur:

* ``MaxRetryAttempts`` counts retries; buttress's ``max_attempts`` counts every
  call, the first included (``max_attempts = MaxRetryAttempts + 1``).
* Polly numbers attempts from 0; buttress's events and hooks from 1.

Not translated (issue 11, features buttress lacks): the break-duration
generator (``BreakDurationGenerator``, OnActionFailureAsync_EnsureBreak-
DurationGeneration, BreakDurationGenerator_EnsureHalfOpenAttempts), breaker
decisions on returned values (OnActionPreExecute_CircuitOpenedByValue,
Execute_HandledResult_OnFailureCalled), disposal of discarded results
(ExecuteAsync_MultipleRetries_EnsureDiscardedResultsDisposed), the timeout
generator, fallback on results, telemetry severities and the state provider
objects. Validation bounds differ (Polly refuses a break under 0.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import threading
import traceback
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
    Fallback,
    OperationTimeoutError,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    RetryStrategy,
    Timeout,
)
from buttress.events import AttemptFailed, GaveUp, RetryScheduled, StateChanged, Succeeded
from buttress.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_names = itertools.count()


class InvalidOperationError(Exception):
    """Polly's InvalidOperationException."""


def make(clock: VirtualClock, **options: Any) -> CircuitBreaker:
    options.setdefault("name", f"polly-{next(_names)}")
    options.setdefault("recovery_timeout", 5.0)  # Polly's default BreakDuration
    return CircuitBreaker(clock=clock, **options)


def fail(breaker: CircuitBreaker, exc: Exception | None = None) -> None:
    error = InvalidOperationError() if exc is None else exc

    def raise_it() -> None:
        raise error

    with pytest.raises(type(error)):
        breaker.call(raise_it)


def open_circuit(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.config.failure_threshold):
        fail(breaker)
    assert breaker.state is OPEN


def half_open(breaker: CircuitBreaker, clock: VirtualClock) -> None:
    open_circuit(breaker)
    clock.advance(breaker.config.recovery_timeout)
    assert breaker.state is HALF_OPEN


# --- CircuitBreaker/Controller/CircuitStateControllerTests ------------------------------


def test_a_new_breaker_is_closed_with_no_failure_recorded() -> None:
    # Polly: CircuitStateControllerTests::Ctor_EnsureDefaults
    breaker = make(VirtualClock())
    assert breaker.state is CLOSED
    assert breaker.stats.last_failure_time is None


def test_an_isolated_circuit_rejects_without_a_retry_after_until_closed() -> None:
    # Polly: CircuitStateControllerTests::IsolateAsync_Ok, BreakAsync_Ok
    # (Polly's RetryAfter is null while isolated; buttress says inf)
    clock = VirtualClock(start=1)
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(clock, on_state_change=lambda b, old, new: changes.append((old, new)))
    breaker.force_open()
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError) as info:
        breaker.call(lambda: 0)
    assert info.value.remaining_timeout == math.inf
    breaker.force_closed()
    assert breaker.call(lambda: 0) == 0
    assert changes == [(CLOSED, OPEN), (OPEN, CLOSED)]


def test_repeated_rejections_do_not_grow_the_traceback() -> None:
    # Polly: CircuitStateControllerTests::
    #     OnActionPreExecute_CircuitOpened_EnsureExceptionStackTraceDoesNotGrow
    clock = VirtualClock()
    breaker = make(clock)
    open_circuit(breaker)
    lengths = set()
    for _ in range(100):
        with pytest.raises(CircuitBreakerError) as info:
            breaker.call(lambda: 0)
        lengths.add(len("".join(traceback.format_exception(info.value))))
        assert info.value.remaining_timeout > 0
    assert len(lengths) == 1


def test_a_rejection_carries_the_exception_that_opened_the_circuit() -> None:
    # Polly: CircuitStateControllerTests::OnActionPreExecute_CircuitOpenedByException
    # (BrokenCircuitException.InnerException is the exception that broke it)
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1)
    tripping = InvalidOperationError("the dependency broke")
    fail(breaker, tripping)
    with pytest.raises(CircuitBreakerError) as info:
        breaker.call(lambda: 0)
    assert info.value.__cause__ is tripping
    assert info.value.remaining_timeout > 0


def test_a_hung_probe_does_not_block_the_next_probe_after_a_break_duration() -> None:
    # Polly: CircuitStateControllerTests::HalfOpen_EnsureBreakDuration (entering
    # half-open re-arms the break: another probe is allowed after BreakDuration
    # even if the first never returns)
    clock = VirtualClock()
    breaker = make(clock, half_open_max_calls=1)
    half_open(breaker, clock)
    stuck = contextlib.ExitStack()
    stuck.enter_context(breaker)  # the probe hangs: it never exits
    with pytest.raises(CircuitBreakerError):
        breaker.call(lambda: 0)
    clock.advance(breaker.config.recovery_timeout)
    try:
        assert breaker.call(lambda: 0) == 0
    finally:
        stuck.pop_all()


@pytest.mark.parametrize("success", [True, False])
def test_the_probe_outcome_decides_between_closed_and_open(success: bool) -> None:
    # Polly: CircuitStateControllerTests::HalfOpen_EnsureCorrectStateTransitionAfterExecution
    clock = VirtualClock()
    breaker = make(clock, success_threshold=1)
    half_open(breaker, clock)
    if success:
        breaker.call(lambda: 0)
        assert breaker.state is CLOSED
    else:
        fail(breaker)
        assert breaker.state is OPEN


def test_while_a_probe_runs_other_calls_are_rejected_as_half_open() -> None:
    # Polly: CircuitStateControllerTests::OnActionPreExecute_HalfOpen
    clock = VirtualClock()
    heard: list[CircuitState] = []
    breaker = make(clock, half_open_max_calls=1,
                   on_state_change=lambda b, old, new: heard.append(new))
    half_open(breaker, clock)
    with breaker, pytest.raises(CircuitBreakerError) as info:
        breaker.call(lambda: 0)
    assert info.value.state is HALF_OPEN
    # As Polly re-arms the break when a probe starts: the next probe is allowed
    # one break duration after this one began, unless it answers first.
    assert info.value.remaining_timeout == 5.0
    assert HALF_OPEN in heard


@pytest.mark.parametrize(("start", "expected"), [("half_open", CLOSED), ("closed", CLOSED)])
def test_a_success_closes_or_keeps_closed(start: str, expected: CircuitState) -> None:
    # Polly: CircuitStateControllerTests::OnActionSuccess_EnsureCorrectBehavior
    clock = VirtualClock()
    breaker = make(clock, success_threshold=1)
    if start == "half_open":
        half_open(breaker, clock)
    breaker.call(lambda: 10)
    assert breaker.state is expected


@pytest.mark.parametrize(
    ("start", "failures", "expected"),
    [("half_open", 1, OPEN), ("closed", 5, OPEN), ("closed", 4, CLOSED), ("isolated", 0, OPEN)],
)
def test_a_failure_opens_when_it_should_and_only_then(
    start: str, failures: int, expected: CircuitState
) -> None:
    # Polly: CircuitStateControllerTests::OnActionFailureAsync_EnsureCorrectBehavior
    clock = VirtualClock()
    breaker = make(clock)
    if start == "half_open":
        half_open(breaker, clock)
    elif start == "isolated":
        breaker.force_open()
    for _ in range(failures):
        fail(breaker)
    assert breaker.state is expected


def test_flow_closed_half_open_closed() -> None:
    # Polly: CircuitStateControllerTests::Flow_Closed_HalfOpen_Closed
    clock = VirtualClock()
    breaker = make(clock, success_threshold=1)
    half_open(breaker, clock)
    breaker.call(lambda: 0)
    assert breaker.state is CLOSED


def test_flow_closed_half_open_open_half_open_closed() -> None:
    # Polly: CircuitStateControllerTests::Flow_Closed_HalfOpen_Open_HalfOpen_Closed
    clock = VirtualClock()
    breaker = make(clock, success_threshold=1)
    half_open(breaker, clock)
    fail(breaker)
    assert breaker.state is OPEN
    clock.advance(0.001)
    with pytest.raises(CircuitBreakerError) as info:
        breaker.call(lambda: 0)
    assert info.value.remaining_timeout == pytest.approx(5.0 - 0.001)
    clock.advance(2 * 5.0)
    assert breaker.state is HALF_OPEN
    breaker.call(lambda: 0)
    assert breaker.state is CLOSED


def test_no_lock_is_held_while_a_protected_call_runs() -> None:
    # Polly: CircuitStateControllerTests::OnActionFailure_EnsureLock (the lock
    # guards state changes, never the user's call: here a call blocked inside
    # the breaker does not stop another thread's calls)
    clock = VirtualClock()
    breaker = make(clock)
    inside, release = threading.Event(), threading.Event()

    def blocking() -> None:
        inside.set()
        assert release.wait(timeout=10)
        raise InvalidOperationError

    def run_blocking() -> None:
        with contextlib.suppress(InvalidOperationError):
            breaker.call(blocking)

    worker = threading.Thread(target=run_blocking)
    worker.start()
    try:
        assert inside.wait(timeout=10)
        assert breaker.call(lambda: "meanwhile") == "meanwhile"
        fail(breaker)
    finally:
        release.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert breaker.stats.failed_calls == 2


# --- CircuitBreaker/Controller/AdvancedCircuitBehaviorTests ------------------------------


@pytest.mark.parametrize(
    ("successes", "failures", "minimum", "ratio", "breaks"),
    [
        (10, 0, 10, 0.1, False),  # throughput 10, rate 0.0
        (9, 1, 10, 0.1, True),    # throughput 10, rate 0.1
        (8, 2, 10, 0.1, True),    # throughput 10, rate 0.2
        (9, 2, 10, 0.2, False),   # throughput 11, rate 0.18
        (8, 1, 10, 0.1, False),   # throughput 9: below the minimum
    ],
)
def test_the_failure_ratio_breaks_only_with_enough_throughput(
    successes: int, failures: int, minimum: int, ratio: float, breaks: bool
) -> None:
    # Polly: AdvancedCircuitBehaviorTests::OnActionFailure_WhenClosed_EnsureCorrectBehavior
    clock = VirtualClock()
    breaker = make(clock, failure_rate_threshold=ratio, minimum_calls=minimum,
                   window_size=100, failure_threshold=100)
    for _ in range(successes):
        breaker.call(lambda: 0)
    for _ in range(failures):
        fail(breaker)
    assert (breaker.state is OPEN) is breaks


def test_a_closed_circuit_starts_with_fresh_health_metrics() -> None:
    # Polly: AdvancedCircuitBehaviorTests::OnCircuitClosed_Ok,
    # OnActionFailure_State_EnsureCorrectCalls (probe failures are not added to
    # the closed-state metrics)
    clock = VirtualClock()
    breaker = make(clock, failure_rate_threshold=0.5, minimum_calls=4, window_size=10,
                   failure_threshold=100, success_threshold=1)
    for _ in range(4):
        fail(breaker)
    assert breaker.state is OPEN
    clock.advance(5)
    fail(breaker)  # the probe fails
    clock.advance(5)
    breaker.call(lambda: 0)
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 0.0
    for _ in range(3):
        fail(breaker)  # three failures alone are below the minimum again
    assert breaker.state is CLOSED


# --- CircuitBreaker/Health/RollingHealthMetricsTests -------------------------------------


def rolling(clock: VirtualClock) -> CircuitBreaker:
    """A breaker that only measures: a 10 s window that never trips."""
    return make(clock, failure_window=10.0, failure_rate_threshold=1.0, minimum_calls=10_000,
                failure_threshold=10_000)


def test_an_empty_window_has_no_failure_rate() -> None:
    # Polly: RollingHealthMetricsTests::Ctor_EnsureDefaults
    assert rolling(VirtualClock()).stats.failure_rate == 0


def test_the_rate_is_failures_over_calls_in_the_window() -> None:
    # Polly: RollingHealthMetricsTests::Increment_Ok
    breaker = rolling(VirtualClock())
    fail(breaker)
    for _ in range(4):
        breaker.call(lambda: 0)
    assert breaker.stats.failure_rate == pytest.approx(0.2)


def test_the_window_slides_and_forgets_old_outcomes() -> None:
    # Polly: RollingHealthMetricsTests::GetHealthInfo_EnsureWindowRespected
    clock = VirtualClock()
    breaker = rolling(clock)
    rates = []
    for i in range(5):
        if i < 2:
            fail(breaker)
        else:
            breaker.call(lambda: 0)
        breaker.call(lambda: 0)
        clock.advance(2)
        rates.append(breaker.stats.failure_rate)
    clock.advance(2)
    rates.append(breaker.stats.failure_rate)
    assert rates[0] == pytest.approx(0.5)
    assert rates[1] == pytest.approx(0.5)
    assert rates[3] == pytest.approx(0.25)
    assert rates[4] == pytest.approx(0.125)
    assert rates[5] == 0.0


def test_reset_empties_the_window() -> None:
    # Polly: RollingHealthMetricsTests::Reset_Ok
    breaker = rolling(VirtualClock())
    fail(breaker)
    breaker.reset()
    assert breaker.stats.failure_rate == 0.0


def test_after_the_sampling_duration_the_window_is_empty() -> None:
    # Polly: RollingHealthMetricsTests::GetHealthInfo_SamplingDurationRespected
    clock = VirtualClock()
    breaker = rolling(clock)
    fail(breaker)
    fail(breaker)
    clock.advance(10)
    assert breaker.stats.failure_rate == 0.0


# --- CircuitBreakerResilienceStrategyTests / CircuitBreakerOptionsTests -------------------


def test_a_handled_exception_is_a_failure() -> None:
    # Polly: CircuitBreakerResilienceStrategyTests::Execute_HandledException_OnFailureCalled
    breaker = make(VirtualClock(), failure_exceptions=(InvalidOperationError,))
    fail(breaker)
    assert breaker.stats.failed_calls == 1


def test_an_unhandled_exception_is_a_success() -> None:
    # Polly: CircuitBreakerResilienceStrategyTests::Execute_UnhandledException_OnActionSuccess
    breaker = make(VirtualClock(), failure_exceptions=(InvalidOperationError,))
    fail(breaker, ValueError("an answer, not an outage"))
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1, 0)


async def test_an_unhandled_async_exception_is_a_success() -> None:
    # Polly: CircuitBreakerResilienceStrategyTests::
    #     ExecuteOutcomeAsync_UnhandledException_OnActionSuccess
    breaker = make(VirtualClock(), failure_exceptions=(InvalidOperationError,))

    async def raise_value_error() -> None:
        raise ValueError

    with pytest.raises(ValueError):
        await breaker.acall(raise_value_error)
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1, 0)


def test_a_plain_call_is_a_success() -> None:
    # Polly: CircuitBreakerResilienceStrategyTests::Execute_Ok
    breaker = make(VirtualClock())
    assert breaker.call(lambda: 0) == 0
    assert breaker.stats.successful_calls == 1


async def test_by_default_exceptions_fail_but_cancellation_does_not() -> None:
    # Polly: CircuitBreakerOptionsTests::ShouldHandle_EnsureDefaults
    breaker = make(VirtualClock(), failure_threshold=1)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await breaker.acall(cancelled)
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 0
    fail(breaker)
    assert breaker.state is OPEN


@pytest.mark.parametrize(
    ("field", "value"),
    [("minimum_calls", 0), ("failure_window", 0), ("recovery_timeout", -1),
     ("failure_rate_threshold", 0), ("failure_threshold", 0)],
)
def test_invalid_breaker_options_are_refused_by_name(field: str, value: float) -> None:
    # Polly: CircuitBreakerOptionsTests::InvalidOptions_Validate
    with pytest.raises(ConfigurationError, match=field):
        CircuitBreakerConfig(**{field: value})


# --- Retry/RetryResilienceStrategyTests ---------------------------------------------------


def polly_retry(clock: VirtualClock, **options: Any) -> Retry:
    """Polly's defaults: 3 retries (4 attempts), a constant 2 s delay, no jitter."""
    options.setdefault("max_attempts", 4)
    options.setdefault("base_delay", 2.0)
    options.setdefault("strategy", RetryStrategy.FIXED_DELAY)
    options.setdefault("jitter", 0)
    return Retry(clock=clock, **options)


async def test_a_call_cancelled_while_running_is_not_retried() -> None:
    # Polly: RetryResilienceStrategyTests::
    #     ExecuteAsync_CanceledDuringExecution_EnsureNotExecutedAgain
    clock = VirtualClock()
    retried: list[int] = []
    strategy = polly_retry(clock, on_retry=lambda attempt, exc: retried.append(attempt))
    executions = 0

    async def cancelled() -> None:
        nonlocal executions
        executions += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await strategy.acall(cancelled)
    assert executions == 1
    assert retried == []


async def test_a_call_cancelled_during_the_delay_is_not_executed_again() -> None:
    # Polly: RetryResilienceStrategyTests::
    #     ExecuteAsync_CanceledDuringDelay_EnsureNotExecutedAgain
    executions = 0

    class CancellingClock(VirtualClock):
        async def async_sleep(self, seconds: float) -> None:
            raise asyncio.CancelledError

    async def failing() -> None:
        nonlocal executions
        executions += 1
        raise InvalidOperationError

    with pytest.raises(asyncio.CancelledError):
        await polly_retry(CancellingClock()).acall(failing)
    assert executions == 1


def test_an_exception_that_is_not_handled_is_returned_at_once() -> None:
    # Polly: RetryResilienceStrategyTests::
    #     ExecuteAsync_ExceptionInExecution_EnsureResultReturned
    strategy = polly_retry(VirtualClock(), retry_on=(InvalidOperationError,))
    calls = 0

    def raise_argument_error() -> None:
        nonlocal calls
        calls += 1
        raise ValueError

    with pytest.raises(ValueError):
        strategy.call(raise_argument_error)
    assert calls == 1


def test_a_rejected_result_is_retried_the_given_number_of_times() -> None:
    # Polly: RetryResilienceStrategyTests::Retry_RetryCount_Respected
    # (MaxRetryAttempts 12 is max_attempts 13 here)
    retries: list[int] = []
    strategy = polly_retry(VirtualClock(), max_attempts=13, base_delay=0,
                           retry_on_result=lambda r: r == 0,
                           on_retry=lambda attempt, exc: retries.append(attempt))
    with pytest.raises(RetryExhaustedError):
        strategy.call(lambda: 0)
    assert len(retries) == 12


def test_a_handled_exception_is_retried_the_given_number_of_times() -> None:
    # Polly: RetryResilienceStrategyTests::RetryException_RetryCount_Respected
    seen: list[type[BaseException]] = []
    strategy = polly_retry(VirtualClock(), base_delay=0, retry_on=(InvalidOperationError,),
                           reraise=True, on_retry=lambda attempt, exc: seen.append(type(exc)))

    def always() -> None:
        raise InvalidOperationError

    with pytest.raises(InvalidOperationError):
        strategy.call(always)
    assert seen == [InvalidOperationError] * 3


def test_a_delay_generator_sets_every_delay() -> None:
    # Polly: RetryResilienceStrategyTests::RetryDelayGenerator_Respected
    # (Polly also asserts the generator ran exactly 3 times; that half is
    # test_tenacity.py::test_the_delay_hook_is_not_asked_after_the_last_attempt)
    clock = VirtualClock()
    announced: list[float] = []
    strategy = polly_retry(clock, retry_after=lambda exc: 0.120)
    strategy.events.add(lambda e: announced.append(e.delay), RetryScheduled)

    def always() -> None:
        raise InvalidOperationError

    with pytest.raises(RetryExhaustedError):
        strategy.call(always)
    assert announced == [0.120] * 3
    assert clock.sleeps == [0.120] * 3


async def test_zero_delays_never_touch_the_clock() -> None:
    # Polly: RetryResilienceStrategyTests::RetryDelayGenerator_ZeroDelay_NoTimeProviderCalls
    class NoSleepClock(VirtualClock):
        async def async_sleep(self, seconds: float) -> None:
            raise AssertionError(f"async_sleep({seconds}) called")

    # (buttress's retry_after hook judges exceptions; a rejected result follows
    # the schedule, so the failing outcome here is an exception)
    retries: list[int] = []
    strategy = polly_retry(NoSleepClock(), retry_after=lambda exc: 0.0,
                           on_retry=lambda attempt, exc: retries.append(attempt))

    async def dummy() -> str:
        raise InvalidOperationError

    with pytest.raises(RetryExhaustedError):
        await strategy.acall(dummy)
    assert retries == [1, 2, 3]


def test_on_retry_gets_the_attempt_and_linear_delays() -> None:
    # Polly: RetryResilienceStrategyTests::OnRetry_EnsureCorrectArguments
    # (Polly numbers attempts 0, 1, 2; buttress 1, 2, 3)
    clock = VirtualClock()
    attempts: list[int] = []
    delays: list[float] = []
    strategy = polly_retry(clock, strategy=RetryStrategy.LINEAR_BACKOFF,
                           retry_on_result=lambda r: r == 0)
    strategy.events.add(lambda e: (attempts.append(e.attempt), delays.append(e.delay)),
                        RetryScheduled)
    with pytest.raises(RetryExhaustedError):
        strategy.call(lambda: 0)
    assert attempts == [1, 2, 3]
    assert delays == [2.0, 4.0, 6.0]


def test_max_delay_caps_every_delay() -> None:
    # Polly: RetryResilienceStrategyTests::MaxDelay_EnsureRespected
    # Differs: Polly caps a 2 s linear schedule at 123 ms; buttress refuses a
    # max_delay below base_delay, so the schedule here starts under the cap.
    clock = VirtualClock()
    strategy = polly_retry(clock, strategy=RetryStrategy.LINEAR_BACKOFF, base_delay=0.1,
                           max_delay=0.123, retry_on_result=lambda r: True)
    with pytest.raises(RetryExhaustedError):
        strategy.call(lambda: 0)
    assert clock.sleeps == [0.1, 0.123, 0.123]
    with pytest.raises(ConfigurationError, match="max_delay"):
        RetryConfig(base_delay=2.0, max_delay=0.123)


def test_the_reported_duration_is_the_time_spent() -> None:
    # Polly: RetryResilienceStrategyTests::OnRetry_EnsureExecutionTime
    clock = VirtualClock()
    durations: list[float | None] = []
    strategy = polly_retry(clock, max_attempts=2, base_delay=0, retry_on_result=lambda r: True)
    strategy.events.add(lambda e: durations.append(e.duration), GaveUp)

    def slow() -> int:
        clock.advance(60)
        return 0

    with pytest.raises(RetryExhaustedError):
        strategy.call(slow)
    assert durations == [120.0]


def test_every_attempt_is_reported_and_the_final_one_gives_up() -> None:
    # Polly: RetryResilienceStrategyTests::Execute_HandledFinalAttempt_EnsureAttemptReported,
    # Execute_NotHandledFinalAttempt_EnsureAttemptReported
    clock = VirtualClock()
    failed: list[int] = []
    ended: list[str] = []
    strategy = polly_retry(clock, max_attempts=2, base_delay=0, retry_on_result=lambda r: True)
    strategy.events.add(lambda e: failed.append(e.attempt), AttemptFailed)
    strategy.events.add(lambda e: ended.append(type(e).__name__), GaveUp, Succeeded)
    with pytest.raises(RetryExhaustedError):
        strategy.call(lambda: 0)
    assert failed == [1, 2]
    assert ended == ["GaveUp"]

    succeeded = polly_retry(clock, max_attempts=2, base_delay=0,
                            retry_on_result=lambda r: r == "first")
    outcomes = iter(["first", "second"])
    ended.clear()
    succeeded.events.add(lambda e: ended.append(type(e).__name__), GaveUp, Succeeded)
    assert succeeded.call(lambda: next(outcomes)) == "second"
    assert ended == ["Succeeded"]


def test_a_delay_generator_returning_none_keeps_the_schedule() -> None:
    # Polly: RetryResilienceStrategyTests::RetryDelayGenerator_ReturnsNull_EnsureDefaultRetry
    clock = VirtualClock()
    strategy = polly_retry(clock, max_attempts=3, base_delay=0.002, retry_after=lambda e: None)

    def always() -> None:
        raise InvalidOperationError

    with pytest.raises(RetryExhaustedError):
        strategy.call(always)
    assert clock.sleeps == [0.002, 0.002]


# --- Retry/RetryHelperTests ---------------------------------------------------------------


def delays(strategy: RetryStrategy, base: float, attempts: range, **options: Any) -> list[float]:
    options.setdefault("max_delay", 1e9)
    options.setdefault("jitter", 0)
    config = RetryConfig(base_delay=base, strategy=strategy, **options)
    return [config.delay_for(n) for n in attempts]


def test_constant_delays() -> None:
    # Polly: RetryHelperTests::Constant_Ok
    assert delays(RetryStrategy.FIXED_DELAY, 0, range(1, 4)) == [0, 0, 0]
    assert delays(RetryStrategy.FIXED_DELAY, 1, range(1, 4)) == [1, 1, 1]


def test_linear_delays() -> None:
    # Polly: RetryHelperTests::Linear_Ok
    assert delays(RetryStrategy.LINEAR_BACKOFF, 0, range(1, 4)) == [0, 0, 0]
    assert delays(RetryStrategy.LINEAR_BACKOFF, 1, range(1, 4)) == [1, 2, 3]


def test_exponential_delays() -> None:
    # Polly: RetryHelperTests::Exponential_Ok
    assert delays(RetryStrategy.EXPONENTIAL_BACKOFF, 0, range(1, 4)) == [0, 0, 0]
    assert delays(RetryStrategy.EXPONENTIAL_BACKOFF, 1, range(1, 4)) == [1, 2, 4]


def test_jitter_on_a_zero_delay_stays_zero() -> None:
    # Polly: RetryHelperTests::Constant_Jitter_Ok, Linear_Jitter_Ok (zero base)
    for strategy in (RetryStrategy.FIXED_DELAY, RetryStrategy.LINEAR_BACKOFF):
        assert delays(strategy, 0, range(1, 4), jitter=1.0) == [0, 0, 0]


@pytest.mark.parametrize("strategy", [RetryStrategy.LINEAR_BACKOFF,
                                      RetryStrategy.EXPONENTIAL_BACKOFF,
                                      RetryStrategy.FIXED_DELAY])
@pytest.mark.parametrize("jitter", [0.0, 0.5])
def test_max_delay_caps_every_strategy(strategy: RetryStrategy, jitter: float) -> None:
    # Polly: RetryHelperTests::MaxDelay_Ok
    config = RetryConfig(base_delay=10, max_delay=10, strategy=strategy, jitter=jitter,
                         rng=random.Random(0))
    capped = RetryConfig(base_delay=1, max_delay=1, strategy=strategy, jitter=0)
    assert capped.delay_for(3) == 1
    assert 0 < config.delay_for(3) <= 10


def test_a_delay_under_max_delay_is_kept() -> None:
    # Polly: RetryHelperTests::MaxDelay_DelayLessThanMaxDelay_Respected
    assert delays(RetryStrategy.FIXED_DELAY, 1, range(3, 4), max_delay=2) == [1]


def test_an_overflowing_exponential_delay_is_capped_at_max_delay() -> None:
    # Polly: RetryHelperTests::GetRetryDelay_OverflowWithMaxDelay_ReturnsMaxDelay
    day = 86_400.0
    assert delays(RetryStrategy.EXPONENTIAL_BACKOFF, day, range(1000, 1001),
                  max_delay=2 * day) == [2 * day]


@pytest.mark.parametrize(
    "attempt",
    [1, 2, 3, 4, 10, 100, 1000,
     1024,
     1025],
)
def test_jittered_exponential_delays_stay_positive_without_a_maximum(attempt: int) -> None:
    # Polly: RetryHelperTests::GetRetryDelay_Exponential_Is_Positive_When_No_Maximum_Delay
    config = RetryConfig(base_delay=2, max_delay=math.inf, jitter=0.5, rng=random.Random(0))
    first, second = config.delay_for(attempt), config.delay_for(attempt)
    assert first > 0
    assert second > 0


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10, 100, 1000, 1024, 1025])
def test_jittered_exponential_delays_never_exceed_max_delay(attempt: int) -> None:
    # Polly: RetryHelperTests::GetRetryDelay_Exponential_Does_Not_Exceed_MaxDelay
    config = RetryConfig(base_delay=2, max_delay=30, jitter=0.5, rng=random.Random(0))
    for _ in range(2):
        delay = config.delay_for(attempt)
        assert 0 < delay <= 30


def test_jittered_schedules_differ_between_runs() -> None:
    # Polly: RetryHelperTests::ExponentialWithJitter_EnsureRandomness
    config = RetryConfig(base_delay=7.8, max_delay=1e9,
                         strategy=RetryStrategy.JITTERED_EXPONENTIAL)
    first = [config.delay_for(n) for n in range(1, 101)]
    second = [config.delay_for(n) for n in range(1, 101)]
    assert first != second
    assert all(d > 0 for d in first + second)


def test_decorrelated_jitter_stays_between_base_and_cap() -> None:
    # Polly: RetryHelperTests::DecorrelatedJitterBackoffV2_Meets_Specification
    config = RetryConfig(base_delay=0.5, max_delay=60, strategy=RetryStrategy.DECORRELATED_JITTER,
                         rng=random.Random(5))
    previous = 0.0
    for attempt in range(1, 1000):
        previous = config.delay_for(attempt, previous)
        assert 0.5 <= previous <= 60


def test_delays_stay_positive_over_thousands_of_retries() -> None:
    # Polly: IssuesTests::InfiniteRetry_Delay_Does_Not_Overflow_2163
    clock = VirtualClock()
    attempts = 0
    retried: list[float] = []
    strategy = Retry(max_attempts=None, deadline=1e12, base_delay=2, max_delay=30,
                     strategy=RetryStrategy.EXPONENTIAL_BACKOFF, jitter=0.5, clock=clock,
                     retry_on_result=lambda ok: not ok)
    strategy.events.add(lambda e: retried.append(e.delay), RetryScheduled)

    def succeed_after() -> bool:
        nonlocal attempts
        attempts += 1
        return attempts > 2049

    assert strategy.call(succeed_after) is True
    assert len(retried) == 2049
    assert all(0 < d <= 30 for d in retried)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_attempts", -3), ("base_delay", -1.0), ("max_delay", -10.0)],
)
def test_invalid_retry_options_are_refused_by_name(field: str, value: float) -> None:
    # Polly: RetryStrategyOptionsTests::InvalidOptions
    with pytest.raises(ConfigurationError, match=field):
        RetryConfig(**{field: value})


# --- Timeout/TimeoutResilienceStrategyTests -----------------------------------------------


async def test_an_operation_past_its_limit_times_out() -> None:
    # Polly: TimeoutResilienceStrategyTests::Execute_Timeout
    clock = VirtualClock()

    @Timeout(2.0, clock=clock)
    async def slow() -> str:
        await clock.async_sleep(5)
        return "late"

    with pytest.raises(OperationTimeoutError) as info:
        await slow()
    assert info.value.timeout == 2.0
    assert isinstance(info.value, TimeoutError)


async def test_an_operation_within_its_limit_returns() -> None:
    # Polly: TimeoutResilienceStrategyTests::Execute_NoTimeout
    clock = VirtualClock()

    @Timeout(2.0, clock=clock)
    async def quick() -> str:
        await clock.async_sleep(1)
        return "done"

    assert await quick() == "done"


async def test_outside_cancellation_is_not_reported_as_a_timeout() -> None:
    # Polly: TimeoutResilienceStrategyTests::Execute_Cancelled_EnsureNoTimeout
    clock = VirtualClock()
    started = asyncio.Event()

    @Timeout(10.0, clock=clock)
    async def waits() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(waits())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- Fallback/FallbackResilienceStrategyTests ---------------------------------------------


def test_a_handled_exception_is_answered_by_the_fallback() -> None:
    # Polly: FallbackResilienceStrategyTests::Handle_Exception_Ok
    seen: list[BaseException] = []

    @Fallback(fallback=lambda exc: (seen.append(exc), "secondary")[1],
              exceptions=(InvalidOperationError,))
    def primary() -> str:
        raise InvalidOperationError

    assert primary() == "secondary"
    assert isinstance(seen[0], InvalidOperationError)


def test_an_unhandled_exception_passes_the_fallback() -> None:
    # Polly: FallbackResilienceStrategyTests::Handle_UnhandledException_Ok
    @Fallback(fallback_value="secondary", exceptions=(InvalidOperationError,))
    def primary() -> str:
        raise ValueError

    with pytest.raises(ValueError):
        primary()


def test_a_fallback_that_raises_propagates_its_error() -> None:
    # Polly: FallbackResilienceStrategyTests::Handle_Result_FallbackActionThrows
    def broken(exc: BaseException) -> str:
        raise RuntimeError("fallback failed")

    @Fallback(fallback=broken)
    def primary() -> str:
        raise InvalidOperationError

    with pytest.raises(RuntimeError, match="fallback failed"):
        primary()


async def test_an_async_fallback_answers_an_async_failure() -> None:
    # Polly: FallbackResilienceStrategyTests::ExecuteOutcomeAsync_UnhandledException_Ok
    async def secondary(exc: BaseException) -> str:
        return "secondary"

    @Fallback(fallback=secondary, exceptions=(InvalidOperationError,))
    async def primary() -> str:
        raise InvalidOperationError

    assert await primary() == "secondary"


def test_changes_are_reported_once_per_transition() -> None:
    # Polly: CircuitStateControllerTests (OnOpened/OnHalfOpened/OnClosed fire once each)
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=1, success_threshold=1)
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker.events.add(lambda e: seen.append((e.old_state, e.new_state)), StateChanged)
    fail(breaker)
    clock.advance(5)
    assert breaker.state is HALF_OPEN
    assert breaker.state is HALF_OPEN
    breaker.call(lambda: 0)
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
