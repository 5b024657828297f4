"""circuitbreaker's (fabfuel) test suite (tests/test_functional.py, test_unit.py),
translated onto buttress.

circuitbreaker names: ``expected_exception`` is ``failure_exceptions``,
``fallback_function`` is ``fallback``, ``CircuitBreakerMonitor`` is the
registry (``get_circuit_breaker``, ``get_all_circuit_breaker_stats``,
``get_resilience_health``), ``open_remaining`` is ``remaining_timeout``.

circuitbreaker runs every functional test over four function kinds (sync and
async functions and generators). Sync and async functions are translated
below; generator functions fall under issue 10 (buttress must refuse them or
protect the iteration, never accept them silently).

Not translated: an ``expected_exception`` *predicate* and breaker subclasses
with class-level defaults (test_breaker_expected_exception_is_predicate,
test_advanced_usage_*): buttress takes exception types only and is configured
by ``CircuitBreakerConfig``, not subclassing.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitState,
    async_circuit_breaker,
    circuit_breaker,
    get_all_circuit_breaker_stats,
    get_circuit_breaker,
    get_resilience_health,
)
from buttress.testing import VirtualClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"circuitbreaker-{prefix}-{next(_names)}"


class Mock:
    """The dependency: counts its calls and raises ``side_effect`` when set."""

    def __init__(self) -> None:
        self.return_value = object()
        self.side_effect: type[Exception] | None = None
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if self.side_effect is not None:
            raise self.side_effect("Connection refused")
        return self.return_value


class Kind:
    """One of circuitbreaker's function kinds: builds the function and resolves a call."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def function(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        if self.is_async:
            async def _async(*a: Any, **kw: Any) -> Any:
                return inner(*a, **kw)
            return _async

        def _sync(*a: Any, **kw: Any) -> Any:
            return inner(*a, **kw)
        return _sync

    async def resolve(self, value: Any) -> Any:
        return (await value) if self.is_async else value


@pytest.fixture(params=[False, True], ids=["sync-function", "async-function"])
def kind(request: pytest.FixtureRequest) -> Kind:
    return Kind(request.param)


@pytest.fixture
def mock() -> Mock:
    return Mock()


# --- test_functional.py ----------------------------------------------------------------


