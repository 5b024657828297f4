"""A forked child can use buttress at once, whatever other threads were doing.

``os.fork()`` copies only the calling thread. Before buttress reinitialised its
locks and pools in the child (``_core/forksafe.py``), a lock another thread
held at the fork stayed held for ever in the child, and the sync-timeout pool
listed workers that did not exist there, so the child's first timed call
waited out its whole timeout.

Every child here runs a small workload and ends with ``os._exit``; the parent
waits for it with a deadline and kills it if it is still running then.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable

import pytest

from buttress import (
    Bulkhead,
    CircuitBreaker,
    OperationTimeoutError,
    Timeout,
    get_circuit_breaker,
    pipeline,
    resilience_metrics,
    with_metrics,
)
from buttress._core import forksafe

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

HUNG = "hung"


def in_child(work: Callable[[], object], limit: float = 10.0) -> int | str:
    """Run ``work`` in a forked child; its exit code, or ``HUNG`` if it was still
    running after ``limit`` seconds (it is killed then)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return wait_for_child(pid, limit)


def wait_for_child(pid: int, limit: float) -> int | str:
    deadline = time.monotonic() + limit
    pause = threading.Event()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return HUNG
        pause.wait(0.005)


def test_a_childs_first_timed_call_does_not_wait_for_the_parents_workers() -> None:
    assert Timeout(30.0).wrap(threading.get_ident)() != threading.get_ident()
    # The parent now has an idle worker; the child has no such thread.
    assert in_child(lambda: Timeout(30.0).wrap(lambda: 42)()) == 0


def test_a_child_gets_a_full_timeout_pool_even_if_the_parents_is_exhausted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from buttress._core import workers
    from buttress.timeout import TimeoutPoolExhaustedError, set_max_workers

    # A pool of its own: idle workers left by earlier tests would take the call.
    monkeypatch.setattr(workers, "shared", workers.WorkerPool())
    release = threading.Event()
    previous = set_max_workers(1)
    try:
        with pytest.raises(OperationTimeoutError):
            Timeout(0.01).wrap(lambda: release.wait(30))()
        with pytest.raises(TimeoutPoolExhaustedError):
            Timeout(30.0).wrap(lambda: None)()
        assert in_child(lambda: Timeout(30.0).wrap(lambda: 42)()) == 0
    finally:
        set_max_workers(previous)
        release.set()


def test_a_child_forked_while_another_thread_holds_every_lock_can_use_buttress() -> None:
    breaker = get_circuit_breaker("fork-payments")
    bulkhead = Bulkhead(max_concurrent=2, name="fork-db")
    protected = with_metrics("fork-charge")(
        pipeline(circuit_breaker=breaker, timeout=30.0, bulkhead=bulkhead)(lambda: 42))
    assert protected() == 42  # every lock on the path exists now

    def use_everything() -> None:
        assert protected() == 42
        assert get_circuit_breaker("fork-payments") is breaker
        get_circuit_breaker("fork-new")
        breaker.events.add(lambda event: None)
        assert resilience_metrics.get_metrics("fork-charge")
        Timeout(30.0).wrap(lambda: None)()

    holder_ready = threading.Event()
    release = threading.Event()

    def hold_every_lock() -> None:
        taken = [lock for lock in list(forksafe._locks) if lock.acquire(blocking=False)]
        holder_ready.set()
        release.wait(30)
        for lock in taken:
            lock.release()

    holder = threading.Thread(target=hold_every_lock)
    holder.start()
    try:
        assert holder_ready.wait(5)
        assert in_child(use_everything) == 0
    finally:
        release.set()
        holder.join(5)


def test_twenty_forks_while_threads_use_a_breaker_and_metrics_all_finish() -> None:
    breaker = CircuitBreaker("fork-busy", failure_threshold=1_000_000)
    protected = with_metrics("fork-busy")(breaker(lambda: None))
    stop = threading.Event()

    def hammer() -> None:
        def listener(event: object) -> None:
            pass

        while not stop.is_set():
            protected()
            breaker.events.add(listener)
            breaker.events.remove(listener)

    workers = [threading.Thread(target=hammer) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        outcomes = [in_child(protected, limit=10.0) for _ in range(20)]
    finally:
        stop.set()
        for worker in workers:
            worker.join(5)
    assert outcomes == [0] * 20


def test_a_bulkhead_in_a_child_forgets_the_permits_of_the_parents_other_threads() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0)
    inside = threading.Event()
    leave = threading.Event()

    def busy() -> None:
        inside.set()
        leave.wait(30)

    holder = threading.Thread(target=bulkhead.wrap(busy))
    holder.start()
    try:
        assert inside.wait(5)
        assert in_child(lambda: bulkhead.wrap(lambda: None)()) == 0
    finally:
        leave.set()
        holder.join(5)
    assert bulkhead.active == 0


def test_a_child_forked_inside_a_bulkhead_call_releases_its_permit_cleanly() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0)
    pid = bulkhead.wrap(os.fork)()
    if pid == 0:  # the child, past the wrapper's release
        code = 1
        try:
            if bulkhead.active == 0 and bulkhead.wrap(lambda: "ok")() == "ok":
                code = 0
        finally:
            os._exit(code)
    assert wait_for_child(pid, 10.0) == 0
    assert bulkhead.active == 0
