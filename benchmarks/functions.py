"""The functions the cases protect: one that succeeds, one that fails twice out
of three calls, one that always fails, each in a sync and an async twin."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Kind

__all__ = ["ATTEMPTS", "failing", "failing_twice", "succeeding"]

ATTEMPTS = 3


def succeeding(kind: Kind) -> Callable[[], Any]:
    def succeed() -> int:
        return 1

    async def succeed_async() -> int:
        return 1

    return succeed if kind == "sync" else succeed_async


def failing_twice(kind: Kind) -> Callable[[], Any]:
    """Raises ConnectionError on two calls out of three (its own counter each time)."""
    calls = itertools.count()

    def flaky() -> int:
        if next(calls) % ATTEMPTS != ATTEMPTS - 1:
            raise ConnectionError("blip")
        return 1

    async def flaky_async() -> int:
        if next(calls) % ATTEMPTS != ATTEMPTS - 1:
            raise ConnectionError("blip")
        return 1

    return flaky if kind == "sync" else flaky_async


def failing(kind: Kind) -> Callable[[], Any]:
    def fail() -> int:
        raise ConnectionError("down")

    async def fail_async() -> int:
        raise ConnectionError("down")

    return fail if kind == "sync" else fail_async
