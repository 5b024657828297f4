"""A circuit breaker that is the outermost layer of a pipeline reports each call
as one operation itself, while anybody listens to any of the pipeline's
strategies, instead of through a reporting layer of its own: the same
CallFinished, once per call, sync and async, closed and open."""

from __future__ import annotations

from typing import Any

import pytest

from buttress import CircuitBreaker, CircuitBreakerError, Pipeline, Timeout
from buttress._core.operation import CallFinished


def protect(name: str) -> tuple[Pipeline, CircuitBreaker, Timeout]:
    breaker = CircuitBreaker(name, failure_threshold=1, recovery_timeout=60)
    timeout = Timeout(5.0)
    return Pipeline(breaker, timeout), breaker, timeout


def test_the_breaker_s_own_wrapper_is_the_outermost_layer() -> None:
    pipe, _, _ = protect("outermost-layer")

    @pipe
    async def call() -> int:
        return 1

    code = call.__code__  # type: ignore[attr-defined]
    assert code.co_qualname == "CircuitBreaker._wrap_async.<locals>.protected"


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_listener_on_the_inner_timeout_hears_each_call_finish_once(kind: str) -> None:
    pipe, breaker, timeout = protect(f"outermost-{kind}")
    finished: list[CallFinished] = []
    timeout.events.add(finished.append, CallFinished)
    outcomes: list[Any] = []

    if kind == "async":
        @pipe
        async def acall(fail: bool) -> str:
            if fail:
                raise ConnectionError("down")
            return "ok"

        async def run(fail: bool) -> None:
            try:
                outcomes.append(await acall(fail))
            except Exception as exc:
                outcomes.append(type(exc))
    else:
        @pipe
        def call(fail: bool) -> str:
            if fail:
                raise ConnectionError("down")
            return "ok"

        async def run(fail: bool) -> None:
            try:
                outcomes.append(call(fail))
            except Exception as exc:
                outcomes.append(type(exc))

    await run(False)
    await run(True)  # trips the breaker (threshold 1)
    await run(False)  # rejected
    assert outcomes == ["ok", ConnectionError, CircuitBreakerError]
    called = "acall" if kind == "async" else "call"
    assert [(e.name.rsplit(".", 1)[-1], e.outcome) for e in finished] == [
        (called, "success"), (called, "failure"), (called, "rejected")]
    assert breaker.stats.failed_calls == 1


async def test_nobody_listening_hears_nothing_and_the_breaker_still_counts() -> None:
    pipe, breaker, _ = protect("outermost-unheard")

    @pipe
    async def call() -> str:
        return "ok"

    assert [await call() for _ in range(3)] == ["ok"] * 3
    assert breaker.stats.successful_calls == 3
