"""The event stream: every event, in order, for scripted outcomes on virtual time;
where listeners can be registered; what a broken listener does; and that no
event is built when nobody listens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from buttress import (
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitBreakerError,
    CircuitState,
    Fallback,
    OperationTimeoutError,
    Retry,
    RetryExhaustedError,
    Timeout,
    add_listener,
    pipeline,
    remove_listener,
)
from buttress._core.events import _DRAFTS
from buttress.events import (
    GLOBAL,
    AttemptFailed,
    AttemptStarted,
    CallRejected,
    Event,
    FallbackUsed,
    GaveUp,
    RetryScheduled,
    SlowCall,
    StateChanged,
    Succeeded,
    TimedOut,
)
from buttress.observe.metrics import resilience_metrics
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock

ALL_KINDS: tuple[type[Event], ...] = (
    AttemptStarted, AttemptFailed, RetryScheduled, GaveUp, Succeeded,
    StateChanged, CallRejected, SlowCall, TimedOut, FallbackUsed,
)


@pytest.fixture
def heard() -> Iterator[list[Event]]:
    """Every event of every strategy, through a global listener. (Each call's
    closing ``CallFinished`` is left out here: tests/observe/test_outcomes.py.)"""
    events: list[Event] = []
    add_listener(events.append, *ALL_KINDS)
    yield events
    remove_listener(events.append)


# --- retry ------------------------------------------------------------------------------------


def test_fail_fail_succeed_reports_every_step_with_exact_delays(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    first, second = ConnectionError("one"), ConnectionError("two")
    fetch = ScriptedCall(first, second, "data", latency=0.25, clock=virtual_clock)
    retrying = Retry(max_attempts=3, base_delay=1.0, jitter=0, name="fetch",
                     clock=virtual_clock)

    assert retrying.call(fetch) == "data"

    assert heard == [
        AttemptStarted("retry", "fetch", 1),
        AttemptFailed("retry", "fetch", 1, first, None),
        RetryScheduled("retry", "fetch", 1, 1.0, first),
        AttemptStarted("retry", "fetch", 2),
        AttemptFailed("retry", "fetch", 2, second, None),
        RetryScheduled("retry", "fetch", 2, 2.0, second),
        AttemptStarted("retry", "fetch", 3),
        # 3 calls of 0.25 s plus waits of 1 s and 2 s, all on the virtual clock.
        Succeeded("retry", "fetch", 3, 3.75),
    ]
    assert virtual_clock.sleeps == [0.25, 1.0, 0.25, 2.0, 0.25]


def test_exhausted_retries_end_with_gave_up(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    errors = [TimeoutError("a"), TimeoutError("b")]
    retrying = Retry(max_attempts=2, base_delay=0.5, jitter=0, strategy="linear",
                     name="op", clock=virtual_clock)

    with pytest.raises(RetryExhaustedError):
        retrying.call(ScriptedCall(*errors))

    assert heard == [
        AttemptStarted("retry", "op", 1),
        AttemptFailed("retry", "op", 1, errors[0], None),
        RetryScheduled("retry", "op", 1, 0.5, errors[0]),
        AttemptStarted("retry", "op", 2),
        AttemptFailed("retry", "op", 2, errors[1], None),
        GaveUp("retry", "op", 2, errors[1], "exhausted", 0.5),
    ]


def test_a_non_retryable_error_gives_up_at_once(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    error = KeyError("missing")
    retrying = Retry(max_attempts=5, retry_on=(ConnectionError,), name="op",
                     clock=virtual_clock)

    with pytest.raises(KeyError):
        retrying.call(ScriptedCall(error))

    assert heard == [
        AttemptStarted("retry", "op", 1),
        AttemptFailed("retry", "op", 1, error, None),
        GaveUp("retry", "op", 1, error, "not_retryable", 0.0),
    ]
    assert virtual_clock.sleeps == []


async def test_async_retry_reports_the_same_stream(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    error = ConnectionError("down")
    retrying = Retry(max_attempts=3, base_delay=0.2, jitter=0, name="op", clock=virtual_clock)

    assert await retrying.acall(AsyncScriptedCall(error, "ok")) == "ok"

    assert heard == [
        AttemptStarted("retry", "op", 1),
        AttemptFailed("retry", "op", 1, error, None),
        RetryScheduled("retry", "op", 1, 0.2, error),
        AttemptStarted("retry", "op", 2),
        Succeeded("retry", "op", 2, 0.2),
    ]


def test_a_rejected_result_is_an_attempt_failed_without_exception(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    retrying = Retry(max_attempts=2, base_delay=1.0, jitter=0, name="poll",
                     retry_on_result=lambda value: value == "pending", clock=virtual_clock)

    assert retrying.call(ScriptedCall("pending", "done")) == "done"

    assert heard[1] == AttemptFailed("retry", "poll", 1, None, "pending")
    assert heard[2] == RetryScheduled("retry", "poll", 1, 1.0, None)
    assert heard[-1] == Succeeded("retry", "poll", 2, 1.0)


# --- circuit breaker --------------------------------------------------------------------------


def test_breaker_closed_open_half_open_closed(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    breaker = CircuitBreaker("payments", failure_threshold=2, recovery_timeout=10.0,
                             success_threshold=1, clock=virtual_clock)
    charge = breaker(ScriptedCall(ConnectionError("a"), ConnectionError("b"), "charged"))

    for _ in range(2):
        with pytest.raises(ConnectionError):
            charge()
    virtual_clock.advance(4.0)
    with pytest.raises(CircuitBreakerError):
        charge()
    virtual_clock.advance(6.0)
    assert charge() == "charged"

    closed, open_, half_open = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
    assert heard == [
        StateChanged("circuit_breaker", "payments", closed, open_),
        CallRejected("circuit_breaker", "payments", open_, 6.0),
        StateChanged("circuit_breaker", "payments", open_, half_open),
        StateChanged("circuit_breaker", "payments", half_open, closed),
    ]


def test_a_slow_call_is_reported(heard: list[Event], virtual_clock: VirtualClock) -> None:
    breaker = CircuitBreaker("slow", slow_call_duration=1.0, clock=virtual_clock)

    breaker.call(ScriptedCall("ok", latency=1.5, clock=virtual_clock))

    assert heard == [SlowCall("circuit_breaker", "slow", 1.5, 1.0)]


# --- timeout, fallback, bulkhead --------------------------------------------------------------


async def test_timeout_reports_timed_out(heard: list[Event], virtual_clock: VirtualClock) -> None:
    limit = Timeout(2.0, operation_name="report", clock=virtual_clock)

    @limit
    async def build_report() -> str:
        await virtual_clock.async_sleep(10.0)
        return "never"

    with pytest.raises(OperationTimeoutError):
        await build_report()

    assert heard == [TimedOut("timeout", "report", 2.0)]


def test_fallback_reports_fallback_used(heard: list[Event]) -> None:
    error = ConnectionError("down")
    recommend = Fallback([], name="recommend")(ScriptedCall(error))

    assert recommend() == []

    assert heard == [FallbackUsed("fallback", "recommend", error, None)]


def test_full_bulkhead_reports_call_rejected(heard: list[Event]) -> None:
    bulkhead = Bulkhead(max_concurrent=1, name="db")
    query = bulkhead(ScriptedCall("rows"))
    bulkhead.acquire()  # the test holds the only permit
    try:
        with pytest.raises(BulkheadFullError):
            query()
    finally:
        bulkhead.release()

    assert heard == [CallRejected("bulkhead", "db", "full", 0.0)]
    assert query() == "rows"


# --- where listeners go -----------------------------------------------------------------------


def test_a_policy_listener_hears_only_its_own_policy(virtual_clock: VirtualClock) -> None:
    mine, other = (Retry(max_attempts=2, base_delay=0, name=n, clock=virtual_clock)
                   for n in ("mine", "other"))
    heard: list[Event] = []
    mine.events.add(heard.append, Succeeded)

    mine.call(ScriptedCall("a"))
    other.call(ScriptedCall("b"))

    assert heard == [Succeeded("retry", "mine", 1, 0.0)]


def test_a_pipeline_listener_hears_every_strategy_of_the_pipeline(
    virtual_clock: VirtualClock,
) -> None:
    protect = pipeline(
        retry=Retry(max_attempts=3, base_delay=1.0, jitter=0, name="call",
                    clock=virtual_clock),
        circuit_breaker=CircuitBreaker("dep", failure_threshold=1, recovery_timeout=60.0,
                                       clock=virtual_clock),
        fallback_value="cached",
    )
    heard: list[Event] = []
    protect.events.add(heard.append, RetryScheduled, StateChanged, CallRejected, GaveUp,
                       FallbackUsed)
    error = ConnectionError("down")

    assert protect(ScriptedCall(error))() == "cached"

    assert [type(event) for event in heard] == [
        StateChanged, RetryScheduled, CallRejected, GaveUp, FallbackUsed,
    ]
    gave_up = heard[3]
    assert isinstance(gave_up, GaveUp)
    assert gave_up.reason == "not_retryable"  # a CircuitBreakerError is not retried
    assert isinstance(gave_up.exception, CircuitBreakerError)
    # Nothing outside the pipeline listens, so strategies elsewhere stay silent.
    assert not Retry(clock=virtual_clock).events.active


def test_a_listener_filtered_by_kind_hears_only_that_kind(
    virtual_clock: VirtualClock,
) -> None:
    retries: list[Event] = []
    add_listener(retries.append, RetryScheduled)
    try:
        Retry(max_attempts=3, base_delay=0.5, jitter=0, name="op",
              clock=virtual_clock).call(ScriptedCall(ConnectionError, ConnectionError, "ok"))
    finally:
        remove_listener(retries.append)

    assert [(e.attempt, e.delay) for e in retries if isinstance(e, RetryScheduled)] == [
        (1, 0.5), (2, 1.0)]
    assert len(retries) == 2


def test_a_raising_listener_is_logged_and_does_not_break_the_call(
    caplog: pytest.LogCaptureFixture, virtual_clock: VirtualClock,
) -> None:
    after: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    add_listener(broken)
    add_listener(after.append, Succeeded)
    try:
        with caplog.at_level(logging.ERROR, logger="buttress"):
            result = Retry(max_attempts=2, base_delay=0, name="op", clock=virtual_clock).call(
                ScriptedCall(ConnectionError, "ok"))
    finally:
        remove_listener(broken)
        remove_listener(after.append)

    assert result == "ok"
    assert after == [Succeeded("retry", "op", 2, 0.0)]
    assert "listener bug" in caplog.text


def test_the_seed_callbacks_are_still_called_alongside_listeners(
    virtual_clock: VirtualClock,
) -> None:
    calls: list[tuple[Any, ...]] = []
    resilience_metrics.install()
    error = ConnectionError("down")
    retrying = Retry(
        max_attempts=2, base_delay=1.0, jitter=0, name="seeded", clock=virtual_clock,
        on_retry=lambda attempt, exc: calls.append(("retry", attempt, exc)),
        on_success=lambda attempts, duration: calls.append(("success", attempts, duration)),
        on_failure=lambda attempts, exc: calls.append(("failure", attempts, exc)),
    )

    assert retrying.call(ScriptedCall(error, "ok")) == "ok"
    with pytest.raises(RetryExhaustedError):
        retrying.call(ScriptedCall(error))

    assert calls == [
        ("retry", 1, error), ("success", 2, 1.0),
        ("retry", 1, error), ("failure", 2, error),
    ]
    seeded = resilience_metrics.get_metrics("seeded")
    assert (seeded["successes"], seeded["failures"], seeded["retries"]) == (1, 1, 2)


# --- nothing is built when nobody listens -----------------------------------------------------


@pytest.fixture
def constructions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the event classes constructed while the test runs."""
    built: list[str] = []
    for kind in ALL_KINDS:
        original = kind.__init__

        def counting(self: Event, *args: Any, __original: Any = original,
                     **kwargs: Any) -> None:
            built.append(type(self).__name__)
            __original(self, *args, **kwargs)

        monkeypatch.setattr(kind, "__init__", counting)
        draft = _DRAFTS.get(kind)
        if draft is not None:  # hot paths build through maker(kind), which fills a draft

            def counting_draft(self: Event, __name: str = kind.__name__) -> None:
                built.append(__name)

            monkeypatch.setattr(draft, "__init__", counting_draft)
    return built


