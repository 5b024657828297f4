"""Retry with backoff: the public names of retrying, in one place, and the seeds' spellings.

Retrying is three ideas, one module each; this module re-exports them all:

- :mod:`buttress.retry_config`: :class:`RetryConfig` (how to retry) and
  :class:`RetryCall` (the call a predicate sees);
- :mod:`buttress.retry_policy`: :class:`RetryPolicy`, a sans-IO object: given
  what an attempt did (an :class:`Outcome`), it answers with a
  :class:`Decision`: *retry after d seconds*, *give up* or *raise as is*;
- :mod:`buttress.retry_runner`: :class:`Retry`, whose two short loops (sync and
  async) drive the policy; they are the only code that sleeps. The success path
  of a decorated call is one ``try`` and the call.

Here are the seeds' spellings: :func:`retry`, :func:`with_retry`,
:func:`async_retry`, :func:`retry_sync`, :func:`retry_with_backoff`,
:func:`should_retry` and :func:`async_retry_with_backoff`.

Retrying honours the call's deadline (:mod:`buttress._core.context`): it never
starts a wait that would end at or past it, and gives up instead, saying so.
From the second attempt on it puts the attempt number in the call's context;
the first attempt, and so the success path, never touches the context.

Only :class:`Exception` subclasses are ever caught, so ``asyncio.CancelledError``,
``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit`` always propagate at
once and are never retried or counted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, Unpack, overload

from buttress._core.clock import Clock
from buttress.backoff import RetryStrategy as RetryStrategy  # importable from here, as before
from buttress.options import RetryOptions
from buttress.retry_config import RetryCall, RetryConfig
from buttress.retry_policy import Decision, Outcome, RetryPolicy, RetryState
from buttress.retry_runner import Attempt, Retry
from buttress.transient import is_transient  # re-exported: buttress.retry.is_transient

__all__ = [
    "Attempt",
    "Decision",
    "Outcome",
    "Retry",
    "RetryCall",
    "RetryConfig",
    "RetryOptions",
    "RetryPolicy",
    "RetryResult",
    "RetryState",
    "async_retry",
    "async_retry_with_backoff",
    "is_transient",
    "retry",
    "retry_sync",
    "retry_with_backoff",
    "should_retry",
    "with_retry",
]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def retry(config: F, /) -> F: ...
@overload
def retry(
    config: RetryConfig | None = None, /, *, clock: Clock | None = None,
    **options: Unpack[RetryOptions],
) -> Retry: ...
def retry(
    config: Any = None, /, *, clock: Clock | None = None, **options: Unpack[RetryOptions],
) -> Any:
    """Retry decorator for sync and async functions.

    Accepts a :class:`RetryConfig`, keyword options (the config's fields), or
    nothing (``@retry`` alone uses the defaults)::

        @retry(max_attempts=3, base_delay=0.5, retry_on=(ConnectionError,))
        async def fetch(url: str) -> bytes: ...
    """
    if (callable(config) or isinstance(config, classmethod | staticmethod)) \
            and not isinstance(config, RetryConfig):
        # ``@retry`` without parentheses (refused at once above a classmethod).
        return Retry(clock=clock, **options)(config)
    return Retry(config, clock=clock, **options)


def with_retry(
    config: RetryConfig | None = None, *, clock: Clock | None = None,
    **options: Unpack[RetryOptions],
) -> Retry:
    """Same as :func:`retry` (the ``svc_infra`` spelling)."""
    return Retry(config, clock=clock, **options)


def async_retry(
    config: RetryConfig | None = None, *, clock: Clock | None = None,
    **options: Unpack[RetryOptions],
) -> Retry:
    """Like :func:`retry`, but insists on a coroutine function (raises ``TypeError``
    at decoration time otherwise)."""
    return Retry(config, clock=clock, _mode="async", **options)


def retry_sync(
    config: RetryConfig | None = None, *, clock: Clock | None = None,
    **options: Unpack[RetryOptions],
) -> Retry:
    """Like :func:`retry`, but insists on a plain (sync) function."""
    return Retry(config, clock=clock, _mode="sync", **options)


def retry_with_backoff(
    config: RetryConfig | None = None,
    *,
    clock: Clock | None = None,
    **options: Unpack[RetryOptions],
) -> Retry:
    """Retry decorator in both seed forms: keyword options, or a ``RetryConfig``
    plus an optional ``retry_predicate(exception) -> bool``::

        @retry_with_backoff(max_attempts=3, base_delay=1.0,
                            strategy=RetryStrategy.EXPONENTIAL_BACKOFF)
        def unreliable() -> str: ...

        @retry_with_backoff(RetryConfig(max_attempts=5), retry_predicate=is_retryable)
        async def selective() -> str: ...
    """
    retry_predicate = options.pop("retry_predicate", None)
    if retry_predicate is not None:
        options["retry_condition"] = retry_predicate
    return Retry(config, clock=clock, **options)


def should_retry(exc: BaseException, config: RetryConfig | None = None) -> bool:
    """Whether ``exc`` should be retried.

    With a config, its own rules decide. Without one, the transient-failure rule
    of :func:`is_transient` does. Cancellation, interrupts and exits: never.
    """
    if not isinstance(exc, Exception):
        return False
    if config is None:
        return is_transient(exc)
    return config.should_retry(exc)


@dataclass(frozen=True, slots=True)
class RetryResult:
    """Outcome of :func:`async_retry_with_backoff`: never raises for a failed call."""

    success: bool
    value: Any
    attempts: int
    last_exception: BaseException | None


async def async_retry_with_backoff(
    fn: Callable[..., Awaitable[Any]],
    /,
    *args: Any,
    config: RetryConfig | None = None,
    clock: Clock | None = None,
    **options: Unpack[RetryOptions],
) -> RetryResult:
    """Await ``fn(*args)`` with retries and return a :class:`RetryResult` instead of
    raising when every attempt fails::

        result = await async_retry_with_backoff(fetch, max_attempts=3, base_delay=1.0,
                                                exceptions=(ConnectionError,))
        if not result.success:
            raise result.last_exception
    """
    strategy = Retry(config, clock=clock, **options)
    # reraise=True makes the runner end with the last attempt's own exception.
    strategy = Retry(strategy.config.replace(reraise=True), clock=strategy.clock)
    attempts = 0

    async def counted() -> Any:
        nonlocal attempts
        attempts += 1
        return await fn(*args)

    try:
        value = await strategy.wrap_async(counted)()
    except Exception as exc:
        return RetryResult(False, None, attempts, exc)
    return RetryResult(True, value, attempts, None)

