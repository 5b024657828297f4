"""Retry for coroutine functions: the async spellings, ``async_retry_with_backoff``'s
result object, exact waits on a virtual clock, cancellation (never retried, and a
cancelled wait stops retrying), interrupts, and exact counts under 1,000 tasks."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Coroutine
from typing import Any

import pytest

from _support import Fatal, Flaky, NoSleepClock, Throttled
from buttress import (
    CircuitBreakerError,
    CircuitState,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    RetryResult,
    RetryStrategy,
    async_retry,
    async_retry_with_backoff,
    is_transient,
    retry,
    retry_sync,
    retry_with_backoff,
    with_retry,
)
from buttress.testing import VirtualClock


class BlockingClock(VirtualClock):
    """A virtual clock whose async waits block until the test releases them, so a
    test can act (cancel) while a retry is waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()
        self.release = asyncio.Event()

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await self.release.wait()
        self.advance(seconds)


class AsyncScript:
    """An async callable playing its outcomes in order (raising exceptions,
    returning anything else), then returning ``then``."""

    def __init__(self, *outcomes: object, then: object = "ok",
                 clock: VirtualClock | None = None, cost: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.then = then
        self.calls = 0
        self.seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.clock = clock
        self.cost = cost

    async def __call__(self, *args: Any, **kwargs: Any) -> object:
        self.calls += 1
        self.seen.append((args, kwargs))
        if self.clock is not None and self.cost:
            self.clock.advance(self.cost)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return self.then


def always(exc_type: type[BaseException] = Flaky, **kwargs: Any) -> AsyncScript:
    return AsyncScript(*(exc_type(f"failure {n + 1}") for n in range(1000)), **kwargs)


def exact(clock: VirtualClock, **options: Any) -> Retry:
    options.setdefault("jitter", 0)
    return Retry(clock=clock, **options)


def run_without_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends, outside any event loop, so that
    ``KeyboardInterrupt`` and ``SystemExit`` reach the test instead of the loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the coroutine suspended")


# --- decorating coroutine functions ------------------------------------------------------


async def test_retry_on_a_coroutine_function_returns_a_coroutine_function() -> None:
    async def fetch() -> str:
        return "ok"

    wrapped = retry(max_attempts=2)(fetch)
    assert inspect.iscoroutinefunction(wrapped)
    assert await wrapped() == "ok"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (RetryStrategy.EXPONENTIAL_BACKOFF, [1.0, 2.0, 4.0, 8.0]),
        ("linear", [1.0, 2.0, 3.0, 4.0]),
        (RetryStrategy.CONSTANT, [1.0, 1.0, 1.0, 1.0]),
    ],
)
async def test_async_waits_follow_the_exact_schedule(
    strategy: RetryStrategy | str, expected: list[float]
) -> None:
    clock = VirtualClock()
    fn = always()
    with pytest.raises(RetryExhaustedError) as info:
        await exact(clock, max_attempts=5, base_delay=1.0, strategy=strategy)(fn)()
    assert fn.calls == 5
    assert info.value.attempts == 5
    assert clock.sleeps == expected


async def test_async_waits_are_capped_at_max_delay() -> None:
    clock = VirtualClock()
    with pytest.raises(RetryExhaustedError):
        await exact(clock, max_attempts=6, base_delay=1.0, max_delay=3.0)(always())()
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


async def test_an_async_call_that_recovers_returns_its_value() -> None:
    clock = VirtualClock()
    fn = AsyncScript(Flaky(), Flaky(), then="payload")
    assert await exact(clock, max_attempts=3, base_delay=0.5)(fn)("a", k=1) == "payload"
    assert fn.seen == [(("a",), {"k": 1})] * 3
    assert clock.sleeps == [0.5, 1.0]


async def test_async_retry_takes_a_positional_config() -> None:
    clock = VirtualClock()
    fn = always()
    wrapped = async_retry(RetryConfig(max_attempts=3, base_delay=1.0, jitter=0), clock=clock)(fn)
    with pytest.raises(RetryExhaustedError):
        await wrapped()
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_async_retry_refuses_a_plain_function() -> None:
    def fetch() -> str:
        return "sync"

    with pytest.raises(TypeError, match="coroutine function"):
        async_retry(max_attempts=3)(fetch)


async def test_retry_sync_refuses_a_coroutine_function() -> None:
    async def fetch() -> str:
        return "async"

    with pytest.raises(TypeError, match="retry_sync"):
        retry_sync(max_attempts=3)(fetch)


