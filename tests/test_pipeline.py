"""Composition (C5): fallback -> retry -> circuit breaker -> timeout -> call, sync and async."""

from __future__ import annotations

import asyncio
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
    Pipeline,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    Timeout,
    TimeoutConfig,
    get_circuit_breaker,
    pipeline,
)
from buttress.testing import VirtualClock


def no_jitter(**options: Any) -> RetryConfig:
    return RetryConfig(**{"base_delay": 1.0, "jitter": 0, **options})


class Flaky:
    """A dependency that fails ``failures`` times, then answers; records each call."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return ("ok", args, kwargs)


# --- order -----------------------------------------------------------------------------------


def test_strategies_are_put_in_the_standard_order_whatever_order_they_come_in() -> None:
    fallback = Fallback("fb")
    retry = Retry(no_jitter())
    breaker = CircuitBreaker("order")
    limit = Timeout(1.0)
    built = Pipeline(limit, breaker, fallback, retry)
    assert built.strategies == (fallback, retry, breaker, limit)
    assert repr(built).startswith("Pipeline(Fallback(fallback_value='fb'), Retry(")


def test_strategies_of_the_same_kind_keep_the_order_given() -> None:
    outer, inner = Fallback("outer"), Fallback("inner")

    @Pipeline(outer, inner)
    def fails() -> str:
        raise RuntimeError

    assert fails() == "inner"  # the one given second sits nearer the call


@pytest.mark.parametrize("scrambled", [False, True])
def test_the_breaker_counts_each_retry_attempt(scrambled: bool) -> None:
    clock = VirtualClock()
    retry = Retry(no_jitter(max_attempts=3), clock=clock)
    breaker = CircuitBreaker("attempts", failure_threshold=10, clock=clock)
    parts = (breaker, retry) if scrambled else (retry, breaker)
    flaky = Flaky(failures=99)

    with pytest.raises(RetryExhaustedError) as caught:
        Pipeline(*parts)(flaky)()

    assert flaky.calls == 3
    assert caught.value.attempts == 3
    # Retry outside the breaker: the breaker saw every attempt, not one call.
    assert breaker.stats.failed_calls == 3
    assert breaker.stats.total_calls == 3


def test_the_fallback_answers_exhausted_retries() -> None:
    clock = VirtualClock()
    seen: list[BaseException] = []
    flaky = Flaky(failures=99)
    protect = Pipeline(
        Retry(no_jitter(max_attempts=3), clock=clock),
        Fallback("cached", on_fallback=seen.append),
    )
    assert protect(flaky)() == "cached"
    assert flaky.calls == 3
    assert len(seen) == 1
    assert isinstance(seen[0], RetryExhaustedError)
    assert seen[0].attempts == 3
    assert isinstance(seen[0].last_exception, ConnectionError)
    assert clock.sleeps == [1.0, 2.0]


def test_the_fallback_answers_an_open_breaker_without_calling() -> None:
    clock = VirtualClock()
    seen: list[BaseException] = []
    breaker = CircuitBreaker("open-one", clock=clock)
    breaker.force_open()
    flaky = Flaky(failures=0)
    protect = Pipeline(breaker, Fallback("cached", on_fallback=seen.append),
                       Retry(no_jitter(max_attempts=3), clock=clock))
    assert protect(flaky)() == "cached"
    assert flaky.calls == 0
    assert len(seen) == 1
    assert isinstance(seen[0], CircuitBreakerError)
    assert clock.sleeps == []  # the rejection was not retried


async def test_a_timeout_applies_to_each_attempt_not_to_the_whole_retry_loop() -> None:
    clock = VirtualClock()
    calls = 0

    async def slowish() -> str:
        nonlocal calls
        calls += 1
        await clock.async_sleep(0.6)  # each attempt fits in the 1.0 s limit
        if calls < 3:
            raise ConnectionError
        return "done"

    protect = pipeline(timeout=1.0, retry=no_jitter(max_attempts=3), clock=clock)
    assert await protect(slowish)() == "done"
    assert calls == 3
    assert clock.sleeps == [0.6, 1.0, 0.6, 2.0, 0.6]
    assert clock.now > 1.0  # the whole call took far longer than one limit


async def test_every_attempt_that_times_out_is_retried_and_counted_by_the_breaker() -> None:
    clock = VirtualClock()
    calls = 0
    cancelled = 0

    async def hangs() -> str:
        nonlocal calls, cancelled
        calls += 1
        try:
            await clock.async_sleep(5.0)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return "never"

    breaker = CircuitBreaker("slow-dep", failure_threshold=10, clock=clock)
    protect = pipeline(timeout=1.0, circuit_breaker=breaker,
                       retry=no_jitter(max_attempts=3), clock=clock)

    with pytest.raises(RetryExhaustedError) as caught:
        await protect(hangs)()
    assert calls == 3
    assert cancelled == 3
    assert isinstance(caught.value.last_exception, OperationTimeoutError)
    assert caught.value.last_exception.timeout == 1.0
    assert breaker.stats.failed_calls == 3
    assert clock.sleeps == [5.0, 1.0, 5.0, 2.0, 5.0]


def test_sync_timeouts_apply_per_attempt_too() -> None:
    clock = VirtualClock()
    calls = 0

    def slow_then_fast() -> str:
        nonlocal calls
        calls += 1
        clock.sleep(3.0 if calls == 1 else 0.5)  # first attempt overruns the limit
        return f"attempt {calls}"

    protect = pipeline(timeout=1.0, retry=no_jitter(max_attempts=3), clock=clock)
    assert protect(slow_then_fast)() == "attempt 2"
    assert clock.sleeps == [3.0, 1.0, 0.5]


# --- sync and async from one definition ---------------------------------------------------


async def test_one_pipeline_decorates_a_sync_and_an_async_function() -> None:
    clock = VirtualClock()
    protect = pipeline(retry=no_jitter(max_attempts=3),
                       circuit_breaker=CircuitBreakerConfig(name="both", failure_threshold=10),
                       timeout=5.0, fallback_value="fb", clock=clock)
    sync_flaky = Flaky(failures=1)
    async_calls = 0

    @protect
    async def async_flaky(x: int) -> int:
        nonlocal async_calls
        async_calls += 1
        if async_calls == 1:
            raise ConnectionError
        await clock.async_sleep(0.1)
        return x * 2

    sync_protected = protect(sync_flaky)
    assert sync_protected(1, k=2) == ("ok", (1,), {"k": 2})
    assert await async_flaky(21) == 42
    assert asyncio.iscoroutinefunction(async_flaky)
    assert not asyncio.iscoroutinefunction(sync_protected)
    assert async_flaky.__name__ == "async_flaky"
    assert sync_flaky.calls == 2
    assert async_calls == 2
    assert clock.sleeps == [1.0, 1.0, 0.1]
    assert get_circuit_breaker("both").stats.failed_calls == 2


async def test_call_and_acall_run_a_function_once_through_the_pipeline() -> None:
    clock = VirtualClock()
    protect = pipeline(retry=no_jitter(max_attempts=2), fallback_value="fb", clock=clock)
    flaky = Flaky(failures=1)
    assert protect.call(flaky, "a", b=1) == ("ok", ("a",), {"b": 1})
    assert flaky.calls == 2

    attempts = 0

    async def afetch(key: str, *, default: str) -> str:
        nonlocal attempts
        attempts += 1
        raise ConnectionError(key)

    assert await protect.acall(afetch, "k", default="d") == "fb"
    assert attempts == 2
    assert clock.sleeps == [1.0, 1.0]


# --- retry and breaker together ------------------------------------------------------------


def test_retries_stop_once_the_breaker_opens() -> None:
    clock = VirtualClock()
    breaker_config = CircuitBreakerConfig(name="payments", failure_threshold=2,
                                          recovery_timeout=30.0)
    protect = pipeline(retry=no_jitter(max_attempts=5), circuit_breaker=breaker_config,
                       clock=clock)
    flaky = Flaky(failures=99)

    with pytest.raises(CircuitBreakerError) as caught:
        protect(flaky)()

    # Two failures trip the breaker; the third attempt is rejected and not retried.
    assert flaky.calls == 2
    assert clock.sleeps == [1.0, 2.0]
    assert caught.value.name == "payments"
    assert caught.value.state is CircuitState.OPEN
    assert caught.value.remaining_timeout == pytest.approx(30.0 - 2.0)
    stats = get_circuit_breaker("payments").stats
    assert (stats.failed_calls, stats.rejected_calls, stats.trips) == (2, 1, 1)


async def test_retries_stop_once_the_breaker_opens_in_async_code() -> None:
    clock = VirtualClock()
    seen: list[BaseException] = []
    protect = Pipeline(
        Retry(no_jitter(max_attempts=5), clock=clock),
        CircuitBreaker("async-payments", failure_threshold=3, clock=clock),
        Fallback(None, on_fallback=seen.append),
    )
    calls = 0

    @protect
    async def charge() -> str | None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    assert await charge() is None
    assert calls == 3
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert [type(e) for e in seen] == [CircuitBreakerError]

    # While open, further calls are answered at once, never reaching the function.
    assert await charge() is None
    assert calls == 3
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_retrying_a_circuit_breaker_error_only_when_asked_to() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("probe-later", failure_threshold=1, recovery_timeout=5.0,
                             success_threshold=1, clock=clock)
    flaky = Flaky(failures=1)
    protect = Pipeline(
        Retry(no_jitter(max_attempts=4, base_delay=3.0, exponential_base=1.0,
                        exceptions=(ConnectionError, CircuitBreakerError)), clock=clock),
        breaker,
    )
    # fail (trips) -> wait 3 -> rejected with 2 s left -> wait exactly those 2 s (the
    # error's retry_after hint) -> the probe succeeds.
    assert protect(flaky)()[0] == "ok"
    assert flaky.calls == 2
    assert clock.sleeps == [3.0, 2.0]
    assert breaker.state is CircuitState.CLOSED


def test_the_breaker_recovers_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    protect = pipeline(circuit_breaker=CircuitBreakerConfig(
        name="recovering", failure_threshold=1, recovery_timeout=30.0, success_threshold=1),
        clock=clock)
    flaky = Flaky(failures=1)
    protected = protect(flaky)
    with pytest.raises(ConnectionError):
        protected()
    with pytest.raises(CircuitBreakerError):
        protected()
    clock.advance(30.0)
    assert protected()[0] == "ok"
    assert get_circuit_breaker("recovering").state is CircuitState.CLOSED


# --- the registry -----------------------------------------------------------------------------


def test_a_breaker_named_in_two_pipelines_is_one_breaker() -> None:
    clock = VirtualClock()
    first = pipeline(circuit_breaker="inventory", clock=clock)
    second = pipeline(circuit_breaker="inventory", retry=no_jitter(), clock=clock)
    breaker = get_circuit_breaker("inventory")
    assert breaker in first.strategies
    assert breaker in second.strategies

    flaky = Flaky(failures=99)
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(ConnectionError):
            first(flaky)()
    with pytest.raises(CircuitBreakerError):
        second(flaky)()
    assert flaky.calls == breaker.config.failure_threshold


def test_a_breaker_given_by_config_comes_from_the_registry() -> None:
    config = CircuitBreakerConfig(name="ledger", failure_threshold=1)
    first = pipeline(circuit_breaker=config)
    second = pipeline(circuit_breaker=config)
    breaker = get_circuit_breaker("ledger")
    assert breaker.config == config
    assert breaker in first.strategies
    assert breaker in second.strategies

    with pytest.raises(ConnectionError):
        first(Flaky(failures=1))()
    with pytest.raises(CircuitBreakerError):
        second(Flaky(failures=0))()


def test_a_conflicting_config_for_a_registered_name_is_refused() -> None:
    pipeline(circuit_breaker=CircuitBreakerConfig(name="ledger", failure_threshold=1))
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        pipeline(circuit_breaker=CircuitBreakerConfig(name="ledger", failure_threshold=2))


def test_a_breaker_object_is_used_as_given() -> None:
    breaker = CircuitBreaker("private")
    built = pipeline(circuit_breaker=breaker)
    assert breaker in built.strategies
    # One breaker per name: the registry hands out this one, it makes no second.
    assert get_circuit_breaker("private") is breaker


# --- clocks ---------------------------------------------------------------------------------


def test_the_clock_is_handed_to_every_strategy_built() -> None:
    clock = VirtualClock()
    built = pipeline(retry=no_jitter(), circuit_breaker="clocked",
                     timeout=TimeoutConfig(2.0), fallback_value=None, clock=clock)
    kinds = {type(s): s for s in built.strategies}
    assert kinds[Retry].clock is clock  # type: ignore[attr-defined]
    assert kinds[CircuitBreaker].clock is clock  # type: ignore[attr-defined]
    assert kinds[Timeout].clock is clock  # type: ignore[attr-defined]
    assert Fallback in kinds


def test_strategies_given_as_objects_keep_their_own_clock() -> None:
    own, other = VirtualClock(), VirtualClock()
    retry = Retry(no_jitter(), clock=own)
    limit = Timeout(1.0, clock=own)
    built = pipeline(retry=retry, timeout=limit, clock=other)
    assert retry in built.strategies
    assert limit in built.strategies
    assert retry.clock is own
    assert limit.clock is own


async def test_exact_delays_through_the_whole_pipeline() -> None:
    clock = VirtualClock()
    seen: list[BaseException] = []
    protect = pipeline(
        retry=RetryConfig(max_attempts=4, base_delay=0.5, exponential_base=3.0,
                          max_delay=4.0, jitter=0),
        circuit_breaker=CircuitBreakerConfig(name="exact", failure_threshold=10),
        timeout=TimeoutConfig(2.0, operation_name="exact-op"),
        fallback=Fallback("fb", on_fallback=seen.append),
        clock=clock,
    )

    @protect
    async def always_slow() -> str:
        await clock.async_sleep(2.5)
        return "never"

    assert await always_slow() == "fb"
    # attempt, 0.5, attempt, 1.5, attempt, 4.0 (4.5 capped), attempt
    assert clock.sleeps == [2.5, 0.5, 2.5, 1.5, 2.5, 4.0, 2.5]
    error = seen[0]
    assert isinstance(error, RetryExhaustedError)
    assert isinstance(error.last_exception, OperationTimeoutError)
    assert error.last_exception.operation == "exact-op"
    assert get_circuit_breaker("exact").stats.failed_calls == 4


# --- cancellation ---------------------------------------------------------------------------


class _BlockingSleepClock(VirtualClock):
    """A virtual clock whose async sleeps never end (until cancelled)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping: asyncio.Event | None = None

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        assert self.sleeping is not None
        self.sleeping.set()
        await asyncio.Event().wait()


