"""A retry storm: a short load spike that, with the wrong retries, never ends.

The dependency (10 workers, 100 ms mean service: 100 calls/s at most, a queue
of 2,000) runs at 70 % of its capacity. A spike doubles the arrivals for 30 s:
the queue grows until waiting in it takes longer than the clients' 5 s
timeout. From then on every call times out, and the server keeps serving
requests nobody waits for. Without retries the spike passes and the queue
drains. With retries the load after the spike is the arrivals times the
attempts per call, above the capacity, so the queue stays full and goodput
stays at zero: a metastable failure, long after its trigger is gone.
Backoff only spreads the retries out; it does not send fewer. A retry budget
caps the extra load, and a circuit breaker sheds it.

The client settings are buttress's ``default`` operation settings
(:class:`buttress.config.schema.OperationSettings`: 5 s timeout, 3 attempts,
1 s base delay with jitter 0.5, a breaker opening after 5 failures in a row
for 60 s), with the retry budget under test added.

*Goodput* is calls answered successfully per second. A policy *recovers* when,
after the spike, the goodput averaged over ``recovery_window`` seconds is back
to 90 % of what it was before the spike; the recovery time counts from the
end of the spike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from buttress._core import validate
from buttress._core.errors import ConfigurationError
from buttress.breaker import CircuitBreakerConfig
from buttress.config.schema import OperationSettings
from buttress.retry import RetryConfig
from buttress.simulate.client import BudgetFactory, ClientPolicy, token_bucket
from buttress.simulate.dependency import DependencyModel
from buttress.simulate.openloop import RunResult, Spike, Traffic, run_open_loop

__all__ = ["StormResult", "StormRow", "StormScenario", "recovery_time", "run_storm",
           "storm_policies"]

RECOVERED: Final = 0.9


@dataclass(frozen=True, slots=True, kw_only=True)
class StormScenario:
    """The storm's dependency, traffic, clients and run; times in seconds."""

    model: DependencyModel = field(default_factory=lambda: DependencyModel(
        capacity=10, service_time=0.1, queue_limit=2000))
    rate: float = 70.0
    spike_start: float = 60.0
    spike_duration: float = 30.0
    spike_multiplier: float = 2.0
    duration: float = 600.0
    clients: int = 10
    settings: OperationSettings = field(default_factory=OperationSettings)
    width: float = 5.0
    recovery_window: float = 30.0

    def __post_init__(self) -> None:
        o = "StormScenario"
        validate.number(o, "duration", self.duration, minimum=0.0, strict_minimum=True)
        validate.number(o, "width", self.width, minimum=0.0, strict_minimum=True)
        validate.number(o, "recovery_window", self.recovery_window, minimum=0.0,
                        strict_minimum=True)
        if self.spike_start + self.spike_duration >= self.duration:
            raise ConfigurationError(
                f"{o}.duration", self.duration,
                f"> the spike's end ({self.spike_start + self.spike_duration:g})")

    @property
    def spike(self) -> Spike:
        """The load spike."""
        return Spike(start=self.spike_start, duration=self.spike_duration,
                     multiplier=self.spike_multiplier)

    @property
    def traffic(self) -> Traffic:
        """The arrivals, spike included."""
        return Traffic(rate=self.rate, spikes=(self.spike,))


def storm_policies(settings: OperationSettings | None = None,
                   budget: BudgetFactory | None = None) -> list[ClientPolicy]:
    """The policies compared, from ``settings`` (the ``default`` operation
    settings unless given) and ``budget`` (gRPC's token bucket, 10 tokens,
    0.1 per success, unless given)."""
    s = OperationSettings() if settings is None else settings
    budget = token_bucket(10.0, 0.1) if budget is None else budget
    backoff = RetryConfig(max_attempts=s.max_attempts, base_delay=s.base_delay,
                          max_delay=s.max_delay, exponential_base=s.exponential_base,
                          jitter=s.jitter)
    eager = RetryConfig(max_attempts=s.max_attempts, base_delay=0.0, jitter=0.0)
    breaker = CircuitBreakerConfig(failure_threshold=s.failure_threshold,
                                   recovery_timeout=s.recovery_timeout)
    timeout = s.timeout_seconds
    return [
        ClientPolicy(name="no retry", timeout=timeout),
        ClientPolicy(name="retry, no backoff", retry=eager, timeout=timeout),
        ClientPolicy(name="retry + jittered backoff", retry=backoff, timeout=timeout),
        ClientPolicy(name="backoff + budget", retry=backoff, budget=budget, timeout=timeout),
        ClientPolicy(name="backoff + breaker", retry=backoff, breaker=breaker,
                     timeout=timeout),
        ClientPolicy(name="backoff + breaker + budget", retry=backoff, breaker=breaker,
                     budget=budget, timeout=timeout),
    ]


