"""Case h: bytes allocated creating one breaker and 1,000 named breakers
(tracemalloc, after a warm-up creation so lazy imports and caches do not count)."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from collections.abc import Callable

import aiobreaker
import circuitbreaker
import purgatory
import pybreaker

import buttress
from benchmarks.results import Footprint

__all__ = ["COUNTS", "CREATORS", "run"]

COUNTS = (1, 1000)

Create = Callable[[list[str]], object]


def _buttress(names: list[str]) -> object:
    return [buttress.CircuitBreaker(name) for name in names]


def _pybreaker(names: list[str]) -> object:
    return [pybreaker.CircuitBreaker(name=name) for name in names]


def _circuitbreaker(names: list[str]) -> object:
    return [circuitbreaker.CircuitBreaker(name=name) for name in names]


def _aiobreaker(names: list[str]) -> object:
    return [aiobreaker.CircuitBreaker(name=name) for name in names]


def _purgatory(names: list[str]) -> object:
    factory = purgatory.SyncCircuitBreakerFactory()
    return factory, [factory.get_breaker(name) for name in names]


CREATORS: dict[str, Create] = {
    "buttress": _buttress,
    "pybreaker": _pybreaker,
    "circuitbreaker": _circuitbreaker,
    "aiobreaker": _aiobreaker,
    "purgatory (its factory included)": _purgatory,
}


_batches = itertools.count()


def _names(count: int) -> list[str]:
    """Fresh names, so no registry already holds them."""
    batch = next(_batches)
    return [f"bench-memory-{batch}-{i}" for i in range(count)]


def allocated(create: Create, count: int) -> int:
    """Bytes still allocated after creating ``count`` breakers (kept alive)."""
    create(_names(2))
    names = _names(count)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = create(names)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


def run(impls: list[str]) -> list[Footprint]:
    return [Footprint(impl, count, allocated(CREATORS[impl], count))
            for impl in impls for count in COUNTS]
