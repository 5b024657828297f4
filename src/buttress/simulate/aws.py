"""The AWS Architecture Blog's "Exponential Backoff And Jitter" (Marc Brooker, 2015).

``N`` clients start together and each wants to update one row once, with
optimistic concurrency: read the row's version, write it back conditionally;
a write carrying a stale version fails and the client backs off, reads again
and tries again. The network delays every message by ``|normal(10 ms, 2 ms)|``,
as the article's simulator does. *Work* is the number of writes sent (the
article's "calls"); *time* is when the last client succeeded.

The backoff is buttress's: each client's retries are decided by
:meth:`buttress.retry.RetryPolicy.decide` with ``base_delay=0.005`` and
``max_delay=2.0`` under the strategy compared (no jitter, full, equal and
decorrelated jitter, no backoff at all as a baseline, and buttress's own
defaults: exponential backoff with jitter 0.1, as ``RetryConfig`` has it, and
0.5, as the operation presets have it). buttress counts
its schedule from ``base_delay`` (the article's first wait is ``2 * base``),
and its decorrelated jitter starts at ``base_delay`` exactly.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from buttress._core import validate
from buttress._core.errors import ConfigurationError
from buttress.backoff import RetryStrategy
from buttress.retry import Outcome, RetryConfig, RetryPolicy, RetryState
from buttress.simulate.client import DependencyError
from buttress.simulate.engine import EventLoop

__all__ = ["AWS_STRATEGIES", "JitterPoint", "JitterResult", "run_aws_jitter"]

AWS_STRATEGIES: Final = ("no backoff", "no jitter", "full jitter", "equal jitter",
                         "decorrelated jitter", "jitter 0.1 (RetryConfig)",
                         "jitter 0.5 (presets)")
# Each strategy as buttress spells it: (RetryStrategy, jitter factor). The last two
# are buttress's own defaults: RetryConfig's exponential backoff with jitter 0.1,
# and the operation presets' jitter 0.5.
_STRATEGY: Final = {
    "no backoff": (RetryStrategy.FIXED_DELAY, 0.0),
    "no jitter": (RetryStrategy.EXPONENTIAL_BACKOFF, 0.0),
    "full jitter": (RetryStrategy.FULL_JITTER, 0.0),
    "equal jitter": (RetryStrategy.EQUAL_JITTER, 0.0),
    "decorrelated jitter": (RetryStrategy.DECORRELATED_JITTER, 0.0),
    "jitter 0.1 (RetryConfig)": (RetryStrategy.EXPONENTIAL_BACKOFF, 0.1),
    "jitter 0.5 (presets)": (RetryStrategy.EXPONENTIAL_BACKOFF, 0.5),
}
BASE_DELAY: Final = 0.005
MAX_DELAY: Final = 2.0
_NET_MEAN: Final = 0.010
_NET_SD: Final = 0.002


# The conditional write lost: somebody else wrote first.
_LOST: Final = Outcome.raised(DependencyError("version conflict"))


def aws_retry_config(strategy: str, rng: random.Random) -> RetryConfig:
    """The retry of one contender under ``strategy`` (one of :data:`AWS_STRATEGIES`):
    unlimited attempts in practice, base 5 ms, cap 2 s."""
    kind, jitter = _STRATEGY[strategy]
    return RetryConfig(max_attempts=1_000_000, base_delay=0.0 if strategy == "no backoff"
                       else BASE_DELAY, max_delay=MAX_DELAY, strategy=kind, jitter=jitter,
                       exceptions=(DependencyError,), rng=rng)


def _contend(clients: int, strategy: str, rng: random.Random) -> tuple[int, float]:
    """One run: the writes sent and the time the last client finished."""
    loop = EventLoop()
    policy = RetryPolicy(aws_retry_config(strategy, rng))
    version = 0
    writes = 0
    finished = 0.0

    def net() -> float:
        return abs(rng.normalvariate(_NET_MEAN, _NET_SD))

    def read(state: RetryState) -> None:
        # The server answers with the version; the client writes it back.
        loop.after(net() + net(), write, state, version)

    def write(state: RetryState, seen: int) -> None:
        nonlocal version, writes
        writes += 1
        won = seen == version
        if won:
            version += 1
        loop.after(net(), answered, state, won)

    def answered(state: RetryState, won: bool) -> None:
        nonlocal finished
        if won:
            finished = loop.now
            return
        decision = policy.decide(state, _LOST, loop.now)
        state.attempts += 1
        state.previous_delay = decision.delay
        loop.after(decision.delay + net(), read, state)

    for _ in range(clients):
        loop.at(net(), read, RetryState(0.0))
    loop.run()
    return writes, finished


@dataclass(frozen=True, slots=True)
class JitterPoint:
    """Means over the runs of one strategy at one number of clients."""

    strategy: str
    clients: int
    calls: float
    time: float


@dataclass(frozen=True, slots=True)
class JitterResult:
    """Every strategy at every number of clients."""

    points: tuple[JitterPoint, ...]
    runs: int
    seed: int

    def at(self, strategy: str, clients: int) -> JitterPoint:
        """The point of ``strategy`` with ``clients`` contenders."""
        for point in self.points:
            if point.strategy == strategy and point.clients == clients:
                return point
        raise KeyError((strategy, clients))

    @property
    def clients(self) -> tuple[int, ...]:
        """The numbers of clients simulated, in order."""
        return tuple(sorted({p.clients for p in self.points}))

    @property
    def strategies(self) -> tuple[str, ...]:
        """The strategies simulated, in order."""
        return tuple(dict.fromkeys(p.strategy for p in self.points))

    def table(self) -> tuple[str, list[str], list[list[str]]]:
        """A title, headers and rows for the largest number of clients: work and
        time, each also as a multiple of full jitter's."""
        n = self.clients[-1]
        full = self.at("full jitter", n) if "full jitter" in self.strategies else None
        rows = []
        for strategy in self.strategies:
            p = self.at(strategy, n)
            rows.append([strategy, f"{p.calls:,.0f}",
                         f"{p.calls / full.calls:.2f}x" if full else "-",
                         f"{p.time * 1000:,.0f}",
                         f"{p.time / full.time:.2f}x" if full else "-"])
        title = (f"{n} contending clients, base 5 ms, cap 2 s "
                 f"(means of {self.runs} runs, seed {self.seed})")
        return title, ["backoff", "calls", "vs full", "time (ms)", "vs full"], rows


def run_aws_jitter(clients: Sequence[int] = (10, 25, 50, 100), *, runs: int = 20,
                   seed: int = 0,
                   strategies: Sequence[str] = AWS_STRATEGIES) -> JitterResult:
    """Run the contention of the article for each strategy and number of clients,
    ``runs`` times each; deterministic for a given ``seed``::

        result = run_aws_jitter((10, 50), runs=5)
        result.at("no jitter", 50).calls > result.at("full jitter", 50).calls
    """
    validate.integer("run_aws_jitter", "runs", runs, minimum=1)
    for n in clients:
        validate.integer("run_aws_jitter", "clients", n, minimum=1)
    for strategy in strategies:
        if strategy not in _STRATEGY:
            raise ConfigurationError("run_aws_jitter.strategies", strategy,
                                     f"one of {', '.join(_STRATEGY)}")
    points = []
    for strategy in strategies:
        for n in clients:
            rng = random.Random(f"{seed}:{strategy}:{n}")
            outcomes = [_contend(n, strategy, rng) for _ in range(runs)]
            points.append(JitterPoint(strategy, n,
                                      statistics.fmean(c for c, _ in outcomes),
                                      statistics.fmean(t for _, t in outcomes)))
    return JitterResult(tuple(points), runs, seed)