async def test_a_closed_circuit_passes_the_call_through(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_functional.py::test_circuit_pass_through
    protected = CircuitBreaker(unique("pass"), clock=VirtualClock())(kind.function(mock))
    assert await kind.resolve(protected()) is mock.return_value


async def test_the_registry_lists_every_breaker_and_which_are_open(mock: Mock) -> None:
    # circuitbreaker: test_functional.py::test_circuitbreaker_monitor
    clock = VirtualClock()
    names = [unique("monitor") for _ in range(5)]
    breakers = [get_circuit_breaker(name, failure_threshold=1, clock=clock) for name in names]
    stats = get_all_circuit_breaker_stats()
    assert set(names) <= stats.keys()
    assert all(stats[name]["state"] == "closed" for name in names)
    assert not get_resilience_health()["open_breakers"]

    mock.side_effect = OSError
    with pytest.raises(OSError):
        breakers[0].call(mock)

    stats = get_all_circuit_breaker_stats()
    assert [name for name in names if stats[name]["state"] == "open"] == [names[0]]
    assert [name for name in names if stats[name]["state"] == "closed"] == names[1:]
    assert get_resilience_health()["open_breakers"] == [names[0]]


async def test_reaching_the_threshold_prevents_further_calls(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_functional.py::test_threshold_hit_prevents_consequent_calls
    breaker = CircuitBreaker(unique("threshold"), failure_threshold=1, clock=VirtualClock())
    protected = breaker(kind.function(mock))
    mock.side_effect = OSError
    assert breaker.is_closed
    with pytest.raises(OSError):
        await kind.resolve(protected())
    assert breaker.is_open
    with pytest.raises(CircuitBreakerError):
        await kind.resolve(protected())
    assert len(mock.calls) == 1


async def test_the_circuit_recovers_through_half_open_and_reopens_on_failure(
    kind: Kind, mock: Mock
) -> None:
    # circuitbreaker: test_functional.py::test_circuitbreaker_recover_half_open
    # Differs: circuitbreaker's failure_count keeps growing (4 after the probe);
    # buttress counts failures toward the threshold afresh after each trip, so
    # the running total is stats.failed_calls. ``open_remaining`` goes negative
    # there once the timeout passed; buttress's remaining_timeout stops at 0.
    clock = VirtualClock()
    breaker = CircuitBreaker(unique("recover"), failure_threshold=3, recovery_timeout=1,
                             clock=clock)
    protected = breaker(kind.function(mock))

    assert breaker.is_closed
    assert breaker.state is CLOSED
    assert await kind.resolve(protected())

    mock.side_effect = OSError
    for count in (1, 2):
        with pytest.raises(OSError):
            await kind.resolve(protected())
        assert breaker.is_closed
        assert breaker.stats.failure_count == count
    with pytest.raises(OSError):
        await kind.resolve(protected())
    assert breaker.is_open
    assert breaker.state is OPEN
    assert breaker.stats.failed_calls == 3
    assert 0 < breaker.stats.remaining_timeout <= 1

    for _ in range(2):
        with pytest.raises(CircuitBreakerError):
            await kind.resolve(protected())
        assert breaker.is_open
        assert breaker.stats.failed_calls == 3
        assert 0 < breaker.stats.remaining_timeout <= 1

    clock.advance(1)
    assert not breaker.is_closed
    assert breaker.stats.remaining_timeout == 0
    assert breaker.state is HALF_OPEN

    with pytest.raises(OSError):
        await kind.resolve(protected())
    assert breaker.is_open
    assert breaker.stats.failed_calls == 4
    assert 0 < breaker.stats.remaining_timeout <= 1
    with pytest.raises(CircuitBreakerError):
        await kind.resolve(protected())


async def test_the_circuit_closes_again_after_a_successful_probe(
    kind: Kind, mock: Mock
) -> None:
    # circuitbreaker: test_functional.py::test_circuitbreaker_reopens_after_successful_calls
    # (circuitbreaker closes on one probe success; buttress's default
    # success_threshold is 2, so this breaker asks for 1)
    clock = VirtualClock()
    name = unique("threshold_2")
    breaker = CircuitBreaker(name, failure_threshold=2, recovery_timeout=1, success_threshold=1,
                             clock=clock)
    protected = breaker(kind.function(mock))
    assert breaker.name == name
    assert breaker.state is CLOSED
    assert breaker.stats.failure_count == 0
    assert await kind.resolve(protected())

    mock.side_effect = OSError
    with pytest.raises(OSError):
        await kind.resolve(protected())
    assert breaker.is_closed
    assert breaker.stats.failure_count == 1
    with pytest.raises(OSError):
        await kind.resolve(protected())
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError):
        await kind.resolve(protected())

    mock.side_effect = None
    with pytest.raises(CircuitBreakerError):  # healthy again, but still open
        await kind.resolve(protected())
    assert breaker.is_open
    assert 0 < breaker.stats.remaining_timeout <= 1

    clock.advance(1)
    assert breaker.state is HALF_OPEN
    assert await kind.resolve(protected())
    assert breaker.state is CLOSED
    assert breaker.stats.failure_count == 0
    for _ in range(3):
        assert await kind.resolve(protected())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync-generator", "async-generator"])
async def test_a_failing_generator_trips_the_circuit_or_is_refused(
    is_async: bool, mock: Mock
) -> None:
    # circuitbreaker: test_functional.py::test_threshold_hit_prevents_consequent_calls
    # [sync-generator, async-generator]
    breaker = CircuitBreaker(unique("generator"), failure_threshold=1, clock=VirtualClock())
    mock.side_effect = OSError

    def gen() -> Any:
        yield mock()

    async def agen() -> Any:
        yield mock()

    try:
        protected = breaker(agen if is_async else gen)
    except TypeError:
        return
    with pytest.raises(OSError):
        if is_async:
            [x async for x in protected()]
        else:
            list(protected())
    with pytest.raises(CircuitBreakerError):
        if is_async:
            [x async for x in protected()]
        else:
            list(protected())
    assert len(mock.calls) == 1


# --- test_unit.py ---------------------------------------------------------------------


def test_a_breaker_shows_its_name() -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker__str__
    # Differs: circuitbreaker's str() is the bare name; buttress's repr names
    # the breaker and its state.
    breaker = CircuitBreaker("Foobar", clock=VirtualClock())
    assert breaker.name == "Foobar"
    assert "Foobar" in str(breaker)
    assert "closed" in repr(breaker)


def test_an_unnamed_breaker_gets_the_default_name() -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_unnamed__str__
    assert CircuitBreakerConfig().name == "default"


def test_the_rejection_message_names_the_breaker_the_state_and_the_wait() -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_error__str__
    clock = VirtualClock()
    breaker = CircuitBreaker(unique("Foobar"), failure_threshold=1, clock=clock)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    with pytest.raises(CircuitBreakerError) as info:
        breaker.call(lambda: None)
    message = str(info.value)
    assert breaker.name in message
    assert "open" in message
    assert "30.000s" in message
    assert info.value.remaining_timeout == 30.0


async def test_the_wrapper_is_the_same_kind_of_function(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_wrapper_matches_function_type
    function = kind.function(mock)
    wrapper = CircuitBreaker(unique("kind"), clock=VirtualClock())(function)
    assert inspect.iscoroutinefunction(wrapper) == kind.is_async
    assert not inspect.isgeneratorfunction(wrapper)
    assert not inspect.isasyncgenfunction(wrapper)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync-generator", "async-generator"])
def test_a_generator_wrapper_is_a_generator_function_or_refused(is_async: bool) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_wrapper_matches_function_type
    # [sync-generator, async-generator]
    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    function = agen if is_async else gen
    try:
        wrapper = CircuitBreaker(unique("genkind"), clock=VirtualClock())(function)
    except TypeError:
        return
    assert inspect.isasyncgenfunction(wrapper) == is_async
    assert inspect.isgeneratorfunction(wrapper) == (not is_async)


async def test_a_failure_records_when_it_happened(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_should_save_last_exception_on_failure_call
    # (buttress keeps the time of the last failure, not the exception object)
    clock = VirtualClock(start=12.5)
    breaker = CircuitBreaker(unique("last"), clock=clock)
    mock.side_effect = OSError
    assert breaker.stats.last_failure_time is None
    with pytest.raises(OSError):
        await kind.resolve(breaker(kind.function(mock))())
    assert breaker.stats.last_failure_time == 12.5


async def test_a_success_does_not_erase_the_last_failure_time(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_should_clear_last_exception_on_success_call
    # Differs: circuitbreaker clears last_failure on success; buttress's
    # last_failure_time is history and stays, while the failure count resets.
    clock = VirtualClock()
    breaker = CircuitBreaker(unique("clear"), clock=clock)
    protected = breaker(kind.function(mock))
    mock.side_effect = OSError
    with pytest.raises(OSError):
        await kind.resolve(protected())
    mock.side_effect = None
    clock.advance(1)
    await kind.resolve(protected())
    assert breaker.stats.failure_count == 0
    assert breaker.stats.last_failure_time == 0.0


async def test_an_open_circuit_answers_with_the_fallback(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_should_call_fallback_function_if_open,
    # test_circuitbreaker_should_not_call_function_if_open
    answers: list[Any] = []

    def fallback(exc: CircuitBreakerError, *args: Any, **kwargs: Any) -> str:
        answers.append(exc)
        return "fallback"

    breaker = CircuitBreaker(unique("fallback"), fallback=fallback, clock=VirtualClock())
    breaker.force_open()
    assert await kind.resolve(breaker(kind.function(mock))()) == "fallback"
    assert mock.calls == []
    assert len(answers) == 1
    assert isinstance(answers[0], CircuitBreakerError)


async def test_the_fallback_gets_the_call_arguments(kind: Kind, mock: Mock) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_call_fallback_function_with_parameters
    # Differs: buttress passes the rejection first: fallback(exc, *args, **kwargs).
    received: list[Any] = []

    def fallback(exc: CircuitBreakerError, *args: Any, **kwargs: Any) -> str:
        received.append((args, kwargs))
        return "fallback"

    breaker = CircuitBreaker(unique("args"), fallback=fallback, clock=VirtualClock())
    breaker.force_open()
    assert await kind.resolve(breaker(kind.function(mock))("test2", test="test")) == "fallback"
    assert received == [(("test2",), {"test": "test"})]


def test_the_named_breaker_decorator_uses_the_registry() -> None:
    # circuitbreaker: test_unit.py::test_circuit_decorator_without_args
    name = unique("decorator")
    clock = VirtualClock()

    @circuit_breaker(CircuitBreakerConfig(name=name, failure_threshold=1), clock=clock)
    def function() -> None:
        raise OSError

    with pytest.raises(OSError):
        function()
    assert get_circuit_breaker(name).state is OPEN


def test_all_options_can_be_given_together() -> None:
    # circuitbreaker: test_unit.py::test_circuit_decorator_with_args
    def function_fallback(exc: Exception) -> bool:
        return True

    config = CircuitBreakerConfig(name="foobar", failure_threshold=10, recovery_timeout=20,
                                  failure_exceptions=KeyError, fallback=function_fallback)
    assert config.failure_threshold == 10
    assert config.recovery_timeout == 20
    assert config.name == "foobar"
    assert config.fallback is function_fallback
    assert config.failure_exceptions == (KeyError,)


def counts_as_failure(config_options: dict[str, Any], exc: Exception) -> bool:
    """Whether ``exc`` raised through a breaker counts as a failure."""
    breaker = CircuitBreaker(unique("is_failure"), clock=VirtualClock(), **config_options)

    def raise_it() -> None:
        raise exc

    with pytest.raises(type(exc)):
        breaker.call(raise_it)
    return breaker.stats.failed_calls == 1


class FooError(Exception):
    def __init__(self, val: object = None) -> None:
        self.val = val


class BarError(Exception):
    pass


def test_by_default_every_exception_is_a_failure() -> None:
    # circuitbreaker: test_unit.py::test_breaker_default_constructor_traps_Exception
    assert counts_as_failure({}, Exception())
    assert counts_as_failure({}, FooError())


def test_with_a_custom_failure_exception_others_are_not_failures() -> None:
    # circuitbreaker: test_unit.py::test_breaker_expected_exception_is_custom_exception
    # (an exception outside failure_exceptions counts as a success in buttress:
    # the dependency did answer)
    assert counts_as_failure({"failure_exceptions": FooError}, FooError())
    assert not counts_as_failure({"failure_exceptions": FooError}, Exception())


def test_failure_exceptions_can_be_a_tuple() -> None:
    # circuitbreaker: test_unit.py::test_breaker_constructor_expected_exception_is_exception_list
    options = {"failure_exceptions": (FooError, BarError)}
    assert counts_as_failure(options, FooError())
    assert counts_as_failure(options, BarError())
    assert not counts_as_failure(options, Exception())


async def test_an_exception_group_of_failures_is_a_failure() -> None:
    # circuitbreaker: test_unit.py::test_breaker_constructor_expected_exception_is_exception_list
    # (extended to what asyncio.TaskGroup raises: a group made only of failure
    # exceptions is the dependency failing, not a success)
    breaker = CircuitBreaker(unique("group"), failure_exceptions=(FooError, BarError),
                             clock=VirtualClock())

    async def fan_out() -> None:
        raise ExceptionGroup("tasks failed", [FooError(1), BarError()])

    with pytest.raises(ExceptionGroup):
        await breaker.acall(fan_out)
    assert breaker.stats.failed_calls == 1
    assert breaker.stats.successful_calls == 0


@pytest.mark.parametrize("mistake", ["foobar", b"foobar"], ids=["unicode", "bytes"])
def test_a_string_as_failure_exceptions_is_refused(mistake: object) -> None:
    # circuitbreaker: test_unit.py::test_constructor_mistake_name_bytes,
    # test_constructor_mistake_name_unicode
    with pytest.raises(TypeError, match="failure_exceptions"):
        CircuitBreakerConfig(failure_threshold=10, recovery_timeout=20,
                             failure_exceptions=mistake)


def test_a_class_that_is_not_an_exception_is_refused() -> None:
    # circuitbreaker: test_unit.py::test_constructor_mistake_expected_exception
    class Widget:
        pass

    with pytest.raises(TypeError, match="failure_exceptions"):
        CircuitBreakerConfig(failure_exceptions=Widget)


def test_the_registry_returns_the_same_breaker_for_a_name() -> None:
    # circuitbreaker: test_functional.py (CircuitBreakerMonitor.get(name) is the
    # breaker the decorator uses)
    name = unique("same")
    clock = VirtualClock()

    @circuit_breaker(CircuitBreakerConfig(name=name, failure_threshold=2), clock=clock)
    def function() -> None:
        raise OSError

    breaker = get_circuit_breaker(name)
    assert get_circuit_breaker(name) is breaker
    for _ in range(2):
        with pytest.raises(OSError):
            function()
    assert breaker.state is OPEN


def test_the_async_decorator_refuses_a_sync_function() -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_wrapper_matches_function_type
    # (buttress's async-only spelling checks the kind at decoration)
    def function() -> None:
        pass

    with pytest.raises(TypeError, match="coroutine function"):
        async_circuit_breaker(CircuitBreakerConfig(name=unique("async-only")),
                              clock=VirtualClock())(function)


async def test_an_async_fallback_answers_an_async_call(mock: Mock) -> None:
    # circuitbreaker: test_unit.py::test_circuitbreaker_should_call_fallback_function_if_open
    # [async-function] (the fallback function is itself a coroutine function)
    async def fallback(exc: CircuitBreakerError, *args: Any, **kwargs: Any) -> str:
        return "async fallback"

    breaker = CircuitBreaker(unique("async-fallback"), fallback=fallback, clock=VirtualClock())
    breaker.force_open()

    async def function() -> Any:
        return mock()

    assert await breaker(function)() == "async fallback"
    assert mock.calls == []