async def _every_strategy_once(clock: VirtualClock) -> None:
    retrying = Retry(max_attempts=3, base_delay=1.0, clock=clock)
    retrying.call(ScriptedCall(ConnectionError, "ok"))
    with pytest.raises(RetryExhaustedError):
        retrying.call(ScriptedCall(ConnectionError))
    await retrying.acall(AsyncScriptedCall(ConnectionError, "ok"))
    breaker = CircuitBreaker("quiet", failure_threshold=1, recovery_timeout=1.0,
                             slow_call_duration=0.1, clock=clock)
    with pytest.raises(ConnectionError):
        breaker.call(ScriptedCall(ConnectionError))
    with pytest.raises(CircuitBreakerError):
        breaker.call(ScriptedCall("ok"))
    clock.advance(1.0)
    breaker.call(ScriptedCall("ok", latency=0.5, clock=clock))
    assert Fallback(0)(ScriptedCall(ValueError))() == 0
    bulkhead = Bulkhead(max_concurrent=1)
    bulkhead.acquire()
    with pytest.raises(BulkheadFullError):
        bulkhead.call(ScriptedCall("ok"))
    bulkhead.release()

    @Timeout(1.0, clock=clock)
    async def slow() -> None:
        await clock.async_sleep(5.0)

    with pytest.raises(OperationTimeoutError):
        await slow()