async def test_with_retry_retries_a_coroutine_function() -> None:
    clock = VirtualClock()
    fn = AsyncScript(TimeoutError(), ConnectionError(), then="data")
    wrapped = with_retry(max_attempts=3, base_delay=0.1, jitter=0, clock=clock,
                         retry_on=(TimeoutError, ConnectionError))(fn)
    assert await wrapped() == "data"
    assert clock.sleeps == [0.1, 0.2]


async def test_retry_with_backoff_takes_a_config_and_a_predicate_for_async_functions() -> None:
    clock = VirtualClock()
    fatal = Fatal("not transient")
    fn = AsyncScript(ConnectionError(), fatal)
    wrapped = retry_with_backoff(config=RetryConfig(max_attempts=5, base_delay=1.0, jitter=0),
                                 retry_predicate=is_transient, clock=clock)(fn)
    with pytest.raises(Fatal) as info:
        await wrapped()
    assert info.value is fatal
    assert fn.calls == 2
    assert clock.sleeps == [1.0]


async def test_a_partial_of_a_coroutine_function_is_retried_as_async() -> None:
    async def fetch(host: str, path: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Flaky()
        return host + path

    calls = 0
    wrapped = retry(max_attempts=2, base_delay=0, clock=NoSleepClock())(
        functools.partial(fetch, "example.test")
    )
    assert await wrapped("/x") == "example.test/x"
    assert calls == 2


@pytest.mark.parametrize(
    "decorate",
    [retry, retry(max_attempts=2), async_retry(RetryConfig()), with_retry(max_attempts=2),
     retry_with_backoff(RetryConfig(), retry_predicate=is_transient)],
    ids=["bare", "kwargs", "async_retry", "with_retry", "rwb"],
)
async def test_decorating_a_coroutine_function_keeps_its_metadata(decorate: Any) -> None:
    async def load_user(user_id: int) -> str:
        """Load one user."""
        return f"user {user_id}"

    wrapped = decorate(load_user)
    assert wrapped.__name__ == "load_user"
    assert wrapped.__doc__ == "Load one user."
    assert wrapped.__wrapped__ is load_user
    assert inspect.iscoroutinefunction(wrapped)
    assert await wrapped(3) == "user 3"


# --- async_retry_with_backoff ------------------------------------------------------------


async def test_async_retry_with_backoff_reports_success_with_the_attempt_count() -> None:
    clock = VirtualClock()
    fn = AsyncScript(Flaky(), Flaky(), then={"id": 9})
    result = await async_retry_with_backoff(fn, "arg", max_attempts=3, base_delay=1.0,
                                            jitter=0, clock=clock)
    assert result == RetryResult(success=True, value={"id": 9}, attempts=3, last_exception=None)
    assert fn.seen == [(("arg",), {})] * 3
    assert clock.sleeps == [1.0, 2.0]


async def test_async_retry_with_backoff_returns_failure_instead_of_raising() -> None:
    clock = VirtualClock()
    failures = [ConnectionError("1"), ConnectionError("2"), ConnectionError("3")]
    result = await async_retry_with_backoff(AsyncScript(*failures), max_attempts=3,
                                            base_delay=1.0, jitter=0, clock=clock,
                                            exceptions=(ConnectionError,))
    assert result.success is False
    assert result.value is None
    assert result.attempts == 3
    assert result.last_exception is failures[2]
    assert clock.sleeps == [1.0, 2.0]


async def test_async_retry_with_backoff_stops_at_a_non_retryable_failure() -> None:
    fatal = Fatal("no")
    fn = AsyncScript(Flaky(), fatal)
    result = await async_retry_with_backoff(fn, max_attempts=5, base_delay=0,
                                            exceptions=(Flaky,), clock=NoSleepClock())
    assert (result.success, result.attempts, result.last_exception) == (False, 2, fatal)


async def test_async_retry_with_backoff_accepts_a_config() -> None:
    clock = VirtualClock()
    config = RetryConfig(max_attempts=2, initial_delay=0.25, jitter=False)
    result = await async_retry_with_backoff(always(), config=config, clock=clock)
    assert (result.success, result.attempts) == (False, 2)
    assert isinstance(result.last_exception, Flaky)
    assert clock.sleeps == [0.25]


async def test_async_retry_with_backoff_lets_cancellation_through() -> None:
    cancelled = asyncio.CancelledError()
    fn = AsyncScript(cancelled)
    with pytest.raises(asyncio.CancelledError) as info:
        await async_retry_with_backoff(fn, max_attempts=5, base_delay=0, clock=NoSleepClock())
    assert info.value is cancelled
    assert fn.calls == 1


# --- filtering, results, hints, deadlines, callbacks -------------------------------------


async def test_an_async_non_retryable_exception_is_raised_unwrapped_after_one_attempt() -> None:
    clock = VirtualClock()
    failure = ValueError("bad")
    fn = AsyncScript(failure)
    wrapped = exact(clock, max_attempts=5, base_delay=1.0, non_retryable_exceptions=ValueError)
    with pytest.raises(ValueError) as info:
        await wrapped(fn)()
    assert info.value is failure
    assert fn.calls == 1
    assert clock.sleeps == []


async def test_async_reraise_raises_the_last_exception_itself() -> None:
    failures = [Flaky("1"), Flaky("2")]
    with pytest.raises(Flaky) as info:
        await exact(VirtualClock(), max_attempts=2, base_delay=1.0,
                    reraise=True)(AsyncScript(*failures))()
    assert info.value is failures[1]
    assert failures[1].__context__ is None


async def test_async_exhaustion_is_chained_to_the_last_failure_only() -> None:
    failures = [Flaky("1"), Flaky("2"), Flaky("3")]
    with pytest.raises(RetryExhaustedError) as info:
        await exact(VirtualClock(), max_attempts=3, base_delay=1.0)(AsyncScript(*failures))()
    assert info.value.last_exception is failures[2]
    assert info.value.__cause__ is failures[2]
    assert all(exc.__context__ is None for exc in failures)


async def test_async_retry_on_result_retries_rejected_values_then_gives_up() -> None:
    clock = VirtualClock()
    fn = AsyncScript(then=[])
    wrapped = exact(clock, max_attempts=3, base_delay=1.0, retry_on_result=lambda v: v == [])
    with pytest.raises(RetryExhaustedError) as info:
        await wrapped(fn)()
    assert info.value.last_result == []
    assert info.value.last_exception is None
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 2.0]


