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
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

__all__ = [
    "Strategy", "call_hook", "describe", "is_async_callable", "logger", "operation_name", "redact",
    "should_log",
]

logger = logging.getLogger("buttress")
# A library logs; the application decides where logs go.
logger.addHandler(logging.NullHandler())

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
    log record costs about 10 µs to build; without any handler configured (the
    library's own NullHandler aside) nobody would read it, so it is not built.
    """
    if not logger.isEnabledFor(level):
        return False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level >= handler.level and not isinstance(handler, logging.NullHandler):
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False


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
        is_async = is_async_callable(fn)
        wrapped = self.wrap_async(fn) if is_async else self.wrap(fn)
        return functools.wraps(fn)(self._measured(wrapped, fn, is_async))  # type: ignore[return-value]

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once under this strategy."""
        if is_async_callable(fn):
            # The sync path would protect only the creation of the coroutine.
            raise TypeError(f"{fn!r} is a coroutine function: use `await strategy.acall(fn)`")
        return self._measured(self.wrap(fn), fn, False)(*args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` once under this strategy."""
        return await self._measured(self.wrap_async(fn), fn, True)(*args, **kwargs)
