"""Delay schedules for retries.

Attempts are numbered from 1; ``delay_for(n)`` is the wait after the n-th failed
attempt. All strategies are capped at ``max_delay``. Jitter is a factor ``j`` in
0..1 that randomises the *lower* part of the delay: the wait is drawn from
``[d * (1 - j), d]``, so jitter never makes a wait longer than the schedule
(``j = 1`` is AWS "full jitter", ``j = 0.5`` "equal jitter").

Every delay is finite and between 0 and ``min(max_delay, DELAY_CEILING)``, for
any attempt number: ``max_delay=float("inf")`` means "no cap of my own", not an
infinite (or, once jittered, NaN) wait.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Final

from buttress._core import validate
from buttress._core.errors import ConfigurationError

__all__ = [
    "DELAY_CEILING", "ExponentialBackoff", "RetryStrategy", "Schedule", "compute_delay", "schedule",
]

_DEFAULT_JITTER = 0.5

DELAY_CEILING: Final = threading.TIMEOUT_MAX / 2
"""The longest delay ever computed, in seconds (about 146 years on Linux, 24 days
on Windows). ``threading.TIMEOUT_MAX`` is the longest wait a thread can ask for;
half of it leaves room for the clock's own reading in ``now + delay``, which
``time.sleep`` refuses past that range."""


class RetryStrategy(StrEnum):
    """How the delay grows between attempts.

    The seed spellings are aliases: ``EXPONENTIAL`` is ``EXPONENTIAL_BACKOFF``,
    ``LINEAR`` is ``LINEAR_BACKOFF``, ``CONSTANT`` is ``FIXED_DELAY``. Lookup by
    value also accepts ``"exponential"``, ``"linear"``, ``"constant"``, ``"fixed"``.
    """

    EXPONENTIAL_BACKOFF = "exponential_backoff"
    LINEAR_BACKOFF = "linear_backoff"
    FIXED_DELAY = "fixed_delay"
    JITTERED_EXPONENTIAL = "jittered_exponential"
    FULL_JITTER = "full_jitter"
    EQUAL_JITTER = "equal_jitter"
    DECORRELATED_JITTER = "decorrelated_jitter"
    EXPONENTIAL = "exponential_backoff"
    LINEAR = "linear_backoff"
    CONSTANT = "fixed_delay"

    @classmethod
    def _missing_(cls, value: object) -> RetryStrategy | None:
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            alias = {"exponential": "exponential_backoff", "linear": "linear_backoff",
                     "constant": "fixed_delay", "fixed": "fixed_delay"}.get(key, key)
            for member in cls:
                if member.value == alias:
                    return member
        return None


def compute_delay(
    strategy: RetryStrategy,
    attempt: int,
    *,
    base_delay: float,
    max_delay: float,
    exponential_base: float,
    jitter: float,
    previous: float,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed attempt number ``attempt`` (1-based).

    ``previous`` is the previous wait (decorrelated jitter needs it; pass 0.0
    for the first). Pure apart from the random draw, which ``rng`` controls.
    The result is finite and in ``[0, min(max_delay, DELAY_CEILING)]`` for any
    ``attempt``.
    """
    uniform = (rng or random).uniform
    # Clamped before any jitter: an infinite delay jittered is inf - inf = NaN.
    cap = max_delay if max_delay < DELAY_CEILING else DELAY_CEILING
    s = strategy
    if s is RetryStrategy.FIXED_DELAY:
        raw = base_delay
    elif s is RetryStrategy.LINEAR_BACKOFF:
        raw = base_delay * attempt
    elif s is RetryStrategy.DECORRELATED_JITTER:
        # AWS "decorrelated jitter": sleep = min(cap, uniform(base, prev * 3)).
        base = min(base_delay, cap)
        upper = max(base, min(previous, cap) * 3.0)
        return min(cap, uniform(base, upper))
    else:
        try:
            raw = base_delay * exponential_base ** (attempt - 1)
        except OverflowError:
            # Past the float range the schedule is far beyond any cap, unless it
            # is a zero-delay schedule, which must stay zero.
            raw = cap if base_delay > 0.0 else 0.0
        if s is RetryStrategy.FULL_JITTER:
            jitter = 1.0
        elif s is RetryStrategy.EQUAL_JITTER:
            jitter = 0.5
        elif s is RetryStrategy.JITTERED_EXPONENTIAL and jitter == 0.0:
            jitter = _DEFAULT_JITTER
    delay = raw if raw < cap else cap
    if jitter and delay > 0.0:
        delay -= delay * jitter * uniform(0.0, 1.0)
    return delay


Schedule = Callable[[int, float], float]
"""``schedule(attempt, previous)``: the wait after failed attempt ``attempt``
(1-based) given the previous wait, in seconds."""