async def test_async_retry_on_result_returns_the_first_accepted_value() -> None:
    fn = AsyncScript(None, then="ready")
    wrapped = exact(VirtualClock(), max_attempts=3, base_delay=1.0,
                    retry_on_result=lambda v: v is None)(fn)
    assert await wrapped() == "ready"
    assert fn.calls == 2


async def test_async_retry_honours_retry_after_capped_at_max_delay() -> None:
    clock = VirtualClock()
    fn = AsyncScript(Throttled(2.0), Throttled(120.0), then="ok")
    assert await exact(clock, max_attempts=3, base_delay=1.0, max_delay=30.0)(fn)() == "ok"
    assert clock.sleeps == [2.0, 30.0]


async def test_async_open_circuit_errors_are_not_retried_by_default() -> None:
    rejection = CircuitBreakerError("api", CircuitState.OPEN, 5.0)
    fn = AsyncScript(rejection)
    with pytest.raises(CircuitBreakerError):
        await exact(VirtualClock(), max_attempts=3, base_delay=1.0)(fn)()
    assert fn.calls == 1


async def test_an_async_deadline_stops_when_the_next_wait_would_pass_it() -> None:
    clock = VirtualClock()
    fn = always(clock=clock, cost=1.0)
    wrapped = exact(clock, max_attempts=None, base_delay=1.0, strategy="fixed_delay",
                    deadline=5.0)(fn)
    with pytest.raises(RetryExhaustedError) as info:
        await wrapped()
    assert fn.calls == 3
    assert info.value.attempts == 3
    assert clock.sleeps == [1.0, 1.0]


async def test_async_callbacks_get_exact_arguments() -> None:
    clock = VirtualClock()
    events: list[tuple[Any, ...]] = []
    failures = [Flaky("1"), Flaky("2")]
    wrapped = exact(
        clock, max_attempts=3, base_delay=1.0,
        on_retry=lambda attempt, exc: events.append(("retry", attempt, exc)),
        on_failure=lambda attempts, exc: events.append(("failure", attempts, exc)),
        on_success=lambda attempts, duration: events.append(("success", attempts, duration)),
    )
    fn = AsyncScript(*failures, then="ok", clock=clock, cost=0.5)
    assert await wrapped(fn)() == "ok"
    assert events == [("retry", 1, failures[0]), ("retry", 2, failures[1]), ("success", 3, 4.5)]

    events.clear()
    last = [Flaky("a"), Flaky("b"), Flaky("c")]
    with pytest.raises(RetryExhaustedError):
        await wrapped(AsyncScript(*last))()
    assert events == [("retry", 1, last[0]), ("retry", 2, last[1]), ("failure", 3, last[2])]


async def test_an_async_callback_that_raises_does_not_break_the_call() -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("observer bug")

    wrapped = exact(VirtualClock(), max_attempts=2, base_delay=1.0,
                    on_retry=broken, on_success=broken, on_failure=broken)
    assert await wrapped(AsyncScript(Flaky()))() == "ok"
    with pytest.raises(RetryExhaustedError):
        await wrapped(always())()


