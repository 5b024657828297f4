"""pybreaker's test suite (tests/pybreaker_test.py), translated onto buttress.

pybreaker names: ``fail_max`` is ``failure_threshold``, ``reset_timeout`` is
``recovery_timeout``, ``exclude`` is ``ignored_exceptions``, ``fail_counter``
is ``stats.failure_count`` (consecutive failures counting toward the threshold),
``close()`` is ``force_closed()``, ``calling()`` is ``with breaker:``.

Two documented differences recur below:

* pybreaker raises ``CircuitBreakerError`` from the call that trips the breaker
  (``throw_new_error_on_trip=True``, its default). buttress lets that call's own
  exception through (pybreaker's ``throw_new_error_on_trip=False``) and rejects
  from the next call on: the caller sees what actually went wrong.
* A half-open probe that fails raises its own exception too, not
  ``CircuitBreakerError``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import traceback
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitState,
)
from buttress.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_names = itertools.count()


def make(clock: VirtualClock | None = None, **options: Any) -> CircuitBreaker:
    """A breaker with a name of its own on a virtual clock."""
    options.setdefault("name", f"pybreaker-{next(_names)}")
    return CircuitBreaker(clock=VirtualClock() if clock is None else clock, **options)


def suc() -> bool:
    return True


def err() -> None:
    raise NotImplementedError


class Calls:
    """A callable that counts its calls and returns True."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return True


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(NotImplementedError):
            breaker.call(err)


def half_open(breaker: CircuitBreaker, clock: VirtualClock) -> None:
    """pybreaker's ``half_open()``: buttress has no manual half-open, so trip the
    breaker and let its recovery timeout pass."""
    fail(breaker, breaker.config.failure_threshold)
    clock.advance(breaker.config.recovery_timeout)
    assert breaker.state is HALF_OPEN


# --- CircuitBreakerStorageBasedTestCase --------------------------------------------------


def test_a_successful_call_keeps_the_circuit_closed() -> None:
    # pybreaker: test_successful_call
    breaker = make()
    assert breaker.call(suc)
    assert breaker.stats.failure_count == 0
    assert breaker.state is CLOSED


def test_one_failed_call_keeps_the_circuit_closed_and_counts_it() -> None:
    # pybreaker: test_one_failed_call
    breaker = make()
    fail(breaker, 1)
    assert breaker.stats.failure_count == 1
    assert breaker.state is CLOSED


def test_a_success_after_a_failure_resets_the_failure_count() -> None:
    # pybreaker: test_one_successful_call_after_failed_call
    breaker = make()
    fail(breaker, 1)
    assert breaker.stats.failure_count == 1
    assert breaker.call(suc)
    assert breaker.stats.failure_count == 0
    assert breaker.state is CLOSED


def test_the_circuit_opens_after_failure_threshold_failures() -> None:
    # pybreaker: test_several_failed_calls_setting_absent
    # Differs: pybreaker raises CircuitBreakerError from the third (tripping)
    # call; buttress raises the call's own error and rejects from the fourth.
    breaker = make(failure_threshold=3)
    fail(breaker, 3)
    with pytest.raises(CircuitBreakerError):
        breaker.call(err)
    assert breaker.stats.failed_calls == 3
    assert breaker.state is OPEN


def test_the_tripping_call_raises_its_own_exception_then_calls_are_rejected() -> None:
    # pybreaker: test_throw_new_error_on_trip_false (buttress's only behaviour)
    breaker = make(failure_threshold=3)
    fail(breaker, 3)
    assert breaker.stats.failed_calls == 3
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError):
        breaker.call(err)
    assert breaker.stats.failed_calls == 3
    assert breaker.stats.rejected_calls == 1
    assert breaker.state is OPEN


def test_the_tripping_call_never_hides_its_error_behind_a_circuit_breaker_error() -> None:
    # pybreaker: test_throw_new_error_on_trip_true
    # Differs: asserted the other way round; the third call's NotImplementedError
    # reaches the caller and only then does the breaker reject.
    breaker = make(failure_threshold=3)
    fail(breaker, 2)
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    assert breaker.state is OPEN


