"""A sliding time window of counts, cut into a fixed ring of buckets.

Used by the ratio retry budget and adaptive throttling. Memory is fixed at
construction (``slots`` buckets of ``fields`` counts); the window moves only
when told the time (:meth:`Window.advance`): it never reads a clock itself.
Not thread-safe on its own: its owner calls it under its lock.
"""

from __future__ import annotations

import math

__all__ = ["Window"]


class Window:
    """``fields`` counts per bucket over the last ``span`` seconds, in
    ``slots`` buckets of ``span / slots`` seconds; a bucket is dropped whole
    once it leaves the window."""

    __slots__ = ("_counts", "_epoch", "_fields", "_slots", "_width")

    def __init__(self, span: float, slots: int, fields: int, now: float) -> None:
        self._slots = slots
        self._fields = fields
        self._width = span / slots
        self._counts = [[0.0] * slots for _ in range(fields)]
        self._epoch = math.floor(now / self._width)

    def advance(self, now: float) -> tuple[int, int]:
        """Move the window to ``now``: drop the buckets that left it; return the
        current bucket's index and how many buckets the window moved by."""
        epoch = math.floor(now / self._width)
        steps = epoch - self._epoch
        slots = self._slots
        if steps > 0:
            for i in range(1, min(steps, slots) + 1):
                index = (self._epoch + i) % slots
                for counts in self._counts:
                    counts[index] = 0.0
            self._epoch = epoch
        return epoch % slots, max(0, steps)

    def add(self, field: int, index: int, amount: float = 1.0) -> None:
        """Add ``amount`` to ``field`` in bucket ``index`` (from :meth:`advance`)."""
        self._counts[field][index] += amount

    def spread(self, field: int, index: int, amount: float, steps: int) -> None:
        """Add ``amount`` counted over the last ``steps`` bucket moves evenly over
        those buckets (and the current one), dropping the share of those gone."""
        share = amount / (steps + 1)
        counts = self._counts[field]
        for i in range(min(steps, self._slots - 1) + 1):
            counts[(index - i) % self._slots] += share

    def total(self, field: int) -> float:
        """The sum of ``field`` over the window."""
        return math.fsum(self._counts[field])

    def clear(self) -> None:
        """Forget every count."""
        for counts in self._counts:
            counts[:] = [0.0] * self._slots
