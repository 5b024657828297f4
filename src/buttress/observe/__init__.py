"""Observability: in-memory metrics, health and status of every strategy.

Exporters (Prometheus, OpenTelemetry) live in their own modules here and are
imported only when used, so this package stays standard-library only::

    from buttress.observe import get_resilience_health, resilience_metrics, with_metrics
"""

from buttress.observe.health import (
    async_health_check_with_circuit_breaker,
    get_resilience_health,
    get_resilience_status,
    health_check_with_circuit_breaker,
    overall_health,
    reset_resilience_state,
)
from buttress.observe.metrics import (
    MetricsListener,
    OperationRecord,
    ResilienceMetrics,
    resilience_metrics,
    with_metrics,
)

__all__ = [
    "MetricsListener",
    "OperationRecord",
    "ResilienceMetrics",
    "async_health_check_with_circuit_breaker",
    "get_resilience_health",
    "get_resilience_status",
    "health_check_with_circuit_breaker",
    "overall_health",
    "reset_resilience_state",
    "resilience_metrics",
    "with_metrics",
]