def test_a_rejection_after_a_trip_shows_the_failure_that_tripped_it() -> None:
    # pybreaker: test_traceback_in_circuitbreaker_error
    breaker = make(failure_threshold=3)
    fail(breaker, 3)
    try:
        breaker.call(err)
    except CircuitBreakerError:
        assert "NotImplementedError" in traceback.format_exc()
    else:
        pytest.fail("CircuitBreakerError should be raised")
    assert breaker.state is OPEN


def test_a_failed_probe_after_the_timeout_reopens_the_circuit() -> None:
    # pybreaker: test_failed_call_after_timeout
    # Differs: the failed probe raises its own error, not CircuitBreakerError.
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, recovery_timeout=0.5)
    fail(breaker, 2)
    assert breaker.state is CLOSED
    fail(breaker, 1)
    assert breaker.state is OPEN
    clock.advance(0.6)
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    assert breaker.stats.failed_calls == 4
    assert breaker.state is OPEN


def test_a_successful_probe_after_the_timeout_closes_the_circuit_calling_once() -> None:
    # pybreaker: test_successful_after_timeout (with pybreaker's success_threshold 1)
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, recovery_timeout=1, success_threshold=1)
    counted = Calls()
    fail(breaker, 3)
    with pytest.raises(CircuitBreakerError):
        breaker.call(err)
    with pytest.raises(CircuitBreakerError):
        breaker.call(counted)
    clock.advance(2)
    assert breaker.call(counted)
    assert breaker.stats.failure_count == 0
    assert breaker.state is CLOSED
    assert counted.count == 1


def test_a_failed_call_when_half_open_reopens_the_circuit() -> None:
    # pybreaker: test_failed_call_when_halfopen
    # Differs: the probe's own error is raised, not CircuitBreakerError.
    clock = VirtualClock()
    breaker = make(clock)
    half_open(breaker, clock)
    assert breaker.stats.failure_count == 0
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    assert breaker.state is OPEN


def test_a_successful_call_when_half_open_closes_the_circuit() -> None:
    # pybreaker: test_successful_call_when_halfopen (pybreaker closes after one
    # success; buttress's default success_threshold is 2, so ask for 1)
    clock = VirtualClock()
    breaker = make(clock, success_threshold=1)
    half_open(breaker, clock)
    assert breaker.call(suc)
    assert breaker.stats.failure_count == 0
    assert breaker.state is CLOSED


def test_the_circuit_can_be_closed_manually() -> None:
    # pybreaker: test_close
    breaker = make(failure_threshold=3)
    fail(breaker, 3)
    with pytest.raises(CircuitBreakerError):
        breaker.call(err)
    assert breaker.state is OPEN
    breaker.force_closed()
    assert breaker.stats.failure_count == 0
    assert breaker.state is CLOSED
    assert breaker.call(suc)


def test_listeners_hear_every_state_transition_in_order() -> None:
    # pybreaker: test_transition_events (open() / half_open() / close() there;
    # here the breaker trips, recovers and closes on its own)
    clock = VirtualClock()
    out: list[str] = []

    def listener(breaker: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
        assert breaker is not None
        out.append(f"{old.value}->{new.value}")

    breaker = make(clock, failure_threshold=1, success_threshold=1, on_state_change=listener)
    assert breaker.state is CLOSED
    fail(breaker, 1)
    assert breaker.state is OPEN
    clock.advance(breaker.config.recovery_timeout)
    assert breaker.state is HALF_OPEN
    breaker.call(suc)
    assert breaker.state is CLOSED
    assert out == ["closed->open", "open->half_open", "half_open->closed"]


def test_every_successful_and_failed_call_is_counted() -> None:
    # pybreaker: test_call_events (before_call/success/failure listener hooks)
    # Differs: buttress reports per-call outcomes through ``stats`` (its events
    # cover decisions: state changes, rejections, slow calls), so count there.
    breaker = make()
    assert breaker.call(suc)
    with pytest.raises(NotImplementedError):
        breaker.call(err)
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.total_calls) == (1, 1, 2)


