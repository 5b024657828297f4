"""The logic of ``buttress demo``: a flaky dependency, called bare and through buttress.

Standard library and buttress only, so it runs and is tested without the CLI
extras; :mod:`buttress.cli.display` draws it with rich.

The demo starts a :class:`~buttress.flaky_server.FlakyServer` on loopback and
runs two *phases* against it with the same traffic: ``requests`` calls of
``GET /data`` at ``rate`` calls per second, a hard outage of ``outage`` seconds
starting a third of the way in. Traffic follows a fixed schedule (an app
serving its own users does not send faster because its dependency fails fast),
so both phases see the outage for the same share of their calls::

    summary = run_demo(DemoConfig.quick())
    assert summary.protected.success_rate > summary.bare.success_rate
"""

from __future__ import annotations

import dataclasses
import http.client
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final
from urllib.parse import urlsplit

from buttress._core import validate
from buttress._core.errors import CircuitBreakerError
from buttress.backoff import RetryStrategy
from buttress.breaker import CircuitBreaker, CircuitState
from buttress.fallback import Fallback
from buttress.flaky_server import FlakyServer
from buttress.pipeline import Pipeline, pipeline
from buttress.retry import RetryConfig, is_transient

__all__ = [
    "BARE",
    "PROTECTED",
    "DemoConfig",
    "DemoObserver",
    "DemoSummary",
    "DependencyError",
    "Outcome",
    "PhaseResult",
    "PhaseTally",
    "Transition",
    "build_config",
    "demo_breaker",
    "demo_pipeline",
    "percentile",
    "run_demo",
]

BARE: Final = "bare"
PROTECTED: Final = "buttress"

# The policy the demo shows off. Three attempts turn a 30% failure rate into
# about 3%; a breaker that trips after two fully failed calls (3 attempts each)
# hardly ever trips on chance alone (0.3**6 per call), but trips at once in an outage.
MAX_ATTEMPTS: Final = 3
FAILURE_THRESHOLD: Final = 2 * MAX_ATTEMPTS
BASE_DELAY: Final = 0.02
MAX_DELAY: Final = 0.2
PATH: Final = "/data"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """One demo run: the traffic, the dependency's faults, the breaker's patience.

    ``requests`` calls per phase at ``rate`` per second; the server fails
    ``failure_rate`` of them with 503 after ``latency`` seconds, and fails all of
    them for ``outage`` seconds starting a third of the way into each phase.
    ``recovery_timeout`` is how long the breaker stays open before probing.
    The defaults take about 15 seconds; :meth:`quick` about 4::

        config = DemoConfig(requests=200, failure_rate=0.5, seed=3)
    """

    requests: int = 300
    failure_rate: float = 0.3
    seed: int = 7
    rate: float = 50.0
    latency: float = 0.01
    outage: float = 1.5
    recovery_timeout: float = 0.3

    def __post_init__(self) -> None:
        o = "DemoConfig"
        validate.integer(o, "requests", self.requests, minimum=1)
        validate.number(o, "failure_rate", self.failure_rate, minimum=0.0, maximum=1.0)
        validate.integer(o, "seed", self.seed, minimum=0)
        validate.number(o, "rate", self.rate, minimum=0.0, strict_minimum=True)
        validate.number(o, "latency", self.latency, minimum=0.0)
        validate.number(o, "outage", self.outage, minimum=0.0)
        validate.number(o, "recovery_timeout", self.recovery_timeout, minimum=0.0)

    @classmethod
    def quick(cls) -> DemoConfig:
        """A small run of about four seconds with the same story (for tests and CI)."""
        return cls(requests=90, rate=60.0, outage=0.5, recovery_timeout=0.08)

    @property
    def outage_at(self) -> int:
        """Index of the request that starts the outage (a third of the way in)."""
        return self.requests // 3


