"""resilience4j's CircuitBreakerStateMachineTest and retry tests (SupplierRetryTest,
EventPublisherTest, CallableTest), translated onto buttress.

The state-machine tests share resilience4j's setUp: a failure-rate threshold
of 50 %, 4 calls permitted half-open, calls of 4 s or more are slow with a
slow-call threshold of 50 %, a time-based window of 20 s needing 5 calls,
5 s open, and NumberFormatException ignored. In buttress that is
``failure_rate_threshold=0.5, half_open_max_calls=4, slow_call_duration=4,
slow_call_rate_threshold=0.5, failure_window=20, minimum_calls=5,
recovery_timeout=5, ignored_exceptions=(ValueError,)``.

resilience4j drives the machine with ``onSuccess(duration)``/``onError``;
here every call goes through ``with breaker:`` and spends its duration on
the virtual clock inside the block.

Two documented differences recur:

* Half-open: resilience4j lets the permitted calls run, then judges their
  failure rate; buttress closes after ``success_threshold`` probe successes
  and reopens on the first probe failure.
* Retry: resilience4j ends with the last exception (or the last rejected
  result); buttress raises ``RetryExhaustedError`` carrying it.

Not translated (issue 11, features buttress lacks): the DISABLED and
METRICS_ONLY states (shouldDisableCircuitBreaker, shouldResetMetricsAfter-
MetricsOnlyStateTransition, shouldRecordMetricsInMetricsOnlyState,
shouldPublishEachEventOnceInMetricOnlyState, allCircuitBreakerStatesAllow-
TransitionToMetricsOnlyMode, circuitBreakerInitializeInMetricOnlyState),
manual transitions to half-open and ``initialState``
(shouldNotAllowTransitionFromClosedToHalfOpen, circuitBreakerInitializeIn*),
open-state wait-interval functions and ``transitionToOpenStateFor/Until``
(shouldTransitionToHalfOpenAfterWaitInterval, ...AfterPassedWaitDuration,
...AfterPassedWaitUntil), the failure-rate/slow-call-rate-exceeded events,
and ``transitionToStateAfterWaitDuration(CLOSED)``.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerError,
    CircuitState,
    Fallback,
    Pipeline,
    Retry,
    RetryExhaustedError,
    RetryStrategy,
)
from buttress.events import GaveUp, RetryScheduled, StateChanged, Succeeded
from buttress.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_names = itertools.count()


def state_machine(clock: VirtualClock, **changes: Any) -> CircuitBreaker:
    """resilience4j's setUp breaker, on ``clock``."""
    options: dict[str, Any] = {
        "name": f"resilience4j-{next(_names)}",
        "failure_rate_threshold": 0.5,
        "half_open_max_calls": 4,
        "slow_call_duration": 4.0,
        "slow_call_rate_threshold": 0.5,
        "failure_window": 20.0,
        "minimum_calls": 5,
        "recovery_timeout": 5.0,
        "ignored_exceptions": (ValueError,),
    }
    options.update(changes)
    return CircuitBreaker(clock=clock, **options)


def on_success(breaker: CircuitBreaker, clock: VirtualClock, seconds: float = 0.0) -> None:
    with breaker:
        clock.advance(seconds)


def on_error(breaker: CircuitBreaker, clock: VirtualClock, seconds: float = 0.0,
             exc: Exception | None = None) -> None:
    error = RuntimeError("runtime") if exc is None else exc
    with pytest.raises(type(error)), breaker:
        clock.advance(seconds)
        raise error


def trip(breaker: CircuitBreaker, clock: VirtualClock) -> None:
    """resilience4j's transitionToOpenState, by failing five calls."""
    for _ in range(5):
        on_error(breaker, clock)
    assert breaker.state is OPEN


def try_acquire(breaker: CircuitBreaker, stack: contextlib.ExitStack) -> bool:
    """resilience4j's tryAcquirePermission: enter the breaker and stay inside."""
    try:
        stack.enter_context(breaker)
    except CircuitBreakerError:
        return False
    return True


# --- CircuitBreakerStateMachineTest ---------------------------------------------------


def test_the_breaker_has_its_name() -> None:
    # resilience4j: CircuitBreakerStateMachineTest::shouldReturnTheCorrectName
    assert CircuitBreaker("testName", clock=VirtualClock()).name == "testName"


