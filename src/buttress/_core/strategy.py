"""The seam every strategy plugs into.

A strategy knows how to wrap a sync callable and an async callable; the
decisions it makes live in a sans-IO policy object next to it. A pipeline is
nothing more than strategies wrapped around each other in a fixed order.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ClassVar, TypeVar

from buttress._core import operation
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.events import Listeners
from buttress._core.logs import call_hook, describe, logger, redact, should_log

__all__ = [
    "Steps", "Strategy", "call_hook", "check_call", "check_protectable", "describe",
    "is_async_callable", "logger", "operation_name", "operation_name_of", "redact", "should_log",
]

F = TypeVar("F", bound=Callable[..., Any])

Steps = Callable[[list[Any], tuple[Any, ...], dict[str, Any]], Generator[Any, Any, None]]
"""A layer of an async call as a generator function (see
:meth:`Strategy._steps_async`): given a box, the arguments and the keyword
arguments, it makes the call through the layer and appends the result to the
box."""


def is_async_callable(fn: object) -> bool:
    """True for coroutine functions, including ``functools.partial`` and objects
    whose ``__call__`` is a coroutine function."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - we want the bound method
    return call is not None and inspect.iscoroutinefunction(call)


def _generator_kind(fn: object) -> str | None:
    """"generator" or "async generator" when calling ``fn`` makes one, else None."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    for candidate in (fn, getattr(type(fn), "__call__", None)):  # noqa: B004 - the method
        if inspect.isasyncgenfunction(candidate):
            return "async generator"
        if inspect.isgeneratorfunction(candidate):
            return "generator"
    return None


def check_protectable(fn: object, decorator: str) -> bool:
    """Refuse, when a function is decorated, what a strategy can not protect, and
    return whether ``fn`` is a coroutine function (its calls must be awaited).

    ``decorator`` names what is decorating, for the message. Every decorator of
    buttress calls this once, at decoration time, so nothing is left silently
    unprotected; each refusal is a :class:`TypeError` naming ``fn`` and the fix:

    * a ``classmethod`` or ``staticmethod`` object: the strategy would wrap the
      descriptor, and the call would fail (and be retried) with a ``TypeError``.
      Put ``@classmethod``/``@staticmethod`` *above* the buttress decorator, so
      that the buttress decorator wraps the plain function;
    * anything that is not callable;
    * a generator or async generator function: calling it only creates the
      generator, so only that creation would be protected, never the iteration
      where the work and the failures happen (the breaker would count a success
      and retry would never see an error). Protect a function that consumes the
      generator (``return list(rows())``) instead.

    ::

        >>> def rows():
        ...     yield 1
        >>> check_protectable(rows, "retry")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: retry can not protect generator function rows: ...
    """
    if isinstance(fn, classmethod | staticmethod):
        method = type(fn).__name__
        raise TypeError(
            f"{decorator} can not decorate the {method} object {operation_name(fn.__func__)}: "
            f"put @{method} above the buttress decorator (@{method}, then the buttress "
            f"decorator, then def), so that it wraps the plain function"
        )
    if not callable(fn):
        raise TypeError(f"{decorator} can only decorate a callable, got {fn!r} "
                        f"({type(fn).__name__})")
    kind = _generator_kind(fn)
    if kind is not None:
        consume = ("list(...)" if kind == "generator"
                   else "[item async for item in ...]")
        raise TypeError(
            f"{decorator} can not protect {kind} function {operation_name(fn)}: only "
            f"creating the {kind} would be protected, not iterating it, where the work "
            f"and the failures happen. Protect a function that consumes it instead "
            f"(for example one that returns {consume})"
        )
    return is_async_callable(fn)


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def check_call(fn: object, strategy: str) -> bool:
    """:func:`check_protectable` for ``strategy.call(fn)``, run on every call: a
    plain function (or bound method) that makes no generator costs one attribute
    read more than :func:`is_async_callable`."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_flags & _GENERATOR_FLAGS:
        return check_protectable(fn, strategy)
    if type(fn) is types.FunctionType:
        # A plain function is a coroutine function by its code flag, or by the
        # mark inspect.markcoroutinefunction (3.12+) leaves in its __dict__;
        # inspect's general answer costs about 1 us per call (python -m
        # benchmarks, breaker-forms).
        if code.co_flags & inspect.CO_COROUTINE:
            return True
        return _MARKS_COROUTINES and "_is_coroutine_marker" in fn.__dict__ \
            and is_async_callable(fn)
    return is_async_callable(fn)


_MARKS_COROUTINES = sys.version_info >= (3, 12)


