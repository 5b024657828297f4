"""What the in-memory metrics keep per operation: outcome names, the record of
one finished operation, the running totals of one name, and latency summaries.

:mod:`buttress.observe.metrics` re-exports every public name here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CANCELLED", "FAILURE", "OTHER", "REJECTED", "SUCCESS", "UNKNOWN", "OperationRecord",
    "latency_summary",
]


SUCCESS: Final = "success"
"""Outcome of an operation that returned."""
FAILURE: Final = "failure"
"""Outcome of an operation that raised (or whose retries gave up)."""
REJECTED: Final = "rejected"
"""Outcome of an operation refused without calling the dependency: an open
breaker or a full bulkhead. Counted in ``total``, never as a failure."""
CANCELLED: Final = "cancelled"
"""Outcome of an operation stopped by cancellation, an interrupt or an exit: it
is recorded in the history but is neither a success nor a failure."""
OTHER: Final = "__other__"
"""The entry that collects every operation name beyond ``max_operations``."""
UNKNOWN: Final = "unknown"
"""The name events without a name are counted under."""

_OUTCOMES: Final = frozenset({SUCCESS, FAILURE, REJECTED, CANCELLED})
_PERCENTILES: Final = (50, 95, 99)


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One finished operation in :attr:`ResilienceMetrics.operation_history`.

    ``outcome`` is ``"success"``, ``"failure"``, ``"rejected"`` or ``"cancelled"``; ``duration``
    is in seconds (None when it was not measured); ``timestamp`` is wall-clock
    time (``time.time()``) when it was recorded.
    """

    name: str
    outcome: str
    duration: float | None
    attempts: int
    timestamp: float

    @property
    def success(self) -> bool:
        """Whether the operation succeeded."""
        return self.outcome == SUCCESS

    def as_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict."""
        return {"name": self.name, "outcome": self.outcome, "success": self.success,
                "duration": self.duration, "attempts": self.attempts,
                "timestamp": self.timestamp}


class _Operation:
    """The counters of one operation name. Changed only under the metrics lock."""

    __slots__ = (
        "attempts", "cancelled", "failures", "fallbacks", "name", "rejected", "rejections",
        "retried",
        "retries", "samples", "successes", "time", "timeouts", "total", "trips",
    )

    def __init__(self, name: str, samples: int) -> None:
        self.name = name
        self.total = 0
        self.successes = 0
        self.failures = 0
        self.rejected = 0  # operations refused (outcome), not rejection events
        self.cancelled = 0
        self.attempts = 0  # summed over finished operations
        self.retried = 0  # finished operations that took more than one attempt
        self.retries = 0
        self.rejections = 0
        self.timeouts = 0
        self.fallbacks = 0
        self.trips = 0
        self.time = 0.0  # summed measured durations
        self.samples: deque[float] = deque(maxlen=samples)

    def snapshot(self) -> _Snapshot:
        return _Snapshot(
            self.name, self.total, self.successes, self.failures, self.rejected, self.cancelled,
            self.attempts, self.retried, self.retries, self.rejections, self.timeouts,
            self.fallbacks, self.trips, self.time, list(self.samples),
        )


@dataclass(frozen=True, slots=True)
class _Snapshot:
    name: str
    total: int
    successes: int
    failures: int
    rejected: int
    cancelled: int
    attempts: int
    retried: int
    retries: int
    rejections: int
    timeouts: int
    fallbacks: int
    trips: int
    time: float
    samples: list[float]


def _rate(successes: int, total: int) -> float:
    """Success rate in percent; 0.0 before any operation finished (as in the seed)."""
    return successes / total * 100.0 if total else 0.0


def latency_summary(samples: list[float]) -> dict[str, float | int]:
    """``count``, ``mean``, ``min``, ``max`` and nearest-rank ``p50``/``p95``/``p99``
    of ``samples`` (seconds); zeros when there are none. Nearest rank means each
    percentile is an observed value: for the samples 1..100, p95 is 95."""
    count = len(samples)
    if not count:
        return {"count": 0, "mean": 0.0, "min": 0.0, "max": 0.0,
                "p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(samples)
    summary: dict[str, float | int] = {
        "count": count,
        "mean": sum(ordered) / count,
        "min": ordered[0],
        "max": ordered[-1],
    }
    for p in _PERCENTILES:
        # ceil(p/100 * count) in integers, so 95 of 100 is rank 95 exactly.
        summary[f"p{p}"] = ordered[max(0, (p * count + 99) // 100 - 1)]
    return summary
