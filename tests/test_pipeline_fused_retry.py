"""An async pipeline runs a retry and the circuit breaker right inside it (after
a fallback, or not) as one layer, which makes the first attempt in a single
coroutine. Every behaviour of the separate layers stays: attempts, the
breaker's counts and trips, the fallback's answers, events, cancellation. Each
scenario runs twice, through the fused layer and through separate layers (a
Retry subclass, which the pipeline does not fuse), and both must agree."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from buttress import (
    Bulkhead,
    CircuitBreaker,
    CircuitBreakerError,
    CircuitState,
    Fallback,
    OperationTimeoutError,
    Pipeline,
    Retry,
    RetryConfig,
    Timeout,
    remaining_time,
)
from buttress.pipeline_fused import _Fused
from buttress.testing import VirtualClock
from buttress.timeout import _Around


class SeparateRetry(Retry):
    """A retry the pipeline keeps as a layer of its own (it overrides wrap_async)."""

    __slots__ = ()

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return super().wrap_async(fn)


class Flaky:
    """Fails ``failures`` times (or with ``error`` each time), then answers."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return ("ok", args, kwargs)


def build(fused: bool, *, answer: bool = True, threshold: int = 5,
          fallback_on: tuple[type[BaseException], ...] = (Exception,),
          retry_on: tuple[type[BaseException], ...] = (ConnectionError,),
          attempts: int = 3, bulkhead: Bulkhead | None = None,
          ) -> tuple[Pipeline, CircuitBreaker, VirtualClock]:
    clock = VirtualClock()
    kind = Retry if fused else SeparateRetry
    retry = kind(RetryConfig(max_attempts=attempts, base_delay=1.0, jitter=0,
                             retry_on=retry_on), clock=clock)
    breaker = CircuitBreaker("fused-dependency",
                             failure_threshold=threshold, recovery_timeout=60, clock=clock)
    parts: list[Any] = [retry, breaker, Timeout(10.0, clock=clock)]
    if bulkhead is not None:
        parts.append(bulkhead)
    if answer:
        parts.append(Fallback(fallback=lambda exc, *a, **k: ("answered", type(exc).__name__),
                              exceptions=fallback_on))
    return Pipeline(*parts), breaker, clock


async def run(fused: bool, failures: int, *, listen: bool = False,
              **options: Any) -> tuple[Any, int, Any, float, list[tuple[str, ...]]]:
    """Outcome, calls made, breaker counts, virtual time spent and events heard
    (kind, source, name)."""
    pipe, breaker, clock = build(fused, **options)
    heard: list[tuple[str, ...]] = []
    if listen:
        pipe.events.add(lambda event: heard.append(
            (type(event).__name__, event.source, event.name)))
    flaky = Flaky(failures)

    async def dependency(*args: Any, **kwargs: Any) -> Any:
        return await flaky(*args, **kwargs)

    protected = pipe(dependency)
    try:
        outcome: Any = await protected(1, key="v")
    except Exception as exc:
        outcome = (type(exc).__name__, str(exc))
    stats = breaker.stats
    counts = (stats.state, stats.successful_calls, stats.failed_calls, stats.rejected_calls)
    return outcome, flaky.calls, counts, clock.monotonic(), heard


def test_a_fallback_a_retry_and_a_breaker_become_one_layer() -> None:
    pipe, _, _ = build(True)
    assert [type(layer).__name__ for layer in pipe._layers] == ["_Fused", "Timeout"]
    assert isinstance(pipe._layers[0], _Fused)


def test_a_retry_and_a_breaker_without_a_fallback_become_one_layer() -> None:
    pipe, _, _ = build(True, answer=False)
    assert isinstance(pipe._layers[0], _Fused)


def test_a_retry_subclass_that_wraps_differently_keeps_its_own_layer() -> None:
    pipe, _, _ = build(False)
    assert not any(isinstance(layer, _Fused) for layer in pipe._layers)


def test_a_breaker_with_its_own_fallback_keeps_its_own_layers() -> None:
    breaker = CircuitBreaker("fused-sugar", fallback=lambda exc: None)
    pipe = Pipeline(Retry(max_attempts=2), breaker)
    assert not any(isinstance(layer, _Fused) for layer in pipe._layers)


def test_all_five_strategies_become_one_layer() -> None:
    pipe, _, _ = build(True, bulkhead=Bulkhead(max_concurrent=2))
    (layer,) = pipe._layers
    assert isinstance(layer, _Fused)
    assert isinstance(layer.inner, _Around)


@pytest.mark.parametrize("limited", [False, True], ids=["four", "five"])
@pytest.mark.parametrize("listen", [False, True], ids=["unheard", "heard"])
@pytest.mark.parametrize(("failures", "expected"), [
    (0, (("ok", (1,), {"key": "v"}), 1, (CircuitState.CLOSED, 1, 0, 0), 0.0)),
    (2, (("ok", (1,), {"key": "v"}), 3, (CircuitState.CLOSED, 1, 2, 0), 3.0)),
    (9, (("answered", "RetryExhaustedError"), 3, (CircuitState.CLOSED, 0, 3, 0), 3.0)),
], ids=["at-once", "two-failures", "exhausted"])
async def test_the_fused_layer_does_what_the_separate_layers_do(
        failures: int, expected: tuple[Any, ...], listen: bool, limited: bool) -> None:
    bulkheads = [Bulkhead(max_concurrent=1) if limited else None for _ in range(2)]
    fused = await run(True, failures, listen=listen, bulkhead=bulkheads[0])
    separate = await run(False, failures, listen=listen, bulkhead=bulkheads[1])
    assert [b.active for b in bulkheads if b is not None] == [0, 0] * limited
    assert fused == separate
    assert fused[:4] == expected
    kinds = [kind for kind, _, _ in fused[4]]
    names = {name for _, source, name in fused[4] if source != "circuit_breaker"}
    if listen:
        assert kinds.count("CallFinished") == 1
        assert kinds.count("AttemptStarted") == expected[1]
        assert names == {"test_pipeline_fused_retry.run.<locals>.dependency"}