@pytest.mark.parametrize(
    "breaker_options",
    [{}, {"failure_window": 60.0}, {"failure_rate_threshold": 0.5, "minimum_calls": 1}],
    ids=["consecutive", "time-window", "rate"],
)
async def test_cancellation_through_the_full_pipeline_is_not_a_failure(
    breaker_options: dict[str, Any],
) -> None:
    clock = VirtualClock()
    answered: list[BaseException] = []
    retried: list[int] = []
    breaker = CircuitBreaker("cancel-me", failure_threshold=1, clock=clock, **breaker_options)
    protect = pipeline(
        retry=no_jitter(max_attempts=5, on_retry=lambda attempt, exc: retried.append(attempt)),
        circuit_breaker=breaker,
        timeout=10.0,
        fallback=Fallback("fb", on_fallback=answered.append),
        clock=clock,
    )
    entered = asyncio.Event()
    calls = 0
    cleaned_up: list[bool] = []

    @protect
    async def long_poll() -> str:
        nonlocal calls
        calls += 1
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append(True)
        return "never"

    task = asyncio.create_task(long_poll())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert task.cancelled()
    assert calls == 1
    assert retried == []
    assert answered == []  # never answered by the fallback
    assert cleaned_up == [True]
    stats = breaker.stats
    assert (stats.failed_calls, stats.successful_calls, stats.rejected_calls) == (0, 0, 0)
    assert breaker.state is CircuitState.CLOSED  # one failure would have tripped it