@dataclass(frozen=True, slots=True)
class StormRow:
    """One policy's storm in figures (goodputs in calls per second)."""

    policy: str
    before: float
    after: float
    recovered: bool
    recovery_time: float | None
    amplification: float
    wasted: int
    denied: int


@dataclass(frozen=True, slots=True)
class StormResult:
    """One run per policy through the same storm."""

    scenario: StormScenario
    runs: tuple[RunResult, ...]
    seed: int

    def of(self, policy: str) -> RunResult:
        """The run of the policy named ``policy``."""
        for run in self.runs:
            if run.policy == policy:
                return run
        raise KeyError(policy)

    def row(self, run: RunResult) -> StormRow:
        """``run`` in figures: goodput before the spike and over the last quarter of
        the run, whether and when it recovered, its amplification after the spike."""
        sc = self.scenario
        t = run.timeline
        spike_end = sc.spike_start + sc.spike_duration
        before = t.mean_rate("succeeded", 0.0, sc.spike_start)
        after = t.mean_rate("succeeded", sc.duration * 0.75, sc.duration)
        at = recovery_time(t.rate("succeeded"), t.width, spike_end, before * RECOVERED,
                           sc.recovery_window)
        offered = t.total("offered", spike_end)
        amplification = t.total("sent", spike_end) / offered if offered else 0.0
        return StormRow(run.policy, before, after, at is not None, at, amplification,
                        t.total("late"), t.total("denied"))

    def rows(self) -> list[StormRow]:
        """Every policy's figures."""
        return [self.row(run) for run in self.runs]

    def table(self) -> tuple[str, list[str], list[list[str]]]:
        """A title, headers and rows: goodput (calls/s) before the spike and over
        the run's last quarter, the recovery, the attempts sent per call after
        the spike, the answers that came after their client gave up (wasted),
        the retries a budget refused (denied)."""
        sc = self.scenario
        rows = [[r.policy, f"{r.before:.1f}", f"{r.after:.1f}",
                 "yes" if r.recovered else "NO",
                 "-" if r.recovery_time is None else f"{r.recovery_time:.0f}",
                 f"{r.amplification:.2f}x", f"{r.wasted:,}", f"{r.denied:,}"]
                for r in self.rows()]
        title = (f"Retry storm: {sc.rate:g} calls/s ({sc.rate / sc.model.throughput:.0%} of "
                 f"capacity), x{sc.spike_multiplier:g} for {sc.spike_duration:g} s at "
                 f"t={sc.spike_start:g} s, {sc.settings.timeout_seconds:g} s timeout, "
                 f"{sc.duration:g} s (seed {self.seed})")
        return title, ["policy", "goodput before", "goodput at end", "recovers",
                       "recovery (s)", "load after", "wasted", "denied"], rows


def recovery_time(goodput: Sequence[float], width: float, spike_end: float, level: float,
                  window: float) -> float | None:
    """Seconds from ``spike_end`` until the goodput (one value per bucket of
    ``width`` seconds) averages at least ``level`` over ``window`` seconds;
    None if it never does::

        >>> recovery_time([5, 5, 0, 0, 4, 5, 5], 1.0, 2.0, 4.0, 2.0)
        2.0
    """
    first = math.ceil(spike_end / width - 1e-9)
    span = max(1, math.ceil(window / width))
    for i in range(first, len(goodput) - span + 1):
        if sum(goodput[i:i + span]) / span >= level:
            return i * width - spike_end
    return None


def run_storm(scenario: StormScenario | None = None, *, seed: int = 1,
              policies: Sequence[ClientPolicy] | None = None) -> StormResult:
    """Run every policy (:func:`storm_policies` by default) through the storm::

        result = run_storm(StormScenario(duration=300.0))
        [row.policy for row in result.rows() if not row.recovered]
    """
    sc = StormScenario() if scenario is None else scenario
    chosen = storm_policies(sc.settings) if policies is None else list(policies)
    runs = tuple(run_open_loop(p, sc.model, sc.traffic, duration=sc.duration,
                               clients=sc.clients, seed=seed, width=sc.width)
                 for p in chosen)
    return StormResult(sc, runs, seed)
