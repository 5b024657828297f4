"""Bulkhead: exact concurrency limits, FIFO hand-off, bounded queue, cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from buttress import Bulkhead, BulkheadConfig, BulkheadFullError, ConfigurationError, pipeline
from buttress.events import CallRejected
from buttress.testing import VirtualClock


class Gate:
    """Counts how many calls are inside at once; calls block until released."""

    def __init__(self) -> None:
        self.inside = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self) -> str:
        with self.lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        self.release.wait(5)
        with self.lock:
            self.inside -= 1
        return "ok"


def wait_until(predicate: object, limit: float = 5.0) -> None:
    event = threading.Event()
    for _ in range(int(limit / 0.001)):
        if predicate():  # type: ignore[operator]
            return
        event.wait(0.001)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        ({"max_concurrent": 0}, "max_concurrent", "0"),
        ({"max_queue": -1}, "max_queue", "-1"),
        ({"max_wait": -0.5}, "max_wait", "-0.5"),
        ({"max_concurrent": 2.5}, "max_concurrent", "2.5"),
    ],
)
def test_bad_config_names_the_field_and_value(options: dict[str, object], field: str,
                                              value: str) -> None:
    with pytest.raises((ConfigurationError, TypeError)) as info:
        BulkheadConfig(**options)  # type: ignore[arg-type]
    assert field in str(info.value)
    assert value in str(info.value)


def test_config_and_options_together_is_an_error() -> None:
    with pytest.raises(TypeError):
        Bulkhead(BulkheadConfig(), max_concurrent=3)


def test_eight_threads_against_three_permits_and_no_queue_run_exactly_three() -> None:
    gate = Gate()
    bulkhead = Bulkhead(max_concurrent=3, name="db")
    guarded = bulkhead(gate)
    rejected: list[BulkheadFullError] = []
    results: list[str] = []

    def worker() -> None:
        try:
            results.append(guarded())
        except BulkheadFullError as exc:
            rejected.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: len(rejected) == 5 and gate.inside == 3)
    gate.release.set()
    for t in threads:
        t.join()
    assert results == ["ok"] * 3
    assert gate.peak == 3
    assert rejected[0].name == "db"
    assert rejected[0].max_concurrent == 3
    assert bulkhead.active == 0
    assert bulkhead.queued == 0


def test_queued_threads_get_permits_in_arrival_order() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=3)
    order: list[int] = []
    bulkhead.acquire()  # the test holds the only permit

    def worker(n: int) -> None:
        bulkhead.acquire()
        order.append(n)
        bulkhead.release()

    threads = []
    for n in range(3):
        t = threading.Thread(target=worker, args=(n,))
        t.start()
        threads.append(t)
        wait_until(lambda n=n: bulkhead.queued == n + 1)
    with pytest.raises(BulkheadFullError):
        bulkhead.acquire()  # queue of 3 is full
    bulkhead.release()
    for t in threads:
        t.join()
    assert order == [0, 1, 2]
    assert bulkhead.active == 0


def test_sync_wait_in_queue_is_bounded_by_max_wait_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1, max_wait=2.0, clock=clock)
    bulkhead.acquire()
    errors: list[BulkheadFullError] = []

    def worker() -> None:
        try:
            bulkhead.acquire()
        except BulkheadFullError as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    wait_until(lambda: bulkhead.queued == 1)
    clock.advance(1.999)
    assert not errors
    clock.advance(0.001)
    t.join(5)
    assert len(errors) == 1
    assert errors[0].waited
    assert bulkhead.queued == 0
    bulkhead.release()
    assert bulkhead.active == 0


async def test_a_thousand_tasks_never_exceed_ten_at_once_and_all_finish() -> None:
    bulkhead = Bulkhead(max_concurrent=10, max_queue=1000)
    inside = peak = 0

    @bulkhead
    async def work(n: int) -> int:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        inside -= 1
        return n

    results = await asyncio.gather(*(work(n) for n in range(1000)))
    assert results == list(range(1000))
    assert peak == 10
    assert bulkhead.active == 0
    assert bulkhead.queued == 0


async def test_full_async_bulkhead_rejects_and_reports_the_rejection() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0, name="api")
    events: list[CallRejected] = []
    bulkhead.events.add(events.append, CallRejected)
    started = asyncio.Event()
    finish = asyncio.Event()

    @bulkhead
    async def hold() -> str:
        started.set()
        await finish.wait()
        return "done"

    holder = asyncio.create_task(hold())
    await started.wait()
    with pytest.raises(BulkheadFullError):
        await hold()
    finish.set()
    assert await holder == "done"
    assert events == [CallRejected("bulkhead", "api", "full", 0.0)]


async def test_cancelled_waiter_leaves_the_queue_and_the_next_one_gets_the_permit() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=2)
    await bulkhead.acquire_async()
    first = asyncio.create_task(bulkhead.acquire_async())
    second = asyncio.create_task(bulkhead.acquire_async())
    await asyncio.sleep(0)
    assert bulkhead.queued == 2
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert bulkhead.queued == 1
    bulkhead.release()
    await second
    assert bulkhead.active == 1
    bulkhead.release()
    assert bulkhead.active == 0


async def test_waiter_cancelled_after_the_hand_off_passes_the_permit_on() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=2)
    await bulkhead.acquire_async()
    first = asyncio.create_task(bulkhead.acquire_async())
    second = asyncio.create_task(bulkhead.acquire_async())
    await asyncio.sleep(0)
    bulkhead.release()  # hands the permit to `first` (delivered on the next loop turn)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert bulkhead.active == 1
    assert bulkhead.queued == 0
    bulkhead.release()
    assert bulkhead.active == 0


async def test_async_wait_in_queue_is_bounded_by_max_wait_on_the_virtual_clock() -> None:
    clock = VirtualClock()
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1, max_wait=0.5, clock=clock)
    await bulkhead.acquire_async()
    waiting = asyncio.create_task(bulkhead.acquire_async())
    await asyncio.sleep(0)
    clock.advance(0.5)
    with pytest.raises(BulkheadFullError) as info:
        await waiting
    assert info.value.waited
    assert bulkhead.queued == 0
    bulkhead.release()
    assert bulkhead.active == 0


async def test_failures_and_cancellation_inside_the_call_give_the_permit_back() -> None:
    bulkhead = Bulkhead(max_concurrent=1)

    @bulkhead
    async def boom() -> None:
        raise ValueError("no")

    @bulkhead
    async def forever() -> None:
        await asyncio.Event().wait()

    with pytest.raises(ValueError, match="no"):
        await boom()
    task = asyncio.create_task(forever())
    await asyncio.sleep(0)
    assert bulkhead.active == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bulkhead.active == 0


def test_pipeline_places_the_bulkhead_innermost() -> None:
    protect = pipeline(timeout=1.0, bulkhead=4,
                       fallback_value="fb")
    kinds = [type(s).__name__ for s in protect.strategies]
    assert kinds == ["Fallback", "Timeout", "Bulkhead"]
    bulkhead = protect.strategies[-1]
    assert isinstance(bulkhead, Bulkhead)
    assert bulkhead.config.max_concurrent == 4
