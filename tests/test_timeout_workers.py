"""Sync timeouts hand calls to reusable worker threads."""

from __future__ import annotations

import contextvars
import threading

import pytest

from buttress import OperationTimeoutError, Timeout
from buttress._core.workers import WorkerPool

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_calls_reuse_an_idle_worker_thread() -> None:
    seen: list[int] = []
    limited = Timeout(5.0).wrap(lambda: seen.append(threading.get_ident()))
    for _ in range(20):
        limited()
    assert len(seen) == 20
    assert len(set(seen)) == 1
    assert threading.get_ident() not in seen


def test_the_callers_context_variables_reach_the_worker() -> None:
    limited = Timeout(5.0).wrap(request_id.get)
    token = request_id.set("abc-123")
    try:
        assert limited() == "abc-123"
    finally:
        request_id.reset(token)
    assert limited() == "-"


def test_errors_of_the_call_come_back_unchanged() -> None:
    def broken() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        Timeout(5.0).wrap(broken)()


@pytest.mark.wallclock
def test_a_hung_call_keeps_its_worker_and_later_calls_get_another() -> None:
    release = threading.Event()
    threads: list[int] = []

    def hang() -> None:
        threads.append(threading.get_ident())
        release.wait(10)

    with pytest.raises(OperationTimeoutError):
        Timeout(0.05).wrap(hang)()
    try:
        other = Timeout(5.0).wrap(threading.get_ident)()
        assert other != threads[0]
    finally:
        release.set()


def test_an_idle_worker_retires_unless_it_was_just_handed_a_job() -> None:
    pool = WorkerPool(idle=60.0)
    done = threading.Event()
    pool.run(done.set, "job")
    assert done.wait(5)
    for _ in range(1000):  # the worker rests right after the job
        if pool.resting == 1:
            break
        threading.Event().wait(0.001)
    assert pool.resting == 1
    [worker] = pool._resting
    assert pool.retire(worker) is True
    assert pool.resting == 0
    assert pool.retire(worker) is False  # no longer resting: it keeps going
    worker.jobs.put(lambda: None)  # let it finish cleanly
