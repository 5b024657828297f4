"""stamina's test suite (tests/test_sync.py, test_async.py, test_instrumentation.py,
test_config.py), translated onto buttress.

stamina names: ``on=`` is ``exceptions=`` (a class or tuple) or
``retry_condition=`` (a predicate); ``attempts`` is ``max_attempts``;
``timeout`` is ``deadline``; ``wait_initial``/``wait_max``/``wait_exp_base``/
``wait_jitter`` are ``base_delay``/``max_delay``/``exponential_base``/``jitter``;
``retry_context`` is ``Retry(...).attempts()``; ``RetryingCaller`` is
``Retry(...).call``; a backoff hook (``on=`` returning seconds) is
``retry_after=``; ``set_active(False)`` is ``configure(resilience_enabled=False)``
for the ``resilient(...)`` family; on-retry hooks are ``RetryScheduled``
listeners.

One difference recurs: stamina ends with the last exception itself; buttress
raises ``RetryExhaustedError`` unless ``reraise=True`` is asked for (the
seeds' rule), so tests that expect the original ask for ``reraise=True``.

``set_testing()``/``is_testing()`` are ``buttress.testing``'s (``testing()`` is
the block form). Not translated (features buttress lacks): ``Attempt.next_wait``,
and stamina's pluggable hook registry (``set_on_retry_hooks``, ``RetryHookFactory``,
context-manager hooks, Prometheus/structlog autodetection).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
from collections.abc import Callable
from typing import Any

import pytest

from buttress import (
    ConfigurationError,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    configure,
    resilient,
    retry,
)
from buttress.events import AttemptStarted, RetryScheduled
from buttress.testing import VirtualClock, is_testing, set_testing

ON_SPELLINGS: list[dict[str, Any]] = [
    {"exceptions": ValueError},
    {"exceptions": (ValueError,)},
    {"retry_condition": lambda exc: isinstance(exc, ValueError)},
]


@pytest.fixture(params=ON_SPELLINGS, ids=["class", "tuple", "predicate"])
def on(request: pytest.FixtureRequest) -> dict[str, Any]:
    """stamina's ``on`` fixture: every way to say what to retry."""
    return dict(request.param)