def test_an_open_breaker_rejects_and_counts_the_rejection() -> None:
    # resilience4j: shouldThrowCallNotPermittedExceptionWhenStateIsOpen
    clock = VirtualClock()
    breaker = state_machine(clock)
    trip(breaker, clock)
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    assert breaker.stats.rejected_calls == 1


def test_a_forced_open_breaker_rejects_and_counts_the_rejection() -> None:
    # resilience4j: shouldThrowCallNotPermittedExceptionWhenStateIsForcedOpen
    clock = VirtualClock()
    breaker = state_machine(clock)
    breaker.force_open()
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    assert breaker.stats.rejected_calls == 1


def test_half_open_admits_only_the_permitted_number_of_calls() -> None:
    # resilience4j: shouldOnlyPermitFourCallsInHalfOpenState,
    # shouldThrowCallNotPermittedExceptionWhenNotFurtherTestCallsArePermitted
    clock = VirtualClock()
    breaker = state_machine(clock)
    for _ in range(2):
        trip(breaker, clock)
        clock.advance(5)
        assert breaker.state is HALF_OPEN
        with contextlib.ExitStack() as stack:
            assert [try_acquire(breaker, stack) for _ in range(6)] == [True] * 4 + [False] * 2
            rejected = breaker.stats.rejected_calls
            stack.pop_all()  # the probes are abandoned, not finished
        breaker.reset()
    assert rejected == 2


def test_a_probe_ending_without_a_verdict_gives_its_permit_back() -> None:
    # resilience4j: shouldIncreaseCounterOnReleasePermission (releasePermission;
    # in buttress an ignored exception releases the probe's permit)
    clock = VirtualClock()
    breaker = state_machine(clock)
    trip(breaker, clock)
    clock.advance(5)
    with contextlib.ExitStack() as held:
        assert [try_acquire(breaker, held) for _ in range(3)] == [True] * 3
        with contextlib.suppress(ValueError), breaker:  # the fourth permit
            with contextlib.ExitStack() as more:
                assert not try_acquire(breaker, more)
                assert not try_acquire(breaker, more)
            raise ValueError("ignored")
        assert try_acquire(breaker, held)
        held.pop_all()  # the probes are abandoned, not finished


def test_the_breaker_opens_once_the_failure_rate_reaches_the_threshold() -> None:
    # resilience4j: shouldOpenAfterFailureRateThresholdExceeded
    clock = VirtualClock()
    breaker = state_machine(clock)
    for expected_failed in (1, 2, 3):
        on_error(breaker, clock)
        assert breaker.state is CLOSED  # below minimum_calls: no verdict yet
        assert breaker.stats.failed_calls == expected_failed
    on_success(breaker, clock)
    assert breaker.state is CLOSED
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (1, 3)
    on_success(breaker, clock)
    assert breaker.state is OPEN
    assert (breaker.stats.successful_calls, breaker.stats.failed_calls) == (2, 3)
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    assert breaker.stats.rejected_calls == 1


def test_right_after_tripping_the_breaker_reports_the_rate_that_tripped_it() -> None:
    # resilience4j: shouldOpenAfterFailureRateThresholdExceeded
    # (getFailureRate() is 60 % once open)
    clock = VirtualClock()
    breaker = state_machine(clock)
    for _ in range(3):
        on_error(breaker, clock)
    on_success(breaker, clock)
    on_success(breaker, clock)
    assert breaker.state is OPEN
    assert breaker.stats.failure_rate == pytest.approx(0.6)


def test_the_time_window_counts_calls_spread_over_seconds() -> None:
    # resilience4j: shouldOpenAfterFailureRateThresholdExceeded2
    clock = VirtualClock()
    breaker = state_machine(clock)
    for _ in range(3):
        on_success(breaker, clock)
        clock.advance(1)
    on_error(breaker, clock)
    clock.advance(1)
    on_error(breaker, clock)
    assert breaker.state is CLOSED  # 2 of 5: 40 %
    clock.advance(1)
    assert breaker.state is CLOSED
    on_error(breaker, clock)
    assert breaker.state is OPEN  # 3 of 6: 50 %


def test_slow_calls_that_fail_count_as_slow() -> None:
    # resilience4j: shouldOpenAfterSlowCallRateThresholdExceeded
    clock = VirtualClock()
    breaker = state_machine(clock)
    on_error(breaker, clock, 5)    # slow
    on_success(breaker, clock, 5)  # slow
    on_error(breaker, clock, 0.1)
    on_success(breaker, clock, 0.1)
    assert breaker.state is CLOSED
    on_success(breaker, clock, 5)  # slow: 3 of 5
    assert breaker.state is OPEN
    assert breaker.stats.slow_calls == 3


