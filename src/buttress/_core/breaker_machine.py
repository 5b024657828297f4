"""The circuit breaker's decisions, as a pure state machine (closed → open →
half-open → closed).

:class:`BreakerMachine` never reads a clock, takes a lock, calls user code,
logs or emits events: every method takes the time (``now``, seconds on the
breaker's monotonic clock) as a plain number, and every method that can change
the state returns the :class:`Transition` it made (or ``None``) so that the
runner reports it, outside any lock. It is not thread-safe by itself; a store
(:mod:`buttress._core.breaker_store`) serialises the calls that change it.

Admission answers with an *epoch*: the number of state changes so far, which
the call hands back with its outcome. An outcome whose epoch is no longer
current (the breaker moved on while the call ran) reaches the statistics only,
never the state. Negative answers are not epochs:

* ``REJECT``: turn the call away;
* ``DECIDE`` (from :meth:`BreakerMachine.peek` only): the answer needs a state
  change, ask :meth:`BreakerMachine.admit` under the store's lock;
* ``OBSERVED``: observe mode lets through a call the breaker would have
  rejected; its outcome reaches the statistics only;
* ``DISABLED``: disabled mode; the outcome is not recorded at all.

Invariants:

* Open ends at one instant, ``reopen_at`` (``opened_at`` plus the break
  duration, infinite while held open), and every reader compares
  ``now < reopen_at``: state, remaining time and admission agree at every
  instant.
* The break duration is ``recovery_timeout`` on the first trip and grows by
  ``recovery_timeout_multiplier`` on each further trip without closing in
  between, up to ``max_recovery_timeout``; closing starts it afresh.
* The outcome window is kept when the breaker trips (so an open breaker reports
  the failure rate that tripped it) and started afresh when probing begins and
  when the breaker closes.
* A half-open probe holds its permit for at most ``recovery_timeout`` without
  news: once no probe has been admitted or has finished for that long and the
  permits are all taken, they are given back (the late probes' outcomes then
  only reach the statistics) and new probes are admitted, so a probe that
  never returns can not keep the breaker from recovering.
* ``ticket`` is the epoch while the breaker is closed, enabled, and a success
  would change nothing (no failure streak, no window, no slow-call rule);
  otherwise it is ``-1``. ``open_until`` is ``reopen_at`` while the breaker is
  open and enforcing, ``-inf`` otherwise. These two (and ``tripped_by``) are
  the fields a runner may read without a lock: one attribute read decides the
  closed success path, one comparison ``now < open_until`` the open rejection.
"""

from __future__ import annotations

import math
from collections import deque
from enum import StrEnum
from typing import Final, NamedTuple, Protocol

__all__ = [
    "DECIDE",
    "DISABLED",
    "OBSERVED",
    "REJECT",
    "BreakerMachine",
    "BreakerRules",
    "CircuitState",
    "Transition",
    "break_duration",
]

REJECT: Final = -1
DECIDE: Final = -2
OBSERVED: Final = -3
DISABLED: Final = -4

MODES: Final = ("enforce", "observe", "disabled")


