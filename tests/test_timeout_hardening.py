"""Sync timeouts under load and nesting.

* Hung calls pin at most ``max_workers`` threads; beyond that, calls are
  refused with ``TimeoutPoolExhaustedError`` instead of starting a thread each.
* A call queued behind a bulkhead whose caller already got
  ``OperationTimeoutError`` never starts.
* Nested ``SIGALRM`` timeouts keep every deadline.

Real threads and signals: these are the defects. Every wait is bounded.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from buttress import (
    Bulkhead,
    BulkheadFullError,
    OperationTimeoutError,
    Timeout,
    TimeoutConfig,
    TimeoutPoolExhaustedError,
    pipeline,
)
from buttress._core import workers
from buttress._core.workers import Worker, WorkerPool
from buttress.events import CallRejected
from buttress.testing import VirtualClock
from buttress.timeout import DEFAULT_MAX_WORKERS, set_max_workers


def wait_until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        threading.Event().wait(0.001)


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> WorkerPool:
    """A fresh timeout pool of 8 workers, so other tests' idle workers do not count."""
    fresh = WorkerPool(max_workers=8)
    monkeypatch.setattr(workers, "shared", fresh)
    return fresh


@pytest.fixture
def hang() -> Iterator[Callable[[], None]]:
    """A call that hangs until the test ends."""
    release = threading.Event()

    def hung() -> None:
        release.wait(30)

    yield hung
    release.set()


# --- the bounded pool ----------------------------------------------------------------------


def test_the_default_pool_bound_is_documented_and_in_force() -> None:
    assert DEFAULT_MAX_WORKERS == 64
    assert workers.shared.max_workers == DEFAULT_MAX_WORKERS


def test_two_hundred_hung_calls_pin_no_more_threads_than_the_bound(
        pool: WorkerPool, hang: Callable[[], None]) -> None:
    limited = Timeout(0.01).wrap(hang)
    outcomes: dict[str, int] = {}
    before = threading.active_count()
    for _ in range(200):
        try:
            limited()
        except BaseException as exc:  # counted by type below
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    assert outcomes == {"OperationTimeoutError": 8, "TimeoutPoolExhaustedError": 192}
    assert pool.alive == 8
    assert threading.active_count() - before <= 8


def test_a_full_pool_refuses_the_call_without_starting_it(
        pool: WorkerPool, hang: Callable[[], None]) -> None:
    for _ in range(8):
        with pytest.raises(OperationTimeoutError):
            Timeout(0.01).wrap(hang)()
    calls: list[str] = []

    def fetch() -> None:
        calls.append("ran")

    # On a virtual clock nothing waits: the refusal comes before any wait.
    with pytest.raises(TimeoutPoolExhaustedError) as info:
        Timeout(1.0, clock=VirtualClock(), operation_name="fetch").wrap(fetch)()
    assert calls == []
    assert (info.value.max_workers, info.value.operation) == (8, "fetch")
    assert "sync timeout pool exhausted" in str(info.value)
    assert "8 worker threads are busy" in str(info.value)


def test_a_pool_refusal_is_a_bulkhead_rejection(pool: WorkerPool,
                                                hang: Callable[[], None]) -> None:
    for _ in range(8):
        with pytest.raises(OperationTimeoutError):
            Timeout(0.01).wrap(hang)()
    timeout = Timeout(1.0, operation_name="fetch")
    seen: list[CallRejected] = []
    timeout.events.add(seen.append, CallRejected)
    with pytest.raises(BulkheadFullError):
        timeout.wrap(lambda: None)()
    assert [(e.source, e.name, e.state) for e in seen] == [
        ("timeout", "fetch", "workers exhausted")]


def test_a_worker_freed_by_a_finished_call_serves_the_next_one(pool: WorkerPool) -> None:
    release = threading.Event()
    for _ in range(8):
        with pytest.raises(OperationTimeoutError):
            Timeout(0.01).wrap(lambda: release.wait(30))()
    release.set()
    wait_until(lambda: pool.resting == 8)
    assert Timeout(5.0).wrap(lambda: "ok")() == "ok"


def test_set_max_workers_changes_the_bound_and_returns_the_old_one(pool: WorkerPool) -> None:
    assert set_max_workers(2) == 8
    assert pool.max_workers == 2
    with pytest.raises(ValueError, match="max_workers"):
        set_max_workers(0)


