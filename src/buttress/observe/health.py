"""Health and status of the resilience layer, for dashboards, alerts, health
endpoints and tests.

* :func:`get_resilience_status` — success rate, metrics and every breaker.
* :func:`get_resilience_health` — one verdict (``overall_health``) plus the open
  and half-open breakers by name and each breaker's state, failure rate and calls.
* :func:`health_check_with_circuit_breaker` — run a health check through the
  named breaker; a failing check answers False, it never raises.
* :func:`reset_resilience_state` — breakers closed, metrics cleared, settings
  back to their defaults (for tests and emergencies).

Reading a breaker's state here has the same effect as anywhere else: an open
breaker whose recovery timeout has passed reads (and becomes) half-open.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from buttress._core.errors import CircuitBreakerError
from buttress._core.strategy import describe, is_async_callable, logger, redact
from buttress.breaker import CircuitState
from buttress.observe.metrics import ResilienceMetrics, resilience_metrics
from buttress.registry import all_circuit_breakers, get_circuit_breaker, reset_circuit_breakers

if TYPE_CHECKING:
    from buttress.breaker import CircuitBreaker, CircuitBreakerConfig

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "UNHEALTHY",
    "async_health_check_with_circuit_breaker",
    "get_resilience_health",
    "get_resilience_status",
    "health_check_with_circuit_breaker",
    "overall_health",
    "reset_resilience_state",
]

HEALTHY: Final = "healthy"
"""Every breaker is closed."""
DEGRADED: Final = "degraded"
"""Some breakers are open or half-open, none of them critical and open: the
service still answers, with some dependencies failing fast or recovering."""
UNHEALTHY: Final = "unhealthy"
"""At least one breaker marked ``critical=True`` is open: the service can not do
its work until that dependency recovers."""


def _breaker_entry(breaker: CircuitBreaker) -> dict[str, Any]:
    entry = breaker.stats.as_dict()
    entry["name"] = redact(breaker.name)
    entry["recovery_timeout"] = breaker.config.recovery_timeout
    entry["critical"] = breaker.config.critical
    return entry


def _breakers() -> dict[str, dict[str, Any]]:
    # Names are masked: a health endpoint is public-facing, and a breaker may be
    # named after a URL that carries credentials.
    return {redact(name): _breaker_entry(b)
            for name, b in sorted(all_circuit_breakers().items())}


def get_resilience_status(metrics: ResilienceMetrics | None = None) -> dict[str, Any]:
    """Overall status: ``success_rate`` (percent), ``metrics`` (as
    ``resilience_metrics.get_metrics()`` returns them), ``circuit_breakers`` (by
    name: ``state`` as "closed"/"open"/"half_open", the breaker's statistics and
    ``recovery_timeout``) and ``timestamp`` (wall-clock seconds)::

        status = get_resilience_status()
        print(f"Overall success rate: {status['success_rate']:.2f}%")
        for name, cb in status["circuit_breakers"].items():
            if cb["state"] == "open":
                send_alert(f"Circuit breaker {name} is open!")
    """
    source = resilience_metrics if metrics is None else metrics
    return {
        "success_rate": source.get_success_rate(),
        "metrics": source.get_metrics(),
        "circuit_breakers": _breakers(),
        "timestamp": time.time(),
    }


def overall_health() -> str:
    """The ``overall_health`` verdict of :func:`get_resilience_health` alone
    ("healthy", "degraded" or "unhealthy"), without building the document: for
    a response header set on every request::

        response.headers["X-Resilience-Status"] = overall_health()
    """
    verdict: str = HEALTHY
    for breaker in all_circuit_breakers().values():
        state = breaker.state
        if state is CircuitState.OPEN:
            if breaker.config.critical:
                return UNHEALTHY
            verdict = DEGRADED
        elif state is CircuitState.HALF_OPEN:
            verdict = DEGRADED
    return verdict


def get_resilience_health() -> dict[str, Any]:
    """One verdict for the whole resilience layer, from the breakers' states::

        health = get_resilience_health()
        response.headers["X-Resilience-Status"] = health["overall_health"]

    ``overall_health`` is:

    * "unhealthy" when a breaker marked critical
      (``CircuitBreakerConfig(critical=True)``) is open;
    * "degraded" when other breakers are open, or any is half-open;
    * "healthy" otherwise (also with no breakers).

    ``ready`` is False only when unhealthy. For a readiness probe, answer 503 when
    ``ready`` is False, so that a replica whose critical dependency (its
    database, say) is down leaves the load balancer, while an outage of an
    optional dependency (recommendations, say) keeps it serving in degraded
    mode. Do not fail a *liveness* probe on breakers: restarting the process does
    not bring a dependency back::

        @app.get("/ready")
        def ready(response: Response) -> dict:
            health = get_resilience_health()
            if not health["ready"]:
                response.status_code = 503
            return health

    ``open_breakers``, ``degraded_breakers`` (half-open) and
    ``critical_open_breakers`` list names (masked like logs); ``circuit_breakers``
    maps each name to ``state``, ``critical``, ``failure_rate`` (0..1),
    ``total_calls`` and the rest of its statistics; ``total_breakers`` counts
    them; ``timestamp`` is wall-clock seconds.
    """
    breakers = _breakers()
    open_breakers = [n for n, b in breakers.items() if b["state"] == CircuitState.OPEN.value]
    degraded = [n for n, b in breakers.items() if b["state"] == CircuitState.HALF_OPEN.value]
    critical = [n for n in open_breakers if breakers[n]["critical"]]
    overall = (UNHEALTHY if critical else DEGRADED if open_breakers or degraded
               else HEALTHY)
    return {
        "overall_health": overall,
        "ready": overall != UNHEALTHY,
        "open_breakers": open_breakers,
        "critical_open_breakers": critical,
        "degraded_breakers": degraded,
        "total_breakers": len(breakers),
        "circuit_breakers": breakers,
        "timestamp": time.time(),
    }


class _CheckFailed(Exception):
    """A health check returned False; raised inside the breaker so it counts as a failure."""


def _failed_check(name: str, exc: Exception) -> bool:
    if isinstance(exc, CircuitBreakerError):
        logger.warning("health check %r skipped: circuit breaker is %s", name, exc.state.value,
                       extra={"breaker": name, "outcome": "rejected"})
    else:
        logger.warning("health check %r failed: %s", name, describe(exc),
                       extra={"breaker": name, "outcome": "failure"})
    return False


def health_check_with_circuit_breaker(
    name: str,
    check_fn: Callable[[], object],
    config: CircuitBreakerConfig | None = None,
) -> bool:
    """Run ``check_fn()`` through the circuit breaker registered as ``name`` (created
    on first use, from ``config`` if given) and say whether it passed::

        def database_health_check() -> bool:
            with get_db_connection() as conn:
                conn.execute("SELECT 1")
            return True

        is_healthy = health_check_with_circuit_breaker("database", database_health_check)

    The check fails when it raises or returns ``False`` (any other value, None
    included, passes); a failure counts against the breaker, and while the breaker
    is open the check is not run at all. Never raises for a failing check (it
    logs a warning instead); cancellation and interrupts still propagate. Use
    :func:`async_health_check_with_circuit_breaker` for a coroutine function.
    """
    if is_async_callable(check_fn):
        raise TypeError(f"{check_fn!r} is a coroutine function: use "
                        "`await async_health_check_with_circuit_breaker(name, check_fn)`")
    breaker = get_circuit_breaker(name, config)

    def check() -> object:
        if check_fn() is False:
            raise _CheckFailed(f"health check {name!r} returned False")
        return True

    try:
        breaker.call(check)
    except Exception as exc:
        return _failed_check(name, exc)
    return True


async def async_health_check_with_circuit_breaker(
    name: str,
    check_fn: Callable[[], Awaitable[object] | object],
    config: CircuitBreakerConfig | None = None,
) -> bool:
    """The async twin of :func:`health_check_with_circuit_breaker`; ``check_fn`` may be
    a coroutine function or a plain one::

        async def redis_ping() -> bool:
            return await redis.ping()

        ok = await async_health_check_with_circuit_breaker("redis", redis_ping)
    """
    breaker = get_circuit_breaker(name, config)

    async def check() -> object:
        result = check_fn()
        if isinstance(result, Awaitable):
            result = await result
        if result is False:
            raise _CheckFailed(f"health check {name!r} returned False")
        return True

    try:
        await breaker.acall(check)
    except Exception as exc:
        return _failed_check(name, exc)
    return True


def reset_resilience_state() -> None:
    """Close every circuit breaker and clear its counters, forget all metrics and
    history, and put the global settings back to their defaults. Meant for tests::

        @pytest.fixture
        def reset_circuits():
            reset_resilience_state()
            yield
            reset_resilience_state()
    """
    reset_circuit_breakers()
    resilience_metrics.reset()
    _reset_settings()


def _reset_settings() -> None:
    # Imported here: buttress.config is loaded only by code that uses it.
    from buttress.config import reset_settings

    reset_settings()