async def test_cancellation_during_the_backoff_wait_ends_the_call() -> None:
    clock = _BlockingSleepClock()
    clock.sleeping = asyncio.Event()
    answered: list[BaseException] = []
    protect = pipeline(retry=no_jitter(max_attempts=5), circuit_breaker="backoff-cancel",
                       fallback=Fallback("fb", on_fallback=answered.append), clock=clock)
    calls = 0

    @protect
    async def fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    task = asyncio.create_task(fails())
    await clock.sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1
    assert clock.sleeps == [1.0]
    assert answered == []
    assert get_circuit_breaker("backoff-cancel").stats.failed_calls == 1


async def test_a_half_open_probe_that_is_cancelled_gives_its_permit_back() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("half-open-cancel", failure_threshold=1, recovery_timeout=5.0,
                             half_open_max_calls=1, success_threshold=1, clock=clock)
    protect = pipeline(circuit_breaker=breaker, timeout=10.0, clock=clock)
    entered = asyncio.Event()
    mode = "fail"

    @protect
    async def probe() -> str:
        if mode == "fail":
            raise ConnectionError
        if mode == "hang":
            entered.set()
            await asyncio.Event().wait()
        return "ok"

    with pytest.raises(ConnectionError):
        await probe()
    assert breaker.state is CircuitState.OPEN
    clock.advance(5.0)

    mode = "hang"
    task = asyncio.create_task(probe())
    await entered.wait()
    assert breaker.state.value == "half_open"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    mode = "ok"
    assert await probe() == "ok"  # the cancelled probe's permit came back
    assert breaker.is_closed
    assert breaker.stats.failed_calls == 1