class CircuitState(StrEnum):
    """The three states; the value is lower-case (``CircuitState.OPEN.value == "open"``)
    and ``gauge_value`` is the Prometheus encoding 0/1/2."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    @property
    def gauge_value(self) -> int:
        """0 for closed, 1 for open, 2 for half-open."""
        return _GAUGE[self]


_GAUGE: Final = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}
_CLOSED: Final = CircuitState.CLOSED
_OPEN: Final = CircuitState.OPEN
_HALF_OPEN: Final = CircuitState.HALF_OPEN


class BreakerRules(Protocol):
    """The settings the machine decides by (``CircuitBreakerConfig`` has them all;
    a Protocol here keeps the machine free of imports from the runner)."""

    @property
    def failure_threshold(self) -> int | None: ...
    @property
    def recovery_timeout(self) -> float: ...
    @property
    def recovery_timeout_multiplier(self) -> float: ...
    @property
    def max_recovery_timeout(self) -> float | None: ...
    @property
    def success_threshold(self) -> int: ...
    @property
    def half_open_max_calls(self) -> int: ...
    @property
    def failure_window(self) -> float | None: ...
    @property
    def failure_rate_threshold(self) -> float | None: ...
    @property
    def minimum_calls(self) -> int: ...
    @property
    def window_size(self) -> int: ...
    @property
    def slow_call_duration(self) -> float | None: ...
    @property
    def slow_call_rate_threshold(self) -> float | None: ...
    @property
    def uses_window(self) -> bool: ...
    @property
    def mode(self) -> str: ...


class Transition(NamedTuple):
    """A state change the machine made; the runner logs and emits it."""

    old: CircuitState
    new: CircuitState


def break_duration(base: float, multiplier: float, maximum: float | None, trips: int) -> float:
    """Seconds open after the ``trips``-th trip in a row (1 for the first):
    ``base * multiplier ** (trips - 1)``, at most ``maximum``. Never overflows.

    >>> [break_duration(1.0, 2.0, 5.0, n) for n in (1, 2, 3, 4)]
    [1.0, 2.0, 4.0, 5.0]
    """
    if multiplier == 1.0 or trips <= 1:
        duration = base
    else:
        try:
            duration = base * multiplier ** (trips - 1)
        except OverflowError:
            duration = math.inf
    return duration if maximum is None else min(duration, maximum)


class _CountWindow:
    """Outcomes of the last ``size`` calls in a ring, with running sums."""

    __slots__ = ("calls", "failures", "index", "outcomes", "slow")

    def __init__(self, size: int) -> None:
        self.outcomes = bytearray(size)
        self.index = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool, now: float) -> None:
        size = len(self.outcomes)
        if self.calls == size:
            old = self.outcomes[self.index]
            self.failures -= old & 1
            self.slow -= old >> 1
        else:
            self.calls += 1
        self.outcomes[self.index] = failed | (slow << 1)
        self.index = (self.index + 1) % size
        self.failures += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failures, self.slow


class _TimeWindow:
    """Outcomes of the last ``span`` seconds in ten buckets (a window that slides in
    steps of a tenth of its span; memory stays constant whatever the call rate)."""

    BUCKETS: Final = 10
    __slots__ = ("calls", "failures", "ids", "slow", "width")

    def __init__(self, span: float) -> None:
        n = self.BUCKETS
        self.width = span / n
        self.ids = [-(n + 1)] * n
        self.calls = [0] * n
        self.failures = [0] * n
        self.slow = [0] * n

    def record(self, failed: bool, slow: bool, now: float) -> None:
        bucket = int(now // self.width)
        i = bucket % self.BUCKETS
        if self.ids[i] != bucket:
            self.ids[i] = bucket
            self.calls[i] = self.failures[i] = self.slow[i] = 0
        self.calls[i] += 1
        self.failures[i] += failed
        self.slow[i] += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        current = int(now // self.width)
        calls = failures = slow = 0
        for i, bucket in enumerate(self.ids):
            if current - bucket < self.BUCKETS:
                calls += self.calls[i]
                failures += self.failures[i]
                slow += self.slow[i]
        return calls, failures, slow


class BreakerMachine:
    """The breaker's decisions and the state they act on (see the module docstring).

    >>> from buttress import CircuitBreakerConfig
    >>> m = BreakerMachine(CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10.0))
    >>> epoch = m.peek(0.0)
    >>> m.record_failure(epoch, 0.0), m.record_failure(epoch, 1.0)
    (None, Transition(old=<CircuitState.CLOSED: 'closed'>, new=<CircuitState.OPEN: 'open'>))
    >>> m.peek(5.0) == REJECT, m.remaining(5.0)
    (True, 6.0)
    """

    __slots__ = (
        "config", "consecutive_failures", "epoch", "failed", "held_open", "ignored",
        "last_failure_time", "mode", "open_streak", "open_until", "opened_at",
        "probe_deadline",
        "probe_successes", "probes_in_flight", "recent_failures", "rejected", "reopen_at",
        "slow", "state", "state_changes", "ticket", "tripped_by", "trips", "window",
    )

    def __init__(self, config: BreakerRules) -> None:
        self.config = config
        self.mode = config.mode
        self.state = _CLOSED
        self.epoch = 0
        self.ticket = -1
        self.open_until = -math.inf
        self.opened_at = 0.0
        # The instant the open state ends; every reader compares ``now < reopen_at``.
        self.reopen_at = 0.0
        self.held_open = False
        # Trips since the breaker last closed: the break duration grows with it.
        self.open_streak = 0
        # The failure that opened the breaker (None when forced, tripped by
        # slowness or by a result counted as a failure).
        self.tripped_by: BaseException | None = None
        self.consecutive_failures = 0
        self.probes_in_flight = 0
        self.probe_successes = 0
        # Half-open: when taken permits are given back if no probe has moved by then.
        self.probe_deadline = 0.0
        self.failed = self.rejected = self.ignored = self.slow = 0
        self.state_changes = self.trips = 0
        self.last_failure_time: float | None = None
        self.recent_failures: deque[float] | None = None
        self.window: _CountWindow | _TimeWindow | None = None
        self._fresh_counters(fresh_window=True)

    # transitions (each keeps ``ticket`` true)

    def _retick(self) -> None:
        config = self.config
        lean = (self.state is _CLOSED and self.mode == "enforce"
                and not self.consecutive_failures and self.window is None
                and config.slow_call_duration is None)
        self.ticket = self.epoch if lean else -1
        enforcing = self.state is _OPEN and self.mode == "enforce"
        self.open_until = self.reopen_at if enforcing else -math.inf

    def _fresh_counters(self, *, fresh_window: bool) -> None:
        config = self.config
        self.consecutive_failures = 0
        self.probes_in_flight = 0
        self.probe_successes = 0
        if config.failure_window is not None and config.failure_threshold is not None:
            self.recent_failures = deque(maxlen=config.failure_threshold)
        if fresh_window and config.uses_window:
            self.window = (
                _TimeWindow(config.failure_window) if config.failure_window is not None
                else _CountWindow(config.window_size)
            )
        self._retick()

    def _move(self, state: CircuitState) -> Transition:
        old = self.state
        self.state = state
        self.epoch += 1
        self.state_changes += 1
        return Transition(old, state)

    def _trip(self, now: float, cause: BaseException | None) -> Transition:
        moved = self._move(_OPEN)
        config = self.config
        self.open_streak += 1
        self.opened_at = now
        self.reopen_at = now + break_duration(
            config.recovery_timeout, config.recovery_timeout_multiplier,
            config.max_recovery_timeout, self.open_streak)
        self.tripped_by = cause
        self.trips += 1
        # The window stays: an open breaker reports the rate that tripped it.
        self._fresh_counters(fresh_window=False)
        return moved

    def _close(self) -> Transition:
        moved = self._move(_CLOSED)
        self.held_open = False
        self.tripped_by = None
        self.open_streak = 0
        self._fresh_counters(fresh_window=True)
        return moved

    # admission

    def peek(self, now: float) -> int:
        """Admission without a change: the epoch to run in, ``REJECT``, ``OBSERVED``,
        ``DISABLED``, or ``DECIDE`` when answering needs :meth:`admit` (a state
        change: the recovery timeout has passed, or a half-open permit). Reads
        only, so a store may call it without its lock; the open fast path counts
        its rejection itself (see ``rejected`` in the stats)."""
        epoch = self.epoch
        state = self.state
        mode = self.mode
        if mode == "disabled":
            return DISABLED
        if state is _CLOSED:
            return epoch
        if state is _OPEN and now < self.reopen_at and self.epoch == epoch:
            return REJECT if mode == "enforce" else OBSERVED
        return DECIDE

    def admit(self, now: float) -> tuple[int, Transition | None]:
        """Admit a call: the epoch it runs in (or ``REJECT``, ``OBSERVED``,
        ``DISABLED``), and the transition admitting it made, if any."""
        if self.mode == "disabled":
            return DISABLED, None
        state = self.state
        if state is _CLOSED:
            return self.epoch, None
        moved = self.recover(now)
        if self.state is _OPEN:
            return self._refuse(), moved
        if self.probes_in_flight >= self.config.half_open_max_calls:
            if now < self.probe_deadline:
                return self._refuse(), moved
            self._abandon_probes()
        self.probes_in_flight += 1
        self.probe_deadline = now + self.config.recovery_timeout
        return self.epoch, moved

    def _refuse(self) -> int:
        if self.mode == "observe":
            return OBSERVED
        self.rejected += 1
        return REJECT

    def _abandon_probes(self) -> None:
        # No probe was admitted or finished for a whole recovery_timeout: the ones
        # in flight are taken as lost. A new epoch makes their late outcomes stale
        # (they reach the statistics only) and frees their permits, as Polly
        # re-arms a half-open breaker whose probe does not come back.
        self.epoch += 1
        self.probes_in_flight = 0
        self.probe_successes = 0

    def recover(self, now: float) -> Transition | None:
        """Turn half-open if the breaker is open and its break has ended."""
        if self.state is not _OPEN or now < self.reopen_at:
            return None
        moved = self._move(_HALF_OPEN)
        self._fresh_counters(fresh_window=True)
        self.probe_deadline = now + self.config.recovery_timeout
        return moved

    # outcomes

    def _is_current(self, epoch: int) -> bool:
        return epoch == self.epoch and self.state is not _OPEN

    def record_success(self, epoch: int, now: float, duration: float) -> Transition | None:
        """A call admitted in ``epoch`` succeeded after ``duration`` seconds. (The
        count of successes is the store's, kept without the lock.)"""
        if epoch == DISABLED:
            return None
        limit = self.config.slow_call_duration
        is_slow = limit is not None and duration >= limit
        if is_slow:
            self.slow += 1
        if not self._is_current(epoch):
            return None
        window = self.window
        if self.state is _HALF_OPEN:
            self.probes_in_flight -= 1
            self.probe_successes += 1
            self.probe_deadline = now + self.config.recovery_timeout
            if window is not None:
                window.record(False, is_slow, now)
            if self.probe_successes >= self.config.success_threshold:
                return self._close()
            return None
        if self.consecutive_failures:
            self.consecutive_failures = 0
            self._retick()
        if window is not None:
            window.record(False, is_slow, now)
            if self._rate_exceeded(now):
                return self._trip(now, None)
        return None

    def record_failure(self, epoch: int, now: float, duration: float = 0.0,
                       cause: BaseException | None = None) -> Transition | None:
        """A call admitted in ``epoch`` failed (with a counted exception ``cause``,
        or a result counted as a failure) after ``duration`` seconds; a slow
        failure is also counted as slow."""
        if epoch == DISABLED:
            return None
        self.failed += 1
        self.last_failure_time = now
        limit = self.config.slow_call_duration
        is_slow = limit is not None and duration >= limit
        if is_slow:
            self.slow += 1
        if not self._is_current(epoch):
            return None
        window = self.window
        if window is not None:
            window.record(True, is_slow, now)
        if self.state is _HALF_OPEN:
            self.probes_in_flight -= 1
            return self._trip(now, cause)
        config = self.config
        self.consecutive_failures += 1
        self.ticket = -1
        threshold = config.failure_threshold
        recent = self.recent_failures
        tripped = False
        if threshold is None:
            pass  # the rate rule alone decides
        elif recent is None:
            tripped = self.consecutive_failures >= threshold
        else:
            recent.append(now)
            tripped = (
                len(recent) == threshold
                and now - recent[0] <= config.failure_window  # type: ignore[operator]
            )
        if tripped or (window is not None and self._rate_exceeded(now)):
            return self._trip(now, cause)
        return None

    def release(self, epoch: int, *, ignored: bool) -> None:
        """A call admitted in ``epoch`` ended without a verdict: an ignored
        exception, or cancellation. Give back its half-open permit, if any."""
        if epoch == DISABLED:
            return
        if ignored:
            self.ignored += 1
        if self._is_current(epoch) and self.state is _HALF_OPEN:
            self.probes_in_flight -= 1

    def _rate_exceeded(self, now: float) -> bool:
        assert self.window is not None
        config = self.config
        calls, failures, slow = self.window.totals(now)
        if calls < config.minimum_calls:
            return False
        rate = config.failure_rate_threshold
        if rate is not None and failures >= rate * calls:
            return True
        slow_rate = config.slow_call_rate_threshold
        return slow_rate is not None and slow >= slow_rate * calls

    # manual control

    def force_open(self, now: float) -> Transition | None:
        """Open and stay open until :meth:`force_closed` or :meth:`reset`."""
        moved = self._trip(now, None) if self.state is not _OPEN else None
        self.held_open = True
        self.reopen_at = math.inf
        self._retick()
        return moved

    def force_closed(self) -> Transition | None:
        """Close now, keeping the statistics."""
        moved = self._close() if self.state is not _CLOSED else None
        self.held_open = False
        return moved

    def reset(self) -> Transition | None:
        """Back to closed with every counter cleared (the mode stays)."""
        old, epoch, mode = self.state, self.epoch, self.mode
        self.__init__(self.config)  # type: ignore[misc]
        self.mode = mode
        # Keep epochs growing so that calls admitted before the reset stay stale.
        self.epoch = epoch + 1
        self._retick()
        return None if old is _CLOSED else Transition(old, _CLOSED)

    def set_mode(self, mode: str) -> None:
        """Switch between ``"enforce"``, ``"observe"`` and ``"disabled"``; the state
        and the statistics stay."""
        if mode not in MODES:
            raise ValueError(f"breaker mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._retick()

    # reading

    def remaining(self, now: float) -> float:
        """Seconds until a call would be admitted: until the break ends while open
        (``inf`` while held open), until the taken probe permits are given back
        while half-open, 0.0 otherwise."""
        state = self.state
        if state is _OPEN:
            return self.reopen_at - now if now < self.reopen_at else 0.0
        if (state is _HALF_OPEN
                and self.probes_in_flight >= self.config.half_open_max_calls
                and now < self.probe_deadline):
            return self.probe_deadline - now
        return 0.0

    def failure_rate(self, now: float) -> float | None:
        """The failure rate over the outcome window (None without one): the
        calls that tripped the breaker while it is open, the probes while it
        is half-open."""
        if self.window is None:
            return None
        calls, failures, _ = self.window.totals(now)
        return failures / calls if calls else 0.0

    def failure_count(self, now: float) -> int:
        """Failures that count toward the threshold right now."""
        if self.recent_failures is not None:
            window = self.config.failure_window
            assert window is not None
            return sum(1 for t in self.recent_failures if now - t <= window)
        return self.consecutive_failures