def test_a_generator_function_is_protected_or_refused_never_silently_unprotected() -> None:
    # pybreaker: test_generator (pybreaker inspects the generator's values: an
    # error while iterating is a failure). buttress may refuse generator
    # functions at decoration, or protect the iteration; never neither.
    breaker = make()

    def failing_gen(value: object) -> Any:
        sent = yield value
        raise NotImplementedError(sent)

    try:
        protected = breaker(failing_gen)
    except TypeError:
        return
    gen = protected(True)
    next(gen)
    with pytest.raises(NotImplementedError):
        gen.send(True)
    assert breaker.stats.failure_count == 1


# --- CircuitBreakerConfigurationTestCase ------------------------------------------------


def test_a_new_breaker_has_documented_defaults() -> None:
    # pybreaker: test_default_params
    # Differs: buttress's defaults are the seeds' (recovery 30 s, success
    # threshold 2); pybreaker's are reset_timeout 60, success_threshold 1.
    breaker = make()
    assert breaker.stats.failure_count == 0
    assert breaker.config.recovery_timeout == 30.0
    assert breaker.config.failure_threshold == 5
    assert breaker.config.success_threshold == 2
    assert breaker.state is CLOSED
    assert breaker.config.ignored_exceptions == ()


def test_a_custom_recovery_timeout_is_kept() -> None:
    # pybreaker: test_new_with_custom_reset_timeout
    breaker = make(recovery_timeout=30)
    assert breaker.config.recovery_timeout == 30
    assert breaker.config.failure_threshold == 5
    assert breaker.config.ignored_exceptions == ()


def test_a_custom_failure_threshold_is_kept() -> None:
    # pybreaker: test_new_with_custom_fail_max
    breaker = make(failure_threshold=10)
    assert breaker.config.failure_threshold == 10
    assert breaker.config.recovery_timeout == 30.0


def test_custom_ignored_exceptions_are_kept() -> None:
    # pybreaker: test_new_with_custom_excluded_exceptions
    breaker = make(ignored_exceptions=[Exception])
    assert breaker.config.ignored_exceptions == (Exception,)
    assert breaker.config.exception_whitelist == (Exception,)


def test_a_config_is_changed_by_copying_not_in_place() -> None:
    # pybreaker: test_fail_max_setter, test_reset_timeout_setter,
    # test_success_threshold_property
    # Differs: buttress configs are frozen; ``replace`` returns a validated copy.
    config = CircuitBreakerConfig(name="frozen", failure_threshold=5, recovery_timeout=60)
    with pytest.raises(AttributeError):
        config.failure_threshold = 10  # type: ignore[misc]
    changed = config.replace(failure_threshold=10, recovery_timeout=30, success_threshold=5)
    assert (changed.failure_threshold, changed.recovery_timeout, changed.success_threshold) \
        == (10, 30, 5)
    assert config.failure_threshold == 5


def test_call_passes_no_arguments() -> None:
    # pybreaker: test_call_with_no_args
    assert make().call(suc) is True


def test_call_passes_positional_arguments() -> None:
    # pybreaker: test_call_with_args
    assert make().call(lambda a, b: [a, b], 42, "abc") == [42, "abc"]


def test_call_passes_keyword_arguments() -> None:
    # pybreaker: test_call_with_kwargs
    assert make().call(lambda **kw: kw, a=1, b=2) == {"a": 1, "b": 2}


async def test_acall_awaits_a_coroutine_function_without_arguments() -> None:
    # pybreaker: test_call_async_with_no_args (tornado coroutines there)
    async def func() -> bool:
        return True

    assert await make().acall(func) is True


async def test_acall_passes_positional_arguments() -> None:
    # pybreaker: test_call_async_with_args
    async def func(a: object, b: object) -> list[object]:
        return [a, b]

    assert await make().acall(func, 42, "abc") == [42, "abc"]


async def test_acall_passes_keyword_arguments() -> None:
    # pybreaker: test_call_async_with_kwargs
    async def func(**kwargs: object) -> dict[str, object]:
        return kwargs

    assert await make().acall(func, a=1, b=2) == {"a": 1, "b": 2}


