"""Client-side adaptive throttling (Google SRE book, "Handling Overload").

A client counts, over a sliding window, the ``requests`` it tried and the
``accepts`` the dependency answered (any answer but an overload rejection).
While the dependency accepts everything, nothing happens. When it starts
rejecting, the client refuses calls locally, before sending them, with
probability::

    max(0, (requests - K * accepts) / (requests + 1))

so the dependency keeps receiving about ``K`` times what it can accept, and
the client stops spending work on requests that would be rejected anyway.
``K = 2`` (the book's default) lets twice the accepted load through; a lower
``K`` throttles harder. Refused calls count as requests, so the probability
falls again as soon as the dependency accepts more.

Invariants:

* The policy (:class:`ThrottlePolicy`) decides from plain numbers: the time
  and a random draw are passed in; the strategy reads its clock and its seeded
  random source (``random.Random(seed)``), so a run is reproducible.
* Memory is fixed: a ring of ``slots`` buckets over ``window`` seconds.
* One lock guards the counts, never the call.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from buttress._core import forksafe, validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import ConfigurationError, ThrottledError
from buttress._core.events import GLOBAL, CallRejected, Listeners, deliver
from buttress._core.strategy import Strategy
from buttress._core.window import Window

__all__ = ["AdaptiveThrottle", "AdaptiveThrottleConfig", "ThrottlePolicy", "ThrottledError"]

_REQUESTS, _ACCEPTS = 0, 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveThrottleConfig:
    """``k``: how many times the accepted load may still be sent (2.0, the SRE
    book's default; >= 1). ``window``: seconds of history (120, the book's two
    minutes), cut into ``slots`` buckets. ``rejected_on``: the exceptions that
    mean the dependency refused the request (overloaded, 429, 503...); any
    other outcome counts as accepted. The default, ``Exception``, treats every
    failure as a refusal. ``seed`` seeds the random source (None: unseeded).

    .. versionadded:: 0.3
    """

    k: float = 2.0
    window: float = 120.0
    slots: int = 60
    rejected_on: tuple[type[Exception], ...] = (Exception,)
    seed: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        o = "AdaptiveThrottleConfig"
        validate.number(o, "k", self.k, minimum=1.0)
        validate.number(o, "window", self.window, minimum=0.0, strict_minimum=True)
        validate.integer(o, "slots", self.slots, minimum=1)
        if self.slots > 3600:
            raise ConfigurationError(f"{o}.slots", self.slots, "<= 3600")
        object.__setattr__(self, "rejected_on",
                           validate.exception_types(o, "rejected_on", self.rejected_on))
        if self.seed is not None:
            validate.integer(o, "seed", self.seed, minimum=0)
        if self.name is not None:
            validate.text(o, "name", self.name)


class ThrottlePolicy:
    """The sans-IO machine: counts and the rejection probability. Not locked:
    :class:`AdaptiveThrottle` calls it under its lock.

    >>> policy = ThrottlePolicy(AdaptiveThrottleConfig(k=2), now=0.0)
    >>> for _ in range(10):
    ...     policy.record(now=0.0, accepted=False)
    >>> policy.probability(now=0.0)     # (10 - 2 * 0) / (10 + 1)
    0.9090909090909091
    """

    __slots__ = ("config", "window")

    def __init__(self, config: AdaptiveThrottleConfig, now: float) -> None:
        self.config = config
        self.window = Window(config.window, config.slots, 2, now)

    def counts(self, now: float) -> tuple[float, float]:
        """(requests, accepts) in the window at ``now``."""
        self.window.advance(now)
        return self.window.total(_REQUESTS), self.window.total(_ACCEPTS)

    def probability(self, now: float) -> float:
        """The chance that a call made at ``now`` is refused locally."""
        requests, accepts = self.counts(now)
        return max(0.0, (requests - self.config.k * accepts) / (requests + 1.0))

    def admit(self, now: float, draw: Callable[[], float]) -> float | None:
        """Decide a call made at ``now``, drawing a uniform number in [0, 1) with
        ``draw`` only when the probability is above zero: None to send it, else
        the probability it was refused with (the refusal counts as a request)."""
        p = self.probability(now)
        if p > 0.0 and draw() < p:
            index, _ = self.window.advance(now)
            self.window.add(_REQUESTS, index)
            return p
        return None

    def record(self, now: float, accepted: bool) -> None:
        """A sent request ended: accepted by the dependency or refused by it."""
        index, _ = self.window.advance(now)
        self.window.add(_REQUESTS, index)
        if accepted:
            self.window.add(_ACCEPTS, index)


class AdaptiveThrottle(Strategy):
    """Adaptive throttling as a strategy: a decorator, a pipeline stage (inside
    retry, so each attempt counts), or ``throttle.call``::

        throttle = AdaptiveThrottle(k=2.0, rejected_on=(OverloadedError,), name="search")

        @throttle
        def search(q: str) -> list[str]: ...

    A refused call raises :class:`~buttress.ThrottledError` (a rejection: the
    dependency was not called) and reports :class:`~buttress.events.CallRejected`
    with state ``"throttled"``.

    .. versionadded:: 0.3
    """

    __slots__ = ("__weakref__", "_lock", "_policy", "_random", "clock", "config", "events",
                 "name")

    order = 25

    def __init__(self, config: AdaptiveThrottleConfig | None = None, *,
                 clock: Clock | None = None, random_source: random.Random | None = None,
                 **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass an AdaptiveThrottleConfig or keyword options, not both")
        if config is not None and not isinstance(config, AdaptiveThrottleConfig):
            raise TypeError(f"AdaptiveThrottle config must be an AdaptiveThrottleConfig, "
                            f"got {config!r}")
        self.config = AdaptiveThrottleConfig(**options) if config is None else config
        self.name = self.config.name
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._random = (random.Random(self.config.seed) if random_source is None
                        else random_source)
        self._lock = forksafe.lock()
        self._policy = ThrottlePolicy(self.config, self.clock.monotonic())
        #: This throttle's listener hub.
        self.events = Listeners(GLOBAL)

    def _given_name(self) -> str | None:
        return self.name

    @property
    def probability(self) -> float:
        """The chance that a call made now is refused locally."""
        with self._lock:
            return self._policy.probability(self.clock.monotonic())

    def counts(self) -> tuple[float, float]:
        """(requests, accepts) counted in the window now."""
        with self._lock:
            return self._policy.counts(self.clock.monotonic())

    def admit(self) -> None:
        """Refuse a call now (raise :class:`ThrottledError`) or let it go; a
        caller that lets it go reports the outcome with :meth:`record`."""
        with self._lock:
            now = self.clock.monotonic()
            refused = self._policy.admit(now, self._random.random)
            if refused is None:
                return
            requests, accepts = self._policy.counts(now)
        targets = self.events.of(CallRejected)
        if targets:
            deliver(targets, CallRejected("adaptive_throttle", self.name, "throttled", 0.0))
        raise ThrottledError(self.name, refused, requests, accepts)

    def record(self, accepted: bool) -> None:
        """Report how a call let through by :meth:`admit` ended."""
        with self._lock:
            self._policy.record(self.clock.monotonic(), accepted)

    def _accepted(self, exc: BaseException) -> bool | None:
        """Whether a call that raised ``exc`` was accepted (None: cancelled, not
        counted)."""
        if not isinstance(exc, Exception):
            return None
        return not isinstance(exc, self.config.rejected_on)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def throttled(*args: Any, **kwargs: Any) -> Any:
            self.admit()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                accepted = self._accepted(exc)
                if accepted is not None:
                    self.record(accepted)
                raise
            self.record(True)
            return result

        return throttled

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def throttled(*args: Any, **kwargs: Any) -> Any:
            self.admit()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                accepted = self._accepted(exc)
                if accepted is not None:
                    self.record(accepted)
                raise
            self.record(True)
            return result

        return throttled

    def __repr__(self) -> str:
        c = self.config
        return f"AdaptiveThrottle(name={c.name!r}, k={c.k:g}, window={c.window:g})"
