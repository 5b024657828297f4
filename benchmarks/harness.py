"""Timing per-call cases side by side.

Every round times every case and a bare-call baseline back to back, in an
order shuffled by a seeded RNG; a timing is one batch of N calls in a tight
loop with the garbage collector off. Async batches run inside one event loop,
created once per round. Ratios and overheads are taken inside a round and the
median over rounds is reported, so a noisy neighbour slows both sides of a
comparison instead of one.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Literal

from benchmarks.groups import BARE

__all__ = ["KINDS", "Case", "Kind", "Settings", "Timings", "bare_cases", "bare_id", "run",
           "time_batch"]

Kind = Literal["sync", "async"]
KINDS: tuple[Kind, ...] = ("sync", "async")
Call = Callable[[], Any]
Progress = Callable[[str], None]

# Overheads this small are below the timer's resolution; ratios clamp to it.
_MIN_OVERHEAD_NS = 1.0


@dataclass(frozen=True, slots=True)
class Case:
    """One implementation of one scenario.

    ``setup`` builds the zero-argument call once (a coroutine function for async
    cases); ``expect`` names the exceptions every call ends with, caught inside
    the timed loop.
    """

    group: str
    impl: str
    kind: Kind
    setup: Callable[[], Call]
    expect: tuple[type[BaseException], ...] = ()

    @property
    def id(self) -> str:
        return case_id(self.group, self.kind, self.impl)


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    batch_ms: float
    seed: int = 20240601


def case_id(group: str, kind: Kind, impl: str) -> str:
    return f"{group}/{kind}/{impl}"


def bare_id(kind: Kind) -> str:
    """The id of the bare-call baseline of ``kind``."""
    return case_id(BARE, kind, "bare call")


def _bare_sync() -> None:
    return None


async def _bare_async() -> None:
    return None


def _returning(call: Call) -> Callable[[], Call]:
    return lambda: call


def bare_cases(kinds: Iterable[Kind]) -> list[Case]:
    """The bare-call baselines of ``kinds``: a plain function, a bare coroutine."""
    calls: dict[Kind, Call] = {"sync": _bare_sync, "async": _bare_async}
    wanted = set(kinds)
    return [Case(BARE, "bare call", kind, _returning(calls[kind]))
            for kind in KINDS if kind in wanted]


@dataclass
class Timings:
    """Per-round nanoseconds per call for every case that ran without error."""

    per_call_ns: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def has(self, case: str) -> bool:
        return case in self.per_call_ns

    def fail(self, case: str, exc: BaseException) -> None:
        self.per_call_ns.pop(case, None)
        self.errors[case] = f"{type(exc).__name__}: {exc}"

    def per_call_us(self, case: str) -> float:
        """Median microseconds per call."""
        return statistics.median(self.per_call_ns[case]) / 1000

    def overhead_us(self, case: str) -> float:
        """Median over rounds of (case - bare call of the same kind), microseconds."""
        return statistics.median(self._overheads(case)) / 1000

    def ratio(self, case: str, other: str) -> float:
        """Median over rounds of case time / other time."""
        pairs = zip(self.per_call_ns[case], self.per_call_ns[other], strict=True)
        return statistics.median(a / b for a, b in pairs)

    def overhead_ratio(self, case: str, other: str) -> float:
        """Median over rounds of case overhead / other overhead (overheads clamped
        to 1 ns, so a near-zero overhead gives a large, finite ratio)."""
        pairs = zip(self._overheads(case), self._overheads(other), strict=True)
        return statistics.median(
            max(a, _MIN_OVERHEAD_NS) / max(b, _MIN_OVERHEAD_NS) for a, b in pairs)

    def _overheads(self, case: str) -> list[float]:
        bare = self.per_call_ns[bare_id(_kind_of(case))]
        return [c - b for c, b in zip(self.per_call_ns[case], bare, strict=True)]


def _kind_of(case: str) -> Kind:
    kind = case.split("/")[1]
    if kind not in ("sync", "async"):
        raise ValueError(f"case id {case!r} has no kind")
    return kind  # type: ignore[return-value]


# --- timing one batch ---------------------------------------------------------------


# The loops drop the traceback of an expected exception: a library that raises
# one stored instance (purgatory does) would otherwise chain every call's frames
# onto it, and the batch would time a growing heap. The cost is the same for all.


def _sync_batch(call: Call, n: int, expect: tuple[type[BaseException], ...]) -> int:
    start = perf_counter_ns()
    for _ in range(n):
        try:
            call()
        except expect as exc:
            exc.__traceback__ = None
    return perf_counter_ns() - start


async def _async_batch(
    call: Callable[[], Awaitable[Any]], n: int, expect: tuple[type[BaseException], ...]
) -> int:
    start = perf_counter_ns()
    for _ in range(n):
        try:
            await call()
        except expect as exc:
            exc.__traceback__ = None
    return perf_counter_ns() - start


@dataclass(frozen=True, slots=True)
class _Prepared:
    case: Case
    call: Call
    n: int


def time_batch(case: Case, call: Call, n: int, loop: asyncio.AbstractEventLoop) -> int:
    """Nanoseconds for ``n`` calls, garbage collector off."""
    gc.disable()
    try:
        if case.kind == "sync":
            return _sync_batch(call, n, case.expect)
        return loop.run_until_complete(_async_batch(call, n, case.expect))
    finally:
        gc.enable()


def calibrate(case: Case, call: Call, batch_ns: float, loop: asyncio.AbstractEventLoop) -> int:
    """A batch size that lasts about ``batch_ns``; the probing batches warm up."""
    n = 1
    while True:
        elapsed = max(time_batch(case, call, n, loop), 1)
        if elapsed >= batch_ns / 4 or n >= 10_000_000:
            return max(1, round(n * batch_ns / elapsed))
        n *= min(100, max(2, int(batch_ns / 4 / elapsed)))


# --- rounds ---------------------------------------------------------------------------


def _prepare(cases: list[Case], settings: Settings, timings: Timings,
             progress: Progress) -> list[_Prepared]:
    prepared = []
    loop = asyncio.new_event_loop()
    try:
        for case in cases:
            progress(f"calibrating {case.id}")
            try:
                call = case.setup()
                n = calibrate(case, call, settings.batch_ms * 1e6, loop)
            except Exception as exc:
                timings.fail(case.id, exc)
                continue
            timings.per_call_ns[case.id] = []
            prepared.append(_Prepared(case, call, n))
    finally:
        loop.close()
    return prepared


def _run_round(prepared: list[_Prepared], rng: random.Random, timings: Timings) -> None:
    order = list(prepared)
    rng.shuffle(order)
    gc.collect()
    loop = asyncio.new_event_loop()
    try:
        for p in order:
            if not timings.has(p.case.id):
                continue
            try:
                elapsed = time_batch(p.case, p.call, p.n, loop)
            except Exception as exc:
                timings.fail(p.case.id, exc)
                continue
            timings.per_call_ns[p.case.id].append(elapsed / p.n)
    finally:
        loop.close()


def run(cases: list[Case], settings: Settings, progress: Progress = lambda _: None) -> Timings:
    """Calibrate every case (plus the bare baselines its kinds need), then time
    ``settings.rounds`` shuffled rounds."""
    timings = Timings()
    prepared = _prepare(bare_cases(c.kind for c in cases) + cases, settings, timings, progress)
    rng = random.Random(settings.seed)
    for number in range(1, settings.rounds + 1):
        progress(f"round {number}/{settings.rounds}")
        _run_round(prepared, rng, timings)
    return timings
