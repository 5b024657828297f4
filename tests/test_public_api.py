"""The public API is deliberate: ``__all__`` is pinned here, ``import buttress``
loads no optional package, and optional names load on first use with an error
that names the extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import buttress
from buttress import (
    BulkheadConfig,
    CircuitBreakerConfig,
    OperationSettings,
    ResilienceSettings,
    RetryConfig,
    TimeoutConfig,
)

# Every name ``from buttress import *`` gives. A change here is a change of the
# public API: add to it, never remove without a deprecation.
PUBLIC = [
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

# Loaded on first access (module ``__getattr__``); not in ``__all__``, so a star
# import works without any extra.
OPTIONAL = {
    "AsyncResilientTransport": "http",
    "HealthAwareCircuitBreaker": "http",
    "HttpClient": "http",
    "ResilientHttpClient": "http",
    "ResilientTransport": "http",
    "get_http_client": "http",
    "DatabaseClient": "sqlalchemy",
    "get_database_client": "sqlalchemy",
    "OpenTelemetryTracing": "otel",
    "PrometheusMetrics": "prometheus",
    "get_redis_client": "redis",
    "get_s3_client": "s3",
}
# extra -> (the module its names live in, the packages it needs)
EXTRAS = {
    "http": ("buttress.http", ("httpx", "httpcore")),
    "otel": ("buttress.observe.otel", ("opentelemetry",)),
    "prometheus": ("buttress.observe.prometheus", ("prometheus_client",)),
    "sqlalchemy": ("buttress.stores.database", ("sqlalchemy",)),
    "redis": ("buttress.stores.redis_client", ("redis",)),
    "s3": ("buttress.stores.s3_client", ("boto3", "botocore")),
}

OPTIONAL_PACKAGES = ("prometheus_client", "opentelemetry", "typer", "rich", "httpx",
                     "sqlalchemy", "redis", "boto3")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter importing this checkout's buttress."""
    env = {**os.environ, "PYTHONPATH": str(Path(buttress.__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_all_is_exactly_the_pinned_public_names() -> None:
    assert buttress.__all__ == PUBLIC


def test_all_has_no_duplicates_and_keeps_ruffs_order() -> None:
    assert len(set(PUBLIC)) == len(PUBLIC)
    constants = [name for name in PUBLIC if name.isupper()]
    classes = [name for name in PUBLIC if name[0].isupper() and not name.isupper()]
    functions = [name for name in PUBLIC if name[0].islower()]
    assert sorted(constants) + sorted(classes) + sorted(functions) == PUBLIC


def test_import_buttress_loads_no_optional_package() -> None:
    code = ("import json, sys\n"
            "import buttress\n"
            f"print(json.dumps(sorted(m for m in sys.modules "
            f"if m.partition('.')[0] in {OPTIONAL_PACKAGES!r})))\n")
    assert json.loads(_run(code)) == []


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_an_optional_name_loads_its_module_on_first_access(name: str) -> None:
    code = ("import json, sys\n"
            "import buttress\n"
            f"before = {EXTRAS[OPTIONAL[name]][0]!r} in sys.modules\n"
            f"value = buttress.{name}\n"
            f"print(json.dumps([before, value.__name__, {name!r} in dir(buttress)]))\n")
    assert json.loads(_run(code)) == [False, name, True]


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_a_missing_extra_is_named_in_the_import_error(name: str) -> None:
    # Hide the extra's packages, as in an environment without the extra.
    code = ("import sys\n"
            "class Missing:\n"
            "    def find_spec(self, fullname, path=None, target=None):\n"
            "        if fullname.partition('.')[0] in "
            f"{EXTRAS[OPTIONAL[name]][1]!r}:\n"
            "            raise ModuleNotFoundError(f'No module named {fullname!r}', "
            "name=fullname)\n"
            "sys.meta_path.insert(0, Missing())\n"
            "import buttress\n"
            "try:\n"
            f"    buttress.{name}\n"
            "except ImportError as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    extra = OPTIONAL[name]
    out = _run(code)
    assert out.startswith("ModuleNotFoundError ")
    assert f"pip install 'buttress[{extra}]'" in out


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        buttress.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_a_timeout_config_takes_only_its_limit_positionally() -> None:
    assert TimeoutConfig(2.0, operation_name="q").timeout_seconds == 2.0
    with pytest.raises(TypeError):
        TimeoutConfig(2.0, TimeoutError)  # type: ignore[misc]


@pytest.mark.parametrize(("config", "args"), [
    (BulkheadConfig, (5,)),
    (ResilienceSettings, (False,)),
    (RetryConfig, (3,)),
    (CircuitBreakerConfig, ("payments",)),
    (OperationSettings, (5.0,)),
])
def test_configs_take_keyword_arguments_only(config: type, args: tuple[object, ...]) -> None:
    with pytest.raises(TypeError):
        config(*args)