def test_several_listeners_can_be_added_and_all_hear_a_change() -> None:
    # pybreaker: test_add_listener, test_add_listeners
    heard: list[str] = []
    breaker = make(failure_threshold=1)
    breaker.add_listener(lambda b, old, new: heard.append(f"first {new.value}"))
    breaker.add_listener(lambda b, old, new: heard.append(f"second {new.value}"))
    fail(breaker, 1)
    assert heard == ["first open", "second open"]


def test_ignored_exceptions_and_their_subclasses_are_not_failures() -> None:
    # pybreaker: test_excluded_exceptions
    # Differs: pybreaker counts an excluded exception as a success (the failure
    # count drops to 0); buttress counts it as neither, so the count stays put.
    breaker = make(ignored_exceptions=[LookupError])

    def err_2() -> None:
        raise LookupError

    def err_3() -> None:
        raise KeyError

    fail(breaker, 1)
    assert breaker.stats.failure_count == 1
    with pytest.raises(LookupError):
        breaker.call(err_2)
    assert breaker.stats.failure_count == 1
    fail(breaker, 1)
    assert breaker.stats.failure_count == 2
    with pytest.raises(KeyError):  # a subclass of LookupError
        breaker.call(err_3)
    assert breaker.stats.failure_count == 2
    assert breaker.stats.ignored_calls == 2


def test_the_decorator_keeps_name_and_docstring_and_counts_outcomes() -> None:
    # pybreaker: test_decorator
    breaker = make()

    @breaker
    def suc_(value: object) -> object:
        "Docstring"
        return value

    @breaker
    def err_(value: object) -> None:
        "Docstring"
        raise NotImplementedError

    assert suc_.__doc__ == "Docstring"
    assert err_.__doc__ == "Docstring"
    assert suc_.__name__ == "suc_"
    assert err_.__name__ == "err_"
    with pytest.raises(NotImplementedError):
        err_(True)
    assert breaker.stats.failure_count == 1
    assert suc_(True)
    assert breaker.stats.failure_count == 0


async def test_the_decorator_protects_coroutine_functions() -> None:
    # pybreaker: test_decorator_call_future (tornado futures there)
    breaker = make()

    @breaker
    async def suc_(value: object) -> object:
        "Docstring"
        return value

    @breaker
    async def err_(value: object) -> None:
        "Docstring"
        raise NotImplementedError

    assert suc_.__doc__ == "Docstring"
    assert err_.__name__ == "err_"
    with pytest.raises(NotImplementedError):
        await err_(True)
    assert breaker.stats.failure_count == 1
    assert await suc_(True)
    assert breaker.stats.failure_count == 0


def test_a_breaker_has_the_name_it_was_given() -> None:
    # pybreaker: test_name (the name is fixed in buttress; no setter)
    breaker = CircuitBreaker("test_breaker", clock=VirtualClock())
    assert breaker.name == "test_breaker"
    assert breaker.config.name == "test_breaker"


def test_with_the_default_success_threshold_one_probe_success_does_not_close() -> None:
    # pybreaker: test_success_threshold_default_behavior
    # Differs: pybreaker's default success_threshold is 1; buttress's is 2 (the
    # seeds'), so the circuit stays half-open after one success and closes
    # after the second.
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, recovery_timeout=0.1)
    fail(breaker, 3)
    clock.advance(0.2)
    assert breaker.call(suc)
    assert breaker.state is HALF_OPEN
    assert breaker.call(suc)
    assert breaker.state is CLOSED


def test_success_threshold_probe_successes_are_needed_to_close() -> None:
    # pybreaker: test_success_threshold_multiple_successes_required
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, recovery_timeout=0.1, success_threshold=3)
    fail(breaker, 3)
    clock.advance(0.2)
    assert breaker.call(suc)
    assert breaker.state is HALF_OPEN
    assert breaker.call(suc)
    assert breaker.state is HALF_OPEN
    assert breaker.call(suc)
    assert breaker.state is CLOSED


