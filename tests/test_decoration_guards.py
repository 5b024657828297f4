"""What a strategy can not protect is refused when it is decorated, never left
silently unprotected: generator and async generator functions, non-callables,
and ``classmethod``/``staticmethod`` objects (the decorator belongs below them).

One check (``buttress._core.strategy.check_protectable``) serves every decorator,
so each case runs against every way of decorating.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from buttress import (
    Bulkhead,
    CachedFallback,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Retry,
    Timeout,
    resilient,
)
from buttress.decorators import async_circuit_breaker, circuit_breaker
from buttress.presets import database_resilient
from buttress.retry import retry
from buttress.testing import VirtualClock


def _decorators() -> dict[str, Callable[[Any], Any]]:
    clock = VirtualClock()
    return {
        "Retry": Retry(max_attempts=3, clock=clock),
        "retry()": retry(max_attempts=3, clock=clock),
        "CircuitBreaker": CircuitBreaker("guarded", clock=clock),
        "circuit_breaker()": circuit_breaker(name="guarded-registered", clock=clock),
        "Timeout": Timeout(1.0, clock=clock),
        "Fallback": Fallback(None),
        "CachedFallback": CachedFallback(clock=clock),
        "Bulkhead": Bulkhead(max_concurrent=2, clock=clock),
        "Pipeline": Pipeline(Retry(max_attempts=2, clock=clock), Fallback(None)),
        "resilient()": resilient(operation_type="api", operation_name="guarded-op"),
        "database_resilient()": database_resilient(operation_name="guarded-db"),
    }


DECORATORS = sorted(_decorators())


@pytest.fixture(params=DECORATORS)
def decorate(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    return _decorators()[request.param]


def rows() -> Iterator[int]:
    yield 1


async def arows() -> AsyncIterator[int]:
    yield 1


class RowSource:
    def __call__(self) -> Iterator[int]:
        yield 1


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (rows, "generator function"),
        (arows, "async generator function"),
        (functools.partial(rows), "generator function"),
        (RowSource(), "generator function"),
    ],
    ids=["generator", "async-generator", "partial-of-generator", "callable-object"],
)
def test_generator_functions_are_refused_at_decoration_naming_the_function(
    decorate: Callable[[Any], Any], fn: Any, kind: str
) -> None:
    with pytest.raises(TypeError) as caught:
        decorate(fn)
    message = str(caught.value)
    assert f"can not protect {kind}" in message
    assert "rows" in message or "RowSource" in message
    assert "consumes it" in message  # says what to do instead


def test_a_function_that_consumes_a_generator_is_protected_as_usual(
    decorate: Callable[[Any], Any],
) -> None:
    @decorate
    def all_rows() -> list[int]:
        return list(rows())

    assert all_rows() == [1]


@pytest.mark.parametrize("value", [42, "fetch", None, [len]], ids=repr)
def test_a_non_callable_is_refused_at_decoration(
    decorate: Callable[[Any], Any], value: object
) -> None:
    with pytest.raises(TypeError, match="can only decorate a callable, got"):
        decorate(value)


@pytest.mark.parametrize("kind", [classmethod, staticmethod], ids=lambda k: k.__name__)
def test_decorating_a_classmethod_or_staticmethod_object_says_to_put_it_below(
    decorate: Callable[[Any], Any], kind: Any
) -> None:
    def method(*args: Any) -> str:
        return "ok"

    with pytest.raises(TypeError) as caught:
        decorate(kind(method))
    message = str(caught.value)
    assert f"the {kind.__name__} object" in message
    assert "method" in message
    assert f"put @{kind.__name__} above the buttress decorator" in message


def test_the_documented_order_protects_classmethods_and_staticmethods() -> None:
    clock = VirtualClock()
    calls: list[str] = []

    class Client:
        @classmethod
        @retry(max_attempts=3, base_delay=0.0, clock=clock)
        def build(cls) -> str:
            calls.append("build")
            if len(calls) < 2:
                raise ConnectionError("flaky")
            return cls.__name__

        @staticmethod
        @retry(max_attempts=3, base_delay=0.0, clock=clock)
        def ping(value: int) -> int:
            return value

    assert Client.build() == "Client"
    assert calls == ["build", "build"]
    assert Client().ping(7) == 7


def test_bare_retry_above_classmethod_is_refused_not_retried() -> None:
    # Before: the classmethod object was wrapped, calling it raised TypeError
    # ("'classmethod' object is not callable") and that TypeError was retried.
    with pytest.raises(TypeError, match="put @classmethod above"):

        class Client:
            @retry  # type: ignore[arg-type]
            @classmethod
            def build(cls) -> str:
                return "never"


async def test_call_and_acall_refuse_generator_functions() -> None:
    breaker = CircuitBreaker("direct", clock=VirtualClock())
    with pytest.raises(TypeError, match="can not protect generator function"):
        breaker.call(rows)
    with pytest.raises(TypeError, match="can not protect async generator function"):
        await breaker.acall(arows)  # type: ignore[arg-type]
    strategy = Retry(max_attempts=2, clock=VirtualClock())
    with pytest.raises(TypeError, match="can not protect generator function"):
        strategy.call(rows)
    with pytest.raises(TypeError, match="can not protect async generator function"):
        await strategy.acall(arows)  # type: ignore[arg-type]
    assert breaker.stats.total_calls == 0  # nothing was run, nothing was counted


def test_async_only_decorators_name_the_async_generator_too() -> None:
    with pytest.raises(TypeError, match="can not protect async generator function"):
        async_circuit_breaker(name="async-only", clock=VirtualClock())(arows)
