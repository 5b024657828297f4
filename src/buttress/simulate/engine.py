"""The event loop of the simulator: virtual time, one heap, no threads.

Invariants:

* Time never goes back: an event is scheduled at ``now`` or later, and events
  run in time order; two events at the same instant run in the order they
  were scheduled (a sequence number breaks the tie), so a run is a pure
  function of its inputs and its seed.
* Nothing sleeps and nothing reads a real clock: an hour of traffic costs only
  the events it has.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from buttress._core import validate

__all__ = ["EventLoop"]


class EventLoop:
    """A discrete-event loop in virtual seconds::

        >>> loop = EventLoop()
        >>> seen = []
        >>> loop.at(2.0, seen.append, "b")
        >>> loop.at(1.0, seen.append, "a")
        >>> loop.run()
        2.0
        >>> seen
        ['a', 'b']

    It is a :class:`buttress._core.clock.Clock`, so code that takes a clock (a
    :class:`~buttress.budget.RatioBudget`) reads the virtual time; nothing in a
    simulation may block, so its waiting methods raise.
    """

    __slots__ = ("_heap", "_seq", "events", "now")

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0
        self.events = 0  # events run so far

    def monotonic(self) -> float:
        """The virtual time, in seconds since the start of the run."""
        return self.now

    def sleep(self, seconds: float) -> NoReturn:
        """Refused: schedule an event instead (nothing blocks in a simulation)."""
        raise RuntimeError("EventLoop: nothing sleeps in a simulation; schedule an event")

    async def async_sleep(self, seconds: float) -> NoReturn:
        """Refused, as :meth:`sleep` is."""
        self.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> NoReturn:
        """Refused, as :meth:`sleep` is."""
        self.sleep(seconds)

    def timeout(self, seconds: float) -> NoReturn:
        """Refused, as :meth:`sleep` is."""
        self.sleep(seconds)

    def at(self, when: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)`` at virtual time ``when`` (not before ``now``)."""
        if not when >= self.now:  # also refuses NaN
            raise ValueError(f"EventLoop.at: {when!r} is before now ({self.now!r})")
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, action, args))

    def after(self, delay: float, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)`` ``delay`` seconds from now."""
        self.at(self.now + delay, action, *args)

    def run(self, until: float = math.inf) -> float:
        """Run events up to and including time ``until`` (all of them by default);
        return the time of the last event run (``until`` when it stopped there)."""
        validate.number("EventLoop.run", "until", until, minimum=0.0, allow_inf=True)
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= until:
            when, _, action, args = pop(heap)
            self.now = when
            self.events += 1
            action(*args)
        if heap and until != math.inf:
            self.now = until
        return self.now

    @property
    def pending(self) -> int:
        """Events scheduled and not run yet."""
        return len(self._heap)
