"""Case g: throughput of blocking I/O through one shared closed breaker, by thread
count. Each call sleeps 1 ms with the GIL released, so a breaker that holds a
lock around the call serializes the threads and one that does not scales."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable

import pybreaker

import buttress
from benchmarks.results import Throughput

__all__ = ["IMPLEMENTATIONS", "THREAD_COUNTS", "run"]

THREAD_COUNTS = (1, 2, 4, 8)
IO_SECONDS = 0.001


def _blocking_io() -> None:
    time.sleep(IO_SECONDS)


def _bare() -> Callable[[], None]:
    return _blocking_io


def _buttress() -> Callable[[], None]:
    breaker = buttress.CircuitBreaker("bench-threads", failure_threshold=5, recovery_timeout=60)
    protected: Callable[[], None] = breaker(_blocking_io)
    return protected


def _pybreaker() -> Callable[[], None]:
    breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    protected: Callable[[], None] = breaker(_blocking_io)
    return protected


IMPLEMENTATIONS: dict[str, Callable[[], Callable[[], None]]] = {
    "bare call (no breaker)": _bare,
    "buttress": _buttress,
    "pybreaker": _pybreaker,
}


def calls_per_second(call: Callable[[], None], threads: int, seconds: float) -> float:
    """Run ``threads`` threads calling ``call`` in a loop for about ``seconds``."""
    counts = [0] * threads
    start_line = threading.Barrier(threads + 1)
    stop = threading.Event()

    def worker(index: int) -> None:
        start_line.wait()
        done = 0
        while not stop.is_set():
            call()
            done += 1
        counts[index] = done

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in workers:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def run(impls: list[str], seconds: float, rounds: int, seed: int) -> list[Throughput]:
    """Median calls/second over ``rounds`` for each implementation and thread count,
    the combinations shuffled in every round."""
    calls = {impl: IMPLEMENTATIONS[impl]() for impl in impls}
    samples: dict[tuple[str, int], list[float]] = {
        (impl, n): [] for impl in impls for n in THREAD_COUNTS
    }
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(samples)
        rng.shuffle(order)
        for impl, threads in order:
            samples[impl, threads].append(calls_per_second(calls[impl], threads, seconds))
    return [Throughput(impl, n, statistics.median(values))
            for (impl, n), values in samples.items()]
