"""A/B for the retry paths: two buttress source trees alternating in one process.

``python benchmarks/ab_retry.py OLD_SRC NEW_SRC [ROUNDS]`` (e.g. a ``git archive``
of the base commit's ``src`` and the worktree's ``src``) times a zero-delay retry
with two failures then a success, and the success path, for each tree and for a
hand-written loop, round after round, so a noisy machine slows all alike. Swap
the two trees to check that the order does not matter.
"""

from __future__ import annotations

import importlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

logging.getLogger("buttress").addHandler(logging.NullHandler())

Pair = tuple[Callable[[], Any], Callable[[], Any]]


def load(path: str) -> ModuleType:
    """Import buttress from ``path``, forgetting any buttress imported before
    (the modules already loaded keep their own references)."""
    for name in [n for n in sys.modules if n == "buttress" or n.startswith("buttress.")]:
        del sys.modules[name]
    sys.path.insert(0, path)
    try:
        return importlib.import_module("buttress")
    finally:
        sys.path.remove(path)


class NoSleep:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        raise RuntimeError("a zero-delay retry slept")


def failing_twice() -> Callable[[], int]:
    calls = 0

    def call() -> int:
        nonlocal calls
        calls += 1
        if calls % 3:
            raise ConnectionError
        return 1

    return call


def build(buttress: ModuleType) -> Pair:
    retrying = buttress.retry(max_attempts=3, base_delay=0, jitter=0, reraise=True,
                              retry_on=(ConnectionError,), clock=NoSleep())
    return retrying(failing_twice()), retrying(lambda: 1)


def hand_written() -> Pair:
    fn = failing_twice()

    def loop() -> Any:
        for attempt in range(1, 4):
            try:
                return fn()
            except ConnectionError:
                if attempt == 3:
                    raise
        raise AssertionError("unreachable")

    def succeed() -> int:
        return 1

    return loop, succeed


def per_call(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    old, new = build(load(sys.argv[1])), build(load(sys.argv[2]))
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    pairs = {"old": old, "new": new, "hand": hand_written()}
    failing: dict[str, list[float]] = {name: [] for name in pairs}
    success: dict[str, list[float]] = {name: [] for name in pairs}
    for _ in range(rounds):
        for name, (fail, succeed) in pairs.items():
            failing[name].append(per_call(fail, 20_000))
            success[name].append(per_call(succeed, 100_000))
    for name in pairs:
        print(f"{name:5s} two failures: median {statistics.median(failing[name]):.2f} µs, "
              f"min {min(failing[name]):.2f}; success: median "
              f"{statistics.median(success[name]):.3f} µs, min {min(success[name]):.3f}")


if __name__ == "__main__":
    main()
