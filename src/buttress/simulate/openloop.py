"""Open-loop runs: new calls keep arriving whatever happens to the old ones.

An app serving its own users does not call its dependency less because the
dependency is slow; the users keep coming. :func:`run_open_loop` sends Poisson
arrivals at ``Traffic.rate`` per second (times a spike's multiplier while one
lasts), spread over ``clients`` client processes in turn, each protected by
the same :class:`~buttress.simulate.client.ClientPolicy`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from buttress._core import validate
from buttress._core.breaker_machine import CircuitState
from buttress.simulate.client import Client, ClientPolicy
from buttress.simulate.dependency import Dependency, DependencyModel
from buttress.simulate.engine import EventLoop
from buttress.simulate.timeline import Timeline

__all__ = ["RunResult", "Spike", "Traffic", "run_open_loop"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Spike:
    """Arrivals run at ``multiplier`` times the rate from ``start`` for ``duration`` s."""

    start: float
    duration: float
    multiplier: float

    def __post_init__(self) -> None:
        validate.number("Spike", "start", self.start, minimum=0.0)
        validate.number("Spike", "duration", self.duration, minimum=0.0)
        validate.number("Spike", "multiplier", self.multiplier, minimum=0.0)

    @property
    def end(self) -> float:
        """When the spike is over."""
        return self.start + self.duration


@dataclass(frozen=True, slots=True, kw_only=True)
class Traffic:
    """Poisson arrivals at ``rate`` calls per second, with optional spikes::

        Traffic(rate=70.0, spikes=(Spike(start=60.0, duration=30.0, multiplier=2.0),))
    """

    rate: float
    spikes: tuple[Spike, ...] = ()

    def __post_init__(self) -> None:
        validate.number("Traffic", "rate", self.rate, minimum=0.0, strict_minimum=True)
        for spike in self.spikes:
            validate.optional_instance("Traffic", "spikes", spike, Spike, "a tuple of Spike")

    def rate_at(self, when: float) -> float:
        """The arrival rate at time ``when``."""
        rate = self.rate
        for spike in self.spikes:
            if spike.start <= when < spike.end:
                rate *= spike.multiplier
        return rate

    @property
    def peak(self) -> float:
        """The highest rate the traffic ever reaches."""
        peak = self.rate
        for spike in self.spikes:
            peak = max(peak, self.rate_at(spike.start))
        return peak


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one open-loop run did: its timeline and the dependency's counters."""

    policy: str
    timeline: Timeline
    received: int
    served: int
    refused: int
    events: int

    @property
    def amplification(self) -> float:
        """Attempts that reached the dependency per call the app made."""
        offered = self.timeline.total("offered")
        return self.timeline.total("sent") / offered if offered else 0.0

    @property
    def attempts_per_call(self) -> float:
        """Attempts made per call, those an open breaker turned away included."""
        offered = self.timeline.total("offered")
        made = self.timeline.total("sent") + self.timeline.total("rejected")
        return made / offered if offered else 0.0

    @property
    def success_rate(self) -> float:
        """Share of the calls that succeeded."""
        offered = self.timeline.total("offered")
        return self.timeline.total("succeeded") / offered if offered else 0.0


def run_open_loop(policy: ClientPolicy, model: DependencyModel, traffic: Traffic, *,
                  duration: float, clients: int = 10, seed: int = 0,
                  width: float = 1.0, drain: float = 0.0) -> RunResult:
    """Run ``duration`` virtual seconds of ``traffic`` from ``clients`` clients
    under ``policy`` against a dependency shaped by ``model``.

    Calls arrive for ``duration`` seconds; the run then goes on for ``drain``
    more seconds without new calls, so the last calls' retries are counted too.
    Deterministic: the same arguments give the same result. The arrivals, the
    dependency and the retry jitter draw from separate generators seeded from
    ``seed``, so changing the policy does not change the traffic.
    """
    validate.number("run_open_loop", "duration", duration, minimum=0.0, strict_minimum=True)
    validate.integer("run_open_loop", "clients", clients, minimum=1)
    validate.number("run_open_loop", "drain", drain, minimum=0.0)
    end = duration + drain
    loop = EventLoop()
    timeline = Timeline(end, width)
    dependency = Dependency(model, loop, random.Random(f"{seed}:dependency"))
    jitter = random.Random(f"{seed}:jitter")
    fleet = [Client(policy.with_rng(jitter), loop, dependency, timeline)
             for _ in range(clients)]
    arrivals = random.Random(f"{seed}:arrivals")
    peak = traffic.peak
    turn = 0

    def arrive() -> None:
        # Thinning: candidates at the peak rate, each kept with rate(now) / peak,
        # is an exact Poisson process with a rate that changes over time.
        nonlocal turn
        now = loop.now
        if arrivals.random() * peak < traffic.rate_at(now):
            fleet[turn].call()
            turn = (turn + 1) % clients
        following = now + arrivals.expovariate(peak)
        if following < duration:
            loop.at(following, arrive)

    def sample() -> None:
        now = loop.now
        when = now - width / 2  # the bucket that is ending
        timeline.sample("queue", when, dependency.queued)
        timeline.sample("open", when, sum(
            1 for c in fleet if c.breaker_state is not CircuitState.CLOSED))
        if now + width <= end + 1e-9:
            loop.at(now + width, sample)

    loop.at(arrivals.expovariate(peak), arrive)
    loop.at(width, sample)
    loop.run(end)
    return RunResult(policy.name, timeline, dependency.received, dependency.served,
                     dependency.refused, loop.events)