# --- construction -----------------------------------------------------------------------


def test_pipeline_takes_only_strategies() -> None:
    with pytest.raises(TypeError, match="Pipeline takes strategies"):
        Pipeline(RetryConfig())  # type: ignore[arg-type]


def test_pipeline_builds_a_fallback_from_a_callable() -> None:
    protect = pipeline(fallback=lambda exc, x: f"default for {x}")
    assert protect(Flaky(failures=1))("k") == "default for k"


def test_pipeline_refuses_both_fallback_and_fallback_value() -> None:
    with pytest.raises(TypeError, match="exactly one of"):
        pipeline(fallback=lambda exc: 1, fallback_value=2)


def test_pipeline_refuses_a_fallback_object_plus_a_fallback_value() -> None:
    with pytest.raises(TypeError, match="either a Fallback or fallback_value"):
        pipeline(fallback=Fallback("a"), fallback_value="b")


def test_pipeline_refuses_a_retry_that_is_not_a_retry_config() -> None:
    with pytest.raises(TypeError, match="RetryConfig"):
        pipeline(retry={"max_attempts": 3})  # type: ignore[arg-type]


def test_pipeline_accepts_extra_strategies_alongside_keywords() -> None:
    limit = Timeout(1.0)
    built = pipeline(limit, retry=no_jitter(), fallback_value=None)
    assert [type(s) for s in built.strategies] == [Fallback, Retry, Timeout]


def test_an_empty_pipeline_just_calls() -> None:
    assert Pipeline().call(lambda: 5) == 5
    assert pipeline().call(lambda x: x, 3) == 3


def test_the_seed_style_pipeline_example_works() -> None:
    clock = VirtualClock()
    protect = pipeline(
        retry=RetryConfig(max_attempts=3, base_delay=0.1, jitter=0),
        circuit_breaker=CircuitBreakerConfig(name="payments-seed", failure_threshold=5),
        timeout=2.0,
        fallback_value=None,
        clock=clock,
    )
    flaky = Flaky(failures=2)
    assert protect(flaky)("charge")[0] == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [0.1, 0.2]
