"""The quick path of the commonest retry (``RetryPolicy.quick``: no predicate,
hook, budget or deadline, a constant wait) decides its failures inline; every
call it makes must end as ``RetryPolicy.decide`` says, and as the general loop
(the one a listener puts the call on) does: same attempts, same waits, same
error, same context and operation records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from _support import Fatal, Flaky, Throttled
from buttress import (
    CircuitBreakerError,
    CircuitState,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    RetryStrategy,
    current_context,
)
from buttress._core import operation
from buttress.retry import Decision, Outcome, RetryPolicy, RetryState
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock, set_testing


class SlowFlaky(Flaky):
    """A retryable failure of a subclass."""


def _open() -> CircuitBreakerError:
    return CircuitBreakerError("db", CircuitState.OPEN, 5.0)


SCRIPTS: dict[str, Callable[[], list[Any]]] = {
    "two failures, then a result": lambda: [Flaky("a"), Flaky("b"), "ok"],
    "a subclass of a retryable failure": lambda: [SlowFlaky("a"), "ok"],
    "a failure not retried": lambda: [Flaky("a"), Fatal("f"), "ok"],
    "an open breaker": lambda: [_open(), "ok"],
    "a retry_after hint": lambda: [Throttled(2.0), Flaky("a"), "ok"],
    "a hint that is no number": lambda: [Throttled("soon"), "ok"],
    "a hint over max_delay": lambda: [Throttled(99.0), "ok"],
    "a zero hint": lambda: [Throttled(0), Flaky("a"), "ok"],
    "failing throughout": lambda: [Flaky("a"), Flaky("b"), Flaky("c"), Flaky("d"), Flaky("e")],
}

CONFIGS: dict[str, dict[str, Any]] = {
    "zero wait": {"base_delay": 0},
    "a fixed wait": {"base_delay": 0.25, "strategy": RetryStrategy.FIXED_DELAY},
    "one attempt": {"base_delay": 0, "max_attempts": 1},
    "two attempts, reraising": {"base_delay": 0, "max_attempts": 2, "reraise": True},
    "four attempts, a fixed wait, reraising": {
        "base_delay": 0.5, "strategy": RetryStrategy.FIXED_DELAY, "max_attempts": 4,
        "reraise": True},
}


def config(**options: Any) -> RetryConfig:
    options.setdefault("max_attempts", 3)
    return RetryConfig(jitter=0, max_delay=5.0, retry_on=(Flaky, Throttled), **options)


def expected(cfg: RetryConfig, script: list[Any]) -> tuple[str, Any, int, list[float]]:
    """What decide() says the call does: how it ends, with what, after how many
    attempts, after which waits."""
    policy = RetryPolicy(cfg)
    state = RetryState(0.0)
    waits: list[float] = []
    for attempts, outcome in enumerate(script, start=1):
        state.attempts = attempts
        if not isinstance(outcome, Exception):
            return "returned", outcome, attempts, waits
        decision = policy.decide(state, Outcome.raised(outcome), 0.0)
        if decision.kind == Decision.RETRY:
            state.previous_delay = decision.delay
            if decision.delay > 0.0:
                waits.append(decision.delay)
            continue
        if decision is Decision.RAISE or cfg.reraise:
            return "raised", outcome, attempts, waits
        return "exhausted", outcome, attempts, waits
    raise AssertionError("the script ran out")


def ended(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "returned", run()
    except RetryExhaustedError as error:
        return "exhausted", error.last_exception
    except Exception as error:
        return "raised", error


def listened(retry: Retry) -> Retry:
    retry.events.add(lambda event: None)
    return retry


@pytest.mark.parametrize("options", CONFIGS.values(), ids=list(CONFIGS))
@pytest.mark.parametrize("script", SCRIPTS.values(), ids=list(SCRIPTS))
@pytest.mark.parametrize("heard", [False, True], ids=["quiet", "heard"])
def test_a_quick_retry_ends_every_call_as_decide_says(
        options: dict[str, Any], script: Callable[[], list[Any]], heard: bool) -> None:
    cfg = config(**options)
    outcomes = script()
    how, what, attempts, waits = expected(cfg, outcomes)
    clock = VirtualClock()
    retry = Retry(cfg, clock=clock)
    assert retry.policy.quick is not None
    if heard:
        listened(retry)
    call = ScriptedCall(*outcomes)
    assert ended(retry(call)) == (how, what)
    assert call.calls == attempts
    assert clock.sleeps == waits


@pytest.mark.parametrize("options", CONFIGS.values(), ids=list(CONFIGS))
@pytest.mark.parametrize("script", SCRIPTS.values(), ids=list(SCRIPTS))
async def test_an_async_quick_retry_ends_every_call_as_decide_says(
        options: dict[str, Any], script: Callable[[], list[Any]]) -> None:
    cfg = config(**options)
    outcomes = script()
    how, what, attempts, waits = expected(cfg, outcomes)
    clock = VirtualClock()
    call = AsyncScriptedCall(*outcomes)
    retrying = Retry(cfg, clock=clock)(call)
    try:
        outcome: tuple[str, Any] = ("returned", await retrying())
    except RetryExhaustedError as error:
        outcome = ("exhausted", error.last_exception)
    except Exception as error:
        outcome = ("raised", error)
    assert outcome == (how, what)
    assert call.calls == attempts
    assert clock.sleeps == waits


@pytest.mark.parametrize("options", [
    {"retry_condition": lambda exc: True},
    {"retry_after": lambda exc: None},
    {"deadline": 10.0},
    {"retry_on_result": lambda result: False},
    {"base_delay": 0.5},  # exponential: the wait changes with the attempt
    {"base_delay": 0.5, "strategy": RetryStrategy.FIXED_DELAY, "jitter": 0.5},
], ids=["a predicate", "a hint hook", "a deadline", "a judged result", "a growing wait",
        "a jittered wait"])
def test_only_a_retry_whose_rules_are_a_type_check_a_count_and_a_constant_wait_is_quick(
        options: dict[str, Any]) -> None:
    options.setdefault("jitter", 0)
    assert Retry(RetryConfig(**options)).policy.quick is None
    assert Retry(RetryConfig(base_delay=0, jitter=0)).policy.quick is not None


def test_a_quick_retry_counts_attempts_in_the_context_and_the_enclosing_operation() -> None:
    seen: list[int | None] = []

    def flaky() -> str:
        context = current_context()
        seen.append(None if context is None else context.attempt)
        if len(seen) < 3:
            raise Flaky("again")
        return "ok"

    op = operation.Operation("checkout")
    token = operation.open_operation(op)
    try:
        assert Retry(config(base_delay=0), clock=VirtualClock())(flaky)() == "ok"
    finally:
        operation.close_operation(token)
    assert seen == [None, 2, 3]
    assert (op.attempts, op.retries) == (3, 2)
    assert current_context() is None


def test_a_listener_added_during_a_quick_call_hears_the_rest_of_it() -> None:
    heard: list[str] = []
    retry = Retry(config(base_delay=0), clock=VirtualClock())

    def flaky() -> str:
        if not heard and len(calls) == 1:
            retry.events.add(lambda event: heard.append(type(event).__name__))
        calls.append(1)
        if len(calls) < 3:
            raise Flaky("again")
        return "ok"

    calls: list[int] = []
    assert retry(flaky)() == "ok"
    assert heard == ["AttemptFailed", "RetryScheduled", "AttemptStarted", "Succeeded"]


def test_test_mode_takes_a_quick_retry_off_its_quick_path() -> None:
    clock = VirtualClock()
    call = ScriptedCall(Flaky("a"), Flaky("b"), "ok")
    retrying = Retry(config(base_delay=0.25, strategy=RetryStrategy.FIXED_DELAY),
                     clock=clock)(call)
    with set_testing(True, attempts=2):
        assert ended(retrying)[0] == "exhausted"
    assert call.calls == 2
    assert clock.sleeps == []  # test mode removes the waits


def test_a_quick_retry_inside_a_deadline_stops_before_a_wait_that_would_pass_it() -> None:
    from buttress import deadline

    clock = VirtualClock()
    call = ScriptedCall(Flaky("a"), "ok")
    retrying = Retry(config(base_delay=2.0, strategy=RetryStrategy.FIXED_DELAY),
                     clock=clock)(call)
    with deadline(1.0, clock=clock), pytest.raises(RetryExhaustedError) as caught:
        retrying()
    assert "deadline" in str(caught.value.reason)
    assert call.calls == 1
    assert clock.sleeps == []