async def test_a_breaker_that_trips_on_the_first_attempt_turns_the_retries_away() -> None:
    fused = await run(True, 9, threshold=1)
    assert fused == await run(False, 9, threshold=1)
    outcome, calls, (state, _, failed, rejected), _, _ = fused
    assert outcome == ("answered", "CircuitBreakerError")
    assert (calls, state, failed, rejected) == (1, CircuitState.OPEN, 1, 1)


async def test_an_open_breaker_answers_through_the_fallback_without_calling() -> None:
    for fused in (True, False):
        pipe, breaker, _ = build(fused)
        breaker.force_open()
        flaky = Flaky(0)
        assert await pipe(flaky)() == ("answered", "CircuitBreakerError")
        assert flaky.calls == 0


async def test_without_a_fallback_the_retry_gives_up_with_the_last_error() -> None:
    fused = await run(True, 9, answer=False)
    assert fused == await run(False, 9, answer=False)
    outcome, calls, counts, _, _ = fused
    assert outcome == ("RetryExhaustedError",
                       "operation failed after 3 attempts; last: ConnectionError: failure 3")
    assert (calls, counts) == (3, (CircuitState.CLOSED, 0, 3, 0))


async def test_an_error_the_fallback_does_not_answer_reaches_the_caller() -> None:
    fused = await run(True, 9, fallback_on=(KeyError,))
    assert fused == await run(False, 9, fallback_on=(KeyError,))
    assert fused[0][0] != "answered"
    assert fused[1] == 3


async def test_an_error_the_retry_does_not_retry_is_counted_once_and_answered() -> None:
    fused = await run(True, 9, retry_on=(TimeoutError,))
    assert fused == await run(False, 9, retry_on=(TimeoutError,))
    assert fused[:3] == (("answered", "ConnectionError"), 1, (CircuitState.CLOSED, 0, 1, 0))


async def test_a_cancelled_first_attempt_is_neither_a_failure_nor_answered() -> None:
    pipe, breaker, _ = build(True)
    started = asyncio.Event()

    @pipe
    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()  # never set: only the cancellation ends it

    task = asyncio.ensure_future(hangs())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = breaker.stats
    assert (stats.state, stats.failed_calls, stats.successful_calls) == (
        CircuitState.CLOSED, 0, 0)


def test_the_sync_path_is_that_of_the_separate_layers() -> None:
    pipe, breaker, clock = build(True)
    calls: list[int] = []

    @pipe
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    assert flaky() == "ok"
    assert (len(calls), breaker.stats.failed_calls, clock.monotonic()) == (3, 2, 3.0)
    with pytest.raises(CircuitBreakerError):
        breaker.force_open()
        breaker.call(lambda: None)


async def test_the_retry_logs_each_failed_attempt_under_the_function_s_name(
        caplog: pytest.LogCaptureFixture) -> None:
    logged = []
    for fused in (True, False):
        caplog.clear()
        with caplog.at_level("WARNING", logger="buttress"):
            await run(fused, 9)
        logged.append([record.getMessage() for record in caplog.records])
    assert logged[0] == logged[1]
    assert logged[0][0] == ("test_pipeline_fused_retry.run.<locals>.dependency: attempt 1 "
                            "failed (ConnectionError: failure 1); retrying in 1.000s")



async def test_a_call_that_waits_runs_under_the_timeout_and_the_bulkhead() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    pipe, breaker, _ = build(True, bulkhead=bulkhead)
    seen: list[Any] = []

    @pipe
    async def waits(x: int) -> int:
        seen.append((bulkhead.active, remaining_time()))
        await asyncio.sleep(0)
        seen.append(bulkhead.active)
        return x * 2

    assert await waits(21) == 42
    assert seen == [(1, 10.0), 1]
    assert (bulkhead.active, breaker.stats.successful_calls) == (0, 1)


async def test_a_first_attempt_that_times_out_is_a_failure_the_fallback_answers() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    pipe, breaker, clock = build(True, bulkhead=bulkhead)
    started = asyncio.Event()

    @pipe
    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hangs())
    await started.wait()
    assert bulkhead.active == 1
    clock.advance(10.0)
    assert await task == ("answered", OperationTimeoutError.__name__)
    assert (bulkhead.active, breaker.stats.failed_calls) == (0, 1)
    assert remaining_time() is None


async def test_cancelling_a_waiting_first_attempt_frees_the_permit_and_counts_nothing() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    pipe, breaker, _ = build(True, bulkhead=bulkhead)
    started = asyncio.Event()

    @pipe
    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hangs())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = breaker.stats
    assert (bulkhead.active, stats.failed_calls, stats.successful_calls) == (0, 0, 0)


async def test_acall_runs_a_call_through_the_same_five_strategies() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    pipe, breaker, clock = build(True, bulkhead=bulkhead)
    flaky = Flaky(2)
    assert await pipe.acall(flaky, 7) == ("ok", (7,), {})
    assert (flaky.calls, breaker.stats.failed_calls, clock.monotonic()) == (3, 2, 3.0)
    assert bulkhead.active == 0
