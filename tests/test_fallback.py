"""Fallback (C4): answer with a value or a function when the call fails."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from buttress import ConfigurationError, Fallback, with_fallback

# --- fallback_value ----------------------------------------------------------------------


def test_fallback_value_answers_a_failing_sync_call() -> None:
    @with_fallback(fallback_value="cached")
    def fetch() -> str:
        raise ConnectionError("down")

    assert fetch() == "cached"


def test_success_is_returned_untouched() -> None:
    calls: list[int] = []

    @with_fallback(fallback_value="cached")
    def fetch(x: int) -> int:
        calls.append(x)
        return x * 2

    assert fetch(21) == 42
    assert calls == [21]
    assert fetch.__name__ == "fetch"


def test_none_is_a_valid_fallback_value() -> None:
    @with_fallback(fallback_value=None)
    def fetch() -> str:
        raise RuntimeError

    assert fetch() is None


def test_fallback_value_may_be_given_positionally() -> None:
    @with_fallback(0)
    def count() -> int:
        raise RuntimeError

    assert count() == 0


async def test_fallback_value_answers_a_failing_async_call() -> None:
    @with_fallback(fallback_value={"recommendations": []})
    async def get_recommendations(user_id: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        raise ConnectionError(user_id)

    assert await get_recommendations("u1") == {"recommendations": []}


async def test_async_success_is_returned_untouched() -> None:
    @with_fallback(fallback_value=[])
    async def fetch() -> list[int]:
        return [1, 2]

    assert await fetch() == [1, 2]


@pytest.mark.parametrize(
    "value", [[1, 2], {"items": [1]}, {1, 2}, {"nested": {"deep": [1]}}],
    ids=["list", "dict", "set", "nested"],
)
def test_mutable_fallback_values_are_fresh_copies_each_time(value: Any) -> None:
    @with_fallback(fallback_value=value)
    def fetch() -> Any:
        raise RuntimeError

    first = fetch()
    first_copy_of_original = repr(value)
    assert first == value
    assert first is not value
    if isinstance(first, list):
        first.append(99)
    elif isinstance(first, set):
        first.add(99)
    elif "nested" in first:
        first["nested"]["deep"].append(99)
    else:
        first["items"].append(99)
    second = fetch()
    assert second == value
    assert second is not first
    assert repr(value) == first_copy_of_original  # the configured value is untouched


async def test_mutable_fallback_values_are_fresh_copies_in_async_calls_too() -> None:
    @with_fallback(fallback_value={"items": []})
    async def fetch() -> dict[str, list[int]]:
        raise RuntimeError

    first = await fetch()
    first["items"].append(1)
    assert await fetch() == {"items": []}


def test_immutable_fallback_values_are_returned_as_given() -> None:
    value = ("a", "b")

    @with_fallback(fallback_value=value)
    def fetch() -> tuple[str, ...]:
        raise RuntimeError

    assert fetch() is value


# --- fallback callable -------------------------------------------------------------------


def test_fallback_callable_receives_the_error_and_the_call_arguments() -> None:
    received: list[tuple[BaseException, tuple[Any, ...], dict[str, Any]]] = []
    boom = ConnectionError("down")

    def answer(exc: BaseException, *args: Any, **kwargs: Any) -> str:
        received.append((exc, args, kwargs))
        return f"cached profile of {args[0]}"

    @with_fallback(fallback=answer)
    def get_profile(user_id: str, *, fields: str = "all") -> str:
        raise boom

    assert get_profile("u7", fields="name") == "cached profile of u7"
    assert received == [(boom, ("u7",), {"fields": "name"})]


def test_fallback_lambda_in_the_seed_style() -> None:
    @with_fallback(fallback=lambda exc, user_id: {"id": user_id, "stale": True})
    def get_profile(user_id: str) -> dict[str, Any]:
        raise TimeoutError

    assert get_profile("u1") == {"id": "u1", "stale": True}


async def test_sync_fallback_callable_answers_an_async_call() -> None:
    @with_fallback(fallback=lambda exc, x: x + 1)
    async def compute(x: int) -> int:
        raise RuntimeError

    assert await compute(1) == 2


async def test_async_fallback_callable_is_awaited() -> None:
    received: list[Any] = []

    async def answer(exc: BaseException, *args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0)
        received.append((type(exc), args, kwargs))
        return "from cache"

    @with_fallback(fallback=answer)
    async def fetch(key: str, *, ttl: int) -> str:
        raise ConnectionError

    assert await fetch("k", ttl=5) == "from cache"
    assert received == [(ConnectionError, ("k",), {"ttl": 5})]


def test_async_fallback_callable_cannot_answer_a_sync_function() -> None:
    async def answer(exc: BaseException) -> str:
        return "x"

    decorate = with_fallback(fallback=answer)

    def sync_fn() -> str:
        raise RuntimeError

    with pytest.raises(TypeError, match="coroutine function"):
        decorate(sync_fn)


def test_an_error_in_the_fallback_itself_propagates() -> None:
    @with_fallback(fallback=lambda exc: 1 / 0)
    def fetch() -> None:
        raise KeyError("original")

    with pytest.raises(ZeroDivisionError) as caught:
        fetch()
    assert isinstance(caught.value.__context__, KeyError)


# --- which failures are answered ---------------------------------------------------------


def test_exceptions_filter_limits_what_the_fallback_answers() -> None:
    @with_fallback(fallback_value="cached", exceptions=(ConnectionError, TimeoutError))
    def fetch(kind: type[Exception]) -> str:
        raise kind("x")

    assert fetch(ConnectionError) == "cached"
    assert fetch(TimeoutError) == "cached"
    assert fetch(ConnectionResetError) == "cached"  # subclasses count
    with pytest.raises(ValueError, match="x"):
        fetch(ValueError)


async def test_exceptions_filter_applies_to_async_calls() -> None:
    @with_fallback(fallback_value="cached", exceptions=ConnectionError)
    async def fetch(kind: type[Exception]) -> str:
        raise kind("x")

    assert await fetch(ConnectionError) == "cached"
    with pytest.raises(KeyError):
        await fetch(KeyError)


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, GeneratorExit])
def test_interrupts_and_exits_are_never_answered(error: type[BaseException]) -> None:
    answered: list[BaseException] = []

    @with_fallback(fallback_value="cached", on_fallback=answered.append)
    def work() -> str:
        raise error

    with pytest.raises(error):
        work()
    assert answered == []


async def test_cancellation_is_never_answered() -> None:
    answered: list[BaseException] = []
    entered = asyncio.Event()

    @with_fallback(fallback_value="cached", on_fallback=answered.append)
    async def work() -> str:
        entered.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(work())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert answered == []


async def test_a_raised_cancelled_error_is_never_answered() -> None:
    @with_fallback(fallback_value="cached")
    async def work() -> str:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await work()


@pytest.mark.parametrize("bad", [KeyboardInterrupt, asyncio.CancelledError, BaseException])
def test_exceptions_filter_refuses_non_exception_classes(bad: type[BaseException]) -> None:
    with pytest.raises(ConfigurationError, match=r"Fallback\.exceptions"):
        with_fallback(fallback_value=None, exceptions=(bad,))


def test_exceptions_filter_must_hold_classes() -> None:
    with pytest.raises(TypeError, match=r"Fallback\.exceptions"):
        with_fallback(fallback_value=None, exceptions="ValueError")
    with pytest.raises(TypeError, match=r"Fallback\.exceptions"):
        with_fallback(fallback_value=None, exceptions=[ValueError, 3])


# --- on_fallback -------------------------------------------------------------------------


def test_on_fallback_is_told_each_time_the_fallback_answers() -> None:
    seen: list[BaseException] = []
    errors = [ConnectionError("a"), TimeoutError("b")]

    @with_fallback(fallback_value=0, on_fallback=seen.append)
    def fetch(i: int) -> int:
        if i < 0:
            return i
        raise errors[i]

    assert fetch(0) == 0
    assert fetch(-5) == -5
    assert fetch(1) == 0
    assert seen == errors


async def test_on_fallback_is_told_for_async_calls() -> None:
    seen: list[BaseException] = []

    @with_fallback(fallback=lambda exc: "x", on_fallback=seen.append)
    async def fetch() -> str:
        raise KeyError("k")

    assert await fetch() == "x"
    assert [type(e) for e in seen] == [KeyError]


def test_a_failing_on_fallback_hook_is_logged_and_the_fallback_still_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_hook(exc: BaseException) -> None:
        raise RuntimeError("hook broke")

    @with_fallback(fallback_value="cached", on_fallback=broken_hook)
    def fetch() -> str:
        raise ConnectionError

    with caplog.at_level(logging.ERROR, logger="buttress"):
        assert fetch() == "cached"
    assert any("callback" in record.getMessage() for record in caplog.records)


# --- construction ---------------------------------------------------------------------------


def test_neither_value_nor_callable_is_a_type_error() -> None:
    expected = r"exactly one of fallback_value=\.\.\. or fallback=callable"
    with pytest.raises(TypeError, match=expected):
        with_fallback()


def test_both_value_and_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="exactly one of") as caught:
        with_fallback(fallback_value=1, fallback=lambda exc: 2)
    assert "fallback_value=1" in str(caught.value)


def test_fallback_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"Fallback\.fallback must be callable"):
        Fallback(fallback="not callable")  # type: ignore[arg-type]


def test_on_fallback_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"Fallback\.on_fallback must be callable"):
        Fallback(1, on_fallback="nope")  # type: ignore[arg-type]


def test_fallback_call_and_acall_run_once_under_the_strategy() -> None:
    strategy = Fallback("x")

    def fails() -> str:
        raise RuntimeError

    assert strategy.call(fails) == "x"
    assert strategy.call(lambda a: a, "ok") == "ok"

    async def afails() -> str:
        raise RuntimeError

    assert asyncio.run(strategy.acall(afails)) == "x"