def build_config(
    *,
    quick: bool = False,
    requests: int | None = None,
    failure_rate: float | None = None,
    seed: int | None = None,
) -> DemoConfig:
    """The default (or ``quick``) config with the options that were given::

        build_config(quick=True, seed=3) == dataclasses.replace(DemoConfig.quick(), seed=3)
    """
    base = DemoConfig.quick() if quick else DemoConfig()
    given: dict[str, Any] = {"requests": requests, "failure_rate": failure_rate, "seed": seed}
    return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})


class Outcome(Enum):
    """How one call of the app ended."""

    OK = "ok"
    FALLBACK = "fallback"
    FAILED = "failed"


class DependencyError(Exception):
    """The dependency answered with an error status (``status`` makes it transient
    for :func:`buttress.is_transient` when it is 5xx, 408, 425 or 429)."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"dependency answered HTTP {status}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle calls the class with ``args`` (the message) by default.
        return type(self), (self.status,), self.__dict__


@dataclass(frozen=True, slots=True)
class Transition:
    """The breaker moved from ``old`` to ``new``, ``at`` seconds into the phase."""

    at: float
    old: CircuitState
    new: CircuitState


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-quantile (0 < q <= 1) of ``values``; 0.0 when empty::

        percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class PhaseTally:
    """Running counts of one phase; the observer sees it after every call."""

    __slots__ = ("breaker_state", "done", "failed", "fell_back", "finished", "latencies",
                 "outage_start", "phase", "started_at", "succeeded", "total", "transitions")

    def __init__(self, phase: str, total: int, breaker: CircuitBreaker | None) -> None:
        self.phase = phase
        self.total = total
        self.done = self.succeeded = self.fell_back = self.failed = 0
        self.latencies: list[float] = []
        # (seconds into the phase, outcome) of every finished call, for --plot.
        self.finished: list[tuple[float, Outcome]] = []
        self.outage_start: float | None = None  # seconds into the phase
        self.transitions: list[Transition] = []
        self.breaker_state = None if breaker is None else breaker.state
        self.started_at = 0.0

    def start(self) -> float:
        """Mark the phase's first call as about to go out; return the time."""
        self.started_at = time.monotonic()
        return self.started_at

    def record(self, outcome: Outcome, latency: float) -> None:
        """Count one finished call."""
        self.done += 1
        self.latencies.append(latency)
        self.finished.append((time.monotonic() - self.started_at, outcome))
        if outcome is Outcome.OK:
            self.succeeded += 1
        elif outcome is Outcome.FALLBACK:
            self.fell_back += 1
        else:
            self.failed += 1

    def on_transition(self, breaker: CircuitBreaker, old: CircuitState,
                      new: CircuitState) -> None:
        """Breaker listener: remember the transition and the state."""
        self.breaker_state = new
        self.transitions.append(Transition(time.monotonic() - self.started_at, old, new))


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """What one phase achieved.

    ``requests`` calls the app made, each ending ``succeeded`` (real data),
    ``fell_back`` (answered by the fallback) or ``failed`` (an error the app
    sees). ``attempts`` counts every try at the dependency, retries included:
    ``sent`` of them went out on the wire, ``rejected`` the breaker turned away
    without sending. ``server_hits`` is the server's own count of what arrived.
    Latencies (seconds) are per app call, retries and backoff waits included.
    ``timeline`` holds every call's end (seconds into the phase) and outcome,
    in order, and ``outage_start`` when the outage began (what ``buttress demo
    --plot`` draws).
    """

    phase: str
    requests: int
    succeeded: int
    fell_back: int
    failed: int
    attempts: int
    server_hits: int
    rejected: int
    p50: float
    p99: float
    wall_time: float
    transitions: tuple[Transition, ...]
    timeline: tuple[tuple[float, Outcome], ...] = ()
    outage_start: float | None = None

    @property
    def success_rate(self) -> float:
        """Share of the app's calls answered with real data (fallbacks do not count)."""
        return self.succeeded / self.requests

    @property
    def sent(self) -> int:
        """Attempts that went out to the server (the breaker let them through)."""
        return self.attempts - self.rejected

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values: counts, ``success_rate`` (0..1),
        latencies and wall time in seconds, the breaker's transitions."""
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "fell_back": self.fell_back,
            "failed": self.failed,
            "success_rate": self.success_rate,
            "attempts": self.attempts,
            "sent": self.sent,
            "rejected_by_breaker": self.rejected,
            "server_hits": self.server_hits,
            "latency_p50_seconds": self.p50,
            "latency_p99_seconds": self.p99,
            "wall_time_seconds": self.wall_time,
            "breaker_transitions": [
                {"at_seconds": t.at, "from": t.old.value, "to": t.new.value}
                for t in self.transitions
            ],
        }


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Both phases side by side, and where the (now stopped) server listened."""

    config: DemoConfig
    server_url: str
    bare: PhaseResult
    protected: PhaseResult

    @property
    def server_port(self) -> int:
        """The port the server listened on."""
        return int(urlsplit(self.server_url).port or 0)

    def as_dict(self) -> dict[str, Any]:
        """The whole run as JSON-ready values (what ``buttress demo --json`` prints)::

            json.dumps(run_demo(DemoConfig.quick()).as_dict())
        """
        return {
            "config": dataclasses.asdict(self.config),
            "server_url": self.server_url,
            "phases": {result.phase: result.as_dict() for result in (self.bare, self.protected)},
        }


class DemoObserver:
    """Told what the demo is doing as it goes; silent by default. Subclass it to
    show progress (:class:`buttress.cli.display.LiveProgress` does)."""

    def server_started(self, url: str, config: DemoConfig) -> None:
        """The flaky server listens at ``url``."""

    def phase_started(self, tally: PhaseTally) -> None:
        """A phase is about to send its first call."""

    def call_finished(self, tally: PhaseTally) -> None:
        """One more call of the phase has finished (``tally.done`` of ``tally.total``)."""


class _Client:
    """A plain HTTP client for one phase; counts the calls it sends.

    Each call opens its own connection: :class:`FlakyServer` writes headers and
    body as two segments without ``TCP_NODELAY``, so on a kept-alive connection
    Nagle's algorithm and delayed ACKs would add 40 ms to every call. On
    loopback a fresh connection costs a fraction of a millisecond.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.calls = 0

    def fetch(self) -> Outcome:
        """``GET /data``; raise :class:`DependencyError` for an error status."""
        self.calls += 1
        connection = http.client.HTTPConnection(self.host, self.port, timeout=5.0)
        try:
            connection.request("GET", PATH, headers={"Connection": "close"})
            status = connection.getresponse().status
        finally:
            connection.close()
        if status >= 400:
            raise DependencyError(status)
        return Outcome.OK