def test_the_breaker_opens_once_the_slow_call_rate_reaches_the_threshold() -> None:
    # resilience4j: shouldOpenAfterSlowCallRateThresholdExceededUsingMockClock
    clock = VirtualClock()
    breaker = state_machine(clock)
    for seconds, slow in ((5, 1), (5, 2), (1, 2), (1, 2)):
        on_success(breaker, clock, seconds)
        assert breaker.stats.slow_calls == slow
        assert breaker.state is CLOSED
    on_success(breaker, clock, 5)
    assert breaker.state is OPEN
    assert breaker.stats.slow_calls == 3


def test_the_breaker_turns_half_open_after_the_wait_duration() -> None:
    # resilience4j: shouldTransitionToHalfOpenAfterWaitDuration
    clock = VirtualClock()
    breaker = state_machine(clock)
    trip(breaker, clock)
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    clock.advance(3)
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    assert breaker.stats.rejected_calls == 2
    clock.advance(3)
    with contextlib.ExitStack() as stack:
        assert try_acquire(breaker, stack)
        assert breaker.state is HALF_OPEN
        stack.pop_all()


def test_at_exactly_the_wait_duration_state_remaining_and_admission_agree() -> None:
    # resilience4j: shouldTransitionToHalfOpenAfterWaitDuration (at the instant
    # the wait ends, every view of the breaker must give the same answer).
    # 0.7 + 0.1 is 0.7999999999999999 in floating point: the case where two
    # different comparisons of the same instant disagree.
    def fresh() -> CircuitBreaker:
        clock = VirtualClock(start=0.7)
        breaker = state_machine(clock, recovery_timeout=0.1)
        trip(breaker, clock)
        clock.advance(0.1)
        return breaker

    state_says_open = fresh().state is OPEN
    is_open_says_open = fresh().is_open
    remaining_says_open = fresh().stats.remaining_timeout > 0
    try:
        fresh().call(lambda: None)
    except CircuitBreakerError:
        admission_says_open = True
    else:
        admission_says_open = False
    assert state_says_open == is_open_says_open == remaining_says_open == admission_says_open


def test_a_failing_probe_reopens_the_breaker() -> None:
    # resilience4j: shouldTransitionBackToOpenStateWhenFailureRateIsAboveThreshold
    # Differs: resilience4j judges the rate of the 4 permitted calls (75 %
    # failed); buttress reopens on the first failed probe.
    clock = VirtualClock()
    breaker = state_machine(clock)
    trip(breaker, clock)
    clock.advance(5)
    assert breaker.state is HALF_OPEN
    on_error(breaker, clock)
    assert breaker.state is OPEN


def test_a_slow_probe_is_counted_as_slow() -> None:
    # resilience4j: shouldTransitionBackToOpenStateWhenSlowCallRateIsAboveThreshold
    # Differs: buttress judges probes by success_threshold, not by a rate, so
    # slow successful probes close the breaker; they are counted as slow.
    clock = VirtualClock()
    breaker = state_machine(clock)
    trip(breaker, clock)
    clock.advance(5)
    on_success(breaker, clock, 5)
    on_success(breaker, clock, 5)
    assert breaker.stats.slow_calls == 2
    assert breaker.state is CLOSED


def test_successful_probes_close_the_breaker_with_fresh_counts() -> None:
    # resilience4j: shouldTransitionBackToClosedStateWhenFailureIsBelowThreshold
    clock = VirtualClock()
    breaker = state_machine(clock, success_threshold=3)
    trip(breaker, clock)
    clock.advance(5)
    on_success(breaker, clock)
    on_success(breaker, clock)
    assert breaker.state is HALF_OPEN
    on_success(breaker, clock)
    assert breaker.state is CLOSED
    assert breaker.stats.failure_rate == 0.0
    assert breaker.stats.failure_count == 0


def test_reset_clears_the_counters() -> None:
    # resilience4j: shouldResetMetrics, shouldResetClosedState
    clock = VirtualClock()
    breaker = state_machine(clock)
    on_success(breaker, clock)
    on_error(breaker, clock)
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.total_calls) == (1, 1, 2)
    breaker.reset()
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.total_calls) == (0, 0, 0)
    assert stats.failure_rate == 0.0


def test_reset_closes_an_open_breaker() -> None:
    # resilience4j: shouldResetToClosedState
    clock = VirtualClock()
    breaker = state_machine(clock)
    trip(breaker, clock)
    breaker.reset()
    assert breaker.state is CLOSED


