"""Ready-made decorators in the seeds' spellings, all built on the core strategies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, Unpack, overload

from buttress._core.clock import Clock
from buttress._core.strategy import check_protectable
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.options import CircuitBreakerOptions, _RetryTuning
from buttress.pipeline import Pipeline
from buttress.registry import get_circuit_breaker
from buttress.retry import Retry
from buttress.transient import (
    is_transient_database_error,
    is_transient_http_error,
    retry_after_hint,
)

__all__ = [
    "async_circuit_breaker",
    "circuit_breaker",
    "is_transient_database_error",
    "is_transient_http_error",
    "retry_database_operation",
    "retry_http_request",
]

F = TypeVar("F", bound=Callable[..., Any])

def _breaker_from(config: CircuitBreakerConfig | None, clock: Clock | None,
                  options: CircuitBreakerOptions) -> CircuitBreaker:
    if config is None:
        config = CircuitBreakerConfig(**options)
    elif options:
        config = config.replace(**options)
    return get_circuit_breaker(config.name, config, clock=clock)


def circuit_breaker(
    config: CircuitBreakerConfig | None = None, /, *, clock: Clock | None = None,
    **options: Unpack[CircuitBreakerOptions],
) -> CircuitBreaker:
    """Decorator protecting a sync or async function with the registered breaker
    named by the config (created on first use, shared by every function naming it)::

        @circuit_breaker(CircuitBreakerConfig(name="external_api", failure_threshold=5))
        def call_external_api(url: str) -> dict: ...
    """
    return _breaker_from(config, clock, options)


def async_circuit_breaker(
    config: CircuitBreakerConfig | None = None, /, *, clock: Clock | None = None,
    **options: Unpack[CircuitBreakerOptions],
) -> Callable[[F], F]:
    """Like :func:`circuit_breaker`, for coroutine functions only."""
    breaker = _breaker_from(config, clock, options)

    def decorate(fn: F) -> F:
        if not check_protectable(fn, "async_circuit_breaker"):
            raise TypeError(f"async_circuit_breaker needs a coroutine function, got {fn!r}; "
                            "use circuit_breaker() for sync functions")
        return breaker(fn)

    return decorate


def _retry_with_breaker(retry: Retry, breaker_name: str | None,
                        clock: Clock | None) -> Retry | Pipeline:
    if breaker_name is None:
        return retry
    return Pipeline(retry, get_circuit_breaker(breaker_name, clock=clock))


@overload
def retry_http_request(
    max_attempts: int = 3, base_delay: float = 1.0, max_delay: float = 30.0, *,
    circuit_breaker: None = None, clock: Clock | None = None,
    **options: Unpack[_RetryTuning],
) -> Retry: ...
@overload
def retry_http_request(
    max_attempts: int = 3, base_delay: float = 1.0, max_delay: float = 30.0, *,
    circuit_breaker: str, clock: Clock | None = None,
    **options: Unpack[_RetryTuning],
) -> Pipeline: ...
def retry_http_request(
    max_attempts: int = 3,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    *,
    circuit_breaker: str | None = None,
    clock: Clock | None = None,
    **options: Unpack[_RetryTuning],
) -> Retry | Pipeline:
    """Retry an HTTP call on transient failures only (connection errors, timeouts,
    408/425/429/5xx statuses), with jittered exponential backoff, optionally behind
    the named circuit breaker. httpx, requests, urllib3 and aiohttp errors are
    recognised by name (:mod:`buttress.transient`); the ``Retry-After`` of an
    error's response (``httpx.HTTPStatusError`` from ``raise_for_status()``) sets
    the wait, capped at ``max_delay``::

        @retry_http_request(max_attempts=3, circuit_breaker="payment_api")
        def charge(amount: int) -> dict: ...

    Returns a :class:`~buttress.Retry`, or with ``circuit_breaker`` a
    :class:`~buttress.Pipeline`; either keeps the decorated function's signature.
    """
    options.setdefault("retry_condition", is_transient_http_error)
    options.setdefault("retry_after", retry_after_hint)
    options.setdefault("strategy", "jittered_exponential")
    retry = Retry(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay,
                  clock=clock, **options)
    return _retry_with_breaker(retry, circuit_breaker, clock)


@overload
def retry_database_operation(
    max_attempts: int = 3, base_delay: float = 0.5, max_delay: float = 10.0, *,
    circuit_breaker: None = None, clock: Clock | None = None,
    **options: Unpack[_RetryTuning],
) -> Retry: ...
@overload
def retry_database_operation(
    max_attempts: int = 3, base_delay: float = 0.5, max_delay: float = 10.0, *,
    circuit_breaker: str, clock: Clock | None = None,
    **options: Unpack[_RetryTuning],
) -> Pipeline: ...
def retry_database_operation(
    max_attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 10.0,
    *,
    circuit_breaker: str | None = None,
    clock: Clock | None = None,
    **options: Unpack[_RetryTuning],
) -> Retry | Pipeline:
    """Retry a database call on transient errors only (lost connections, timeouts,
    driver ``OperationalError``), with exponential backoff::

        @retry_database_operation(max_attempts=3, base_delay=0.5)
        def get_user(user_id: int) -> tuple: ...
    """
    options.setdefault("retry_condition", is_transient_database_error)
    retry = Retry(max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay,
                  clock=clock, **options)
    return _retry_with_breaker(retry, circuit_breaker, clock)
