"""Retry amplification: what retries send to a dependency that fails every call.

Open-loop calls arrive at ``rate`` per second from ``clients`` clients; every
call fails (the dependency answers each one with an error after its service
time). The *amplification* is the attempts that reached the dependency per
call the app made. Three retries multiply the load by four exactly when the
dependency is weakest; a retry budget caps the extra load whatever the
failure rate; a circuit breaker, once open, keeps the calls from the
dependency altogether (each call makes one attempt, turned away locally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from buttress._core import validate
from buttress.breaker import CircuitBreakerConfig
from buttress.retry import RetryConfig
from buttress.simulate.client import ClientPolicy, ratio_budget, token_bucket
from buttress.simulate.dependency import DependencyModel
from buttress.simulate.openloop import RunResult, Traffic, run_open_loop

__all__ = ["AmplificationResult", "amplification_policies", "run_amplification"]

RETRIES: Final = 3


def amplification_policies(retries: int = RETRIES) -> list[ClientPolicy]:
    """The policies compared: no retry; ``retries`` retries (jittered backoff,
    50 ms base) alone, under a token-bucket budget (gRPC's example,
    ``max_tokens=10, token_ratio=0.1``), under a 10 % ratio budget (no floor,
    then buttress's defaults: 20 % with 10 retries/s), and behind a breaker
    (5 failures in a row, 10 s open)."""
    retry = RetryConfig(max_attempts=retries + 1, base_delay=0.05, max_delay=1.0, jitter=0.5)
    breaker = CircuitBreakerConfig(failure_threshold=5, recovery_timeout=10.0)
    return [
        ClientPolicy(name="no retry"),
        ClientPolicy(name=f"{retries} retries", retry=retry),
        ClientPolicy(name=f"{retries} retries + token bucket (10, 0.1)", retry=retry,
                     budget=token_bucket(10.0, 0.1)),
        ClientPolicy(name=f"{retries} retries + ratio budget 10%", retry=retry,
                     budget=ratio_budget(0.1, 0.0)),
        ClientPolicy(name=f"{retries} retries + ratio budget (defaults)", retry=retry,
                     budget=ratio_budget()),
        ClientPolicy(name=f"{retries} retries + breaker", retry=retry, breaker=breaker),
    ]


@dataclass(frozen=True, slots=True)
class AmplificationResult:
    """One run per policy against a dependency that fails every call."""

    runs: tuple[RunResult, ...]
    rate: float
    clients: int
    duration: float
    seed: int

    def of(self, policy: str) -> RunResult:
        """The run of the policy named ``policy``."""
        for run in self.runs:
            if run.policy == policy:
                return run
        raise KeyError(policy)

    def table(self) -> tuple[str, list[str], list[list[str]]]:
        """A title, headers and rows: calls, attempts made, attempts that reached
        the dependency, and the amplification."""
        rows = [[r.policy, f"{r.timeline.total('offered'):,}",
                 f"{r.attempts_per_call:.2f}", f"{r.timeline.total('sent'):,}",
                 f"{r.amplification:.2f}x"] for r in self.runs]
        title = (f"100% failure: {self.rate:g} calls/s from {self.clients} clients for "
                 f"{self.duration:g} s (seed {self.seed})")
        return title, ["policy", "calls", "attempts/call", "reached dependency",
                       "amplification"], rows


def run_amplification(*, rate: float = 100.0, duration: float = 60.0, clients: int = 10,
                      seed: int = 0,
                      policies: Sequence[ClientPolicy] | None = None) -> AmplificationResult:
    """Run every policy (:func:`amplification_policies` by default) for ``duration``
    seconds of calls at ``rate`` per second, all failing; the run goes on
    until the last call's retries are over::

        result = run_amplification(duration=20.0)
        round(result.of("3 retries").amplification)   # 4
    """
    validate.number("run_amplification", "rate", rate, minimum=0.0, strict_minimum=True)
    model = DependencyModel(capacity=10_000, service_time=0.01, failure_rate=1.0)
    chosen = amplification_policies() if policies is None else list(policies)
    runs = tuple(run_open_loop(p, model, Traffic(rate=rate), duration=duration,
                               clients=clients, seed=seed, drain=5.0) for p in chosen)
    return AmplificationResult(runs, rate, clients, duration, seed)