def fails_once(result: Any = 42, exc: type[Exception] = ValueError) -> Callable[..., Any]:
    calls = 0

    def f(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise exc
        return result

    f.calls = lambda: calls  # type: ignore[attr-defined]
    return f


# --- test_sync.py -------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [1, 3])
@pytest.mark.parametrize("deadline", [None, 1, dt.timedelta(days=1).total_seconds()])
@pytest.mark.parametrize("delay", [1, dt.timedelta(days=1).total_seconds()])
def test_a_call_without_error_returns_its_value(
    attempts: int, deadline: float | None, delay: float
) -> None:
    # stamina: test_sync.py::test_ok
    # Differs: stamina accepts attempts None/-1/0 (unbounded); buttress refuses
    # non-positive attempts and allows None only with a deadline.
    @retry(exceptions=Exception, max_attempts=attempts, deadline=deadline, base_delay=delay,
           max_delay=delay, clock=VirtualClock())
    def f() -> int:
        return 42

    assert f() == 42


@pytest.mark.parametrize("deadline", [0, 0.0, -1])
def test_a_zero_deadline_is_refused_at_configuration(deadline: float) -> None:
    # stamina: test_sync.py::test_timeout_zero_warns
    # Differs: stamina warns that timeout=0 means no retries; buttress refuses
    # it with an error naming the field.
    with pytest.raises(ConfigurationError, match="deadline"):
        RetryConfig(exceptions=ValueError, deadline=deadline)


@pytest.mark.parametrize("deadline", [None, 1, dt.timedelta(days=1).total_seconds()])
def test_the_named_error_is_retried(deadline: float | None, on: dict[str, Any]) -> None:
    # stamina: test_sync.py::test_retries
    clock = VirtualClock()
    f = fails_once()
    assert retry(deadline=deadline, base_delay=0, max_delay=0, clock=clock, **on)(f)() == 42
    assert f.calls() == 2  # type: ignore[attr-defined]
    assert clock.sleeps == []


def test_other_errors_pass_through(on: dict[str, Any]) -> None:
    # stamina: test_sync.py::test_wrong_exception
    @retry(clock=VirtualClock(), **on)
    def f() -> None:
        raise TypeError("passed")

    with pytest.raises(TypeError, match="passed"):
        f()


def test_when_resilience_is_switched_off_nothing_is_retried() -> None:
    # stamina: test_sync.py::test_retry_inactive (set_active(False))
    # (the switch covers the resilient()/preset family; a bare @retry always retries)
    num_called = 0

    @resilient(operation_type="api", max_attempts=3, base_delay=0,
               enable_circuit_breaker=False, enable_timeout=False, clock=VirtualClock())
    def f() -> None:
        nonlocal num_called
        num_called += 1
        raise Exception("passed")

    configure(resilience_enabled=False)
    with pytest.raises(Exception, match="passed"):
        f()
    assert num_called == 1


def test_when_resilience_is_switched_off_the_happy_path_still_works() -> None:
    # stamina: test_sync.py::test_retry_inactive_ok
    num_called = 0

    @resilient(operation_type="api", max_attempts=3, enable_circuit_breaker=False,
               enable_timeout=False, clock=VirtualClock())
    def f() -> int:
        nonlocal num_called
        num_called += 1
        return 42

    configure(resilience_enabled=False)
    assert f() == 42
    assert num_called == 1


def test_attempt_blocks_are_retried_and_numbered(on: dict[str, Any]) -> None:
    # stamina: test_sync.py::test_retry_block
    i = 0
    for attempt in Retry(base_delay=0, max_delay=0, clock=VirtualClock(), **on).attempts():
        with attempt:
            i += 1
            assert i == attempt.number
            if i < 2:
                raise ValueError
    assert i == 2


def test_the_next_wait_is_announced_before_it_starts() -> None:
    # stamina: test_sync.py::test_next_wait (Attempt.next_wait there; the
    # RetryScheduled event carries it here)
    clock = VirtualClock()
    strategy = Retry(exceptions=ValueError, base_delay=0.0001, max_delay=0.0001, jitter=0,
                     clock=clock)
    announced: list[float] = []
    strategy.events.add(lambda e: announced.append(e.delay), RetryScheduled)
    for attempt in strategy.attempts():
        with attempt:
            if attempt.number == 1:
                raise ValueError
    assert announced == [pytest.approx(0.0001)]
    assert clock.sleeps == announced


def test_every_computed_delay_is_clamped_to_max_delay() -> None:
    # stamina: test_sync.py::test_backoff_computation_clamps
    config = RetryConfig(exceptions=ValueError, max_delay=0.42, jitter=1.0)
    exact = config.replace(jitter=0)
    for i in range(1, 10):
        assert exact.delay_for(i) <= 0.42
        assert config.delay_for(i) <= 0.42


def test_delays_for_attempt_numbers_past_1024_do_not_overflow() -> None:
    # stamina: test_sync.py::test_backoff_no_overflow_on_high_attempt_numbers
    config = RetryConfig(exceptions=ValueError, max_delay=5.0, jitter=0)
    jittered = config.replace(jitter=1.0)
    for num in (1025, 2000, 10_000):
        assert config.delay_for(num) == 5.0
        assert 0 <= jittered.delay_for(num) <= 5.0


def test_call_runs_a_function_and_returns_its_value() -> None:
    # stamina: test_sync.py::TestRetryingCaller::test_ok
    assert Retry(exceptions=Exception, clock=VirtualClock()).call(lambda: 42) == 42


def test_call_retries_and_passes_arguments_through(on: dict[str, Any]) -> None:
    # stamina: test_sync.py::TestRetryingCaller::test_retries
    f = fails_once(result=None)

    def echo(*args: Any, **kw: Any) -> Any:
        f()
        return args, kw

    args, kw = Retry(base_delay=0, max_delay=0, clock=VirtualClock(), **on).call(
        echo, 42, foo="bar")
    assert args == (42,)
    assert kw == {"foo": "bar"}
    assert f.calls() == 2  # type: ignore[attr-defined]


def test_the_repr_shows_the_configuration() -> None:
    # stamina: test_sync.py::TestRetryingCaller::test_repr
    r = repr(Retry(max_attempts=42, deadline=13.0, base_delay=23, max_delay=123, jitter=0.42,
                   exponential_base=666))
    for part in ("max_attempts=42", "deadline=13.0", "base_delay=23", "max_delay=123",
                 "jitter=0.42", "exponential_base=666"):
        assert part in r


def test_a_generator_function_is_retried_or_refused(on: dict[str, Any]) -> None:
    # stamina: test_sync.py::TestGeneratorFunctionDecoration::test_retries,
    # test_retries_also_after_yields, test_wrong_exception,
    # test_wrapper_passes_through_return_value
    # stamina retries the whole iteration; buttress may instead refuse
    # generator functions at decoration. What it must not do is accept one and
    # leave the iteration unprotected.
    i = 0

    def f() -> Any:
        yield 42
        nonlocal i
        if i < 1:
            i += 1
            raise ValueError

    try:
        protected = retry(base_delay=0, clock=VirtualClock(), **on)(f)
    except TypeError:
        return
    assert list(protected()) == [42, 42]
    assert i == 1


class CustomBackoffError(Exception):
    def __init__(self, backoff: float) -> None:
        self.backoff = backoff
        super().__init__(f"Retry after {backoff}s")


def test_a_delay_hook_returning_zero_skips_the_wait() -> None:
    # stamina: test_sync.py::TestBackoffHookSync::test_backoff_hook_returns_float
    attempts = 0
    clock = VirtualClock()

    @retry(retry_after=lambda exc: 0.0, base_delay=5, max_attempts=3, clock=clock)
    def f() -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ValueError("retry")
        return 42

    assert f() == 42
    assert attempts == 3
    assert clock.sleeps == []


def test_a_delay_hook_can_read_the_delay_off_the_exception() -> None:
    # stamina: test_sync.py::TestBackoffHookSync::
    #     test_backoff_hook_custom_backoff_from_exception
    attempts = 0
    clock = VirtualClock()

    def hook(exc: Exception) -> float | None:
        return exc.backoff if isinstance(exc, CustomBackoffError) else None

    @retry(retry_after=hook, max_attempts=3, base_delay=5, clock=clock)
    def f() -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 2:
            raise CustomBackoffError(0.25)
        return 42

    assert f() == 42
    assert attempts == 2
    assert clock.sleeps == [0.25]


def test_a_retry_after_attribute_sets_the_delay_without_a_hook() -> None:
    # stamina: test_sync.py::TestBackoffHookSync::test_backoff_hook_returns_timedelta
    # (buttress reads a ``retry_after`` attribute in seconds, capped by max_delay)
    class Throttled(Exception):
        retry_after = 7.0

    clock = VirtualClock()
    f = fails_once(exc=Throttled)
    assert retry(max_attempts=3, base_delay=5, max_delay=6, clock=clock)(f)() == 42
    assert clock.sleeps == [6]


def test_a_delay_hook_works_in_attempt_blocks() -> None:
    # stamina: test_sync.py::TestBackoffHookSync::test_backoff_hook_with_retry_context
    attempts = 0
    clock = VirtualClock()
    for attempt in Retry(retry_after=lambda exc: 0.5, base_delay=5, max_attempts=3,
                         clock=clock).attempts():
        with attempt:
            attempts += 1
            if attempts < 2:
                raise ValueError("retry")
    assert attempts == 2
    assert clock.sleeps == [0.5]


def test_a_delay_hook_returning_none_falls_back_to_the_schedule() -> None:
    # stamina: test_sync.py::TestBackoffHookSync::test_backoff_hook_returns_none
    # Differs: stamina warns and stops retrying on None; in buttress None means
    # "no hint", so the regular schedule applies.
    clock = VirtualClock()

    @retry(retry_after=lambda exc: None, max_attempts=3, base_delay=1, jitter=0, clock=clock,
           reraise=True)
    def f() -> None:
        raise ValueError("retry")

    with pytest.raises(ValueError):
        f()
    assert clock.sleeps == [1, 2]


def test_after_the_last_attempt_the_original_error_is_available() -> None:
    # stamina: test_sync.py::test_retries (the last error reaches the caller)
    # Differs: stamina raises it as is; buttress wraps it in RetryExhaustedError
    # (reraise=True gives the stamina behaviour).
    @retry(exceptions=ValueError, max_attempts=2, base_delay=0, clock=VirtualClock())
    def f() -> None:
        raise ValueError("last")

    with pytest.raises(RetryExhaustedError) as info:
        f()
    assert str(info.value.last_exception) == "last"
    reraising = retry(exceptions=ValueError, max_attempts=2, base_delay=0, reraise=True,
                      clock=VirtualClock())(f.__wrapped__)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="last"):
        reraising()


