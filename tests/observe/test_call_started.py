"""Every protected call reports its start once: one ``CallStarted`` and one end
per call, from the outermost buttress layer, for every form a call can take
(decorator, ``call``/``acall``, ``with``/``async with``, pipelines), sync and
async; inner layers stay quiet; and nothing is opened when nobody listens."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from buttress import (
    Bulkhead,
    CircuitBreaker,
    CircuitBreakerError,
    Fallback,
    Pipeline,
    Retry,
    Timeout,
    with_metrics,
)
from buttress._core import operation
from buttress.events import (
    CallFinished,
    CallStarted,
    Event,
    GaveUp,
    StateChanged,
    Succeeded,
    add_listener,
    remove_listener,
)
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock

ENDS = (CallFinished, Succeeded, GaveUp)


@pytest.fixture
def heard() -> Iterator[list[Event]]:
    """Each call's start and end, as a global listener hears them."""
    events: list[Event] = []
    add_listener(events.append, CallStarted, *ENDS)
    yield events
    remove_listener(events.append)


def strategies(clock: VirtualClock) -> dict[str, Any]:
    return {
        "retry": Retry(max_attempts=2, base_delay=0.0, name="op", clock=clock),
        "breaker": CircuitBreaker("op", clock=clock),
        "timeout": Timeout(5.0, operation_name="op", clock=clock),
        "bulkhead": Bulkhead(max_concurrent=2, name="op", clock=clock),
        "fallback": Fallback("cached", name="op"),
        "pipeline": Pipeline(Retry(max_attempts=2, base_delay=0.0, name="op", clock=clock),
                             CircuitBreaker("dep", clock=clock), Timeout(5.0, clock=clock)),
        "breaker-only pipeline": Pipeline(CircuitBreaker("op", clock=clock)),
    }


KINDS = ["retry", "breaker", "timeout", "bulkhead", "fallback", "pipeline",
         "breaker-only pipeline"]


def one_call(events: list[Event]) -> tuple[CallStarted, Event]:
    """The start and the end of the one call ``events`` hold: one CallStarted,
    first, and one CallFinished, last; a lone retry ends with its Succeeded or
    GaveUp instead (a retry inside a pipeline reports those too, as it always has)."""
    starts = [e for e in events if isinstance(e, CallStarted)]
    assert len(starts) == 1, events
    assert events[0] is starts[0], events
    finished = [e for e in events if isinstance(e, CallFinished)]
    if finished:
        assert len(finished) == 1, events
        assert events[-1] is finished[0], events
        end: Event = finished[0]
    else:
        (end,) = [e for e in events if isinstance(e, (Succeeded, GaveUp))]
    assert end.name == starts[0].name
    return starts[0], end


def timed(kind: str, start: CallStarted, end: Event) -> tuple[float, float | None] | None:
    """When the call started and how long it took, on the virtual clock; None
    for a fallback, which has no clock (it reports on the system's)."""
    if kind == "fallback":
        return None
    return (start.start, getattr(end, "duration", None))


def slow(clock: VirtualClock, result: str = "ok", seconds: float = 1.5) -> Callable[[], str]:
    def work() -> str:
        clock.advance(seconds)
        return result

    return work


def aslow(clock: VirtualClock, result: str = "ok",
          seconds: float = 1.5) -> Callable[[], Awaitable[str]]:
    async def work() -> str:
        await clock.async_sleep(seconds)
        return result

    return work


# --- one start and one end per call, for every form -------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_decorated_call_reports_one_start_then_one_end(
        kind: str, heard: list[Event], virtual_clock: VirtualClock) -> None:
    virtual_clock.advance(10.0)
    protected = strategies(virtual_clock)[kind](slow(virtual_clock))
    assert protected() == "ok"
    assert timed(kind, *one_call(heard)) in {(10.0, 1.5), None if kind == "fallback" else ()}


@pytest.mark.parametrize("kind", KINDS)
async def test_an_async_decorated_call_reports_one_start_then_one_end(
        kind: str, heard: list[Event], virtual_clock: VirtualClock) -> None:
    virtual_clock.advance(10.0)
    protected = strategies(virtual_clock)[kind](aslow(virtual_clock))
    assert await protected() == "ok"
    assert timed(kind, *one_call(heard)) in {(10.0, 1.5), None if kind == "fallback" else ()}


