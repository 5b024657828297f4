"""The SPEC §6 performance targets, judged against what a run found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.groups import (
    BREAKER_CLOSED,
    BREAKER_OPEN,
    BUDGET_SUCCESS,
    PIPELINE,
    RATE_LIMIT,
    RETRY_SUCCESS,
)
from benchmarks.harness import KINDS, Kind, Timings, case_id
from benchmarks.results import Findings

__all__ = ["Target", "evaluate"]

BUTTRESS = "buttress"
WITH_METRICS = "buttress + metrics listener"  # the same as cases_retry.WITH_METRICS


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def result(self) -> str:
        return {True: "pass", False: "MISS", None: "not run"}[self.passed]


def _not_run(name: str, goal: str) -> Target:
    return Target(name, goal, "not run", None)


def _overhead_below(timings: Timings, group: str, kind: Kind, name: str,
                    limit_us: float) -> Target:
    goal = f"< {limit_us:g} µs"
    case = case_id(group, kind, BUTTRESS)
    if not timings.has(case):
        return _not_run(name, goal)
    overhead = timings.overhead_us(case)
    return Target(name, goal, f"{overhead:.3f} µs", overhead < limit_us)


def _less_overhead_than(timings: Timings, kind: Kind, peer: str, factor: float) -> Target:
    name = f"success-path retry vs {peer} ({kind})"
    goal = f"≥ {factor:g}x less overhead" if factor > 1 else "less overhead"
    ours, theirs = case_id(RETRY_SUCCESS, kind, BUTTRESS), case_id(RETRY_SUCCESS, kind, peer)
    if not (timings.has(ours) and timings.has(theirs)):
        return _not_run(name, goal)
    times_less = timings.overhead_ratio(theirs, ours)
    return Target(name, goal, f"{times_less:.1f}x less", times_less >= factor and times_less > 1)


def _below_every_peer(timings: Timings, kind: Kind) -> Target:
    name = f"closed breaker below every peer ({kind})"
    goal = "lowest overhead"
    ours = case_id(BREAKER_CLOSED, kind, BUTTRESS)
    prefix = case_id(BREAKER_CLOSED, kind, "")
    peers = [c for c in timings.per_call_ns if c.startswith(prefix) and c != ours]
    if not (timings.has(ours) and peers):
        return _not_run(name, goal)
    closest = max(peers, key=lambda peer: timings.overhead_ratio(ours, peer))
    ratio = timings.overhead_ratio(ours, closest)
    measured = f"{ratio:.2f}x the closest peer ({closest.rsplit('/', 1)[1]})"
    return Target(name, goal, measured, ratio < 1)


def _rejection(timings: Timings, kind: Kind) -> Target:
    name = f"open-breaker rejection, caught ({kind})"
    goal = "< 2 µs per call"
    case = case_id(BREAKER_OPEN, kind, BUTTRESS)
    if not timings.has(case):
        return _not_run(name, goal)
    per_call = timings.per_call_us(case)
    return Target(name, goal, f"{per_call:.3f} µs", per_call < 2.0)


def _with_metrics(timings: Timings, kind: Kind) -> Target:
    name = f"success-path retry with a metrics listener ({kind})"
    goal = "< 2 µs per call"
    case = case_id(RETRY_SUCCESS, kind, WITH_METRICS)
    if not timings.has(case):
        return _not_run(name, goal)
    per_call = timings.per_call_us(case)
    return Target(name, goal, f"{per_call:.3f} µs", per_call < 2.0)


def _pipeline(findings: Findings) -> Target:
    target = _overhead_below(findings.timings, PIPELINE, "async",
                             "five-strategy async pipeline overhead", 3.0)
    if target.passed is None or findings.pipeline_strategies == 5:
        return target
    measured = f"{target.measured} with {findings.pipeline_strategies} strategies: no Bulkhead yet"
    return Target(target.name, target.goal, measured, target.passed)


def _no_sleep(findings: Findings) -> Target:
    name, goal = "zero-delay retries make no sleep call", "0 sleep calls"
    check = findings.sleep_check
    if check is None:
        return _not_run(name, goal)
    measured = f"{check.sleeps} in {check.calls:,} checked calls and every timed call"
    return Target(name, goal, measured, check.sleeps == 0)


def _thread_scaling(findings: Findings) -> Target:
    name, goal = "breaker-protected I/O, 8 threads vs 1", "≥ 6x calls/s"
    rates = {t.threads: t.calls_per_second for t in findings.throughput if t.impl == BUTTRESS}
    if 1 not in rates or 8 not in rates:
        return _not_run(name, goal)
    scaling = rates[8] / rates[1]
    return Target(name, goal, f"{scaling:.1f}x", scaling >= 6.0)


def _gcra_floor(timings: Timings) -> Target:
    name = "uncontended rate-limit acquire vs hand-written GCRA (sync)"
    goal = "≤ 2x the locked floor's time"
    ours = case_id(RATE_LIMIT, "sync", BUTTRESS)
    floor = case_id(RATE_LIMIT, "sync", "hand-written GCRA")
    if not (timings.has(ours) and timings.has(floor)):
        return _not_run(name, goal)
    ratio = timings.ratio(ours, floor)
    return Target(name, goal, f"{ratio:.2f}x", ratio <= 2.0)


def evaluate(findings: Findings) -> list[Target]:
    """Every target, in SPEC order."""
    timings = findings.timings
    per_kind: list[Callable[[Kind], Target]] = [
        lambda k: _overhead_below(timings, RETRY_SUCCESS, k,
                                  f"success-path retry overhead ({k})", 1.0),
        lambda k: _less_overhead_than(timings, k, "tenacity", 10.0),
        lambda k: _less_overhead_than(timings, k, "backoff", 1.0),
        lambda k: _overhead_below(timings, BREAKER_CLOSED, k,
                                  f"closed-breaker overhead ({k})", 0.5),
        lambda k: _below_every_peer(timings, k),
        lambda k: _rejection(timings, k),
        lambda k: _with_metrics(timings, k),
    ]
    return [
        *(target(kind) for target in per_kind for kind in KINDS),
        _pipeline(findings),
        _no_sleep(findings),
        _thread_scaling(findings),
        _overhead_below(timings, BUDGET_SUCCESS, "sync",
                        "retry budget success path (token bucket)", 0.1),
        _gcra_floor(timings),
    ]