# --- test_async.py --------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [1, 3])
@pytest.mark.parametrize("deadline", [None, 1])
async def test_a_coroutine_and_a_method_without_error_return_their_value(
    attempts: int, deadline: float | None
) -> None:
    # stamina: test_async.py::test_ok
    class C:
        @retry(exceptions=Exception, max_attempts=attempts, deadline=deadline,
               clock=VirtualClock())
        async def f(self) -> int:
            return 42

    @retry(exceptions=Exception, max_attempts=attempts, deadline=deadline, clock=VirtualClock())
    async def f() -> int:
        return 42

    assert await f() == 42
    assert await C().f() == 42


async def test_a_coroutine_is_retried_on_the_named_error(on: dict[str, Any]) -> None:
    # stamina: test_async.py::test_retries
    i = 0

    @retry(base_delay=0, max_delay=0, clock=VirtualClock(), **on)
    async def f() -> int:
        nonlocal i
        if i == 0:
            i += 1
            raise ValueError
        return 42

    assert await f() == 42
    assert i == 1


async def test_a_coroutine_method_is_retried(on: dict[str, Any]) -> None:
    # stamina: test_async.py::test_retries_method
    i = 0

    class C:
        @retry(base_delay=0, clock=VirtualClock(), **on)
        async def f(self) -> int:
            nonlocal i
            if i == 0:
                i += 1
                raise ValueError
            return 42

    assert await C().f() == 42
    assert i == 1


