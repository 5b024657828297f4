"""Counts over virtual time, in fixed buckets (one second by default).

Memory is fixed by the run's length, never by its traffic: one integer per
series per bucket. Events past the end of the run land in the last bucket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from buttress._core import validate

__all__ = ["SERIES", "Timeline"]

SERIES: Final = (
    "offered",    # logical requests that arrived (calls the app made)
    "succeeded",  # logical requests that ended in a success: the goodput
    "failed",     # logical requests that ended in an error
    "sent",       # attempts that reached the dependency (first tries and retries)
    "retries",    # attempts after the first that reached the dependency
    "rejected",   # attempts an open breaker turned away without sending
    "denied",     # retries the retry budget refused
    "timeouts",   # attempts the client stopped waiting for
    "late",       # answers that came after their client had stopped waiting (wasted work)
    "queue",      # requests waiting at the dependency (sampled at the bucket's end)
    "open",       # clients whose breaker was not closed (sampled at the bucket's end)
)


class Timeline:
    """Per-bucket counts of one run::

        >>> t = Timeline(duration=3.0, width=1.0)
        >>> t.add("succeeded", 1.5); t.add("succeeded", 1.7)
        >>> t.rate("succeeded")
        [0.0, 2.0, 0.0]
    """

    __slots__ = ("_last", "counts", "duration", "width")

    def __init__(self, duration: float, width: float = 1.0) -> None:
        self.duration = validate.number("Timeline", "duration", duration, minimum=0.0,
                                        strict_minimum=True)
        self.width = validate.number("Timeline", "width", width, minimum=0.0,
                                     strict_minimum=True)
        size = max(1, math.ceil(duration / width))
        self._last = size - 1
        self.counts: dict[str, list[int]] = {name: [0] * size for name in SERIES}

    def __len__(self) -> int:
        return self._last + 1

    def index(self, when: float) -> int:
        """The bucket of time ``when``."""
        i = int(when / self.width)
        return i if i < self._last else self._last

    def add(self, series: str, when: float, count: int = 1) -> None:
        """Count ``count`` events of ``series`` at time ``when``."""
        i = int(when / self.width)  # index(), inlined: this runs several times per call
        self.counts[series][i if i < self._last else self._last] += count

    def sample(self, series: str, when: float, value: int) -> None:
        """Set the sampled value of ``series`` (``queue``, ``open``) at time ``when``."""
        self.counts[series][self.index(when)] = value

    def times(self) -> list[float]:
        """The start of every bucket, in seconds."""
        return [i * self.width for i in range(len(self))]

    def rate(self, series: str) -> list[float]:
        """``series`` per second, bucket by bucket."""
        return [c / self.width for c in self.counts[series]]

    def total(self, series: str, start: float = 0.0, end: float = math.inf) -> int:
        """Events of ``series`` in the buckets from ``start`` up to ``end``."""
        return sum(self._slice(series, start, end))

    def mean_rate(self, series: str, start: float = 0.0, end: float = math.inf) -> float:
        """Mean events of ``series`` per second from ``start`` up to ``end``."""
        part = self._slice(series, start, end)
        return sum(part) / (len(part) * self.width) if part else 0.0

    def _slice(self, series: str, start: float, end: float) -> Sequence[int]:
        first = self.index(start)
        last = len(self) if end == math.inf else max(first, math.ceil(end / self.width))
        return self.counts[series][first:last]
