"""The circuit breaker under threads and tasks: exact counts, probe permits, and
proof that no lock is held while the protected call runs.

Waits here are bounded by barriers and events with generous real-time limits, so
a regression fails the test instead of hanging it; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import pytest

from buttress import CircuitBreaker, CircuitBreakerError, CircuitState
from buttress.testing import VirtualClock

THREADS = 8
CALLS = 10_000
TASKS = 1_000
LIMIT = 20.0  # real seconds before a stuck barrier or event fails the test

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class Boom(Exception):
    """The dependency failed."""


class NotFound(Exception):
    """Ignored by the breakers below."""


@pytest.fixture(autouse=True)
def _switch_threads_often() -> Iterator[None]:
    # Thread switches every 10 µs instead of every 5 ms, so races have a chance to show.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


# Breakers that take different paths: the lean default, the guarded path with a
# count window and the slow-call rule, and the time-window mode.
KINDS: dict[str, dict[str, Any]] = {
    "lean": {},
    "windowed-slow": {"failure_rate_threshold": 1.0, "window_size": 100, "minimum_calls": 100,
                      "slow_call_duration": 60.0, "slow_call_rate_threshold": 1.0},
    "time-window": {"failure_window": 60.0, "failure_rate_threshold": 1.0,
                    "minimum_calls": 1_000_000},
}


def make(kind: str, clock: VirtualClock | None = None, **options: Any) -> CircuitBreaker:
    return CircuitBreaker(name=f"concurrent-{kind}", clock=clock or VirtualClock(),
                          **{**KINDS[kind], **options})


def in_threads(target: Callable[[int], object], n: int = THREADS) -> list[object]:
    """Run ``target(i)`` in ``n`` threads; return the results, re-raise the first error."""
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LIMIT * 2)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    if errors:
        raise errors[0]
    return results


def run_loop_guarded(main: Callable[[], Coroutine[Any, Any, object]]) -> object:
    """Run ``main()`` on its own event loop in a thread. A thread lock held across an
    await would block the loop itself, so a timeout inside the loop could never fire;
    the join limit here turns that hang into a failure."""
    return in_threads(lambda _: asyncio.run(main()), n=1)[0]


def trip_and_wait(breaker: CircuitBreaker, clock: VirtualClock) -> None:
    def fail() -> None:
        raise Boom("down")

    while breaker.state is not OPEN:
        with pytest.raises(Boom):
            breaker.call(fail)
    clock.advance(breaker.config.recovery_timeout)


# --- exact counts ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_eight_threads_count_every_success_exactly(kind: str) -> None:
    breaker = make(kind)

    @breaker
    def work(x: int) -> int:
        return x

    def hammer(_: int) -> int:
        return sum(work(1) for _ in range(CALLS))

    assert in_threads(hammer) == [CALLS] * THREADS
    stats = breaker.stats
    assert stats.successful_calls == THREADS * CALLS == 80_000
    assert stats.total_calls == 80_000
    assert (stats.failed_calls, stats.rejected_calls, stats.ignored_calls) == (0, 0, 0)
    assert stats.state is CLOSED


@pytest.mark.parametrize("kind", KINDS)
def test_eight_threads_count_a_mix_of_outcomes_exactly(kind: str) -> None:
    # One call in ten fails and one is ignored; no thread fails twice in a row and the
    # threshold is out of reach, so the breaker stays closed and the counts are exact.
    breaker = make(kind, failure_threshold=1_000_000, ignored_exceptions=NotFound)

    @breaker
    def work(i: int) -> int:
        if i % 10 == 0:
            raise Boom("down")
        if i % 10 == 5:
            raise NotFound("none")
        return i

    def hammer(_: int) -> tuple[int, int, int]:
        returned = failed = ignored = 0
        for i in range(CALLS):
            try:
                work(i)
                returned += 1
            except Boom:
                failed += 1
            except NotFound:
                ignored += 1
        return returned, failed, ignored

    assert in_threads(hammer) == [(8_000, 1_000, 1_000)] * THREADS
    stats = breaker.stats
    assert stats.successful_calls == 64_000
    assert stats.failed_calls == 8_000
    assert stats.ignored_calls == 8_000
    assert stats.rejected_calls == 0
    assert stats.total_calls == 80_000
    assert stats.state is CLOSED
    if kind == "lean":
        assert stats.failure_rate == 8_000 / 72_000


@pytest.mark.parametrize("kind", KINDS)
def test_every_call_is_counted_once_while_the_breaker_trips_and_recovers(kind: str) -> None:
    clock = VirtualClock()
    breaker = make(kind, clock, failure_threshold=3, recovery_timeout=5.0, success_threshold=2,
                   half_open_max_calls=2, ignored_exceptions=NotFound)

    @breaker
    def work(i: int) -> int:
        if i % 7 in (0, 1, 2, 3):
            raise Boom("down")
        if i % 7 == 4:
            raise NotFound("none")
        return i

    def hammer(t: int) -> tuple[int, int, int, int]:
        returned = failed = ignored = rejected = 0
        for i in range(5_000):
            if t == 0 and i % 50 == 0:
                clock.advance(1.0)
            try:
                work(i)
                returned += 1
            except Boom:
                failed += 1
            except NotFound:
                ignored += 1
            except CircuitBreakerError:
                rejected += 1
        return returned, failed, ignored, rejected

    seen = [sum(column) for column in zip(*in_threads(hammer), strict=True)]
    stats = breaker.stats
    assert seen == [stats.successful_calls, stats.failed_calls, stats.ignored_calls,
                    stats.rejected_calls]
    assert stats.total_calls == THREADS * 5_000
    assert stats.trips >= 1
    assert stats.rejected_calls > 0


async def test_a_thousand_tasks_count_every_outcome_exactly() -> None:
    breaker = make("lean", failure_threshold=1_000_000)

    @breaker
    async def work(i: int) -> int:
        await asyncio.sleep(0)
        if i % 10 == 0:
            raise Boom("down")
        return i

    async def task(t: int) -> int:
        failed = 0
        for j in range(10):
            try:
                await work(t + j)
            except Boom:
                failed += 1
        return failed

    assert await asyncio.gather(*(task(t) for t in range(TASKS))) == [1] * TASKS
    stats = breaker.stats
    assert (stats.successful_calls, stats.failed_calls, stats.total_calls) == (9_000, 1_000,
                                                                               10_000)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_thousand_tasks_in_async_with_blocks_count_exactly(kind: str) -> None:
    breaker = make(kind)

    async def task() -> None:
        for _ in range(10):
            async with breaker:
                await asyncio.sleep(0)

    await asyncio.gather(*(task() for _ in range(TASKS)))
    stats = breaker.stats
    assert stats.successful_calls == stats.total_calls == 10_000


# --- no lock while the call runs ---------------------------------------------------------


def _with(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    with breaker:
        return fn()


SYNC_FORMS: dict[str, Callable[[CircuitBreaker, Callable[[], Any]], Any]] = {
    "decorator": lambda b, fn: b(fn)(),
    "call": lambda b, fn: b.call(fn),
    "with": _with,
}


@pytest.mark.parametrize("form", SYNC_FORMS)
@pytest.mark.parametrize("kind", KINDS)
def test_eight_threads_are_inside_the_protected_call_at_once(kind: str, form: str) -> None:
    breaker = make(kind)
    inside = threading.Barrier(THREADS, timeout=LIMIT)

    def meet() -> int:
        return inside.wait()  # breaks (BrokenBarrierError) if a lock keeps anyone out

    in_threads(lambda _: SYNC_FORMS[form](breaker, meet))
    assert breaker.stats.successful_calls == THREADS


@pytest.mark.parametrize("form", SYNC_FORMS)
@pytest.mark.parametrize("kind", KINDS)
def test_eight_half_open_probes_are_inside_the_protected_call_at_once(
    kind: str, form: str
) -> None:
    clock = VirtualClock()
    breaker = make(kind, clock, failure_threshold=1, half_open_max_calls=THREADS,
                   success_threshold=THREADS)
    trip_and_wait(breaker, clock)
    inside = threading.Barrier(THREADS, timeout=LIMIT)
    in_threads(lambda _: SYNC_FORMS[form](breaker, inside.wait))
    assert breaker.state is CLOSED


ASYNC_FORMS: dict[str, Callable[[CircuitBreaker, Callable[[], Awaitable[Any]]], Awaitable[Any]]]


async def _acall(b: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> Any:
    return await b.acall(fn)


async def _async_with(b: CircuitBreaker, fn: Callable[[], Awaitable[Any]]) -> Any:
    async with b:
        return await fn()


ASYNC_FORMS = {"acall": _acall, "async with": _async_with}


@pytest.mark.parametrize("form", ASYNC_FORMS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_thousand_tasks_are_inside_the_protected_call_at_once(kind: str, form: str) -> None:
    breaker = make(kind)

    async def main() -> int:
        everyone_in = asyncio.Event()
        count = 0

        async def meet() -> None:
            nonlocal count
            count += 1
            if count == TASKS:
                everyone_in.set()
            await asyncio.wait_for(everyone_in.wait(), LIMIT)

        await asyncio.gather(*(ASYNC_FORMS[form](breaker, meet) for _ in range(TASKS)))
        return count

    assert run_loop_guarded(main) == TASKS
    assert breaker.stats.successful_calls == TASKS


@pytest.mark.parametrize("kind", KINDS)
def test_eight_threads_run_async_breakers_concurrently(kind: str) -> None:
    # The same breaker used from eight event loops in eight threads at once.
    breaker = make(kind)
    inside = threading.Barrier(THREADS, timeout=LIMIT)

    async def meet() -> int:
        return inside.wait()

    in_threads(lambda _: asyncio.run(breaker.acall(meet)))
    assert breaker.stats.successful_calls == THREADS


# --- half-open permits under concurrency -------------------------------------------------


def test_half_open_admits_exactly_max_calls_probing_threads() -> None:
    clock = VirtualClock()
    breaker = make("lean", clock, failure_threshold=1, half_open_max_calls=3,
                   success_threshold=3)
    trip_and_wait(breaker, clock)
    inside = threading.Barrier(4, timeout=LIMIT)
    release = threading.Event()

    def probe() -> str:
        inside.wait()
        release.wait(LIMIT)
        return "probed"

    threads = [threading.Thread(target=breaker.call, args=(probe,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        inside.wait()  # the three probes are running
        with pytest.raises(CircuitBreakerError) as info:
            breaker.call(lambda: "fourth")
        assert info.value.state is HALF_OPEN
        # until the probes' permits are given back (recovery_timeout without news)
        assert info.value.remaining_timeout == 30.0
    finally:
        release.set()
        for thread in threads:
            thread.join(LIMIT)
    assert breaker.state is CLOSED
    assert breaker.stats.rejected_calls == 1


@pytest.mark.parametrize("kind", KINDS)
def test_many_threads_arriving_at_once_get_exactly_max_calls_permits(kind: str) -> None:
    clock = VirtualClock()
    breaker = make(kind, clock, failure_threshold=1, half_open_max_calls=3, success_threshold=3)
    trip_and_wait(breaker, clock)
    callers = 20
    arrive = threading.Barrier(callers, timeout=LIMIT)
    release = threading.Event()
    reported = threading.Semaphore(0)
    lock = threading.Lock()
    admitted: list[int] = []
    rejected: list[CircuitBreakerError] = []

    def probe(i: int) -> str:
        with lock:
            admitted.append(i)
        reported.release()
        release.wait(LIMIT)
        return "probed"

    def caller(i: int) -> None:
        arrive.wait()
        try:
            breaker.call(probe, i)
        except CircuitBreakerError as error:
            with lock:
                rejected.append(error)
            reported.release()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(callers):
            assert reported.acquire(timeout=LIMIT)
        assert len(admitted) == 3
        assert len(rejected) == callers - 3
        assert all(error.state is HALF_OPEN for error in rejected)
    finally:
        release.set()
        for thread in threads:
            thread.join(LIMIT)
    assert breaker.state is CLOSED
    stats = breaker.stats
    assert (stats.rejected_calls, stats.successful_calls) == (callers - 3, 3)


@pytest.mark.parametrize("kind", KINDS)
async def test_many_tasks_arriving_at_once_get_exactly_max_calls_permits(kind: str) -> None:
    clock = VirtualClock()
    breaker = make(kind, clock, failure_threshold=1, half_open_max_calls=3, success_threshold=3)
    trip_and_wait(breaker, clock)
    callers = 50
    release, everyone_reported = asyncio.Event(), asyncio.Event()
    admitted: list[int] = []
    rejected: list[CircuitBreakerError] = []

    def report() -> None:
        if len(admitted) + len(rejected) == callers:
            everyone_reported.set()

    async def probe(i: int) -> str:
        admitted.append(i)
        report()
        await release.wait()
        return "probed"

    async def caller(i: int) -> None:
        try:
            await breaker.acall(probe, i)
        except CircuitBreakerError as error:
            rejected.append(error)
            report()

    tasks = [asyncio.create_task(caller(i)) for i in range(callers)]
    await asyncio.wait_for(everyone_reported.wait(), LIMIT)
    assert len(admitted) == 3
    assert len(rejected) == callers - 3
    assert all(error.state is HALF_OPEN for error in rejected)
    release.set()
    await asyncio.gather(*tasks)
    assert breaker.state is CLOSED


async def test_cancelled_probes_give_their_permits_back_to_waiting_callers() -> None:
    clock = VirtualClock()
    breaker = make("lean", clock, failure_threshold=1, half_open_max_calls=3,
                   success_threshold=1)
    trip_and_wait(breaker, clock)
    started = asyncio.Semaphore(0)

    async def hang() -> None:
        started.release()
        await asyncio.Event().wait()

    probes = [asyncio.create_task(breaker.acall(hang)) for _ in range(3)]
    for _ in probes:
        await asyncio.wait_for(started.acquire(), LIMIT)
    with pytest.raises(CircuitBreakerError):
        await breaker.acall(asyncio.sleep, 0)
    for task in probes:
        task.cancel()
    results = await asyncio.gather(*probes, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert breaker.state is HALF_OPEN
    await breaker.acall(asyncio.sleep, 0)
    assert breaker.state is CLOSED
    assert breaker.stats.failed_calls == 1


# --- transitions happen once -------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_simultaneous_failures_trip_the_breaker_exactly_once(kind: str) -> None:
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(kind, failure_threshold=3,
                   on_state_change=lambda b, old, new: seen.append((old, new)))
    inside = threading.Barrier(THREADS, timeout=LIMIT)

    def fail_together() -> None:
        inside.wait()
        raise Boom("down")

    def call(_: int) -> None:
        with pytest.raises(Boom):
            breaker.call(fail_together)

    in_threads(call)
    stats = breaker.stats
    assert stats.state is OPEN
    assert (stats.failed_calls, stats.trips, stats.state_changes) == (THREADS, 1, 1)
    assert seen == [(CLOSED, OPEN)]


@pytest.mark.parametrize("kind", KINDS)
def test_simultaneous_probe_successes_close_the_breaker_exactly_once(kind: str) -> None:
    clock = VirtualClock()
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(kind, clock, failure_threshold=1, half_open_max_calls=THREADS,
                   success_threshold=2,
                   on_state_change=lambda b, old, new: seen.append((old, new)))
    trip_and_wait(breaker, clock)
    inside = threading.Barrier(THREADS, timeout=LIMIT)
    in_threads(lambda _: breaker.call(inside.wait))
    assert breaker.state is CLOSED
    assert breaker.stats.state_changes == 3
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_listeners_see_transitions_in_order_even_when_one_listener_is_slow() -> None:
    # Thread A turns the breaker half-open and is held up in the first listener; in
    # the meantime the main thread's probe closes the breaker. The second listener
    # (a state gauge, say) must still see open -> half-open before half-open -> closed.
    clock = VirtualClock()
    in_listener, proceed = threading.Event(), threading.Event()
    gauge: list[tuple[CircuitState, CircuitState]] = []

    def slow(b: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
        if new is HALF_OPEN:
            in_listener.set()
            proceed.wait(LIMIT)

    breaker = make("lean", clock, failure_threshold=1, success_threshold=1,
                   half_open_max_calls=2, on_state_change=slow)
    breaker.add_listener(lambda b, old, new: gauge.append((old, new)))
    trip_and_wait(breaker, clock)
    probe_a = threading.Thread(target=breaker.call, args=(lambda: "a",))
    probe_a.start()
    try:
        assert in_listener.wait(LIMIT)
        assert breaker.call(lambda: "b") == "b"
        assert breaker.state is CLOSED
    finally:
        proceed.set()
        probe_a.join(LIMIT)
    assert gauge == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