async def test_a_coroutine_lets_other_errors_through(on: dict[str, Any]) -> None:
    # stamina: test_async.py::test_wrong_exception
    @retry(clock=VirtualClock(), **on)
    async def f() -> None:
        raise TypeError("passed")

    with pytest.raises(TypeError, match="passed"):
        await f()


async def test_when_switched_off_a_coroutine_is_called_once() -> None:
    # stamina: test_async.py::test_retry_inactive
    num_called = 0

    @resilient(operation_type="api", max_attempts=3, base_delay=0,
               enable_circuit_breaker=False, enable_timeout=False, clock=VirtualClock())
    async def f() -> None:
        nonlocal num_called
        num_called += 1
        raise Exception("passed")

    configure(resilience_enabled=False)
    with pytest.raises(Exception, match="passed"):
        await f()
    assert num_called == 1


async def test_async_attempt_blocks_are_retried_and_numbered(on: dict[str, Any]) -> None:
    # stamina: test_async.py::test_retry_block
    num_called = 0
    async for attempt in Retry(base_delay=0, clock=VirtualClock(), **on).attempts_async():
        with attempt:
            num_called += 1
            assert num_called == attempt.number
            if num_called < 2:
                raise ValueError
    assert num_called == 2


async def test_acall_retries_and_passes_arguments_through(on: dict[str, Any]) -> None:
    # stamina: test_async.py::TestAsyncRetryingCaller::test_retries
    i = 0

    async def f(*args: Any, **kw: Any) -> Any:
        nonlocal i
        if i < 1:
            i += 1
            raise ValueError
        return args, kw

    args, kw = await Retry(base_delay=0, clock=VirtualClock(), **on).acall(f, 42, foo="bar")
    assert i == 1
    assert args == (42,)
    assert kw == {"foo": "bar"}