@pytest.mark.parametrize("strategy", list(RetryStrategy))
async def test_zero_delay_async_retries_never_call_sleep(strategy: RetryStrategy) -> None:
    fn = AsyncScript(Flaky(), Flaky(), then="ok")
    wrapped = retry(max_attempts=3, base_delay=0.0, strategy=strategy, clock=NoSleepClock())(fn)
    assert await wrapped() == "ok"
    assert fn.calls == 3


# --- cancellation and interrupts ---------------------------------------------------------


async def test_cancellation_raised_by_the_call_is_never_retried() -> None:
    cancelled = asyncio.CancelledError()
    fn = AsyncScript(cancelled)
    failures: list[Any] = []
    wrapped = exact(VirtualClock(), max_attempts=5, base_delay=1.0, exceptions=(Exception,),
                    on_failure=lambda *args: failures.append(args))(fn)
    with pytest.raises(asyncio.CancelledError) as info:
        await wrapped()
    assert info.value is cancelled
    assert fn.calls == 1
    assert failures == []


async def test_cancelling_a_task_during_an_attempt_is_not_retried() -> None:
    started = asyncio.Event()
    calls = 0

    @exact(VirtualClock(), max_attempts=5, base_delay=1.0)
    async def hang() -> None:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1


async def test_cancelling_a_task_while_it_waits_to_retry_stops_retrying() -> None:
    clock = BlockingClock()
    failures: list[Any] = []
    fn = always()
    wrapped = exact(clock, max_attempts=5, base_delay=1.0,
                    on_failure=lambda *args: failures.append(args))(fn)

    task = asyncio.create_task(wrapped())
    await clock.sleeping.wait()
    assert fn.calls == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.release.set()
    await asyncio.sleep(0)
    assert fn.calls == 1
    assert clock.sleeps == [1.0]
    assert failures == []
    assert task.cancelled()


@pytest.mark.parametrize(
    "interrupt",
    [KeyboardInterrupt(), SystemExit(2), GeneratorExit(), asyncio.CancelledError()],
    ids=lambda exc: type(exc).__name__,
)
def test_async_interrupts_propagate_unchanged_after_one_attempt(
    interrupt: BaseException,
) -> None:
    fn = AsyncScript(interrupt)
    wrapped = retry(max_attempts=5, base_delay=0.0, exceptions=(Exception,),
                    clock=NoSleepClock())(fn)
    with pytest.raises(BaseException) as info:
        run_without_loop(wrapped())
    assert info.value is interrupt
    assert fn.calls == 1


@pytest.mark.parametrize(
    "interrupt",
    [KeyboardInterrupt(), SystemExit(2), GeneratorExit(), asyncio.CancelledError()],
    ids=lambda exc: type(exc).__name__,
)
def test_an_async_interrupt_on_a_later_attempt_stops_retrying(interrupt: BaseException) -> None:
    fn = AsyncScript(Flaky(), interrupt)
    wrapped = retry(max_attempts=5, base_delay=0.0, clock=NoSleepClock())(fn)
    with pytest.raises(BaseException) as info:
        run_without_loop(wrapped())
    assert info.value is interrupt
    assert fn.calls == 2


# --- concurrency -------------------------------------------------------------------------


async def test_a_thousand_concurrent_tasks_are_each_retried_exactly_once() -> None:
    clock = VirtualClock()
    attempts: dict[int, int] = {}

    @retry(max_attempts=3, base_delay=0.5, jitter=0, clock=clock)
    async def first_attempt_fails(key: int) -> int:
        attempts[key] = attempts.get(key, 0) + 1
        await asyncio.sleep(0)  # interleave the tasks between attempts
        if attempts[key] == 1:
            raise Flaky(key)
        return key

    keys = range(1000)
    results = await asyncio.gather(*(first_attempt_fails(k) for k in keys))
    assert results == list(keys)
    assert attempts == dict.fromkeys(keys, 2)
    assert clock.sleeps == [0.5] * 1000


async def test_concurrent_calls_have_independent_attempt_budgets() -> None:
    clock = VirtualClock()
    fail_forever = always()
    recover = AsyncScript(Flaky(), then="ok")
    wrapped_fail = exact(clock, max_attempts=3, base_delay=1.0)(fail_forever)
    wrapped_recover = exact(clock, max_attempts=3, base_delay=1.0)(recover)
    outcome = await asyncio.gather(wrapped_fail(), wrapped_recover(), return_exceptions=True)
    assert isinstance(outcome[0], RetryExhaustedError)
    assert outcome[0].attempts == 3
    assert outcome[1] == "ok"
    assert (fail_forever.calls, recover.calls) == (3, 2)
