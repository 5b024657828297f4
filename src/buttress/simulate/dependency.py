"""A modelled dependency: a server with a fixed number of workers and a queue.

The server runs ``capacity`` requests at once, each for a random service time
(exponential, mean ``service_time``); the rest wait in a first-in first-out
queue of at most ``queue_limit`` requests, and a request arriving at a full
queue is refused at once (a fast 503). So latency grows with concurrency: a
request's latency is its wait in the queue plus its service, and the wait is
the number of requests ahead of it divided by the throughput
``capacity / service_time`` (Little's law).

The server does not know when a client stops waiting: a request whose client
timed out stays in the queue and is served anyway. That wasted work is what
keeps an overloaded server overloaded once clients retry (a *metastable*
failure): the queue is full of requests nobody waits for any more.

Failure modes: a share ``failure_rate`` of served requests fails at random,
and during an *outage* window every request fails fast.

Invariants: the queue never holds more than ``queue_limit`` requests and at
most ``capacity`` requests are in service; every submitted request gets
exactly one answer, through its callback, at or after its submission.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from buttress._core import validate
from buttress.simulate.engine import EventLoop

__all__ = ["Dependency", "DependencyModel", "Outage"]

Answer = Callable[[bool], None]
"""What a request is answered with: ``answer(ok)``, at the time of the answer."""

_O: Final = "DependencyModel"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outage:
    """Every request fails fast from ``start`` for ``duration`` seconds."""

    start: float
    duration: float

    def __post_init__(self) -> None:
        validate.number("Outage", "start", self.start, minimum=0.0)
        validate.number("Outage", "duration", self.duration, minimum=0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class DependencyModel:
    """The dependency's shape; times in seconds.

    ``capacity`` requests in service at once, each for an exponential service
    time of mean ``service_time``; at most ``queue_limit`` waiting; a refusal
    (queue full, or an outage) answers after ``reject_latency``. The throughput
    at saturation is ``capacity / service_time`` requests per second::

        >>> DependencyModel(capacity=10, service_time=0.1).throughput
        100.0
    """

    capacity: int = 10
    service_time: float = 0.1
    queue_limit: int = 2000
    failure_rate: float = 0.0
    reject_latency: float = 0.001
    outages: tuple[Outage, ...] = ()

    def __post_init__(self) -> None:
        validate.integer(_O, "capacity", self.capacity, minimum=1)
        validate.number(_O, "service_time", self.service_time, minimum=0.0, strict_minimum=True)
        validate.integer(_O, "queue_limit", self.queue_limit, minimum=0)
        validate.number(_O, "failure_rate", self.failure_rate, minimum=0.0, maximum=1.0)
        validate.number(_O, "reject_latency", self.reject_latency, minimum=0.0)
        for outage in self.outages:
            validate.optional_instance(_O, "outages", outage, Outage, "a tuple of Outage")

    @property
    def throughput(self) -> float:
        """Requests per second the server completes when saturated."""
        return self.capacity / self.service_time


class Dependency:
    """The running server of a :class:`DependencyModel` on an :class:`EventLoop`.

    ``submit(answer)`` sends a request; ``answer(ok)`` is called once, when the
    response reaches the client. Counters: ``received``, ``served``, ``refused``.
    """

    __slots__ = ("_busy", "_loop", "_queue", "_rng", "model", "received", "refused",
                 "served")

    def __init__(self, model: DependencyModel, loop: EventLoop, rng: random.Random) -> None:
        self.model = model
        self._loop = loop
        self._rng = rng
        self._busy = 0
        self._queue: deque[Answer] = deque()
        self.received = self.served = self.refused = 0

    @property
    def queued(self) -> int:
        """Requests waiting for a worker."""
        return len(self._queue)

    @property
    def in_service(self) -> int:
        """Requests being served."""
        return self._busy

    def in_outage(self, now: float) -> bool:
        """Whether an outage window covers ``now``."""
        return any(o.start <= now < o.start + o.duration for o in self.model.outages)

    def submit(self, answer: Answer) -> None:
        """Receive a request: serve it, queue it, or refuse it."""
        self.received += 1
        loop, model = self._loop, self.model
        if model.outages and self.in_outage(loop.now):
            self._refuse(answer)
        elif self._busy < model.capacity:
            self._start(answer)
        elif len(self._queue) < model.queue_limit:
            self._queue.append(answer)
        else:
            self._refuse(answer)

    def _refuse(self, answer: Answer) -> None:
        self.refused += 1
        self._loop.after(self.model.reject_latency, answer, False)

    def _start(self, answer: Answer) -> None:
        self._busy += 1
        self._loop.after(self._rng.expovariate(1.0 / self.model.service_time),
                         self._finish, answer)

    def _finish(self, answer: Answer) -> None:
        self._busy -= 1
        self.served += 1
        rate = self.model.failure_rate
        answer(not (rate and self._rng.random() < rate))
        if self._queue:
            self._start(self._queue.popleft())