async def test_a_delay_hook_sets_the_async_wait() -> None:
    # stamina: test_async.py::test_backoff_hook_returns_float_async
    attempts = 0
    clock = VirtualClock()

    @retry(retry_after=lambda exc: 0.25, base_delay=5, max_attempts=3, clock=clock)
    async def f() -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ValueError("retry")
        return 42

    assert await f() == 42
    assert clock.sleeps == [0.25, 0.25]


async def test_an_async_generator_function_is_retried_or_refused(on: dict[str, Any]) -> None:
    # stamina: test_async.py::TestAsyncGeneratorFunctionDecoration::test_retries,
    # test_retries_also_after_yields
    i = 0

    async def f() -> Any:
        yield 42
        nonlocal i
        if i < 1:
            i += 1
            raise ValueError

    try:
        protected = retry(base_delay=0, clock=VirtualClock(), **on)(f)
    except TypeError:
        return
    assert [x async for x in protected()] == [42, 42]
    assert i == 1


# --- test_instrumentation.py -------------------------------------------------------------


class Foo:
    def method(self) -> None:
        pass

    async def async_method(self) -> None:
        pass


def function() -> None:
    pass


@pytest.mark.parametrize(
    ("obj", "args", "name"),
    [(function, (), "function"), (Foo().method, (), "Foo.method"),
     (Foo.method, (Foo(),), "Foo.method"), (Foo().async_method, (), "Foo.async_method")],
)
def test_retries_are_reported_under_the_qualified_function_name(
    obj: Callable[..., Any], args: tuple[Any, ...], name: str
) -> None:
    # stamina: test_instrumentation.py::TestGuessName::test_module_scope
    seen: list[str | None] = []
    strategy = Retry(max_attempts=1, clock=VirtualClock())
    strategy.events.add(lambda e: seen.append(e.name), AttemptStarted)
    result = strategy(obj)(*args)
    if inspect.iscoroutine(result):
        asyncio.run(result)
    assert seen == [f"{__name__}.{name}"]


def test_local_functions_are_named_with_their_scope() -> None:
    # stamina: test_instrumentation.py::TestGuessName::test_local
    def f() -> None:
        pass

    seen: list[str | None] = []
    strategy = Retry(max_attempts=1, clock=VirtualClock())
    strategy.events.add(lambda e: seen.append(e.name), AttemptStarted)
    strategy(f)()
    assert seen == [f"{__name__}.test_local_functions_are_named_with_their_scope.<locals>.f"]


def test_sync_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    # stamina: test_instrumentation.py::TestLogging::test_sync
    # Differs: stamina logs one "retry_scheduled" record; buttress logs the
    # retry and then the give-up, both at WARNING under "buttress".
    @retry(exceptions=ValueError, max_delay=0, base_delay=0, max_attempts=2,
           clock=VirtualClock())
    def f() -> None:
        raise ValueError

    with caplog.at_level(logging.INFO, logger="buttress"), pytest.raises(RetryExhaustedError):
        f()
    records = [(r.name, r.levelno) for r in caplog.records if r.name == "buttress"]
    assert records == [("buttress", logging.WARNING), ("buttress", logging.WARNING)]
    assert "retrying" in caplog.records[0].getMessage()
    assert "giving up" in caplog.records[1].getMessage()


