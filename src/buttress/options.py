"""The keywords each strategy's factories take, as ``TypedDict``s for ``Unpack``.

``retry(max_attempts=3)``, ``circuit_breaker(name="db", failure_threshold=5)``,
``timeout(timeout_seconds=2.0)`` and ``Bulkhead(max_concurrent=4)`` pass their
keywords on to the strategy's config; typing ``**options`` with these makes a
misspelt keyword a type error, and the config's constructor still refuses it at
run time (``TypeError`` naming the keyword).

Invariant: each ``TypedDict`` here has exactly the keywords of its config's
constructor, with the same types (``tests/test_factory_options.py`` checks it),
so the configs stay the one source of their fields.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypedDict

from buttress.backoff import RetryStrategy
from buttress.budget import RetryBudget

__all__ = ["BulkheadOptions", "CircuitBreakerOptions", "RetryOptions", "TimeoutOptions"]


class _RetryTuning(TypedDict, total=False):
    """:class:`RetryOptions` but the schedule's first three, which the ready-made
    decorators (``retry_http_request``, ``retry_database_operation``) take as
    parameters of their own."""

    exponential_base: float
    strategy: RetryStrategy | str
    jitter: bool | float
    exceptions: Any
    non_retryable_exceptions: Any
    retry_condition: Callable[..., bool] | None
    retry_on_result: Callable[..., bool] | None
    deadline: float | None
    reraise: bool
    retry_after: Callable[[Exception], float | None] | None
    on_retry: Callable[[int, Any], object] | None
    on_failure: Callable[[int, Any], object] | None
    on_success: Callable[[int, float], object] | None
    rng: random.Random | None
    name: str | None
    initial_delay: float
    backoff_multiplier: float
    multiplier: float
    retry_on: Any
    retryable_exceptions: Any
    retry_predicate: Callable[..., bool] | None
    retry_after_result: Callable[[Any], float | None] | None
    dispose: Callable[[Any], object] | None
    budget: RetryBudget | None


class RetryOptions(_RetryTuning, total=False):
    """The keywords of :class:`RetryConfig`, as the retry factories take them
    (``retry(max_attempts=3)``, ``Retry(base_delay=0.5)``), so a misspelt keyword
    is a type error. ``tests/test_factory_options.py`` holds these keys and
    types equal to ``RetryConfig``'s parameters.

    .. versionadded:: 0.2
    """

    max_attempts: int | None
    base_delay: float
    max_delay: float


class _BreakerTuning(TypedDict, total=False):
    """:class:`CircuitBreakerOptions` but ``name``, which ``CircuitBreaker`` and
    ``get_circuit_breaker`` take as their first argument."""

    failure_threshold: int | None
    recovery_timeout: float
    success_threshold: int
    half_open_max_calls: int
    failure_window: float | None
    failure_rate_threshold: float | None
    minimum_calls: int
    window_size: int
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    timeout: float | None
    failure_exceptions: Any
    ignored_exceptions: Any
    fallback: Callable[..., Any] | None
    exception_whitelist: Any
    critical: bool
    failure_on_result: Callable[[Any], bool] | None
    mode: str
    recovery_timeout_multiplier: float
    max_recovery_timeout: float | None


class CircuitBreakerOptions(_BreakerTuning, total=False):
    """The keywords of :class:`~buttress.CircuitBreakerConfig`, as
    ``circuit_breaker()`` and ``async_circuit_breaker()`` take them.

    .. versionadded:: 0.2
    """

    name: str


class TimeoutOptions(TypedDict, total=False):
    """The keywords of :class:`~buttress.TimeoutConfig`, as ``Timeout``,
    ``timeout()`` and ``async_timeout()`` take them.

    .. versionadded:: 0.2
    """

    timeout_seconds: float
    exception_class: type[BaseException]
    error_message: str | None
    operation_name: str | None
    use_signal: bool


class BulkheadOptions(TypedDict, total=False):
    """The keywords of :class:`~buttress.BulkheadConfig`, as ``Bulkhead`` takes them.

    .. versionadded:: 0.2
    """

    max_concurrent: int
    max_queue: int
    max_wait: float | None
    name: str | None
