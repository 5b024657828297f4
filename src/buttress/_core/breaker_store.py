"""Where a circuit breaker's state lives: the :class:`BreakerStore` seam.

:class:`~buttress.breaker.CircuitBreaker` (the runner) reads the clock, runs
the protected call and reports events; the :class:`BreakerMachine` decides;
the store holds the machine's state and makes each change atomic. The runner
talks to the store only through the methods of :class:`BreakerStore`, so a
store that keeps the state elsewhere slots in without touching the runner.

Rules of a store:

* A change (admission that needs one, an outcome, a forced state, a reset) is
  atomic with respect to every other change of the same breaker. The user's
  call never runs inside it.
* Transitions are reported to the ``report`` callback in the order they
  happened, never while a lock is held, one at a time.
* ``gate.ticket`` may be read at any time without a lock: the epoch a closed,
  untroubled breaker admits in, or ``-1`` (then ask :meth:`BreakerStore.admit`).
  A success in the ticket's epoch needs only ``next(store.successes)`` while
  ``gate.ticket`` still equals it.

:class:`MemoryStore`, the default, keeps one :class:`BreakerMachine` in the
process behind a fork-safe lock; admission of a closed breaker and rejection
by an open one take no lock (:meth:`BreakerMachine.peek`).

A Redis-backed store (a later ``buttress[redis]`` extra, outside the core)
implements the same protocol: each changing method becomes one Lua script that
runs the machine's rules on a hash (``state``, ``epoch``, ``reopen_at``,
counters, the window as a ring) atomically on the server and returns the new
``state``/``epoch``/``reopen_at`` and the transition it made, if any. Its
``gate`` is a local cache of those three fields, refreshed from every script's
reply and at most a short interval old (say 100 ms) otherwise, so the closed
fast path and the open rejection stay local reads; an outcome whose epoch the
server no longer holds reaches the statistics only, exactly as in memory.
Transitions made by other processes reach ``report`` when the cache sees the
epoch move.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol

from buttress._core import forksafe
from buttress._core.breaker_machine import (
    DECIDE,
    DISABLED,
    REJECT,
    BreakerMachine,
    BreakerRules,
    CircuitState,
    Transition,
)

__all__ = ["BreakerCounts", "BreakerStore", "Gate", "MemoryStore", "Report"]

Report = Callable[[Transition], object]


class Gate(Protocol):
    """What the fast paths read without a lock (see the machine's invariants)."""

    @property
    def ticket(self) -> int: ...

    @property
    def open_until(self) -> float: ...

    @property
    def tripped_by(self) -> BaseException | None: ...


class BreakerCounts(NamedTuple):
    """A consistent reading of the store, for ``CircuitBreaker.stats``."""

    state: CircuitState
    successes: int
    failed: int
    ignored: int
    rejected: int
    slow: int
    state_changes: int
    trips: int
    failure_count: int
    failure_rate: float | None
    last_failure_time: float | None
    remaining: float


class BreakerStore(Protocol):
    """The state of one breaker, changed atomically (see the module docstring).
    Every ``now`` is seconds on the breaker's monotonic clock."""

    gate: Gate

    def admit(self, now: float) -> int:
        """The epoch to run a call in, or ``REJECT``/``OBSERVED``/``DISABLED``."""
        ...

    @property
    def successes(self) -> Iterator[object]:
        """``next(successes)`` counts a success in the epoch of ``gate.ticket``
        (nothing else to record). Never replaced, so that a runner may keep it
        bound; ``next()`` on an iterator is cheaper than any bound method."""
        ...

    @property
    def rejections(self) -> Iterator[object]:
        """``next(rejections)`` counts a rejection decided by
        ``now < gate.open_until``."""
        ...

    def record_success(self, epoch: int, now: float, duration: float) -> None: ...

    def record_failure(self, epoch: int, now: float, duration: float,
                       cause: BaseException | None) -> None: ...

    def release(self, epoch: int, *, ignored: bool) -> None: ...

    def refusal(self, now: float) -> tuple[CircuitState, float, BaseException | None]:
        """State, seconds until admission, and the failure that opened the
        breaker: what a rejection reports."""
        ...

    def state(self, now: float) -> CircuitState:
        """The state, turning half-open if the break has ended."""
        ...

    def is_open(self, now: float) -> bool: ...

    def is_closed(self) -> bool: ...

    def counts(self, now: float) -> BreakerCounts: ...

    def force_open(self, now: float) -> None: ...

    def force_closed(self) -> None: ...

    def reset(self) -> None: ...

    @property
    def mode(self) -> str: ...

    def set_mode(self, mode: str) -> None: ...


def _counted(counter: itertools.count[int]) -> int:
    # itertools.count has no public accessor; its repr is "count(N)".
    return int(repr(counter)[6:-1])


class MemoryStore:
    """The breaker's state in this process: one :class:`BreakerMachine` behind a
    fork-safe lock, held only while the machine changes."""

    __slots__ = ("_delivering", "_lock", "_m", "_pending", "_report",
                 "_reset_counts", "gate", "rejections", "successes")

    def __init__(self, config: BreakerRules, report: Report) -> None:
        self._m = BreakerMachine(config)
        self.gate: Gate = self._m
        self._lock = forksafe.lock()
        self._report = report
        # A list, not a deque: it is almost always empty, and an empty deque
        # weighs 600 bytes (a thousand named breakers are a realistic count).
        self._pending: list[Transition] = []
        self._delivering = forksafe.lock()
        # Counted without the lock (itertools.count is atomic under the GIL).
        self.successes = itertools.count()
        self.rejections = itertools.count()
        # What the counters read at the last reset (they are never replaced, so
        # a runner may keep them bound).
        self._reset_counts = (0, 0)

    # changes

    def _changed(self, moved: Transition | None) -> None:
        # Called under the lock: queue the transition in the order it happened.
        if moved is not None:
            self._pending.append(moved)

    def _deliver(self) -> None:
        # Transitions are queued under the state lock and delivered outside it by
        # one thread at a time, so listeners see them in the order they happened
        # even if another thread's transition lands while a listener runs; that
        # transition is delivered by the thread already delivering. The re-check
        # after releasing closes the gap between its last look and the release.
        pending = self._pending
        while pending:
            if not self._delivering.acquire(blocking=False):
                return
            try:
                while pending:
                    self._report(pending.pop(0))
            finally:
                self._delivering.release()

    def admit(self, now: float) -> int:
        m = self._m
        verdict = m.peek(now)
        if verdict != DECIDE:
            if verdict == REJECT:
                next(self.rejections)
            return verdict
        with self._lock:
            verdict, moved = m.admit(now)
            self._changed(moved)
        if self._pending:
            self._deliver()
        return verdict

    def record_success(self, epoch: int, now: float, duration: float) -> None:
        if epoch == DISABLED:
            return
        next(self.successes)
        with self._lock:
            self._changed(self._m.record_success(epoch, now, duration))
        if self._pending:
            self._deliver()

    def record_failure(self, epoch: int, now: float, duration: float,
                       cause: BaseException | None) -> None:
        with self._lock:
            self._changed(self._m.record_failure(epoch, now, duration, cause))
        if self._pending:
            self._deliver()

    def release(self, epoch: int, *, ignored: bool) -> None:
        with self._lock:
            self._m.release(epoch, ignored=ignored)

    def force_open(self, now: float) -> None:
        with self._lock:
            self._changed(self._m.force_open(now))
        self._deliver()

    def force_closed(self) -> None:
        with self._lock:
            self._changed(self._m.force_closed())
        self._deliver()

    def reset(self) -> None:
        with self._lock:
            self._changed(self._m.reset())
            self._reset_counts = (_counted(self.successes), _counted(self.rejections))
        self._deliver()

    @property
    def mode(self) -> str:
        return self._m.mode

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self._m.set_mode(mode)

    # reading

    def refusal(self, now: float) -> tuple[CircuitState, float, BaseException | None]:
        m = self._m
        return m.state, m.remaining(now), m.tripped_by

    def state(self, now: float) -> CircuitState:
        m = self._m
        if m.state is CircuitState.OPEN and not now < m.reopen_at:
            with self._lock:
                self._changed(m.recover(now))
            self._deliver()
        return m.state

    def is_open(self, now: float) -> bool:
        m = self._m
        return m.state is CircuitState.OPEN and now < m.reopen_at

    def is_closed(self) -> bool:
        return self._m.state is CircuitState.CLOSED

    def counts(self, now: float) -> BreakerCounts:
        with self._lock:
            m = self._m
            return BreakerCounts(
                state=m.state,
                successes=_counted(self.successes) - self._reset_counts[0],
                failed=m.failed,
                ignored=m.ignored,
                rejected=m.rejected + _counted(self.rejections) - self._reset_counts[1],
                slow=m.slow,
                state_changes=m.state_changes,
                trips=m.trips,
                failure_count=m.failure_count(now),
                failure_rate=m.failure_rate(now),
                last_failure_time=m.last_failure_time,
                remaining=m.remaining(now),
            )
