"""Fallback: answer with a value or another function when the call fails.

A fallback is the outermost strategy of a pipeline, so it also answers for
exhausted retries, open breakers and timeouts. Cancellation, interrupts and
exits are never answered by a fallback.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final

from buttress._core import validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.strategy import Strategy, call_hook, is_async_callable, logger

__all__ = ["CachedFallback", "Fallback", "with_fallback"]

_UNSET: Final[Any] = object()


class Fallback(Strategy):
    """Return ``fallback_value`` (a fresh copy of a list, dict or set each time), or
    ``fallback(exc, *args, **kwargs)``, when the call raises one of ``exceptions``.

    ``on_fallback(exc)`` is told every time the fallback answers.
    """

    __slots__ = ("_answers", "_handler", "exceptions", "on_fallback")

    order = 10

    def __init__(
        self,
        fallback_value: Any = _UNSET,
        *,
        fallback: Callable[..., Any] | None = None,
        exceptions: Any = (Exception,),
        on_fallback: Callable[[BaseException], object] | None = None,
    ) -> None:
        o = "Fallback"
        if (fallback_value is _UNSET) == (fallback is None):
            raise TypeError(
                f"{o} needs exactly one of fallback_value=... or fallback=callable, got "
                f"fallback_value={'<unset>' if fallback_value is _UNSET else fallback_value!r}, "
                f"fallback={fallback!r}"
            )
        validate.optional_callable(o, "fallback", fallback)
        self.exceptions = validate.exception_types(o, "exceptions", exceptions)
        self.on_fallback = validate.optional_callable(o, "on_fallback", on_fallback)
        self._answers = (("fallback", fallback) if fallback is not None
                         else ("fallback_value", fallback_value))
        if fallback is not None:
            self._handler: Callable[..., Any] = fallback
        elif isinstance(fallback_value, list | dict | set):
            value = fallback_value
            self._handler = lambda exc, *args, **kwargs: copy.deepcopy(value)
        else:
            value = fallback_value
            self._handler = lambda exc, *args, **kwargs: value

    def _answer(self, exc: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.on_fallback is not None:
            call_hook(self.on_fallback, exc)
        return self._handler(exc, *args, **kwargs)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if is_async_callable(self._handler):
            # A sync caller would get an un-awaited coroutine instead of an answer.
            raise TypeError(f"fallback {self._handler!r} is a coroutine function; it can only "
                            f"answer async functions, not {fn!r}")
        exceptions = self.exceptions

        def with_fallback(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except exceptions as exc:
                return self._answer(exc, args, kwargs)

        return with_fallback

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        exceptions = self.exceptions

        async def with_fallback(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except exceptions as exc:
                answer = self._answer(exc, args, kwargs)
                return (await answer) if inspect.isawaitable(answer) else answer

        return with_fallback

    def __repr__(self) -> str:
        kind, answer = self._answers
        return f"Fallback({kind}={answer!r})"


def with_fallback(
    fallback_value: Any = _UNSET,
    *,
    fallback: Callable[..., Any] | None = None,
    exceptions: Any = (Exception,),
    on_fallback: Callable[[BaseException], object] | None = None,
) -> Fallback:
    """Fallback decorator for sync and async functions::

        @with_fallback(fallback_value={"recommendations": []})
        async def get_recommendations(user_id: str) -> dict: ...

        @with_fallback(fallback=lambda exc, user_id: cached_profile(user_id))
        def get_profile(user_id: str) -> dict: ...
    """
    return Fallback(fallback_value, fallback=fallback, exceptions=exceptions,
                    on_fallback=on_fallback)


class CachedFallback(Strategy):
    """Answer a failed call with the last good result for the same arguments.

    Every success is remembered (per argument key, in an LRU of ``maxsize``
    entries, so memory stays bounded); a later failure with the same arguments
    is answered with that value if it is at most ``max_age`` seconds old
    (``None``: any age). With nothing usable cached the failure propagates.
    ``on_fallback(exc, age)`` is told the age of every cached answer::

        @CachedFallback(max_age=300)
        def exchange_rate(currency: str) -> float: ...

    Calls whose arguments are not hashable are neither cached nor answered.
    """

    __slots__ = ("_cache", "_lock", "clock", "exceptions", "max_age", "maxsize", "on_fallback")

    order = 10

    def __init__(
        self,
        *,
        max_age: float | None = None,
        maxsize: int = 128,
        exceptions: Any = (Exception,),
        on_fallback: Callable[[BaseException, float], object] | None = None,
        clock: Clock | None = None,
    ) -> None:
        o = "CachedFallback"
        self.max_age = validate.optional_number(o, "max_age", max_age, minimum=0.0)
        self.maxsize = validate.integer(o, "maxsize", maxsize, minimum=1)
        self.exceptions = validate.exception_types(o, "exceptions", exceptions)
        self.on_fallback = validate.optional_callable(o, "on_fallback", on_fallback)
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._cache: OrderedDict[Hashable, tuple[Any, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable | None:
        key = (args, tuple(sorted(kwargs.items()))) if kwargs else args
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def _remember(self, key: Hashable | None, value: Any) -> None:
        if key is None:
            return
        now = self.clock.monotonic()
        with self._lock:
            cache = self._cache
            cache[key] = (value, now)
            cache.move_to_end(key)
            if len(cache) > self.maxsize:
                cache.popitem(last=False)

    def _answer(self, key: Hashable | None, exc: Exception) -> Any:
        """The cached value for ``key``, or re-raise ``exc``."""
        with self._lock:
            entry = self._cache.get(key) if key is not None else None
        if entry is not None:
            value, stored_at = entry
            age = self.clock.monotonic() - stored_at
            if self.max_age is None or age <= self.max_age:
                logger.info("buttress: answering with a cached value %.3fs old after %s",
                            age, type(exc).__name__)
                if self.on_fallback is not None:
                    call_hook(self.on_fallback, exc, age)
                return value
        raise exc

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        exceptions = self.exceptions

        def with_cached_fallback(*args: Any, **kwargs: Any) -> Any:
            key = self._key(args, kwargs)
            try:
                value = fn(*args, **kwargs)
            except exceptions as exc:
                return self._answer(key, exc)
            self._remember(key, value)
            return value

        return with_cached_fallback

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        exceptions = self.exceptions

        async def with_cached_fallback(*args: Any, **kwargs: Any) -> Any:
            key = self._key(args, kwargs)
            try:
                value = await fn(*args, **kwargs)
            except exceptions as exc:
                return self._answer(key, exc)
            self._remember(key, value)
            return value

        return with_cached_fallback

    def clear(self) -> None:
        """Forget every cached value."""
        with self._lock:
            self._cache.clear()

    def __repr__(self) -> str:
        return f"CachedFallback(max_age={self.max_age}, maxsize={self.maxsize})"
