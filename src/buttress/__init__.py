"""buttress: resilience for Python services.

Retry with backoff, circuit breakers, timeouts and fallbacks, composed into
pipelines that protect sync and async code alike, correct under concurrency
and cancellation and nearly free on the success path::

    from buttress import CircuitBreaker, RetryConfig, pipeline

    protect = pipeline(
        retry=RetryConfig(max_attempts=3, base_delay=0.2, retry_on=(ConnectionError,)),
        circuit_breaker=CircuitBreaker("payments", failure_threshold=5),
        timeout=2.0,
    )

    @protect
    async def charge(amount: int) -> dict: ...

``import buttress`` loads only the standard library. The names of optional
integrations (``buttress.PrometheusMetrics``, ``buttress.OpenTelemetryTracing``,
``buttress.get_redis_client``, ``buttress.get_s3_client``)
load their module, and its extra's packages, on first use; without the extra
the ``ImportError`` says which to install (``pip install 'buttress[prometheus]'``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from buttress._core.clock import SYSTEM_CLOCK, Clock, SystemClock
from buttress._core.context import CallContext, current_context, deadline, remaining_time
from buttress._core.errors import (
    ButtressError,
    CircuitBreakerError,
    CommitOutcomeUnknownError,
    ConfigurationError,
    ConfigurationTypeError,
    DeadlineExceededError,
    OperationTimeoutError,
    RetryError,
    RetryExhaustedError,
)
from buttress._core.events import Listeners, add_listener, remove_listener
from buttress._core.strategy import Strategy
from buttress.backoff import ExponentialBackoff, RetryStrategy
from buttress.breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerState,
    CircuitBreakerStats,
    CircuitState,
)
from buttress.bulkhead import Bulkhead, BulkheadConfig, BulkheadFullError
from buttress.config import (
    OperationSettings,
    ResilienceConfig,
    ResilienceSettings,
    configure,
    explain,
    get_settings,
    load_env,
    reset_settings,
    resilience_config,
)
from buttress.decorators import (
    async_circuit_breaker,
    circuit_breaker,
    retry_database_operation,
    retry_http_request,
)
from buttress.fallback import CachedFallback, Fallback, with_fallback
from buttress.observe import (
    MetricsListener,
    OperationRecord,
    ResilienceMetrics,
    async_health_check_with_circuit_breaker,
    get_resilience_health,
    get_resilience_status,
    health_check_with_circuit_breaker,
    reset_resilience_state,
    resilience_metrics,
    with_metrics,
)
from buttress.pipeline import Pipeline, PipelineBuilder, pipeline
from buttress.presets import (
    Resilience,
    api_resilient,
    cache_resilient,
    database_resilient,
    file_resilient,
    ml_resilient,
    resilient,
    resilient_context,
)
from buttress.registry import (
    clear_circuit_breakers,
    get_all_circuit_breaker_stats,
    get_circuit_breaker,
    get_circuit_breaker_stats,
    replace_circuit_breaker,
    reset_circuit_breakers,
)
from buttress.retry import (
    Retry,
    RetryConfig,
    RetryResult,
    async_retry,
    async_retry_with_backoff,
    retry,
    retry_sync,
    retry_with_backoff,
    should_retry,
    with_retry,
)
from buttress.timeout import (
    Timeout,
    TimeoutConfig,
    TimeoutPoolExhaustedError,
    async_timeout,
    timeout,
    timeout_operation,
)
from buttress.transient import is_transient

if TYPE_CHECKING:
    from buttress.http import AsyncResilientTransport as AsyncResilientTransport
    from buttress.http import HealthAwareCircuitBreaker as HealthAwareCircuitBreaker
    from buttress.http import HttpClient as HttpClient
    from buttress.http import ResilientHttpClient as ResilientHttpClient
    from buttress.http import ResilientTransport as ResilientTransport
    from buttress.http import get_http_client as get_http_client
    from buttress.observe.otel import OpenTelemetryTracing as OpenTelemetryTracing
    from buttress.observe.prometheus import PrometheusMetrics as PrometheusMetrics
    from buttress.stores.database import DatabaseClient as DatabaseClient
    from buttress.stores.database import get_database_client as get_database_client
    from buttress.stores.redis_client import get_redis_client as get_redis_client
    from buttress.stores.s3_client import get_s3_client as get_s3_client

__version__ = "0.1.0"

__all__ = [
    "SYSTEM_CLOCK",
    "Bulkhead",
    "BulkheadConfig",
    "BulkheadFullError",
    "ButtressError",
    "CachedFallback",
    "CallContext",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerError",
    "CircuitBreakerState",
    "CircuitBreakerStats",
    "CircuitState",
    "Clock",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "DeadlineExceededError",
    "ExponentialBackoff",
    "Fallback",
    "Listeners",
    "MetricsListener",
    "OperationRecord",
    "OperationSettings",
    "OperationTimeoutError",
    "Pipeline",
    "PipelineBuilder",
    "Resilience",
    "ResilienceConfig",
    "ResilienceMetrics",
    "ResilienceSettings",
    "Retry",
    "RetryConfig",
    "RetryError",
    "RetryExhaustedError",
    "RetryResult",
    "RetryStrategy",
    "Strategy",
    "SystemClock",
    "Timeout",
    "TimeoutConfig",
    "TimeoutPoolExhaustedError",
    "add_listener",
    "api_resilient",
    "async_circuit_breaker",
    "async_health_check_with_circuit_breaker",
    "async_retry",
    "async_retry_with_backoff",
    "async_timeout",
    "cache_resilient",
    "circuit_breaker",
    "clear_circuit_breakers",
    "configure",
    "current_context",
    "database_resilient",
    "deadline",
    "explain",
    "file_resilient",
    "get_all_circuit_breaker_stats",
    "get_circuit_breaker",
    "get_circuit_breaker_stats",
    "get_resilience_health",
    "get_resilience_status",
    "get_settings",
    "health_check_with_circuit_breaker",
    "is_transient",
    "load_env",
    "ml_resilient",
    "pipeline",
    "remaining_time",
    "remove_listener",
    "replace_circuit_breaker",
    "reset_circuit_breakers",
    "reset_resilience_state",
    "reset_settings",
    "resilience_config",
    "resilience_metrics",
    "resilient",
    "resilient_context",
    "retry",
    "retry_database_operation",
    "retry_http_request",
    "retry_sync",
    "retry_with_backoff",
    "should_retry",
    "timeout",
    "timeout_operation",
    "with_fallback",
    "with_metrics",
    "with_retry",
]

# Optional names: name -> (module, extra). Not in __all__, so that a star import
# needs no extra either.
_OPTIONAL: Final = {
    "AsyncResilientTransport": ("buttress.http", "http"),
    "HealthAwareCircuitBreaker": ("buttress.http", "http"),
    "HttpClient": ("buttress.http", "http"),
    "ResilientHttpClient": ("buttress.http", "http"),
    "ResilientTransport": ("buttress.http", "http"),
    "get_http_client": ("buttress.http", "http"),
    "DatabaseClient": ("buttress.stores.database", "sqlalchemy"),
    "get_database_client": ("buttress.stores.database", "sqlalchemy"),
    "OpenTelemetryTracing": ("buttress.observe.otel", "otel"),
    "PrometheusMetrics": ("buttress.observe.prometheus", "prometheus"),
    "get_redis_client": ("buttress.stores.redis_client", "redis"),
    "get_s3_client": ("buttress.stores.s3_client", "s3"),
}


# Defined for the interpreter only: type checkers see the imports above, so a
# misspelt ``buttress.name`` stays an error for them.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        """Load an optional name's module on first access (PEP 562)."""
        if name not in _OPTIONAL:
            raise AttributeError(f"module 'buttress' has no attribute {name!r}")
        module_name, extra = _OPTIONAL[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise type(exc)(
                f"buttress.{name} needs the {extra!r} extra: "
                f"pip install 'buttress[{extra}]' ({exc})", name=exc.name) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_OPTIONAL})
