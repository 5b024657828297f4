"""``buttress.simulate``: resilience policies against a modelled dependency, in
virtual time.

A discrete-event simulator (:mod:`~buttress.simulate.engine`) runs clients
protected by buttress's own decision code (:class:`~buttress.retry.RetryPolicy`
decides every retry, a :class:`~buttress._core.breaker_machine.BreakerMachine`
every admission, :mod:`buttress.budget` every retry budget) against a server
with a capacity, a queue and failure modes
(:class:`~buttress.simulate.dependency.DependencyModel`). An hour of traffic
takes seconds; the same seed gives the same numbers. Standard library only;
the plots (:mod:`buttress.simulate.plots`) need matplotlib (``buttress[plot]``).

Three scenarios reproduce published results (``buttress simulate`` runs them)::

    from buttress.simulate import run_amplification, run_aws_jitter, run_storm

    run_aws_jitter((50,), runs=5).at("no jitter", 50).calls      # far above full jitter
    run_amplification().of("3 retries").amplification            # 4.0
    [r.policy for r in run_storm().rows() if not r.recovered]    # the retry storms

Your own policy against your own dependency::

    from buttress import RetryConfig
    from buttress.simulate import ClientPolicy, DependencyModel, Traffic, run_open_loop

    result = run_open_loop(
        ClientPolicy(name="mine", retry=RetryConfig(max_attempts=3), timeout=1.0),
        DependencyModel(capacity=10, service_time=0.05, failure_rate=0.2),
        Traffic(rate=100.0), duration=3600.0)
    result.success_rate, result.amplification

.. versionadded:: 0.3
"""

from __future__ import annotations

from buttress.simulate.amplification import (
    AmplificationResult,
    amplification_policies,
    run_amplification,
)
from buttress.simulate.aws import AWS_STRATEGIES, JitterPoint, JitterResult, run_aws_jitter
from buttress.simulate.client import (
    BudgetFactory,
    Client,
    ClientPolicy,
    DependencyError,
    ratio_budget,
    token_bucket,
)
from buttress.simulate.dependency import Dependency, DependencyModel, Outage
from buttress.simulate.engine import EventLoop
from buttress.simulate.openloop import RunResult, Spike, Traffic, run_open_loop
from buttress.simulate.storm import (
    StormResult,
    StormRow,
    StormScenario,
    recovery_time,
    run_storm,
    storm_policies,
)
from buttress.simulate.sweep import BudgetComparison, BudgetRow, compare_budgets
from buttress.simulate.timeline import Timeline

__all__ = [
    "AWS_STRATEGIES",
    "AmplificationResult",
    "BudgetComparison",
    "BudgetFactory",
    "BudgetRow",
    "Client",
    "ClientPolicy",
    "Dependency",
    "DependencyError",
    "DependencyModel",
    "EventLoop",
    "JitterPoint",
    "JitterResult",
    "Outage",
    "RunResult",
    "Spike",
    "StormResult",
    "StormRow",
    "StormScenario",
    "Timeline",
    "Traffic",
    "amplification_policies",
    "compare_budgets",
    "ratio_budget",
    "recovery_time",
    "run_amplification",
    "run_aws_jitter",
    "run_open_loop",
    "run_storm",
    "storm_policies",
    "token_bucket",
]