def schedule(
    strategy: RetryStrategy,
    *,
    base_delay: float,
    max_delay: float,
    exponential_base: float,
    jitter: float,
    rng: random.Random | None = None,
) -> Schedule:
    """:func:`compute_delay` with everything but the attempt bound once: the
    strategy is chosen here, not per delay, and a schedule that can not be
    jittered (no jitter, or a zero base delay) draws no random number. Its
    delays, and its draws from ``rng``, are exactly :func:`compute_delay`'s::

        >>> wait = schedule(RetryStrategy.EXPONENTIAL_BACKOFF, base_delay=0.5,
        ...                 max_delay=3.0, exponential_base=2.0, jitter=0.0)
        >>> [wait(n, 0.0) for n in (1, 2, 3, 4)]
        [0.5, 1.0, 2.0, 3.0]

    .. versionadded:: 0.2
    """
    cap = max_delay if max_delay < DELAY_CEILING else DELAY_CEILING
    base, growth = base_delay, exponential_base
    s = strategy
    plain = (RetryStrategy.FIXED_DELAY, RetryStrategy.LINEAR_BACKOFF,
             RetryStrategy.EXPONENTIAL_BACKOFF)
    if s is not RetryStrategy.DECORRELATED_JITTER and (base == 0.0 or (not jitter and s in plain)):
        if base == 0.0 or s is RetryStrategy.FIXED_DELAY:
            # A zero base delay stays zero under every strategy but decorrelated
            # jitter, which draws from [base, 3 * previous] whatever the base.
            constant = min(base, cap)

            def fixed(attempt: int, previous: float) -> float:
                return constant

            return fixed
        if s is RetryStrategy.LINEAR_BACKOFF:

            def linear(attempt: int, previous: float) -> float:
                raw = base * attempt
                return raw if raw < cap else cap

            return linear

        def exponential(attempt: int, previous: float) -> float:
            try:
                raw = base * growth ** (attempt - 1)
            except OverflowError:
                return cap  # past the float range (the base is not zero here)
            return raw if raw < cap else cap

        return exponential

    def jittered(attempt: int, previous: float) -> float:
        return compute_delay(s, attempt, base_delay=base, max_delay=max_delay,
                             exponential_base=growth, jitter=jitter, previous=previous,
                             rng=rng)

    return jittered


def normalise_jitter(owner: str, value: object) -> float:
    """``True`` means the default factor (0.5), ``False`` means none."""
    if value is True:
        return _DEFAULT_JITTER
    if value is False or value is None:
        return 0.0
    return validate.number(owner, "jitter", value, minimum=0.0, maximum=1.0)


def normalise_strategy(owner: str, value: Any) -> RetryStrategy:
    """Accept a :class:`RetryStrategy` or its (alias) name; name the bad value otherwise."""
    if isinstance(value, RetryStrategy):
        return value
    if isinstance(value, str):
        try:
            return RetryStrategy(value)
        except ValueError:
            pass
        known = ", ".join(sorted({m.value for m in RetryStrategy}))
        raise ConfigurationError(
            f"{owner}.strategy must be one of {known}, got {value!r}"
        )
    raise TypeError(f"{owner}.strategy must be a RetryStrategy or str, got {value!r}")


class ExponentialBackoff:
    """An exponential schedule for hand-written retry loops.

    ``next_delay(attempt)`` takes a 0-based attempt counter, as a ``for attempt in
    range(n)`` loop produces::

        backoff = ExponentialBackoff(initial_delay=0.5, max_delay=60.0, multiplier=2.0)
        backoff.next_delay(0)  # 0.5
        backoff.next_delay(3)  # 4.0
    """

    __slots__ = ("_rng", "initial_delay", "jitter", "max_delay", "multiplier")

    def __init__(
        self,
        initial_delay: float = 0.1,
        max_delay: float = 60.0,
        multiplier: float = 2.0,
        jitter: bool | float = False,
        *,
        base_delay: float | None = None,
        exponential_base: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        owner = "ExponentialBackoff"
        if base_delay is not None:
            initial_delay = base_delay
        if exponential_base is not None:
            multiplier = exponential_base
        self.initial_delay = validate.number(owner, "initial_delay", initial_delay, minimum=0.0)
        self.max_delay = validate.number(owner, "max_delay", max_delay, minimum=0.0,
                                     allow_inf=True)
        self.multiplier = validate.number(owner, "multiplier", multiplier, minimum=1.0)
        if self.max_delay < self.initial_delay:
            raise ConfigurationError(
                f"{owner}.max_delay must be >= initial_delay ({self.initial_delay:g}), "
                f"got {max_delay!r}"
            )
        self.jitter = normalise_jitter(owner, jitter)
        if rng is not None and not isinstance(rng, random.Random):
            raise TypeError(f"{owner}.rng must be a random.Random or None, got {rng!r}")
        self._rng = rng

    def next_delay(self, attempt: int) -> float:
        """Seconds to wait after the failure of 0-based attempt ``attempt``."""
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
            raise ValueError(f"ExponentialBackoff.next_delay attempt must be an int >= 0, "
                             f"got {attempt!r}")
        return compute_delay(
            RetryStrategy.EXPONENTIAL_BACKOFF,
            attempt + 1,
            base_delay=self.initial_delay,
            max_delay=self.max_delay,
            exponential_base=self.multiplier,
            jitter=self.jitter,
            previous=0.0,
            rng=self._rng,
        )

    def __repr__(self) -> str:
        return (f"ExponentialBackoff(initial_delay={self.initial_delay}, "
                f"max_delay={self.max_delay}, multiplier={self.multiplier}, "
                f"jitter={self.jitter})")