@pytest.mark.parametrize("kind", KINDS)
def test_call_reports_one_start_then_one_end(
        kind: str, heard: list[Event], virtual_clock: VirtualClock) -> None:
    assert strategies(virtual_clock)[kind].call(slow(virtual_clock)) == "ok"
    assert timed(kind, *one_call(heard)) in {(0.0, 1.5), None if kind == "fallback" else ()}


@pytest.mark.parametrize("kind", KINDS)
async def test_acall_reports_one_start_then_one_end(
        kind: str, heard: list[Event], virtual_clock: VirtualClock) -> None:
    assert await strategies(virtual_clock)[kind].acall(aslow(virtual_clock)) == "ok"
    assert timed(kind, *one_call(heard)) in {(0.0, 1.5), None if kind == "fallback" else ()}


def test_a_breakers_with_block_is_one_call_named_after_the_breaker(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("payments", clock=virtual_clock)
    with breaker:
        virtual_clock.advance(2.0)
    start, end = one_call(heard)
    assert (start.source, start.name, start.start) == ("operation", "payments", 0.0)
    assert isinstance(end, CallFinished)
    assert (end.outcome, end.duration, end.attempts) == ("success", 2.0, 1)


async def test_a_breakers_async_with_block_is_one_call(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("payments", clock=virtual_clock)
    with pytest.raises(ConnectionError):
        async with breaker:
            await virtual_clock.async_sleep(0.5)
            raise ConnectionError
    start, end = one_call(heard)
    assert start.name == "payments"
    assert isinstance(end, CallFinished)
    assert (end.outcome, end.duration) == ("failure", 0.5)
    assert breaker.stats.failure_count == 1  # the breaker recorded it as before


async def test_a_timeouts_async_with_block_is_one_call(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    async with Timeout(5.0, operation_name="report", clock=virtual_clock):
        await virtual_clock.async_sleep(1.0)
    start, end = one_call(heard)
    assert isinstance(end, CallFinished)
    assert (start.name, end.outcome, end.duration) == ("report", "success", 1.0)


async def test_a_timeout_that_expires_in_an_async_with_block_ends_its_call_failed(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    with pytest.raises(TimeoutError):
        async with Timeout(1.0, operation_name="report", clock=virtual_clock):
            await virtual_clock.async_sleep(5.0)
    _, end = one_call(heard)
    assert isinstance(end, CallFinished)
    assert end.outcome == "failure"


def test_an_open_breaker_refusing_a_with_block_still_reports_its_start_and_end(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("payments", clock=virtual_clock)
    breaker.force_open()
    with pytest.raises(CircuitBreakerError), breaker:
        raise AssertionError("the block never runs")
    _, end = one_call(heard)
    assert isinstance(end, CallFinished)
    assert end.outcome == "rejected"
    assert operation.current() is None  # the refused block's operation is closed


def test_a_lone_retry_reports_its_start_and_ends_with_succeeded_or_gave_up(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    retrying = Retry(max_attempts=3, base_delay=1.0, jitter=0, name="fetch",
                     clock=virtual_clock)
    assert retrying(ScriptedCall(ConnectionError, "ok"))() == "ok"
    with pytest.raises(Exception, match="after 3 attempts"):
        retrying(ScriptedCall(ConnectionError))()
    assert [(type(e).__name__, e.name) for e in heard] == [
        ("CallStarted", "fetch"), ("Succeeded", "fetch"),
        ("CallStarted", "fetch"), ("GaveUp", "fetch")]
    first_end = heard[1]
    assert isinstance(first_end, Succeeded)
    assert first_end.duration == 1.0


def test_each_of_many_calls_reports_exactly_one_start_and_one_end(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("inventory", failure_threshold=2, clock=virtual_clock)
    protected = Pipeline(breaker)(ScriptedCall("ok", ConnectionError, ConnectionError, "never"))
    outcomes = []
    for _ in range(6):
        try:
            protected()
        except Exception as exc:
            outcomes.append(type(exc).__name__)
        else:
            outcomes.append("ok")
    kinds = [type(e).__name__ for e in heard]
    assert kinds == ["CallStarted", "CallFinished"] * 6
    assert [e.outcome for e in heard if isinstance(e, CallFinished)] == [
        "success", "failure", "failure", "rejected", "rejected", "rejected"]


# --- nested layers: one call, reported once ------------------------------------------------


def test_nested_protected_layers_report_one_start_from_the_outermost(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("dep", clock=virtual_clock)

    @Retry(max_attempts=3, base_delay=0.0, name="outer", clock=virtual_clock)
    @Pipeline(Timeout(5.0, clock=virtual_clock))
    @breaker
    def work() -> str:
        with breaker:  # a with block inside the call is not a call of its own
            return attempt()

    attempt = ScriptedCall(ConnectionError, "done")
    assert work() == "done"
    assert [(type(e).__name__, e.name) for e in heard] == [
        ("CallStarted", "outer"), ("Succeeded", "outer")]


async def test_an_async_call_inside_a_pipeline_through_a_breaker_acall_reports_once(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("dep", clock=virtual_clock)
    inner = AsyncScriptedCall("ok")

    @Pipeline(Timeout(5.0, clock=virtual_clock))
    async def work() -> str:
        async with breaker:
            result: str = await breaker.acall(inner)
            return result

    assert await work() == "ok"
    start, end = one_call(heard)
    assert start.name == end.name == f"{__name__}.{work.__qualname__}"


def test_concurrent_calls_report_their_own_start_and_end(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("shared", clock=virtual_clock)

    async def both() -> None:
        async def one(name: str) -> None:
            async with breaker:
                assert operation.current() is not None
                await asyncio.sleep(0)  # the other task runs inside its own block

        await asyncio.gather(one("a"), one("b"))

    asyncio.run(both())
    assert [type(e).__name__ for e in heard] == [
        "CallStarted", "CallStarted", "CallFinished", "CallFinished"]


def test_with_metrics_reports_its_start_as_the_metrics_source(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    measured = with_metrics("checkout", clock=virtual_clock)(slow(virtual_clock))
    assert measured() == "ok"
    start, end = one_call(heard)
    assert (start.source, start.name, start.start) == ("metrics", "checkout", 0.0)
    assert isinstance(end, CallFinished)
    assert (end.source, end.duration) == ("metrics", 1.5)


# --- the listener's view, and no work without one ----------------------------------------------


def test_a_start_is_heard_inside_the_operation_before_the_call_runs(
        virtual_clock: VirtualClock) -> None:
    seen: list[tuple[str, str | None, int]] = []
    calls = ScriptedCall("ok")

    def listener(event: CallStarted) -> None:
        op = operation.current()
        seen.append((event.name or "", None if op is None else op.name, calls.calls))

    breaker = CircuitBreaker("payments", clock=virtual_clock)
    breaker.events.add(listener, CallStarted)
    breaker.call(calls)
    with breaker:
        pass
    assert seen == [("payments", "payments", 0), ("payments", "payments", 1)]


def test_a_listener_for_starts_only_hears_one_per_call(virtual_clock: VirtualClock) -> None:
    starts: list[CallStarted] = []
    timeout = Timeout(5.0, operation_name="report", clock=virtual_clock)
    timeout.events.add(starts.append, CallStarted)
    protected = timeout(slow(virtual_clock))
    protected()
    protected()
    assert [(e.name, e.start) for e in starts] == [("report", 0.0), ("report", 1.5)]


@pytest.mark.parametrize("listening", [None, StateChanged], ids=["nobody", "other kinds"])
def test_no_operation_is_opened_when_nobody_listens_for_calls(
        listening: type[Event] | None, virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("payments", clock=virtual_clock)
    heard: list[Event] = []
    if listening is not None:
        breaker.events.add(heard.append, listening)
    inside: list[object] = []

    def look() -> None:
        inside.append(operation.current())

    breaker.call(look)
    with breaker:
        look()
    breaker(look)()
    Pipeline(breaker)(look)()
    assert inside == [None, None, None, None]
    assert heard == []


def test_a_listener_that_raises_on_a_start_never_breaks_the_call(
        virtual_clock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    breaker = CircuitBreaker("payments", clock=virtual_clock)
    breaker.events.add(broken, CallStarted)
    assert breaker.call(lambda: "ok") == "ok"
    with breaker:
        pass
    assert breaker.stats.successful_calls == 2
    assert sum("listener bug" in (r.exc_text or "") or "raised" in r.getMessage()
               for r in caplog.records) == 2


async def test_a_breaker_with_a_timeout_reports_its_async_with_block_once(
        heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("payments", timeout=1.0, clock=virtual_clock)
    async with breaker:
        await virtual_clock.async_sleep(0.5)
    with pytest.raises(TimeoutError):
        async with breaker:
            await virtual_clock.async_sleep(5.0)
    assert [(type(e).__name__, e.name) for e in heard] == [
        ("CallStarted", "payments"), ("CallFinished", "payments")] * 2
    assert [e.outcome for e in heard if isinstance(e, CallFinished)] == ["success", "failure"]
    assert breaker.stats.failed_calls == 1