def test_a_forced_open_breaker_stays_open_past_the_wait_duration() -> None:
    # resilience4j: shouldForceOpenCircuitBreaker
    clock = VirtualClock()
    breaker = state_machine(clock)
    breaker.force_open()
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    clock.advance(6)
    with pytest.raises(CircuitBreakerError):
        on_success(breaker, clock)
    assert breaker.state is OPEN
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.rejected_calls) == (0, 0, 2)
    assert stats.remaining_timeout == float("inf")


def test_an_ignored_exception_in_half_open_neither_closes_nor_reopens() -> None:
    # resilience4j: shouldReleasePermissionWhenExceptionIgnored
    clock = VirtualClock()
    breaker = state_machine(clock, success_threshold=4)
    trip(breaker, clock)
    clock.advance(5)
    for _ in range(3):
        on_success(breaker, clock)
        assert breaker.state is HALF_OPEN
    on_error(breaker, clock, exc=ValueError("ignored"))
    assert breaker.state is HALF_OPEN
    assert breaker.stats.ignored_calls == 1
    on_success(breaker, clock)
    assert breaker.state is CLOSED


def test_ignored_exceptions_do_not_stop_probes_from_closing_the_breaker() -> None:
    # resilience4j: shouldIgnoreExceptionsAndThenTransitionToClosed
    clock = VirtualClock()
    breaker = state_machine(clock, success_threshold=4)
    trip(breaker, clock)
    clock.advance(5)
    for _ in range(4):
        on_error(breaker, clock, exc=ValueError("ignored"))
        assert breaker.state is HALF_OPEN
    for _ in range(3):
        on_success(breaker, clock)
        assert breaker.state is HALF_OPEN
    on_success(breaker, clock)
    assert breaker.state is CLOSED
    assert breaker.stats.ignored_calls == 4


def test_repeating_a_transition_publishes_no_second_event() -> None:
    # resilience4j: circuitBreakerDoesNotPublishStateTransitionEventsForInternalTransitions
    clock = VirtualClock()
    breaker = state_machine(clock)
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker.events.add(lambda e: changes.append((e.old_state, e.new_state)), StateChanged)
    breaker.force_open()
    breaker.force_open()
    assert changes == [(CLOSED, OPEN)]
    breaker.force_closed()
    breaker.force_closed()
    assert changes == [(CLOSED, OPEN), (OPEN, CLOSED)]


def test_a_probe_that_never_returns_does_not_hold_the_breaker_half_open_forever() -> None:
    # resilience4j: circuitBreakerTransitionsToOpenAfterWaitDurationInHalfOpenState
    # (maxWaitDurationInHalfOpenState: a half-open breaker whose probes do not
    # finish moves on; buttress must bound it one way or another)
    clock = VirtualClock()
    breaker = state_machine(clock, half_open_max_calls=1)
    trip(breaker, clock)
    clock.advance(5)
    stuck = contextlib.ExitStack()
    assert try_acquire(breaker, stuck)  # the probe hangs: it never exits
    clock.advance(1000 * breaker.config.recovery_timeout)
    admitted = False
    for _ in range(2):
        try:
            breaker.call(lambda: None)
        except CircuitBreakerError:
            clock.advance(breaker.config.recovery_timeout)
        else:
            admitted = True
            break
    stuck.pop_all()
    assert admitted


def test_with_a_rate_rule_failures_below_minimum_calls_do_not_trip() -> None:
    # resilience4j: shouldOpenAfterFailureRateThresholdExceeded (calls 1-3 fail
    # and the breaker stays closed: below minimumNumberOfCalls there is no
    # verdict, whatever the failures)
    clock = VirtualClock()
    breaker = CircuitBreaker(f"resilience4j-{next(_names)}", failure_rate_threshold=0.5,
                             minimum_calls=10, window_size=10, clock=clock)
    for _ in range(9):
        on_error(breaker, clock)
    assert breaker.state is CLOSED
    on_error(breaker, clock)
    assert breaker.state is OPEN


# --- retry: SupplierRetryTest, EventPublisherTest, CallableTest -------------------------


class HelloWorldError(Exception):
    pass


