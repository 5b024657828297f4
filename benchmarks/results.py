"""What a run found: the per-call timings and the other measurements, as the
report and the targets read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.harness import Timings

__all__ = ["Findings", "Footprint", "SleepCheck", "Throughput"]


@dataclass(frozen=True, slots=True)
class Throughput:
    impl: str
    threads: int
    calls_per_second: float


@dataclass(frozen=True, slots=True)
class Footprint:
    impl: str
    breakers: int
    bytes: int


@dataclass(frozen=True, slots=True)
class SleepCheck:
    """Zero-delay retried calls checked, and the sleep calls seen (over the check
    and every timed call, which share the raising clock)."""

    calls: int
    sleeps: int


@dataclass(frozen=True)
class Findings:
    timings: Timings
    throughput: list[Throughput] = field(default_factory=list)
    memory: list[Footprint] = field(default_factory=list)
    sleep_check: SleepCheck | None = None
    pipeline_strategies: int = 5
