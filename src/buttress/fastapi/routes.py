"""The health and metrics routes, as one APIRouter.

=========================  ==============================================================
route                      answer
=========================  ==============================================================
``GET /health``            ``{"status", "ready", "checks", "timestamp"}``: the verdict
                           ("healthy", "degraded", "unhealthy") and each of your checks;
                           status code 503 when not ready (for a readiness probe)
``GET /health/resilience`` :func:`~buttress.observe.get_resilience_health`'s document:
                           ``overall_health``, ``ready``, ``open_breakers``,
                           ``critical_open_breakers``, ``degraded_breakers``,
                           ``total_breakers``, ``circuit_breakers`` (by name: ``state``,
                           ``failure_rate``, ``total_calls``, ...), ``timestamp``
``GET /metrics/resilience`` :func:`resilience_metrics_document`: per breaker state,
                           failure rate and calls, the overall verdict and success rate
``GET /metrics``           Prometheus text exposition (needs ``buttress[prometheus]``;
                           without it the route answers 501)
=========================  ==============================================================

``/health/resilience`` always answers 200 (the document says how things are);
``buttress status URL`` reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response

from buttress._core import forksafe, validate
from buttress._core.errors import ConfigurationError
from buttress._core.strategy import is_async_callable
from buttress.observe.health import (
    UNHEALTHY,
    async_health_check_with_circuit_breaker,
    get_resilience_health,
    health_check_with_circuit_breaker,
    overall_health,
)
from buttress.observe.metrics import resilience_metrics

if TYPE_CHECKING:
    from buttress.observe.prometheus import PrometheusMetrics

__all__ = ["resilience_metrics_document", "resilience_router"]

_OWNER: Final = "resilience_router"
HealthCheck = Callable[[], object] | Callable[[], Awaitable[object]]


def resilience_metrics_document() -> dict[str, Any]:
    """What ``GET /metrics/resilience`` answers: ``circuit_breaker_states``,
    ``failure_rates`` (0..1) and ``total_calls``, each by breaker name,
    ``overall_health``, ``success_rate`` (percent, from
    :data:`~buttress.observe.resilience_metrics`) and ``timestamp``::

        doc = resilience_metrics_document()
        doc["circuit_breaker_states"]["payments"]    # "closed"
    """
    health = get_resilience_health()
    breakers = health["circuit_breakers"]
    return {
        "circuit_breaker_states": {name: b["state"] for name, b in breakers.items()},
        "failure_rates": {name: b["failure_rate"] for name, b in breakers.items()},
        "total_calls": {name: b["total_calls"] for name, b in breakers.items()},
        "overall_health": health["overall_health"],
        "success_rate": resilience_metrics.get_success_rate(),
        "timestamp": health["timestamp"],
    }


async def _run_check(name: str, check: HealthCheck, limit: float) -> bool:
    # Each check runs through its own breaker ("health.<name>"): a dependency
    # that keeps failing is not hammered by every probe. A sync check runs in
    # the threadpool, as FastAPI runs sync dependencies.
    breaker_name = f"health.{name}"
    if is_async_callable(check):
        pending: Awaitable[bool] = async_health_check_with_circuit_breaker(breaker_name, check)
    else:
        pending = run_in_threadpool(health_check_with_circuit_breaker, breaker_name, check)
    try:
        return await asyncio.wait_for(pending, limit)
    except TimeoutError:
        return False


def _default_metrics() -> PrometheusMetrics:
    global _shared_metrics
    with _shared_lock:
        if _shared_metrics is None:
            from buttress.observe.prometheus import PrometheusMetrics

            _shared_metrics = PrometheusMetrics().install()
        return _shared_metrics


_shared_metrics: PrometheusMetrics | None = None
_shared_lock = forksafe.lock()


def _metrics_source(metrics: PrometheusMetrics | None) -> PrometheusMetrics | None:
    if metrics is not None:
        return metrics
    try:
        return _default_metrics()
    except ImportError:  # prometheus_client is not installed
        return None


def resilience_router(
    *,
    checks: Mapping[str, HealthCheck] | None = None,
    check_timeout: float = 5.0,
    metrics: PrometheusMetrics | None = None,
    tags: list[str] | None = None,
    include_in_schema: bool = True,
) -> APIRouter:
    """An APIRouter with ``/health``, ``/health/resilience``, ``/metrics/resilience``
    and ``/metrics`` (see the module docstring for what each answers)::

        app.include_router(resilience_router())
        app.include_router(resilience_router(checks={"database": db_ping}), prefix="/ops")

    ``checks`` maps a name to a function (sync or async) that says whether a
    dependency is usable: it fails when it raises, returns ``False`` or takes
    longer than ``check_timeout`` seconds. ``/health`` runs them all, each
    through its own breaker (``health.<name>``); a failing one makes the
    service "unhealthy" (503).

    ``metrics`` is the :class:`~buttress.observe.prometheus.PrometheusMetrics`
    whose registry ``/metrics`` exposes; by default one on prometheus_client's
    global registry, installed (listening to every policy) on first use, once
    per process. Pass your own if you installed one already (two installed on
    one registry count every event twice).
    """
    named = dict(checks or {})
    for name, check in named.items():
        validate.text(_OWNER, "checks", name)
        if not callable(check):
            raise ConfigurationError(f"{_OWNER}.checks[{name!r}]", check, "a callable")
    limit = validate.number(_OWNER, "check_timeout", check_timeout, minimum=0.0,
                            strict_minimum=True)
    source = _metrics_source(metrics)
    router = APIRouter(tags=list(tags) if tags is not None else ["resilience"],
                       include_in_schema=include_in_schema)

    @router.get("/health", summary="Service health, for readiness probes")
    async def health() -> JSONResponse:
        results: dict[str, bool] = {}
        if named:
            outcomes = await asyncio.gather(
                *(_run_check(name, check, limit) for name, check in named.items()))
            results = dict(zip(named, outcomes, strict=True))
        verdict = UNHEALTHY if not all(results.values()) else overall_health()
        ready = verdict != UNHEALTHY
        return JSONResponse(
            {"status": verdict, "ready": ready, "checks": results, "timestamp": time.time()},
            status_code=200 if ready else 503,
        )

    @router.get("/health/resilience", summary="Every circuit breaker and the verdict")
    async def health_resilience() -> dict[str, Any]:
        return get_resilience_health()

    @router.get("/metrics/resilience", summary="Breaker states, failure rates and calls")
    async def metrics_resilience() -> dict[str, Any]:
        return resilience_metrics_document()

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def prometheus_metrics() -> Response:
        if source is None:
            return PlainTextResponse(
                "Prometheus metrics need prometheus_client: pip install buttress[prometheus]\n",
                status_code=501)
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(source.registry), media_type=CONTENT_TYPE_LATEST)

    return router
