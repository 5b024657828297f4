"""Small doubles shared by the retry and backoff tests."""

from __future__ import annotations

import random

from buttress.testing import VirtualClock


class Flaky(Exception):
    """A transient failure the tests retry on."""


class Fatal(Exception):
    """A failure the tests do not retry on."""


class HttpError(Exception):
    """An HTTP error carrying a status code, as client libraries raise them."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class Throttled(Exception):
    """A failure that says how long to wait, like a 429 with ``Retry-After``."""

    def __init__(self, retry_after: object) -> None:
        super().__init__(f"retry after {retry_after!r}")
        self.retry_after = retry_after


class FixedDraw(random.Random):
    """An rng whose ``uniform(a, b)`` always lands at the same fraction of the range,
    so jittered schedules can be asserted exactly."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.fraction


class NoSleepClock(VirtualClock):
    """A clock on which any wait is a test failure."""

    def sleep(self, seconds: float) -> None:
        raise AssertionError(f"sleep({seconds!r}) called")

    async def async_sleep(self, seconds: float) -> None:
        raise AssertionError(f"async_sleep({seconds!r}) called")