class Service:
    """resilience4j's mocked HelloWorldService: plays ``outcomes`` then repeats the last."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> Any:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, type) and issubclass(outcome, BaseException):
            raise outcome
        return outcome


def r4j_retry(clock: VirtualClock, **options: Any) -> Retry:
    """resilience4j's defaults: 3 attempts, a fixed 500 ms wait."""
    options.setdefault("base_delay", 0.5)
    options.setdefault("strategy", RetryStrategy.FIXED_DELAY)
    options.setdefault("jitter", 0)
    return Retry(clock=clock, **options)


def test_a_successful_call_is_not_retried() -> None:
    # resilience4j: SupplierRetryTest::shouldNotRetry
    clock = VirtualClock()
    service = Service("Hello world")
    assert r4j_retry(clock).call(service) == "Hello world"
    assert service.calls == 1
    assert clock.sleeps == []


def test_a_result_the_predicate_accepts_is_not_retried() -> None:
    # resilience4j: SupplierRetryTest::shouldNotRetryWithResult, shouldOnCompleteCallOnFinish
    clock = VirtualClock()
    service = Service("Hello world")
    strategy = r4j_retry(clock, max_attempts=2, retry_on_result=lambda s: "tryAgain" in s)
    assert strategy.call(service) == "Hello world"
    assert service.calls == 1
    assert clock.sleeps == []


def test_a_result_the_predicate_rejects_is_retried_until_attempts_run_out() -> None:
    # resilience4j: SupplierRetryTest::shouldRetryWithResult
    # Differs: resilience4j returns the last rejected result; buttress raises
    # RetryExhaustedError carrying it as ``last_result``.
    clock = VirtualClock()
    service = Service("Hello world")
    strategy = r4j_retry(clock, max_attempts=2, retry_on_result=lambda s: "Hello world" in s)
    with pytest.raises(RetryExhaustedError) as info:
        strategy.call(service)
    assert service.calls == 2
    assert info.value.last_result == "Hello world"


def test_a_failure_then_a_success_waits_once() -> None:
    # resilience4j: SupplierRetryTest::testDecorateSupplier, testDecorateCallable,
    # testExecuteCallable, testExecuteSupplier, shouldReturnSuccessfullyAfterSecondAttempt
    clock = VirtualClock()
    service = Service(HelloWorldError, "Hello world")
    assert r4j_retry(clock)(service)() == "Hello world"
    assert service.calls == 2
    assert clock.sleeps == [0.5]


def test_a_decorated_function_starts_afresh_on_every_call() -> None:
    # resilience4j: SupplierRetryTest::testDecorateSupplierAndInvokeTwice
    clock = VirtualClock()
    outcomes = iter([HelloWorldError, "Hello world", HelloWorldError, "Hello world"])

    def service() -> str:
        outcome = next(outcomes)
        if outcome is HelloWorldError:
            raise HelloWorldError
        return outcome

    decorated = r4j_retry(clock)(service)
    assert decorated() == "Hello world"
    assert decorated() == "Hello world"
    assert clock.sleeps == [0.5, 0.5]


def test_every_attempt_failing_ends_after_three_attempts() -> None:
    # resilience4j: SupplierRetryTest::shouldReturnAfterThreeAttempts
    # Differs: resilience4j rethrows HelloWorldException; buttress raises
    # RetryExhaustedError whose last_exception (and __cause__) it is.
    clock = VirtualClock()
    service = Service(HelloWorldError)
    with pytest.raises(RetryExhaustedError) as info:
        r4j_retry(clock).call(service)
    assert service.calls == 3
    assert isinstance(info.value.last_exception, HelloWorldError)
    assert isinstance(info.value.__cause__, HelloWorldError)
    assert clock.sleeps == [0.5, 0.5]


def test_a_single_attempt_never_waits() -> None:
    # resilience4j: SupplierRetryTest::shouldReturnAfterOneAttempt
    clock = VirtualClock()
    service = Service(HelloWorldError)
    with pytest.raises(RetryExhaustedError) as info:
        r4j_retry(clock, max_attempts=1).call(service)
    assert service.calls == 1
    assert info.value.attempts == 1
    assert clock.sleeps == []


def test_an_exception_the_predicate_refuses_is_raised_at_once() -> None:
    # resilience4j: SupplierRetryTest::shouldReturnAfterOneAttemptAndIgnoreException
    clock = VirtualClock()
    service = Service(HelloWorldError)
    strategy = r4j_retry(clock, retry_condition=lambda e: not isinstance(e, HelloWorldError))
    with pytest.raises(HelloWorldError):
        strategy.call(service)
    assert service.calls == 1
    assert clock.sleeps == []


