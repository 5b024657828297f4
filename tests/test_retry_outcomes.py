"""Retry deciding on outcomes, sync and async alike: a rejected result can set
the wait (a 429's Retry-After), a rejected result is disposed of when retried
away (a response closed), and predicates can see the call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from _support import Flaky
from buttress import RetryConfig, RetryExhaustedError, deadline, retry
from buttress.retry import RetryCall
from buttress.testing import VirtualClock


class Response:
    """A response that must be closed, as an HTTP client's is."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"Response({self.status})"


def run(kind: str, decorated: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if kind == "async":
        return asyncio.run(decorated(*args, **kwargs))
    return decorated(*args, **kwargs)


def protected(kind: str, outcomes: list[Any]) -> tuple[Callable[..., Any], list[Any]]:
    """A function playing ``outcomes`` (raising exceptions), sync or async, and
    the list of the arguments of each call."""
    seen: list[Any] = []
    queue = list(outcomes)

    def play(*args: Any, **kwargs: Any) -> Any:
        seen.append((args, kwargs))
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def aplay(*args: Any, **kwargs: Any) -> Any:
        return play(*args, **kwargs)

    return (aplay if kind == "async" else play), seen


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


def retry_after_header(response: Response) -> float | None:
    value = response.headers.get("Retry-After")
    return float(value) if value is not None else None


@KINDS
def test_a_rejected_results_retry_after_sets_the_wait(kind: str) -> None:
    clock = VirtualClock()
    fn, _ = protected(kind, [Response(429, {"Retry-After": "7"}), Response(429), Response(200)])
    decorated = retry(max_attempts=3, base_delay=1.0, jitter=0, clock=clock,
                      retry_on_result=lambda r: r.status == 429,
                      retry_after_result=retry_after_header)(fn)
    assert run(kind, decorated).status == 200
    assert clock.sleeps == [7.0, 2.0]  # the hint, then the schedule when there is none


@KINDS
def test_a_result_hint_is_capped_at_max_delay(kind: str) -> None:
    clock = VirtualClock()
    fn, _ = protected(kind, [Response(503), Response(200)])
    decorated = retry(max_attempts=2, max_delay=5.0, jitter=0, clock=clock,
                      retry_on_result=lambda r: r.status == 503,
                      retry_after_result=lambda r: 3600)(fn)
    run(kind, decorated)
    assert clock.sleeps == [5.0]


def test_result_headers_are_not_parsed_without_a_result_hint() -> None:
    clock = VirtualClock()
    fn, _ = protected("sync", [Response(429, {"Retry-After": "9"}), Response(200)])
    decorated = retry(max_attempts=2, base_delay=0.5, jitter=0, clock=clock,
                      retry_on_result=lambda r: r.status == 429)(fn)
    decorated()
    assert clock.sleeps == [0.5]


@KINDS
def test_every_rejected_result_retried_away_is_disposed_of_but_not_the_one_returned(
        kind: str) -> None:
    responses = [Response(503), Response(503), Response(200)]
    fn, _ = protected(kind, responses)
    decorated = retry(max_attempts=3, base_delay=0, clock=VirtualClock(),
                      retry_on_result=lambda r: r.status == 503,
                      dispose=Response.close)(fn)
    assert run(kind, decorated) is responses[2]
    assert [r.closed for r in responses] == [True, True, False]


@KINDS
def test_the_rejected_result_the_call_gives_up_with_is_not_disposed_of(kind: str) -> None:
    responses = [Response(503), Response(503)]
    fn, _ = protected(kind, responses)
    decorated = retry(max_attempts=2, base_delay=0, clock=VirtualClock(),
                      retry_on_result=lambda r: r.status == 503,
                      dispose=Response.close)(fn)
    with pytest.raises(RetryExhaustedError) as caught:
        run(kind, decorated)
    assert caught.value.last_result is responses[1]
    assert [r.closed for r in responses] == [True, False]


@KINDS
def test_dispose_is_not_called_for_exceptions(kind: str) -> None:
    disposed: list[Any] = []
    fn, _ = protected(kind, [Flaky(), Response(200)])
    decorated = retry(max_attempts=2, base_delay=0, clock=VirtualClock(),
                      dispose=disposed.append)(fn)
    run(kind, decorated)
    assert disposed == []


@KINDS
def test_a_predicate_taking_the_call_sees_its_arguments_and_attempt(kind: str) -> None:
    calls: list[RetryCall] = []

    def idempotent_only(exc: Exception, call: RetryCall) -> bool:
        calls.append(call)
        return call.kwargs.get("method") == "GET"

    fn, seen = protected(kind, [Flaky(), Flaky(), "ok"])
    decorated = retry(max_attempts=3, base_delay=0, clock=VirtualClock(),
                      retry_condition=idempotent_only, name="fetch")(fn)
    assert run(kind, decorated, "/users", method="GET") == "ok"
    assert [(c.args, dict(c.kwargs), c.attempt, c.operation) for c in calls] == [
        (("/users",), {"method": "GET"}, 1, "fetch"),
        (("/users",), {"method": "GET"}, 2, "fetch"),
    ]
    fn, seen = protected(kind, [Flaky(), "ok"])
    decorated = retry(max_attempts=3, base_delay=0, clock=VirtualClock(),
                      retry_condition=idempotent_only, reraise=True)(fn)
    with pytest.raises(Flaky):
        run(kind, decorated, "/users", method="POST")
    assert len(seen) == 1  # a POST is not retried


@KINDS
def test_a_result_predicate_taking_the_call_sees_the_per_call_context(kind: str) -> None:
    contexts: list[Any] = []
    clock = VirtualClock()

    def rejected(result: str, call: RetryCall) -> bool:
        contexts.append(call.context)
        return result == "busy"

    fn, _ = protected(kind, ["busy", "ok"])
    decorated = retry(max_attempts=2, base_delay=0, clock=clock, retry_on_result=rejected)(fn)

    if kind == "async":
        async def main() -> Any:
            async with deadline(30.0, clock=clock, items={"tenant": "acme"}):
                return await decorated()
        assert asyncio.run(main()) == "ok"
    else:
        with deadline(30.0, clock=clock, items={"tenant": "acme"}):
            assert decorated() == "ok"
    assert [c.items["tenant"] for c in contexts] == ["acme", "acme"]


def test_one_argument_predicates_keep_working_and_their_arity_is_read_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    looked = 0
    real = inspect.signature

    def counting(*args: Any, **kwargs: Any) -> inspect.Signature:
        nonlocal looked
        looked += 1
        return real(*args, **kwargs)

    seen: list[Exception] = []
    decorated_retry = retry(max_attempts=3, base_delay=0, clock=VirtualClock(),
                            retry_condition=lambda exc: seen.append(exc) or True)
    monkeypatch.setattr(inspect, "signature", counting)
    fn, _ = protected("sync", [Flaky(), Flaky(), "ok"])
    assert decorated_retry(fn)() == "ok"
    assert len(seen) == 2
    assert looked == 0


def test_a_second_parameter_with_a_default_is_not_given_the_call() -> None:
    given: list[object] = []

    def condition(exc: Exception, extra: object = "default") -> bool:
        given.append(extra)
        return True

    fn, _ = protected("sync", [Flaky(), "ok"])
    retry(max_attempts=2, base_delay=0, clock=VirtualClock(), retry_condition=condition)(fn)()
    assert given == ["default"]


def test_should_retry_gives_a_two_parameter_condition_an_empty_call() -> None:
    config = RetryConfig(retry_condition=lambda exc, call: call.args == ())
    assert config.should_retry(Flaky())


def test_the_new_options_survive_replace_and_are_validated() -> None:
    config = RetryConfig(dispose=print, retry_after_result=len)
    assert config.replace(max_attempts=5).dispose is print
    assert config.replace(max_attempts=5).retry_after_result is len
    with pytest.raises(TypeError):
        RetryConfig(dispose=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["dispose", "retry_after_result"])
def test_saving_settings_refuses_the_outcome_hooks_a_file_can_not_hold(
        option: str, tmp_path: Any) -> None:
    from buttress import ConfigurationError, reset_settings
    from buttress.config import resilience_config

    resilience_config.update_config("responses", RetryConfig(**{option: len}))
    try:
        with pytest.raises(ConfigurationError, match=rf"responses.{option} = .* can not be saved"):
            resilience_config.save_to_file(tmp_path / "out.json")
    finally:
        reset_settings()
