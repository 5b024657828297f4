"""Which retry budget should buttress's presets carry? Each candidate is run
through the retry storm (:mod:`buttress.simulate.storm`) and through steady
random failures without a spike, with the presets' retry (3 attempts,
jittered backoff) and no breaker, so that the budget alone decides.

A budget earns its place if the storm ends as soon as it would without
retries, and costs little when a healthy-enough dependency fails some calls
at random (where retries are what the app wants). A token bucket stops
retries once failures outweigh ``token_ratio`` times the successes: it holds
while the failure rate stays under ``token_ratio / (1 + token_ratio)`` (9 %
for 0.1, 17 % for 0.2) and throttles beyond.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from buttress.retry import RetryConfig
from buttress.simulate.client import BudgetFactory, ClientPolicy, ratio_budget, token_bucket
from buttress.simulate.dependency import DependencyModel
from buttress.simulate.openloop import Traffic, run_open_loop
from buttress.simulate.storm import StormScenario, run_storm

__all__ = ["BudgetComparison", "BudgetRow", "compare_budgets", "default_candidates"]


def default_candidates() -> dict[str, BudgetFactory | None]:
    """No budget; token buckets (gRPC's 10 / 0.1, a larger bucket, a higher
    ratio); ratio budgets without a floor and with :class:`RatioBudget`'s
    default floor of 10 retries per second (per client), and 1 per second."""
    return {
        "no budget": None,
        "token bucket 10, 0.1": token_bucket(10.0, 0.1),
        "token bucket 10, 0.2": token_bucket(10.0, 0.2),
        "token bucket 100, 0.1": token_bucket(100.0, 0.1),
        "ratio 10%, no floor": ratio_budget(0.1, 0.0),
        "ratio 20%, no floor": ratio_budget(0.2, 0.0),
        "ratio 20%, 1/s floor": ratio_budget(0.2, 1.0),
        "ratio 20%, 10/s floor": ratio_budget(0.2, 10.0),
    }


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """One candidate: its storm recovery (None: never) and, per steady failure
    rate, the share of calls that succeeded and the load it sent."""

    budget: str
    recovery_time: float | None
    success: tuple[float, ...]
    load: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class BudgetComparison:
    """Every candidate's row, and the steady failure rates they were run at."""

    rows: tuple[BudgetRow, ...]
    failure_rates: tuple[float, ...]
    seed: int
    scenario: StormScenario = field(repr=False)

    def row(self, budget: str) -> BudgetRow:
        """The row of the candidate named ``budget``."""
        for row in self.rows:
            if row.budget == budget:
                return row
        raise KeyError(budget)

    def table(self) -> tuple[str, list[str], list[list[str]]]:
        """A title, headers and rows."""
        rows = [[r.budget, "never" if r.recovery_time is None else f"{r.recovery_time:.0f} s",
                 *(f"{s:.1%} ({x:.2f}x)" for s, x in zip(r.success, r.load, strict=True))]
                for r in self.rows]
        headers = ["budget (per client)", "storm recovery",
                   *(f"ok at {f:.0%} failures" for f in self.failure_rates)]
        title = ("Retry budgets: storm recovery, and calls that succeed (load sent) under "
                 f"steady random failures (seed {self.seed})")
        return title, headers, rows


def compare_budgets(candidates: Mapping[str, BudgetFactory | None] | None = None, *,
                    scenario: StormScenario | None = None,
                    failure_rates: Sequence[float] = (0.05, 0.1, 0.2),
                    steady_duration: float = 200.0, seed: int = 1) -> BudgetComparison:
    """Run each candidate (:func:`default_candidates` by default) through the storm
    and through ``steady_duration`` seconds at each steady failure rate (50
    calls/s, half the capacity, no spike)."""
    sc = StormScenario() if scenario is None else scenario
    s = sc.settings
    retry = RetryConfig(max_attempts=s.max_attempts, base_delay=s.base_delay,
                        max_delay=s.max_delay, exponential_base=s.exponential_base,
                        jitter=s.jitter)
    chosen = default_candidates() if candidates is None else candidates
    rows = []
    for name, budget in chosen.items():
        policy = ClientPolicy(name=name, retry=retry, budget=budget,
                              timeout=s.timeout_seconds)
        storm = run_storm(sc, seed=seed, policies=[policy])
        success, load = [], []
        for rate in failure_rates:
            model = DependencyModel(capacity=sc.model.capacity,
                                    service_time=sc.model.service_time,
                                    queue_limit=sc.model.queue_limit, failure_rate=rate)
            run = run_open_loop(policy, model, Traffic(rate=sc.model.throughput / 2),
                                duration=steady_duration, clients=sc.clients, seed=seed,
                                drain=s.timeout_seconds * s.max_attempts + s.max_delay)
            success.append(run.success_rate)
            load.append(run.amplification)
        rows.append(BudgetRow(name, storm.rows()[0].recovery_time, tuple(success),
                              tuple(load)))
    return BudgetComparison(tuple(rows), tuple(failure_rates), seed, sc)