def test_a_fallback_recovers_after_the_attempts_run_out() -> None:
    # resilience4j: SupplierRetryTest::shouldReturnAfterThreeAttemptsAndRecover
    clock = VirtualClock()
    service = Service(HelloWorldError)
    protect = Pipeline(r4j_retry(clock),
                       Fallback(fallback=lambda exc: "Hello world from recovery function"))
    assert protect(service)() == "Hello world from recovery function"
    assert service.calls == 3
    assert clock.sleeps == [0.5, 0.5]


def test_an_interrupted_wait_ends_the_call_with_the_interruption() -> None:
    # resilience4j: SupplierRetryTest::shouldMarkThreadInterruptedWhenInterruptedDuringRetry,
    # CallableTest::shouldPropagateLastExceptionWhenSleepFunctionThrowsException
    class InterruptedClock(VirtualClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    service = Service(HelloWorldError)
    with pytest.raises(KeyboardInterrupt):
        r4j_retry(InterruptedClock()).call(service)
    assert service.calls == 1


def test_an_exponential_interval_function_sets_the_waits() -> None:
    # resilience4j: SupplierRetryTest::shouldTakeIntoAccountBackoffFunction
    clock = VirtualClock()
    service = Service(HelloWorldError)
    with pytest.raises(RetryExhaustedError):
        r4j_retry(clock, strategy=RetryStrategy.EXPONENTIAL_BACKOFF, exponential_base=2.0
                  ).call(service)
    assert service.calls == 3
    assert clock.sleeps == [0.5, 1.0]


def events_of(strategy: Retry) -> list[str]:
    seen: list[str] = []
    strategy.events.add(lambda e: seen.append(type(e).__name__), RetryScheduled, GaveUp,
                        Succeeded)
    return seen


def test_two_retries_then_an_error_are_published_in_order() -> None:
    # resilience4j: EventPublisherTest::shouldReturnAfterThreeAttempts
    clock = VirtualClock()
    strategy = r4j_retry(clock)
    seen = events_of(strategy)
    with pytest.raises(RetryExhaustedError):
        strategy.call(Service(HelloWorldError))
    assert seen == ["RetryScheduled", "RetryScheduled", "GaveUp"]


async def test_async_rejected_results_publish_retries_then_an_error() -> None:
    # resilience4j: EventPublisherTest::asyncShouldReturnAfterThreeAttempts
    clock = VirtualClock()
    strategy = r4j_retry(clock, base_delay=0.001, retry_on_result=lambda r: r == "hello world")
    seen = events_of(strategy)
    calls = 0

    async def hello() -> str:
        nonlocal calls
        calls += 1
        return "hello world"

    with pytest.raises(RetryExhaustedError):
        await strategy.acall(hello)
    assert calls == 3
    assert seen == ["RetryScheduled", "RetryScheduled", "GaveUp"]


def test_a_retry_then_a_success_are_published() -> None:
    # resilience4j: EventPublisherTest::shouldReturnAfterTwoAttempts
    clock = VirtualClock()
    strategy = r4j_retry(clock)
    seen = events_of(strategy)
    strategy.call(Service(HelloWorldError, None))
    assert seen == ["RetryScheduled", "Succeeded"]
    assert clock.sleeps == [0.5]


def test_an_error_that_is_not_retried_is_published_as_such() -> None:
    # resilience4j: EventPublisherTest::shouldIgnoreError
    clock = VirtualClock()
    strategy = r4j_retry(clock, retry_on=(OSError,))
    reasons: list[str] = []
    strategy.events.add(lambda e: reasons.append(e.reason), GaveUp)
    seen = events_of(strategy)
    with pytest.raises(HelloWorldError):
        strategy.call(Service(HelloWorldError, None))
    assert seen == ["GaveUp"]
    assert reasons == ["not_retryable"]
    assert clock.sleeps == []


def test_a_zero_interval_keeps_retrying_without_waiting() -> None:
    # resilience4j: CallableTest::
    #     shouldContinueRetryingAndEmitProperEventsIfIntervalFunctionReturnsZeroOrMore
    clock = VirtualClock()
    strategy = r4j_retry(clock, retry_after=lambda exc: 0.0)
    seen = events_of(strategy)
    service: Callable[[], Any] = Service(HelloWorldError, HelloWorldError, "ok")
    assert strategy.call(service) == "ok"
    assert seen == ["RetryScheduled", "RetryScheduled", "Succeeded"]
    assert clock.sleeps == []