async def test_no_event_object_is_built_when_nobody_listens(
    constructions: list[str], virtual_clock: VirtualClock,
) -> None:
    assert not GLOBAL.active

    await _every_strategy_once(virtual_clock)

    assert constructions == []


async def test_the_construction_counter_does_count_when_somebody_listens(
    constructions: list[str], virtual_clock: VirtualClock,
) -> None:
    resilience_metrics.install()

    await _every_strategy_once(virtual_clock)

    # Only the kinds the metrics listener subscribes to are built.
    assert set(constructions) == {
        "Succeeded", "GaveUp", "RetryScheduled", "StateChanged", "CallRejected",
        "FallbackUsed", "TimedOut",
    }


def test_metrics_listener_counts_every_stage_under_the_operation_name(
    virtual_clock: VirtualClock,
) -> None:
    resilience_metrics.install()
    protect = pipeline(
        retry=Retry(max_attempts=2, base_delay=1.0, jitter=0, name="orders",
                    clock=virtual_clock),
        circuit_breaker=CircuitBreaker("orders-db", failure_threshold=2,
                                       recovery_timeout=30.0, clock=virtual_clock),
    )
    call = protect(ScriptedCall(ConnectionError, "ok", ConnectionError, ConnectionError))

    assert call() == "ok"  # fail, retry, succeed
    with pytest.raises(RetryExhaustedError):
        call()  # fail (breaker opens at the 2nd failure in a row), retry, fail
    with pytest.raises(CircuitBreakerError):
        call()  # rejected at once, not retried

    # The breaker's rejection and trip count under the call's operation, "orders";
    # the rejected call is its own outcome, not a failure.
    orders = resilience_metrics.get_metrics("orders")
    assert (orders["total"], orders["successes"], orders["failures"], orders["rejected"]) == (
        3, 1, 1, 1)
    assert orders["retries"] == 2
    assert (orders["trips"], orders["rejections"]) == (1, 1)
    assert orders["latency"]["count"] == 3
    assert orders["latency"]["max"] == 1.0
    assert resilience_metrics.get_metrics("orders-db")["total"] == 0


async def test_cancelling_a_retried_call_gives_up_as_cancelled_not_as_failed(
    heard: list[Event], virtual_clock: VirtualClock,
) -> None:
    resilience_metrics.install()
    started = asyncio.Event()

    @Retry(max_attempts=3, name="op", clock=virtual_clock)
    async def wait_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(wait_forever())
    await started.wait()
    virtual_clock.advance(2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert heard[0] == AttemptStarted("retry", "op", 1)
    gave_up = heard[1]
    assert isinstance(gave_up, GaveUp)
    assert (gave_up.reason, gave_up.attempts, gave_up.duration) == ("cancelled", 1, 2.0)
    assert isinstance(gave_up.exception, asyncio.CancelledError)
    assert len(heard) == 2
    op = resilience_metrics.get_metrics("op")
    assert (op["total"], op["failures"], op["cancelled"]) == (0, 0, 1)
    assert resilience_metrics.operation_history[-1].outcome == "cancelled"