def test_a_probe_failure_reopens_and_forgets_earlier_probe_successes() -> None:
    # pybreaker: test_success_threshold_failure_resets_counter
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=3, recovery_timeout=0.1, success_threshold=3)
    fail(breaker, 3)
    clock.advance(0.2)
    assert breaker.call(suc)
    assert breaker.call(suc)
    assert breaker.state is HALF_OPEN
    fail(breaker, 1)
    assert breaker.state is OPEN
    # The two earlier successes are forgotten: three new ones are needed.
    clock.advance(0.2)
    assert breaker.call(suc)
    assert breaker.call(suc)
    assert breaker.state is HALF_OPEN
    assert breaker.call(suc)
    assert breaker.state is CLOSED


# --- CircuitBreakerThreadsTestCase ----------------------------------------------------


def run_threads(target: Any, n: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()


def test_failures_from_many_threads_are_counted_exactly() -> None:
    # pybreaker: test_fail_thread_safety
    breaker = make(failure_threshold=3000)

    class SpecificError(Exception):
        pass

    @breaker
    def err_() -> None:
        raise SpecificError

    def trigger_error() -> None:
        for _ in range(500):
            with contextlib.suppress(SpecificError):
                err_()

    run_threads(trigger_error, 3)
    assert breaker.stats.failure_count == 1500
    assert breaker.stats.failed_calls == 1500


def test_successes_from_many_threads_are_counted_exactly() -> None:
    # pybreaker: test_success_thread_safety
    breaker = make(failure_threshold=3000)

    @breaker
    def suc_() -> bool:
        return True

    def trigger_success() -> None:
        for _ in range(500):
            suc_()

    run_threads(trigger_success, 3)
    assert breaker.stats.successful_calls == 1500


def test_concurrent_probes_turn_the_breaker_half_open_only_once() -> None:
    # pybreaker: test_half_open_thread_safety
    clock = VirtualClock()
    half_opened: list[CircuitState] = []
    breaker = make(clock, failure_threshold=1, recovery_timeout=0.01, half_open_max_calls=1,
                   on_state_change=lambda b, old, new: half_opened.append(new)
                   if new is HALF_OPEN else None)
    fail(breaker, 1)
    clock.advance(0.01)
    start = threading.Barrier(5)

    @breaker
    def err_() -> None:
        raise Exception

    def trigger_failure() -> None:
        start.wait(timeout=10)
        with contextlib.suppress(Exception):
            err_()

    run_threads(trigger_failure, 5)
    assert half_opened == [HALF_OPEN]
    assert breaker.state is OPEN


def test_the_breaker_stops_calling_once_failures_reach_the_threshold() -> None:
    # pybreaker: test_fail_max_thread_safety
    # Differs: pybreaker asserts fail_counter == fail_max while open; buttress
    # starts fresh counts on each trip, so check what that guarantees: it
    # tripped once and turned most calls away without running them.
    breaker = make(failure_threshold=30, recovery_timeout=3600)
    ran = itertools.count()

    @breaker
    def err_() -> None:
        next(ran)
        raise Exception

    def trigger_error() -> None:
        for _ in range(2000):
            with contextlib.suppress(Exception):
                err_()

    run_threads(trigger_error, 3)
    stats = breaker.stats
    assert stats.trips == 1
    assert stats.state is OPEN
    ran_calls = next(ran)
    assert stats.failed_calls == ran_calls
    assert stats.rejected_calls == 6000 - ran_calls
    assert ran_calls < 6000


# --- CircuitBreakerContextManagerTestCase -------------------------------------------------


def test_the_with_form_counts_failures_and_rejects_while_open() -> None:
    # pybreaker: CircuitBreakerContextManagerTestCase::test_calling
    # Differs: the tripping block raises its own error, not CircuitBreakerError.
    clock = VirtualClock()
    breaker = make(clock, failure_threshold=2, recovery_timeout=0.01, success_threshold=1)
    ran = Calls()

    class TestError(Exception):
        pass

    def do_raise() -> None:
        with breaker:
            raise TestError

    def do_succeed() -> None:
        with breaker:
            ran()

    with pytest.raises(TestError):
        do_raise()
    with pytest.raises(TestError):
        do_raise()
    assert breaker.stats.failed_calls == 2
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError):
        do_succeed()
    assert ran.count == 0
    clock.advance(0.01)
    do_succeed()
    assert ran.count == 1
    assert breaker.stats.failure_count == 0
    assert breaker.state is CLOSED
