"""tenacity's test suite (tests/test_tenacity.py, tests/test_asyncio.py), translated.

tenacity composes ``stop=``, ``wait=`` and ``retry=`` objects; buttress has one
``RetryConfig``: ``stop_after_attempt(n)`` is ``max_attempts=n`` (every call
counts, the first included, as in tenacity), ``stop_before_delay(d)`` is
``deadline=d``, ``wait_fixed``/``wait_incrementing``/``wait_exponential``/
``wait_random_exponential`` are the ``RetryStrategy`` members, ``retry_if_result``
is ``retry_on_result``, ``retry_if_exception_type`` is ``exceptions``,
``retry_if_not_exception_type`` is ``non_retryable_exceptions``, any other
exception predicate is ``retry_condition``, ``before``/``after``/``before_sleep``
are the ``AttemptStarted``/``AttemptFailed``/``RetryScheduled`` events, and
``Retrying`` used as an iterator is ``Retry(...).attempts()``.

tenacity's wall-clock tests (``test_with_wait``, ``test_sleeps``) run here on
a ``VirtualClock`` and assert the recorded waits instead.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import pickle
import random
import statistics
from typing import Any

import pytest

from buttress import (
    Fallback,
    Pipeline,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    RetryStrategy,
    retry,
)
from buttress.events import AttemptFailed, AttemptStarted, RetryScheduled
from buttress.testing import VirtualClock

EXPONENTIAL = RetryStrategy.EXPONENTIAL_BACKOFF


class NoIOErrorAfterCount:
    """Raises OSError ``count`` times, then returns True (tenacity's helper, rewritten)."""

    def __init__(self, count: int) -> None:
        self.counter = 0
        self.count = count

    def go(self) -> bool:
        if self.counter < self.count:
            self.counter += 1
            raise OSError("Hi there, I'm an IOError")
        return True


class NoneReturnUntilAfterCount:
    """Returns None ``count`` times, then True."""

    def __init__(self, count: int) -> None:
        self.counter = 0
        self.count = count

    def go(self) -> bool | None:
        if self.counter < self.count:
            self.counter += 1
            return None
        return True


class NoNameErrorAfterCount:
    """Raises NameError ``count`` times, then returns True."""

    def __init__(self, count: int) -> None:
        self.counter = 0
        self.count = count

    def go(self) -> bool:
        if self.counter < self.count:
            self.counter += 1
            raise NameError("Hi there, I'm a NameError")
        return True


class CustomError(Exception):
    pass


def retrying(**options: Any) -> tuple[Retry, VirtualClock]:
    clock = VirtualClock()
    options.setdefault("jitter", 0)
    return Retry(clock=clock, **options), clock


# --- TestStopConditions -------------------------------------------------------------------


def test_stop_after_attempt_makes_exactly_that_many_calls() -> None:
    # tenacity: TestStopConditions::test_stop_after_attempt
    strategy, _ = retrying(max_attempts=3, base_delay=0)
    thing = NoIOErrorAfterCount(5)
    with pytest.raises(RetryExhaustedError) as info:
        strategy.call(thing.go)
    assert thing.counter == 3
    assert info.value.attempts == 3


def test_a_deadline_stops_before_a_wait_that_would_end_past_it() -> None:
    # tenacity: TestStopConditions::test_stop_before_delay
    # (``deadline`` is stop_before_delay: no wait is started that ends past it)
    strategy, clock = retrying(max_attempts=None, deadline=1.0, base_delay=0.4,
                               strategy=RetryStrategy.FIXED_DELAY)
    thing = NoIOErrorAfterCount(100)
    with pytest.raises(RetryExhaustedError):
        strategy.call(thing.go)
    # Attempts at 0.0, 0.4, 0.8; a fourth would start at 1.2, past the deadline.
    assert thing.counter == 3
    assert clock.sleeps == [0.4, 0.4]


def test_a_deadline_alone_is_not_stop_after_delay() -> None:
    # tenacity: TestStopConditions::test_stop_after_delay
    # Differs: tenacity's stop_after_delay(1) allows one more attempt once 1 s
    # has passed; buttress has only the "before" flavour, which never starts a
    # wait past the deadline, so the total time stays within it.
    strategy, clock = retrying(max_attempts=None, deadline=1.0, base_delay=0.3,
                               strategy=RetryStrategy.FIXED_DELAY)
    with pytest.raises(RetryExhaustedError):
        strategy.call(NoIOErrorAfterCount(100).go)
    assert clock.now <= 1.0


@pytest.mark.parametrize(("attempts", "deadline", "calls"), [(4, 100.0, 4), (100, 1.0, 3)])
def test_attempts_and_deadline_stop_at_whichever_comes_first(
    attempts: int, deadline: float, calls: int
) -> None:
    # tenacity: TestStopConditions::test_stop_any, test_stop_or
    strategy, _ = retrying(max_attempts=attempts, deadline=deadline, base_delay=0.4,
                           strategy=RetryStrategy.FIXED_DELAY)
    thing = NoIOErrorAfterCount(100)
    with pytest.raises(RetryExhaustedError):
        strategy.call(thing.go)
    assert thing.counter == calls


def test_without_an_attempt_limit_a_call_is_retried_until_it_succeeds() -> None:
    # tenacity: TestStopConditions::test_never_stop
    # (buttress needs a deadline with max_attempts=None; a generous one here)
    strategy, _ = retrying(max_attempts=None, deadline=1e9, base_delay=0)
    thing = NoIOErrorAfterCount(500)
    assert strategy.call(thing.go) is True
    assert thing.counter == 500


# --- TestWaitConditions -------------------------------------------------------------------


def test_no_delay_means_no_sleep_at_all() -> None:
    # tenacity: TestWaitConditions::test_no_sleep
    strategy, clock = retrying(max_attempts=20, base_delay=0)
    assert strategy.call(NoIOErrorAfterCount(18).go)
    assert clock.sleeps == []


def test_a_fixed_delay_is_the_same_every_time() -> None:
    # tenacity: TestWaitConditions::test_fixed_sleep
    config = RetryConfig(base_delay=1, strategy=RetryStrategy.FIXED_DELAY, jitter=0)
    assert [config.delay_for(n) for n in (1, 2, 12)] == [1, 1, 1]


def test_a_linear_delay_grows_by_the_base_each_attempt() -> None:
    # tenacity: TestWaitConditions::test_incrementing_sleep
    # Differs: tenacity's wait_incrementing(start, increment) has two knobs
    # (500, 600, 700); buttress's LINEAR_BACKOFF is base_delay * attempt.
    config = RetryConfig(base_delay=500, max_delay=10_000, strategy=RetryStrategy.LINEAR_BACKOFF,
                         jitter=0)
    assert [config.delay_for(n) for n in (1, 2, 3)] == [500, 1000, 1500]


def test_jittered_delays_vary_and_stay_within_their_range() -> None:
    # tenacity: TestWaitConditions::test_random_sleep
    # buttress's jitter j draws from [d * (1 - j), d]: never longer than d.
    config = RetryConfig(base_delay=20, max_delay=20, strategy=RetryStrategy.FIXED_DELAY,
                         jitter=0.95, rng=random.Random(1))
    times = {config.delay_for(1) for _ in range(1000)}
    assert len(times) > 1
    assert all(1 <= t <= 20 for t in times)


def test_exponential_delays_double() -> None:
    # tenacity: TestWaitConditions::test_exponential
    config = RetryConfig(base_delay=1, max_delay=1000, jitter=0)
    assert [config.delay_for(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 64, 128]


def test_exponential_delays_are_capped_at_max_delay() -> None:
    # tenacity: TestWaitConditions::test_exponential_with_max_wait
    config = RetryConfig(base_delay=1, max_delay=40, jitter=0)
    assert [config.delay_for(n) for n in (1, 2, 3, 4, 5, 6, 7, 8, 50)] \
        == [1, 2, 4, 8, 16, 32, 40, 40, 40]


def test_exponential_delays_with_a_multiplier_are_capped() -> None:
    # tenacity: TestWaitConditions::test_exponential_with_max_wait_and_multiplier
    # (tenacity's ``multiplier`` scales the delay: it is buttress's base_delay)
    config = RetryConfig(base_delay=2, max_delay=50, jitter=0)
    assert [config.delay_for(n) for n in (1, 2, 3, 4, 5, 50)] == [2, 4, 8, 16, 32, 50]


def test_exponential_delays_far_past_the_cap_do_not_overflow() -> None:
    # tenacity: TestWaitConditions::test_exponential_skips_power_after_reaching_max
    config = RetryConfig(base_delay=1, max_delay=40, jitter=0)
    assert config.delay_for(50) == 40
    assert config.delay_for(5000) == 40


def test_a_delay_can_come_from_the_exception() -> None:
    # tenacity: TestWaitConditions::test_wait_exception
    strategy, clock = retrying(
        max_attempts=3,
        retry_after=lambda exc: 3.5 if isinstance(exc, ValueError) else 10.0,
    )
    outcomes = iter([ValueError(), KeyError(), "done"])

    def flaky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert strategy.call(flaky) == "done"
    assert clock.sleeps == [3.5, 10.0]


def test_the_delay_hook_is_not_asked_after_the_last_attempt() -> None:
    # tenacity: TestWaitConditions::test_wait_exception (tenacity asks ``wait``
    # only when it is going to sleep: stop is checked first)
    asked: list[str] = []

    def hint(exc: Exception) -> float:
        asked.append(str(exc))
        return 1.0

    strategy, clock = retrying(max_attempts=3, retry_after=hint)
    attempt = iter(range(1, 10))

    def fails() -> None:
        raise ValueError(next(attempt))

    with pytest.raises(RetryExhaustedError):
        strategy.call(fails)
    assert asked == ["1", "2"]
    assert clock.sleeps == [1.0, 1.0]


def test_full_jitter_draws_between_zero_and_the_capped_exponential() -> None:
    # tenacity: TestWaitConditions::test_wait_random_exponential
    config = RetryConfig(base_delay=0.5, max_delay=60.0, strategy=RetryStrategy.FULL_JITTER,
                         rng=random.Random(2))
    for _ in range(1000):
        for attempt, upper in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 60.0), (9, 60.0)):
            assert 0 <= config.delay_for(attempt) <= upper