def demo_pipeline(config: DemoConfig, breaker: CircuitBreaker) -> Pipeline:
    """The protection under test: jittered exponential retries of transient
    failures, around ``breaker``, with a fallback answering the calls it rejects."""
    return pipeline(
        retry=RetryConfig(
            max_attempts=MAX_ATTEMPTS,
            base_delay=BASE_DELAY,
            max_delay=MAX_DELAY,
            strategy=RetryStrategy.JITTERED_EXPONENTIAL,
            jitter=0.5,
            retry_condition=is_transient,
            rng=random.Random(config.seed),
        ),
        circuit_breaker=breaker,
        fallback=Fallback(Outcome.FALLBACK, exceptions=(CircuitBreakerError,)),
    )


def demo_breaker(config: DemoConfig) -> CircuitBreaker:
    """A breaker that trips after :data:`FAILURE_THRESHOLD` consecutive failures
    and probes again after ``config.recovery_timeout`` seconds.

    One good probe closes it: with a third of all calls failing at random anyway,
    waiting for several good probes in a row would keep it open long after an
    outage ends."""
    return CircuitBreaker(
        "demo-dependency",
        failure_threshold=FAILURE_THRESHOLD,
        recovery_timeout=config.recovery_timeout,
        success_threshold=1,
        half_open_max_calls=1,
    )