def operation_name(fn: object) -> str:
    """The name a protected function is reported under: module-qualified name."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module and module != "__main__" else str(qualname)


def operation_name_of(strategies: tuple[Strategy, ...] | list[Strategy],
                      fn: Callable[..., Any]) -> str:
    """The one name every stage of a protected call reports under: the first name
    given to a per-call stage, in pipeline order (a fallback's ``name``, a retry's
    ``name``, a timeout's ``operation_name``, a bulkhead's ``name``), else the
    function's module-qualified name. A breaker's name is not used: it names a
    dependency, which many operations may share (its state and trips keep it)."""
    return _given_name(strategies) or operation_name(fn)


def _given_name(strategies: tuple[Strategy, ...] | list[Strategy]) -> str | None:
    """The first name given by one of ``strategies`` (see :meth:`Strategy._given_name`)."""
    for strategy in strategies:
        given = strategy._given_name()
        if given:
            return given
    return None


class Strategy:
    """Base of every strategy: wrap a sync or an async callable.

    ``order`` places the strategy in a pipeline: fallback (10) → retry (20) →
    circuit breaker (30) → timeout (40) → bulkhead (50) → the call.
    Calling the strategy on a function decorates it, choosing the sync or async
    wrapper by looking at the function once, at decoration time.
    """

    __slots__ = ()

    order: ClassVar[int] = 100

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Return a sync callable that applies this strategy around ``fn``."""
        raise NotImplementedError

    def wrap_async(
        self, fn: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        """Return a coroutine function that applies this strategy around ``fn``."""
        raise NotImplementedError

    def _given_name(self) -> str | None:
        """The name this strategy gives its calls (a retry's ``name``, a timeout's
        ``operation_name``...), or None: see :func:`operation_name_of`."""
        return None

    # A pipeline's wrap() already reports each call as one operation.
    _measures_itself: ClassVar[bool] = False

    def _measured(self, wrapped: Callable[..., Any], fn: Callable[..., Any],
                  is_async: bool) -> Callable[..., Any]:
        """``wrapped`` reported as one operation (see :mod:`buttress._core.operation`)
        when this strategy is the outermost buttress layer of a call."""
        hub = getattr(self, "events", None)
        if self._measures_itself or hub is None:
            return wrapped
        name = operation_name_of((self,), fn)
        clock = getattr(self, "clock", None) or SYSTEM_CLOCK
        if is_async:
            return operation.measure_async(wrapped, hub, name, clock)
        return operation.measure(wrapped, hub, name, clock)

    def _heard(self, fn: Callable[..., Any], hub: Listeners,
               report: Callable[..., Any]) -> Callable[..., Any] | None:
        """:meth:`wrap` of ``fn``, but calling ``report(*args, **kwargs)`` instead
        while ``hub`` is active; None when this strategy has no such wrapper.

        ``report`` is this strategy's plain wrapper reported as one operation
        (:func:`~buttress._core.operation.measure`). A wrapper that checks
        ``hub.active`` itself spares every unheard call the reporting layer's
        Python frame (about 800 instructions for a coroutine, 400 for a plain
        function, counted with callgrind on CPython 3.11)."""
        return None

    def _heard_async(self, fn: Callable[..., Awaitable[Any]], hub: Listeners,
                     report: Callable[..., Awaitable[Any]]
                     ) -> Callable[..., Awaitable[Any]] | None:
        """The async twin of :meth:`_heard`."""
        return None

    def _around(self, inner: Strategy) -> Strategy | None:
        """This strategy and ``inner``, the one right inside it in a pipeline, as
        one layer that makes fewer frames per call; None when it has no such form."""
        return None

    def _steps_async(self, fn: Callable[..., Awaitable[Any]]) -> Steps | None:
        """This strategy around ``fn`` as :data:`Steps`, for a layer outside it
        that drives generators itself (a timeout, see :meth:`_around`); None when
        it has no such form."""
        return None

    def _outermost(self, fn: Callable[..., Any], is_async: bool, hub: Listeners, name: str,
                   clock: Clock) -> Callable[..., Any]:
        """This strategy around ``fn`` as the outermost layer of a call, reported
        as one operation called ``name`` to the listeners of ``hub``."""
        if is_async:
            report = operation.measure_async(self.wrap_async(fn), hub, name, clock)
            return self._heard_async(fn, hub, report) or report
        reported = operation.measure(self.wrap(fn), hub, name, clock)
        return self._heard(fn, hub, reported) or reported

    def __call__(self, fn: F) -> F:
        is_async = check_protectable(fn, type(self).__name__)
        hub = getattr(self, "events", None)
        if not self._measures_itself and hub is not None:
            wrapper = self._outermost(fn, is_async, hub, operation_name_of((self,), fn),
                                      getattr(self, "clock", None) or SYSTEM_CLOCK)
        else:
            wrapper = self.wrap_async(fn) if is_async else self.wrap(fn)
        return functools.wraps(fn)(wrapper)  # type: ignore[return-value]

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once under this strategy."""
        if check_call(fn, type(self).__name__):
            # The sync path would protect only the creation of the coroutine.
            raise TypeError(f"{fn!r} is a coroutine function: use `await strategy.acall(fn)`")
        return self._measured(self.wrap(fn), fn, False)(*args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` once under this strategy."""
        check_call(fn, type(self).__name__)
        return await self._measured(self.wrap_async(fn), fn, True)(*args, **kwargs)