async def test_async_retries_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    # stamina: test_instrumentation.py::TestLogging::test_async
    @retry(exceptions=ValueError, base_delay=0, max_attempts=2, clock=VirtualClock())
    async def f() -> None:
        raise ValueError

    with caplog.at_level(logging.INFO, logger="buttress"), pytest.raises(RetryExhaustedError):
        await f()
    messages = [r.getMessage() for r in caplog.records if r.name == "buttress"]
    assert len(messages) == 2
    assert "retrying" in messages[0]


def test_an_on_retry_listener_gets_the_details_of_each_retry() -> None:
    # stamina: test_instrumentation.py::TestSetOnRetryHooks::test_context_manager_hooks
    # (the RetryDetails there: name, retry_num, wait_for, caused_by)
    details: list[RetryScheduled] = []

    def f() -> None:
        raise ValueError

    strategy = Retry(exceptions=ValueError, base_delay=0, max_attempts=2, clock=VirtualClock())
    strategy.events.add(details.append, RetryScheduled)
    with pytest.raises(RetryExhaustedError):
        strategy(f)()
    assert len(details) == 1
    event = details[0]
    assert event.name == f"{__name__}.test_an_on_retry_listener_gets_the_details_of_each_retry" \
        ".<locals>.f"
    assert (event.attempt, event.delay) == (1, 0.0)
    assert isinstance(event.exception, ValueError)


def test_a_listener_that_raises_does_not_break_the_call() -> None:
    # stamina: test_instrumentation.py (hooks are called for their side effects;
    # a broken hook must not change the outcome)
    def broken(event: RetryScheduled) -> None:
        raise RuntimeError("hook bug")

    strategy = Retry(exceptions=ValueError, base_delay=0, max_attempts=2, clock=VirtualClock())
    strategy.events.add(broken, RetryScheduled)
    f = fails_once()
    assert strategy(f)() == 42


# --- test_config.py -------------------------------------------------------------------


def test_resilience_can_be_switched_off_and_on_again() -> None:
    # stamina: test_config.py::test_activate_deactivate
    from buttress import get_settings

    assert get_settings().resilience_enabled
    configure(resilience_enabled=False)
    assert not get_settings().resilience_enabled
    configure(resilience_enabled=True)
    assert get_settings().resilience_enabled


# --- test mode (test_config.py::TestTesting, test_sync.py::test_testing_mode) ----------


@pytest.mark.parametrize(("configured", "testing", "cap", "expected"), [
    (1, 2, True, 1), (3, 2, True, 2), (1, 2, False, 2), (3, 2, False, 2),
])
def test_test_mode_attempts_with_and_without_cap(configured: int, testing: int, cap: bool,
                                                 expected: int) -> None:
    # stamina: test_config.py::TestTesting::test_cap_true / test_cap_false
    calls = 0

    @retry(exceptions=ValueError, max_attempts=configured, base_delay=10.0)
    def f() -> None:
        nonlocal calls
        calls += 1
        raise ValueError

    with set_testing(True, attempts=testing, cap=cap), pytest.raises(RetryExhaustedError):
        f()
    assert calls == expected


def test_test_mode_with_cap_and_no_attempt_limit_uses_the_testing_value() -> None:
    # stamina: test_config.py::TestTesting::test_cap_true_with_none
    calls = 0

    @retry(exceptions=ValueError, max_attempts=None, deadline=60.0, base_delay=10.0)
    def f() -> None:
        nonlocal calls
        calls += 1
        raise ValueError

    with set_testing(True, attempts=5, cap=True), pytest.raises(RetryExhaustedError):
        f()
    assert calls == 5


def test_test_mode_as_a_context_manager_restores_the_mode() -> None:
    # stamina: test_config.py::test_testing_mode_context
    assert not is_testing()
    with set_testing(True, attempts=3):
        assert is_testing()
    assert not is_testing()
