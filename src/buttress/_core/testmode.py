"""The global test mode's switch (:func:`buttress.testing.set_testing`).

One object, read by the retry runners on the failure path only: a call that
succeeds never looks at it, so the mode costs nothing when off.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TEST_MODE", "TestMode"]


class TestMode:
    """Whether test mode is on, and how many attempts each retry makes in it
    (``cap``: at most that many, fewer when the retry is configured so)."""

    __slots__ = ("active", "attempts", "cap")
    __test__ = False  # not a test class, though pytest would think so by its name

    def __init__(self) -> None:
        self.active = False
        self.attempts = 1
        self.cap = False

    def __repr__(self) -> str:
        return f"TestMode(active={self.active}, attempts={self.attempts}, cap={self.cap})"


TEST_MODE: Final = TestMode()