def _timed_call(call: Callable[[], Outcome]) -> tuple[Outcome, float]:
    start = time.perf_counter()
    try:
        outcome = call()
    except Exception:
        # What the app would see: an error it has to handle itself.
        outcome = Outcome.FAILED
    return outcome, time.perf_counter() - start


def _sleep_until(deadline: float) -> float:
    """Sleep until ``deadline`` (monotonic); return the time it is now."""
    delay = deadline - time.monotonic()
    if delay > 0.0:
        time.sleep(delay)
    return time.monotonic()


def _send_traffic(call: Callable[[], Outcome], tally: PhaseTally, config: DemoConfig,
                  server: FlakyServer, observer: DemoObserver) -> float:
    """Send the phase's calls ``1 / rate`` seconds apart, starting the outage on cue;
    return the wall time.

    A call that overruns its slot delays the next one instead of causing a burst:
    calls rejected in a microsecond must not rush through the rest of the traffic.
    An outage that outlasts the calls is waited out (off the clock), so it can not
    spill into the next phase.
    """
    observer.phase_started(tally)
    start = next_call = outage_over = tally.start()
    for index in range(config.requests):
        next_call = _sleep_until(next_call) + 1.0 / config.rate
        if index == config.outage_at and config.outage > 0.0:
            server.outage(config.outage)
            outage_over = time.monotonic() + config.outage
            tally.outage_start = outage_over - config.outage - start
        tally.record(*_timed_call(call))
        observer.call_finished(tally)
    wall_time = time.monotonic() - start
    _sleep_until(outage_over)
    return wall_time


def _run_phase(phase: str, config: DemoConfig, server: FlakyServer, observer: DemoObserver,
               breaker: CircuitBreaker | None) -> PhaseResult:
    """One phase: bare when ``breaker`` is None, else through :func:`demo_pipeline`."""
    tally = PhaseTally(phase, config.requests, breaker)
    hits_before = server.hits
    client = _Client(server.host, server.port)
    call: Callable[[], Outcome] = client.fetch
    if breaker is not None:
        breaker.add_listener(tally.on_transition)
        call = demo_pipeline(config, breaker)(client.fetch)
    wall_time = _send_traffic(call, tally, config, server, observer)
    rejected = 0 if breaker is None else breaker.stats.rejected_calls
    return PhaseResult(
        phase=phase,
        requests=tally.done,
        succeeded=tally.succeeded,
        fell_back=tally.fell_back,
        failed=tally.failed,
        attempts=client.calls + rejected,
        server_hits=server.hits - hits_before,
        rejected=rejected,
        p50=percentile(tally.latencies, 0.50),
        p99=percentile(tally.latencies, 0.99),
        wall_time=wall_time,
        transitions=tuple(tally.transitions),
        timeline=tuple(tally.finished),
        outage_start=tally.outage_start,
    )


def run_demo(config: DemoConfig, observer: DemoObserver | None = None) -> DemoSummary:
    """Start a flaky server, run the bare phase then the buttress phase against it,
    stop the server, and return both results::

        summary = run_demo(DemoConfig.quick())
        print(f"{summary.bare.success_rate:.0%} -> {summary.protected.success_rate:.0%}")
    """
    observer = DemoObserver() if observer is None else observer
    server = FlakyServer(failure_rate=config.failure_rate, latency=config.latency,
                         seed=config.seed).start()
    try:
        observer.server_started(server.url, config)
        bare = _run_phase(BARE, config, server, observer, None)
        protected = _run_phase(PROTECTED, config, server, observer, demo_breaker(config))
        return DemoSummary(config, server.url, bare, protected)
    finally:
        server.stop()