def test_full_jitter_averages_half_the_exponential() -> None:
    # tenacity: TestWaitConditions::test_wait_random_exponential_statistically
    config = RetryConfig(base_delay=0.5, max_delay=60.0, strategy=RetryStrategy.FULL_JITTER,
                         rng=random.Random(3))
    for attempt, expected, epsilon in ((1, 0.25, 0.02), (2, 0.5, 0.04), (3, 1, 0.08),
                                       (5, 4, 0.32), (8, 30, 2.56), (9, 30, 2.56)):
        mean = statistics.fmean(config.delay_for(attempt) for _ in range(4000))
        assert abs(mean - expected) <= epsilon


def test_exponential_jitter_only_ever_shortens_the_delay() -> None:
    # tenacity: TestWaitConditions::test_wait_exponential_jitter
    # Differs: tenacity adds up to ``jitter`` seconds on top (1..2, 2..3, ...);
    # buttress's jitter is documented to never wait longer than the schedule,
    # drawing from [d * (1 - j), d] (j = 0.5 for JITTERED_EXPONENTIAL).
    config = RetryConfig(base_delay=1, max_delay=60,
                         strategy=RetryStrategy.JITTERED_EXPONENTIAL, rng=random.Random(4))
    for _ in range(1000):
        for attempt, d in ((1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (9, 60)):
            assert d / 2 <= config.delay_for(attempt) <= d


# --- TestRetryConditions ------------------------------------------------------------------


def test_a_rejected_result_is_retried_and_an_accepted_one_returned() -> None:
    # tenacity: TestRetryConditions::test_retry_if_result, test_retry_if_not_result
    strategy, _ = retrying(max_attempts=5, base_delay=0, retry_on_result=lambda r: r is None)
    thing = NoneReturnUntilAfterCount(3)
    assert strategy.call(thing.go) is True
    assert thing.counter == 3


def test_a_predicate_can_combine_several_conditions() -> None:
    # tenacity: TestRetryConditions::test_retry_any, test_retry_or
    strategy, _ = retrying(
        max_attempts=5, base_delay=0,
        retry_condition=lambda exc: isinstance(exc, OSError) or "again" in str(exc),
    )
    outcomes = iter([OSError(), CustomError("try again"), CustomError("fatal")])

    def flaky() -> None:
        raise next(outcomes)

    with pytest.raises(CustomError, match="fatal"):
        strategy.call(flaky)


def test_a_predicate_on_the_message_decides_what_is_retried() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_if_exception_message,
    # test_retry_if_not_exception_message
    calls = 0

    def flaky() -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise CustomError("This is a Custom exception class")
        return True

    strategy, _ = retrying(max_attempts=5, base_delay=0,
                           retry_condition=lambda e: str(e) == "This is a Custom exception class")
    assert strategy.call(flaky) is True
    calls = 0
    refusing, _ = retrying(max_attempts=5, base_delay=0,
                           retry_condition=lambda e: str(e) != "This is a Custom exception class")
    with pytest.raises(CustomError):
        refusing.call(flaky)
    assert calls == 1


def test_a_predicate_can_look_at_the_cause() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_if_exception_cause_type
    def caused_by_name_error(exc: Exception) -> bool:
        cause = exc.__cause__
        while cause is not None:
            if isinstance(cause, NameError):
                return True
            cause = cause.__cause__
        return False

    calls = 0

    def flaky(cause: type[Exception]) -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            try:
                raise cause("inner")
            except Exception as inner:
                raise CustomError("outer") from inner
        return True

    strategy, _ = retrying(max_attempts=5, base_delay=0, retry_condition=caused_by_name_error)
    assert strategy.call(flaky, NameError) is True
    calls = 0
    with pytest.raises(CustomError):
        strategy.call(flaky, OSError)
    assert calls == 1


def test_a_predicate_that_raises_keeps_the_failure_it_was_judging() -> None:
    # tenacity: TestRetryConditions (a ``retry=`` callable that raises propagates
    # from inside tenacity's handling of the outcome, chained to it)
    failure = OSError("the real failure")

    def broken_predicate(exc: Exception) -> bool:
        raise RuntimeError("predicate bug")

    def fails() -> None:
        raise failure

    strategy, _ = retrying(max_attempts=3, base_delay=0, retry_condition=broken_predicate)
    with pytest.raises(RuntimeError) as info:
        strategy.call(fails)
    assert failure in (info.value.__cause__, info.value.__context__)


# --- TestDecoratorWrapper -----------------------------------------------------------------


def test_a_call_that_keeps_returning_a_rejected_result_gives_up_with_it() -> None:
    # tenacity: TestDecoratorWrapper::test_with_stop_on_return_value
    strategy, _ = retrying(max_attempts=3, base_delay=0, retry_on_result=lambda r: r is None)
    with pytest.raises(RetryExhaustedError) as info:
        strategy.call(NoneReturnUntilAfterCount(5).go)
    assert info.value.attempts == 3
    assert info.value.last_exception is None
    assert info.value.last_result is None
    assert "rejected" in str(info.value)


def test_with_reraise_the_last_exception_itself_is_raised() -> None:
    # tenacity: TestDecoratorWrapper::test_with_stop_on_exception
    strategy, _ = retrying(max_attempts=3, base_delay=0, reraise=True)
    with pytest.raises(OSError):
        strategy.call(NoIOErrorAfterCount(5).go)


def test_only_the_named_exception_types_are_retried() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_if_exception_of_type
    strategy, _ = retrying(max_attempts=10, base_delay=0, retry_on=(OSError,))
    assert strategy.call(NoIOErrorAfterCount(5).go) is True
    thing = NoNameErrorAfterCount(5)
    with pytest.raises(NameError):
        strategy.call(thing.go)
    assert thing.counter == 1
    custom, _ = retrying(max_attempts=10, base_delay=0, retry_on=(CustomError,))

    calls = iter([CustomError(), CustomError(), True])

    def custom_go() -> Any:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert custom.call(custom_go) is True


def test_non_retryable_exceptions_are_raised_at_once() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_except_exception_of_type
    strategy, _ = retrying(max_attempts=10, base_delay=0, non_retryable_exceptions=(OSError,))
    assert strategy.call(NoNameErrorAfterCount(5).go) is True
    thing = NoIOErrorAfterCount(5)
    with pytest.raises(OSError):
        strategy.call(thing.go)
    assert thing.counter == 1


def test_retrying_until_a_given_exception_type_stops_on_it() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_until_exception_of_type_attempt_number
    calls = 0

    def name_error_on_sixth() -> None:
        nonlocal calls
        calls += 1
        if calls < 6:
            raise OSError
        raise NameError

    strategy, _ = retrying(max_attempts=10, base_delay=0,
                           retry_condition=lambda e: not isinstance(e, NameError))
    with pytest.raises(NameError):
        strategy.call(name_error_on_sixth)
    assert calls == 6


def test_the_decorated_function_keeps_its_signature() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_preserves_argument_defaults
    def function_with_defaults(a: int = 1) -> int:
        return a

    def function_with_kwdefaults(*, a: int = 1) -> int:
        return a

    for fn in (function_with_defaults, function_with_kwdefaults):
        wrapped = retry(max_attempts=3, clock=VirtualClock())(fn)
        assert inspect.signature(wrapped) == inspect.signature(fn)
        assert wrapped() == 1
    # Differs from tenacity's test_retry_preserves_argument_defaults: tenacity
    # copies __defaults__/__kwdefaults__ onto its (*args, **kwargs) wrapper;
    # buttress leaves them to __wrapped__, which inspect.signature follows, so a
    # wrapper never claims defaults for parameters it does not have.


def test_a_callable_object_can_be_retried() -> None:
    # tenacity: TestDecoratorWrapper::test_retry_function_object
    class Hello:
        def __call__(self) -> str:
            return "Hello"

    wrapped = retry(max_attempts=3, base_delay=0.01, clock=VirtualClock())(Hello())
    assert wrapped() == "Hello"


def test_the_default_retry_retries_any_exception() -> None:
    # tenacity: TestDecoratorWrapper::test_defaults
    # Differs: tenacity's default never stops; buttress's default is 3 attempts.
    strategy, _ = retrying(base_delay=0)
    assert strategy.call(NoNameErrorAfterCount(2).go) is True
    assert strategy.call(NoIOErrorAfterCount(2).go) is True


# --- TestBeforeAfterAttempts --------------------------------------------------------------


def test_attempt_started_is_reported_before_each_attempt() -> None:
    # tenacity: TestBeforeAfterAttempts::test_before_attempts
    strategy, _ = retrying(max_attempts=1)
    started: list[int] = []
    strategy.events.add(lambda e: started.append(e.attempt), AttemptStarted)
    strategy.call(lambda: None)
    assert started == [1]


def test_attempt_failed_is_reported_after_each_failed_attempt() -> None:
    # tenacity: TestBeforeAfterAttempts::test_after_attempts
    strategy, _ = retrying(max_attempts=3, base_delay=0.1)
    failed: list[int] = []
    strategy.events.add(lambda e: failed.append(e.attempt), AttemptFailed)
    assert strategy.call(NoIOErrorAfterCount(2).go) is True
    assert failed == [1, 2]


def test_on_retry_runs_before_each_wait_with_a_positive_delay() -> None:
    # tenacity: TestBeforeAfterAttempts::test_before_sleep
    seen: list[tuple[int, str]] = []
    delays: list[float] = []
    strategy, _ = retrying(max_attempts=3, base_delay=0.01,
                           on_retry=lambda attempt, exc: seen.append((attempt, type(exc).__name__)))
    strategy.events.add(lambda e: delays.append(e.delay), RetryScheduled)
    assert strategy.call(NoIOErrorAfterCount(2).go) is True
    assert seen == [(1, "OSError"), (2, "OSError")]
    assert all(d > 0 for d in delays)


def test_each_retry_is_logged_with_its_delay_and_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # tenacity: TestBeforeAfterAttempts::test_before_sleep_log_raises
    # (buttress logs one WARNING per retry under the ``buttress`` logger)
    strategy, _ = retrying(max_attempts=3, base_delay=0.01, strategy=RetryStrategy.FIXED_DELAY)
    with caplog.at_level(logging.INFO, logger="buttress"):
        strategy.call(NoIOErrorAfterCount(2).go)
    records = [r for r in caplog.records if r.name == "buttress"]
    assert len(records) == 2
    for record in records:
        message = record.getMessage()
        assert "retrying in 0.010s" in message
        assert "OSError: Hi there, I'm an IOError" in message


def test_a_retry_on_a_rejected_result_is_logged_as_such(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # tenacity: TestBeforeAfterAttempts::test_before_sleep_log_returns
    strategy, _ = retrying(max_attempts=3, base_delay=0.01, strategy=RetryStrategy.FIXED_DELAY,
                           retry_on_result=lambda r: r is None)
    with caplog.at_level(logging.INFO, logger="buttress"):
        strategy.call(NoneReturnUntilAfterCount(2).go)
    messages = [r.getMessage() for r in caplog.records if r.name == "buttress"]
    assert len(messages) == 2
    assert all("result rejected" in m and "retrying in 0.010s" in m for m in messages)


# --- TestReraiseExceptions ----------------------------------------------------------------


def test_reraise_raises_the_last_exception_after_all_attempts() -> None:
    # tenacity: TestReraiseExceptions::test_reraise_by_default
    calls: list[str] = []

    def bad_key() -> None:
        calls.append("x")
        raise KeyError("Bad key")

    strategy, _ = retrying(max_attempts=2, base_delay=0.1, reraise=True)
    with pytest.raises(KeyError):
        strategy.call(bad_key)
    assert len(calls) == 2


def test_the_exhausted_error_carries_and_chains_the_last_exception() -> None:
    # tenacity: TestReraiseExceptions::test_reraise_from_retry_error
    calls: list[str] = []

    def bad_key() -> None:
        calls.append("x")
        raise KeyError("Bad key")

    strategy, _ = retrying(max_attempts=2, base_delay=0.1)
    with pytest.raises(RetryExhaustedError) as info:
        strategy.call(bad_key)
    assert isinstance(info.value.last_exception, KeyError)
    assert info.value.__cause__ is info.value.last_exception
    assert len(calls) == 2


def test_reraise_without_an_exception_still_raises_the_exhausted_error() -> None:
    # tenacity: TestReraiseExceptions::test_reraise_no_exception,
    # test_reraise_timeout_from_retry_error
    calls: list[str] = []

    def mock_fn() -> None:
        calls.append("x")

    strategy, _ = retrying(max_attempts=2, base_delay=0.1, reraise=True,
                           retry_on_result=lambda r: True)
    with pytest.raises(RetryExhaustedError):
        strategy.call(mock_fn)
    assert len(calls) == 2


def test_a_give_up_hook_runs_once_and_a_fallback_can_answer() -> None:
    # tenacity: TestRetryErrorCallback::test_retry_error_callback
    # (tenacity's retry_error_callback both observes and answers; in buttress
    # on_failure observes and a Fallback outside the retry answers)
    gave_up: list[int] = []
    calls = 0

    def always() -> None:
        nonlocal calls
        calls += 1
        raise Exception("This exception should not be raised")

    clock = VirtualClock()
    protect = Pipeline(
        Retry(max_attempts=3, base_delay=0, clock=clock,
              on_failure=lambda attempts, exc: gave_up.append(attempts)),
        Fallback(fallback=lambda exc: ("fallback", type(exc).__name__)),
    )
    assert protect(always)() == ("fallback", "RetryExhaustedError")
    assert gave_up == [3]
    assert calls == 3


# --- TestContextManager / TestInvokeAsCallable -----------------------------------------


def test_an_attempt_block_is_retried_after_a_failure() -> None:
    # tenacity: TestContextManager::test_context_manager_retry_one
    raise_ = True
    strategy, _ = retrying(base_delay=0)
    for attempt in strategy.attempts():
        with attempt:
            if raise_:
                raise_ = False
                raise Exception("Retry it!")
    assert not raise_


def test_an_attempt_block_lets_a_non_retryable_error_through() -> None:
    # tenacity: TestContextManager::test_context_manager_on_error
    strategy, _ = retrying(base_delay=0, retry_on=(OSError,))
    with pytest.raises(CustomError):
        for attempt in strategy.attempts():
            with attempt:
                raise CustomError("Don't retry!")


def test_attempt_blocks_give_up_with_the_exhausted_error() -> None:
    # tenacity: TestContextManager::test_context_manager_retry_error
    strategy, _ = retrying(max_attempts=2, base_delay=0)
    with pytest.raises(RetryExhaustedError):
        for attempt in strategy.attempts():
            with attempt:
                raise Exception("Retry it!")


def test_attempt_blocks_with_reraise_give_up_with_the_last_error() -> None:
    # tenacity: TestContextManager::test_context_manager_reraise
    strategy, _ = retrying(max_attempts=2, base_delay=0, reraise=True)
    with pytest.raises(CustomError):
        for attempt in strategy.attempts():
            with attempt:
                raise CustomError("Don't retry!")


def test_call_retries_once_and_returns_the_value() -> None:
    # tenacity: TestInvokeAsCallable::test_retry_one, test_on_error
    calls: list[int] = []

    def f() -> int:
        calls.append(len(calls) + 1)
        if len(calls) <= 1:
            raise Exception("Retry it!")
        return 42

    strategy, _ = retrying(base_delay=0)
    assert strategy.call(f) == 42
    assert calls == [1, 2]

    calls.clear()
    only_os_errors, _ = retrying(base_delay=0, retry_on=(OSError,))
    with pytest.raises(Exception, match="Retry it!"):
        only_os_errors.call(f)
    assert calls == [1]


# --- TestRetryException -------------------------------------------------------------------


def test_the_exhausted_error_survives_pickling() -> None:
    # tenacity: TestRetryException::test_retry_error_is_pickleable
    error = RetryExhaustedError(3, KeyError("k"), None, "op")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RetryExhaustedError
    assert copy.attempts == 3
    assert isinstance(copy.last_exception, KeyError)
    assert copy.operation == "op"
    assert str(copy) == str(error)


# --- tests/test_asyncio.py --------------------------------------------------------------


async def test_a_coroutine_is_retried_until_it_succeeds() -> None:
    # tenacity: test_asyncio.py::TestAsyncio::test_retry
    thing = NoIOErrorAfterCount(5)

    @retry(max_attempts=10, base_delay=0.5, clock=VirtualClock())
    async def retryable() -> bool:
        await asyncio.sleep(0)
        return thing.go()

    assert await retryable() is True
    assert thing.counter == thing.count


async def test_a_decorated_coroutine_function_is_still_one() -> None:
    # tenacity: test_asyncio.py::TestAsyncio::test_iscoroutinefunction
    @retry(max_attempts=2, clock=VirtualClock())
    async def retryable() -> None:
        pass

    assert inspect.iscoroutinefunction(retryable)


async def test_a_coroutine_stops_after_the_attempts() -> None:
    # tenacity: test_asyncio.py::TestAsyncio::test_stop_after_attempt
    thing = NoIOErrorAfterCount(2)

    @retry(max_attempts=2, base_delay=0, clock=VirtualClock())
    async def retryable() -> bool:
        return thing.go()

    with pytest.raises(RetryExhaustedError):
        await retryable()
    assert thing.counter == 2


async def test_interleaved_coroutines_each_count_their_own_attempts() -> None:
    # tenacity: test_asyncio.py::TestAsyncio::
    #     test_attempt_number_is_correct_for_interleaved_coroutines
    attempts: list[tuple[str | None, int]] = []
    strategy = Retry(max_attempts=5, base_delay=0, clock=VirtualClock())
    strategy.events.add(lambda e: attempts.append((e.name, e.attempt)), AttemptStarted)

    def make(thing: NoIOErrorAfterCount) -> Any:
        async def go() -> bool:
            await asyncio.sleep(0)
            return thing.go()
        go.__qualname__ = go.__name__ = f"thing{id(thing)}"
        return strategy(go)

    first, second = make(NoIOErrorAfterCount(2)), make(NoIOErrorAfterCount(2))
    await asyncio.gather(first(), second())
    by_name: dict[str | None, list[int]] = {}
    for name, number in attempts:
        by_name.setdefault(name, []).append(number)
    assert sorted(by_name.values()) == [[1, 2, 3], [1, 2, 3]]


async def test_async_attempt_blocks_stop_after_the_attempts() -> None:
    # tenacity: test_asyncio.py::TestContextManager::test_do_max_attempts
    attempts = 0
    strategy = Retry(max_attempts=3, base_delay=0, clock=VirtualClock())
    with pytest.raises(RetryExhaustedError):
        async for attempt in strategy.attempts_async():
            with attempt:
                attempts += 1
                raise Exception
    assert attempts == 3


async def test_async_attempt_blocks_with_reraise_raise_the_error() -> None:
    # tenacity: test_asyncio.py::TestContextManager::test_reraise
    strategy = Retry(max_attempts=1, reraise=True, clock=VirtualClock())
    with pytest.raises(CustomError):
        async for attempt in strategy.attempts_async():
            with attempt:
                raise CustomError


async def test_async_waits_go_through_the_injected_clock() -> None:
    # tenacity: test_asyncio.py::TestContextManager::test_sleeps (wall time
    # there; here the virtual clock records the one wait)
    clock = VirtualClock()
    strategy = Retry(max_attempts=2, base_delay=1, jitter=0, strategy=RetryStrategy.FIXED_DELAY,
                     clock=clock)
    with pytest.raises(RetryExhaustedError):
        async for attempt in strategy.attempts_async():
            with attempt:
                raise Exception
    assert clock.sleeps == [1]


async def test_a_coroutine_is_retried_on_a_rejected_result() -> None:
    # tenacity: test_asyncio.py::TestContextManager::test_retry_with_result
    attempts = 0

    @retry(max_attempts=5, base_delay=0, retry_on_result=lambda x: x < 3, clock=VirtualClock())
    async def count() -> int:
        nonlocal attempts
        attempts += 1
        return attempts

    assert await count() == 3