def test_a_pool_that_cannot_start_a_thread_does_not_count_it(
        pool: WorkerPool, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(Worker, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start"):
        Timeout(1.0).wrap(lambda: None)()
    assert pool.alive == 0


# --- a caller that gave up: its queued call never starts -----------------------------------


def test_a_call_whose_caller_timed_out_in_the_bulkhead_queue_never_starts() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1)
    calls: list[str] = []
    protected = pipeline(timeout=0.05, bulkhead=bulkhead)(lambda: calls.append("ran"))
    bulkhead.acquire()  # the dependency is saturated
    with pytest.raises(OperationTimeoutError):
        protected()
    wait_until(lambda: bulkhead.queued == 0)  # it left the queue when its caller gave up
    bulkhead.release()
    assert (bulkhead.active, bulkhead.queued) == (0, 0)
    assert calls == []


def test_a_caller_giving_up_frees_its_queue_place_for_a_live_caller() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1)
    protected = pipeline(timeout=0.05, bulkhead=bulkhead)(lambda: "ok")
    bulkhead.acquire()
    with pytest.raises(OperationTimeoutError):
        protected()
    wait_until(lambda: bulkhead.queued == 0)
    live = threading.Thread(target=bulkhead.acquire)
    live.start()  # the freed queue place takes this caller instead of rejecting it
    wait_until(lambda: bulkhead.queued == 1)
    bulkhead.release()
    live.join(5)
    assert (bulkhead.active, bulkhead.queued) == (1, 0)


def test_an_outer_timeout_giving_up_reaches_a_call_queued_under_an_inner_one() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1)
    calls: list[str] = []
    inner = Timeout(30.0).wrap(bulkhead.wrap(lambda: calls.append("ran")))
    outer = Timeout(0.05).wrap(inner)
    bulkhead.acquire()
    try:
        with pytest.raises(OperationTimeoutError):
            outer()
        wait_until(lambda: bulkhead.queued == 0)
    finally:
        bulkhead.release()
    assert calls == []


# --- nested SIGALRM timeouts ---------------------------------------------------------------


needs_sigalrm = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM")


def by_signal(seconds: float) -> Timeout:
    return Timeout(TimeoutConfig(timeout_seconds=seconds, use_signal=True))


def block(seconds: float) -> None:
    """Block the main thread; a signal handler's exception ends it early."""
    threading.Event().wait(seconds)


@pytest.fixture
def alarm_restored() -> Iterator[None]:
    handler = signal.getsignal(signal.SIGALRM)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, handler)


@needs_sigalrm
@pytest.mark.usefixtures("alarm_restored")
def test_an_outer_signal_timeout_fires_inside_a_longer_inner_one() -> None:
    inner = by_signal(5.0).wrap(lambda: block(3.0))
    outer = by_signal(0.3).wrap(inner)
    started = time.monotonic()
    with pytest.raises(OperationTimeoutError) as info:
        outer()
    # Correctness bound, not a speed claim: the inner limit (5 s) and the body
    # (3 s) are both far beyond it; before the fix the outer limit was lost.
    assert time.monotonic() - started < 2.0
    assert info.value.timeout == 0.3


@needs_sigalrm
@pytest.mark.usefixtures("alarm_restored")
def test_an_outer_signal_timeout_still_fires_after_a_shorter_inner_one() -> None:
    def body() -> None:
        with pytest.raises(OperationTimeoutError) as inner_error:
            by_signal(0.05).wrap(lambda: block(3.0))()
        assert inner_error.value.timeout == 0.05
        block(3.0)  # the outer limit must still end this

    with pytest.raises(OperationTimeoutError) as info:
        by_signal(0.5).wrap(body)()
    assert info.value.timeout == 0.5


@needs_sigalrm
@pytest.mark.usefixtures("alarm_restored")
def test_nested_signal_timeouts_leave_no_timer_and_the_old_handler() -> None:
    handler = signal.getsignal(signal.SIGALRM)
    by_signal(5.0).wrap(by_signal(3.0).wrap(lambda: None))()
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is handler


@needs_sigalrm
@pytest.mark.usefixtures("alarm_restored")
def test_a_users_own_alarm_is_re_armed_after_a_signal_timeout() -> None:
    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise AssertionError("the user's alarm is not due yet")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    assert by_signal(5.0).wrap(lambda: "done")() == "done"
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    assert 0.0 < remaining <= 60.0
    assert signal.getsignal(signal.SIGALRM) is on_alarm


@needs_sigalrm
@pytest.mark.usefixtures("alarm_restored")
def test_a_users_alarm_due_first_reaches_its_handler_during_the_call() -> None:
    fired: list[int] = []

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        fired.append(signum)

    def body() -> str:
        for _ in range(300):
            if fired:
                return "heard"
            block(0.01)
        return "not heard"

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    # The user's handler returns, so the call goes on to its end.
    assert by_signal(5.0).wrap(body)() == "heard"
    assert fired == [signal.SIGALRM]
