"""Pipelines in the user's order: ``Pipeline(..., ordered=True)`` and
``PipelineBuilder`` wrap the call outermost first, exactly as given, so an
overall timeout around the retries and a per-attempt timeout inside them can
both be expressed; the keyword form and plain ``Pipeline(*strategies)`` keep
the standard order. On a virtual clock: every time below is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    DeadlineExceededError,
    Fallback,
    OperationTimeoutError,
    Pipeline,
    PipelineBuilder,
    Retry,
    RetryExhaustedError,
    Strategy,
    Timeout,
    current_context,
    pipeline,
    remaining_time,
)
from buttress.events import CallFinished
from buttress.testing import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


class Mark(Strategy):
    """A layer that records its name when a call enters it."""

    order = 50

    def __init__(self, name: str, entered: list[str]) -> None:
        self.name = name
        self.entered = entered

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def marked(*args: Any, **kwargs: Any) -> Any:
            self.entered.append(self.name)
            return fn(*args, **kwargs)
        return marked

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def marked(*args: Any, **kwargs: Any) -> Any:
            self.entered.append(self.name)
            return await fn(*args, **kwargs)
        return marked

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class EarlyMark(Mark):
    """A layer the standard order puts outside a :class:`Mark`."""

    order = 5


def retrying(clock: VirtualClock, wait: float) -> Retry:
    """Retries timeouts with a fixed wait, far more attempts than time allows."""
    return Retry(max_attempts=50, base_delay=wait, exponential_base=1.0, jitter=0,
                 retry_on=(TimeoutError,), clock=clock)


def overall_and_per_attempt(clock: VirtualClock, overall: float, wait: float) -> Pipeline:
    return Pipeline(Timeout(overall, clock=clock), retrying(clock, wait),
                    Timeout(1.0, clock=clock), ordered=True)


class Hang:
    """A dependency that never answers in time: it waits out the time it is
    given (the context's remaining time), so its timeout cuts it at once."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.starts: list[float] = []
        self.allowed: list[float | None] = []

    def __call__(self) -> str:
        self.allowed.append(remaining_time())
        self.starts.append(self.clock.now)
        self.clock.sleep(remaining_time() or 0.0)
        return "too late"

    async def hang_async(self) -> str:
        self.allowed.append(remaining_time())
        self.starts.append(self.clock.now)
        await asyncio.sleep(0)  # suspend first, as real I/O does: both timers are armed
        await self.clock.async_sleep(remaining_time() or 0.0)
        return "too late"


# --- the order is kept --------------------------------------------------------------------


def test_an_ordered_pipeline_wraps_the_call_in_the_order_given_outermost_first() -> None:
    entered: list[str] = []
    given = Pipeline(Mark("a", entered), EarlyMark("b", entered), Mark("c", entered),
                     ordered=True)
    assert given.call(lambda: "done") == "done"
    assert entered == ["a", "b", "c"]


def test_a_plain_pipeline_still_sorts_its_layers_into_the_standard_order() -> None:
    entered: list[str] = []
    Pipeline(Mark("a", entered), EarlyMark("b", entered)).call(lambda: None)
    assert entered == ["b", "a"]


async def test_an_async_ordered_pipeline_wraps_the_call_in_the_order_given() -> None:
    entered: list[str] = []
    given = Pipeline(Mark("a", entered), EarlyMark("b", entered), Mark("c", entered),
                     ordered=True)

    async def call() -> str:
        return "done"

    assert await given.acall(call) == "done"
    assert entered == ["a", "b", "c"]


def test_the_builder_wraps_the_call_in_the_order_strategies_are_added() -> None:
    entered: list[str] = []
    built = (PipelineBuilder().add(Mark("a", entered)).add(EarlyMark("b", entered))
             .add(Mark("c", entered)).build())

    @built
    def protected() -> str:
        return "done"

    assert protected() == "done"
    assert entered == ["a", "b", "c"]


def test_an_ordered_pipeline_keeps_two_timeouts_on_either_side_of_the_retry() -> None:
    overall, per_attempt, retry = Timeout(10.0), Timeout(1.0), Retry(max_attempts=3)
    assert Pipeline(overall, retry, per_attempt, ordered=True).strategies == (
        overall, retry, per_attempt)
    # The standard order puts both timeouts inside the retry.
    assert Pipeline(overall, retry, per_attempt).strategies == (retry, overall, per_attempt)


def test_the_repr_of_an_ordered_pipeline_shows_its_order_and_says_it_is_ordered() -> None:
    entered: list[str] = []
    given = Pipeline(Mark("a", entered), EarlyMark("b", entered), ordered=True)
    assert repr(given) == "Pipeline(Mark('a'), EarlyMark('b'), ordered=True)"
    assert repr(PipelineBuilder().add(Mark("a", entered)).build()) == (
        "Pipeline(Mark('a'), ordered=True)")
    assert repr(Pipeline(Mark("a", entered), EarlyMark("b", entered))) == (
        "Pipeline(EarlyMark('b'), Mark('a'))")


# --- an overall timeout around per-attempt timeouts ---------------------------------------


def test_each_attempt_is_cut_at_one_second_and_the_retry_stops_before_the_overall_deadline(
        clock: VirtualClock) -> None:
    hang = Hang(clock)
    with pytest.raises(RetryExhaustedError, match="deadline ran out") as info:
        overall_and_per_attempt(clock, overall=10.0, wait=0.75).call(hang)
    # Each attempt cut at 1 s, then 0.75 s of wait: attempts start every 1.75 s.
    # After the sixth (ending at 9.75 s) a wait would end at 10.5 s: no seventh.
    assert hang.starts == [0.0, 1.75, 3.5, 5.25, 7.0, 8.75]
    assert hang.allowed == [1.0] * 6
    assert clock.now == 9.75
    error = info.value
    assert error.attempts == 6
    assert isinstance(error.last_exception, OperationTimeoutError)
    assert error.last_exception.timeout == 1.0


def test_the_last_attempt_gets_only_what_is_left_and_the_overall_timeout_ends_the_call(
        clock: VirtualClock) -> None:
    hang = Hang(clock)
    with pytest.raises(OperationTimeoutError) as info:
        overall_and_per_attempt(clock, overall=8.0, wait=0.5).call(hang)
    # Attempts every 1.5 s; the sixth starts at 7.5 s with 0.5 s of the 8 s left.
    assert hang.starts == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    assert hang.allowed == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
    assert clock.now == 8.0
    assert info.value.timeout == 8.0
    assert not isinstance(info.value, DeadlineExceededError)  # the overall timeout's own
    assert current_context() is None


async def test_async_attempts_are_cut_at_one_second_and_the_retry_stops_before_the_deadline(
        clock: VirtualClock) -> None:
    hang = Hang(clock)
    with pytest.raises(RetryExhaustedError, match="deadline ran out") as info:
        await overall_and_per_attempt(clock, overall=10.0, wait=0.75).acall(hang.hang_async)
    assert hang.starts == [0.0, 1.75, 3.5, 5.25, 7.0, 8.75]
    assert hang.allowed == [1.0] * 6
    assert (clock.now, info.value.attempts) == (9.75, 6)


async def test_the_last_async_attempt_gets_only_what_is_left_and_the_overall_timeout_reports(
        clock: VirtualClock) -> None:
    hang = Hang(clock)
    with pytest.raises(OperationTimeoutError) as info:
        await overall_and_per_attempt(clock, overall=8.0, wait=0.5).acall(hang.hang_async)
    assert hang.starts == [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    assert hang.allowed == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]
    assert clock.now == 8.0
    assert info.value.timeout == 8.0
    assert current_context() is None
    await asyncio.sleep(0)  # no cancellation is left pending on the task


def test_a_call_that_answers_within_its_attempt_returns_through_both_timeouts(
        clock: VirtualClock) -> None:
    answers: list[Exception | str] = [TimeoutError("slow"), "data"]

    def fetch() -> str:
        clock.sleep(0.5)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert overall_and_per_attempt(clock, overall=10.0, wait=0.25).call(fetch) == "data"
    assert clock.now == 1.25


# --- one CallFinished per call ------------------------------------------------------------


def test_an_ordered_pipeline_reports_one_call_finished_per_call(clock: VirtualClock) -> None:
    protect = overall_and_per_attempt(clock, overall=10.0, wait=0.75)
    finished: list[CallFinished] = []
    protect.events.add(finished.append, CallFinished)
    with pytest.raises(RetryExhaustedError):
        protect.call(Hang(clock))
    assert protect.call(lambda: "ok") == "ok"
    assert [(e.outcome, e.duration, e.attempts) for e in finished] == [
        ("failure", 9.75, 6), ("success", 0.0, 1)]


async def test_an_async_ordered_pipeline_reports_one_call_finished_per_call(
        clock: VirtualClock) -> None:
    protect = (PipelineBuilder().add(Timeout(10.0, clock=clock)).add(retrying(clock, 0.75))
               .add(Timeout(1.0, clock=clock)).build())
    finished: list[CallFinished] = []
    protect.events.add(finished.append, CallFinished)
    with pytest.raises(RetryExhaustedError):
        await protect.acall(Hang(clock).hang_async)
    assert [(e.outcome, e.duration, e.attempts) for e in finished] == [("failure", 9.75, 6)]


# --- the keyword form is unchanged ---------------------------------------------------------


def test_the_keyword_form_keeps_the_standard_order(clock: VirtualClock) -> None:
    breaker = CircuitBreaker("pipeline-order-keywords", clock=clock)
    built = pipeline(timeout=1.0, circuit_breaker=breaker, retry=Retry(max_attempts=2),
                     fallback_value="fb", bulkhead=3, clock=clock)
    kinds = [type(s).__name__ for s in built.strategies]
    assert kinds == ["Fallback", "Retry", "CircuitBreaker", "Timeout", "Bulkhead"]
    assert not built.ordered
    assert "ordered" not in repr(built)
    assert isinstance(built.strategies[0], Fallback)


# --- the builder ---------------------------------------------------------------------------


def test_a_builder_used_twice_gives_independent_pipelines() -> None:
    entered: list[str] = []
    a, b = Mark("a", entered), Mark("b", entered)
    builder = PipelineBuilder().add(a)
    first = builder.build()
    second = builder.add(b).build()
    assert first is not second
    assert first.events is not second.events
    assert (first.strategies, second.strategies) == ((a,), (a, b))
    first.call(lambda: None)
    assert entered == ["a"]
    assert len(builder) == 2


def test_adding_anything_but_a_strategy_raises_a_clear_type_error() -> None:
    builder = PipelineBuilder()
    with pytest.raises(TypeError, match=r"add\(\) takes a strategy, got 'retry' of type str"):
        builder.add("retry")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a class: pass an instance"):
        builder.add(Retry)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Pipeline takes strategies"):
        Pipeline(Timeout(1.0), 3.0, ordered=True)  # type: ignore[arg-type]
    assert len(builder) == 0
