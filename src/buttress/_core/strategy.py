"""The seam every strategy plugs into.

A strategy knows how to wrap a sync callable and an async callable; the
decisions it makes live in a sans-IO policy object next to it. A pipeline is
nothing more than strategies wrapped around each other in a fixed order.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Strategy", "call_hook", "check_call", "check_protectable", "describe", "is_async_callable",
    "logger", "operation_name", "redact", "should_log",
]

logger = logging.getLogger("buttress")
# No NullHandler here, on purpose: when the application configured no handler
# at all for these records (a script, or uvicorn, which configures only its own
# loggers), WARNINGs (a retry scheduled, a call given up, a breaker opened, a
# timeout) reach logging.lastResort and show on stderr, as stamina's do. An
# application silences them with logging.getLogger("buttress").addHandler(
# logging.NullHandler()), or routes them with any logging configuration.

F = TypeVar("F", bound=Callable[..., Any])


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


# scheme://user:password@host -> scheme://***@host (greedy up to the last "@" of
# the authority, so a password holding "@" is masked whole); ?query and #fragment
# -> ?*** ; password=..., token=... and the like outside URLs -> key=***.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s?#]*@")
_QUERY = re.compile(r"(?P<path>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#]*)[?#][^\s'\"]*")
_SECRET_PAIR = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"auth|authorization|credentials?)\s*[=:]\s*)"
    r"(?P<value>(?:(?:bearer|basic|token)\s+)?[^\s&,;'\"]+)",
    re.IGNORECASE)
_DESCRIBE_LIMIT = 200
# A message longer than this is masked only on its first part (then cut anyway).
_MASK_WINDOW = 10_000


def redact(text: str) -> str:
    """``text`` with secrets masked: URL credentials and query strings, and
    ``password=``/``token=``-style pairs, so that logs, events, metric labels and
    health reports never carry a password, token or signed-URL secret. The one
    masking function of buttress: every name and message that leaves the process
    goes through it::

        >>> redact("GET https://bob:s3cret@api.example.com/v1?token=abc failed")
        'GET https://***@api.example.com/v1?*** failed'
        >>> redact("postgresql://user:secret@host/db?token=abc")
        'postgresql://***@host/db?***'
        >>> redact("login failed: password=hunter2")
        'login failed: password=***'
    """
    if "://" in text:
        text = _QUERY.sub(r"\g<path>?***", _USERINFO.sub(r"\g<scheme>***@", text))
    if "=" in text or ":" in text:
        text = _SECRET_PAIR.sub(r"\g<key>***", text)
    return text


def describe(exc: BaseException) -> str:
    """A short, masked description of an exception for logs: its type and its
    message, masked *before* being cut at 200 characters (cutting first could
    split a URL before its "@" and leave the password unmasked)."""
    message = str(exc)
    if not message:
        return type(exc).__name__
    message = redact(message[:_MASK_WINDOW])
    if len(message) > _DESCRIBE_LIMIT:
        message = message[:_DESCRIBE_LIMIT] + "..."
    return f"{type(exc).__name__}: {message}"


class _MaskFilter(logging.Filter):
    """Masks every record of the ``buttress`` logger: its message, its arguments
    and its string ``extra`` fields (names of breakers and operations), whatever
    code path logged it."""

    _EXTRAS = ("operation", "breaker", "name")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's error path
            return True
        record.msg = redact(message)
        record.args = None
        for key in self._EXTRAS:
            value = record.__dict__.get(key)
            if isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


logger.addFilter(_MaskFilter())


def operation_name(fn: object) -> str:
    """The name a protected function is reported under: module-qualified name."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None)
    return f"{module}.{qualname}" if module and module != "__main__" else str(qualname)


def should_log(level: int) -> bool:
    """Whether a record at ``level`` would reach a real handler.

    ``logger.isEnabledFor`` alone says yes whenever the level allows it, and a
    log record costs about 10 µs to build; when nobody would read it, it is not
    built. This mirrors :meth:`logging.Logger.callHandlers`: a handler on the
    way up to the root whose level lets the record through receives it; when
    no handler at all is found there (not even a ``NullHandler``), the record
    goes to :data:`logging.lastResort` (stderr, WARNING and above).
    """
    if not logger.isEnabledFor(level):
        return False
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level and not isinstance(handler, logging.NullHandler):
                return True
        if not current.propagate:
            break
        current = current.parent
    last_resort = logging.lastResort
    return not found and last_resort is not None and level >= last_resort.level


def call_hook(hook: Callable[..., object], *args: object) -> None:
    """Run a user callback; a callback that raises is logged, never propagated,
    so observing a call can not break it."""
    try:
        hook(*args)
    except Exception:
        logger.exception("buttress: callback %r raised; the protected call is unaffected", hook)


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

    # A pipeline's wrap() already reports each call as one operation.
    _measures_itself: ClassVar[bool] = False

    def _measured(self, wrapped: Callable[..., Any], fn: Callable[..., Any],
                  is_async: bool) -> Callable[..., Any]:
        """``wrapped`` reported as one operation (see :mod:`buttress._core.operation`)
        when this strategy is the outermost buttress layer of a call."""
        hub = getattr(self, "events", None)
        if self._measures_itself or hub is None:
            return wrapped
        from buttress._core import operation  # below the events module, which imports this one
        from buttress._core.clock import SYSTEM_CLOCK
        from buttress.pipeline import operation_name_of

        name = operation_name_of((self,), fn)
        clock = getattr(self, "clock", None) or SYSTEM_CLOCK
        if is_async:
            return operation.measure_async(wrapped, hub, name, clock)
        return operation.measure(wrapped, hub, name, clock)

    def __call__(self, fn: F) -> F:
        is_async = check_protectable(fn, type(self).__name__)
        wrapped = self.wrap_async(fn) if is_async else self.wrap(fn)
        return functools.wraps(fn)(self._measured(wrapped, fn, is_async))  # type: ignore[return-value]

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
