"""The shared pool of worker threads that sync calls are handed to.

A sync timeout runs its call on a worker and stops waiting when time is up
(hedging will start its extra attempts here too). Rules of this module:

* One pool, :data:`shared`, of at most ``max_workers`` threads (default
  :data:`DEFAULT_MAX_WORKERS`, see :func:`set_max_workers`). A call is handed
  to an idle worker, or to a new one while the bound allows; beyond it the
  pool refuses (:meth:`WorkerPool.run` returns False) rather than queues, as a
  queued call would only wait behind hung ones. The refusing caller raises its
  own error (``TimeoutPoolExhaustedError`` for a timeout).
* A worker runs one job at a time and keeps it until it ends: nothing can stop
  a running sync call safely, so a dependency that hangs pins at most
  ``max_workers`` threads. Idle workers end after ``idle`` seconds.
* The pool never touches the job's context: a caller that wants its context
  variables in the worker runs the job in a copy (``Context.run``).
* Workers are daemon threads: a hung call never keeps the process alive.
* In a forked child the parent's workers do not exist: the pool forgets them
  (:mod:`buttress._core.forksafe`) and starts empty.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Final

from buttress._core import forksafe, validate

__all__ = ["DEFAULT_MAX_WORKERS", "Worker", "WorkerPool", "set_max_workers", "shared"]

DEFAULT_MAX_WORKERS: Final = 64
"""Worker threads the shared pool may run at once, unless
:func:`set_max_workers` says otherwise."""

_IDLE_NAME: Final = "buttress-worker-idle"


class Worker(threading.Thread):
    """A daemon thread that runs jobs handed to it, one at a time, and ends after
    its pool's ``idle`` seconds without one."""

    def __init__(self, pool: WorkerPool) -> None:
        super().__init__(name=_IDLE_NAME, daemon=True)
        self.pool = pool
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def run(self) -> None:
        pool = self.pool
        while True:
            try:
                job = self.jobs.get(timeout=pool.idle)
            except queue.Empty:
                if pool.retire(self):
                    return
                continue  # handed a job just as the wait ran out: it is queued
            job()
            pool.rest(self)


class WorkerPool:
    """Reusable worker threads, at most ``max_workers`` of them.

    Starting a thread per call cost about 100 µs; handing the call to an idle
    worker costs a fraction of that. See the module docstring for the rules.
    """

    def __init__(self, idle: float = 30.0, max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        self.idle = idle
        self.max_workers = max_workers
        self._lock = forksafe.lock()
        self._resting: list[Worker] = []
        self._alive = 0  # workers started and not retired: busy plus resting
        forksafe.register(self)

    def run(self, job: Callable[[], None], name: str) -> bool:
        """Hand ``job`` to a worker named ``name`` while it runs; False (and
        nothing runs) if every worker is busy and the bound is reached."""
        with self._lock:
            if self._resting:
                worker = self._resting.pop()
            elif self._alive >= self.max_workers:
                return False
            else:
                self._alive += 1
                worker = None
        if worker is None:
            worker = Worker(self)
            try:
                worker.start()
            except BaseException:  # RuntimeError: can't start new thread
                with self._lock:
                    self._alive -= 1
                raise
        worker.name = name
        worker.jobs.put(job)
        return True

    def rest(self, worker: Worker) -> None:
        """``worker`` finished its job: it waits for the next one."""
        worker.name = _IDLE_NAME
        with self._lock:
            self._resting.append(worker)

    def retire(self, worker: Worker) -> bool:
        """Whether an idle ``worker`` may end (False: it was just handed a job)."""
        with self._lock:
            if worker in self._resting:
                self._resting.remove(worker)
                self._alive -= 1
                return True
            return False

    def resize(self, max_workers: int) -> int:
        """Set the bound; return the previous one. Running workers are not stopped."""
        with self._lock:
            previous, self.max_workers = self.max_workers, max_workers
        return previous

    def _after_fork_in_child(self) -> None:
        # Only the forking thread survives a fork: none of the workers did.
        self._resting = []
        self._alive = 0

    @property
    def resting(self) -> int:
        """Idle workers now."""
        return len(self._resting)

    @property
    def alive(self) -> int:
        """Workers now, busy or idle."""
        return self._alive


shared = WorkerPool()
"""The one pool every sync timeout hands its calls to (looked up at each use,
so a test may swap it)."""


def set_max_workers(max_workers: int) -> int:
    """Bound the threads of the shared worker pool; return the previous bound.

    Every sync call under a (thread-based) timeout runs on a worker of the
    shared pool, and a call that overruns its timeout keeps its worker until it
    ends. The bound caps what a hanging dependency can pin: once every worker
    is busy, further timed sync calls raise ``TimeoutPoolExhaustedError`` at
    once instead of starting a thread each. Size it to the sync calls you
    expect in flight at once (for example your server's thread count) plus a
    margin for hung ones. The default is :data:`DEFAULT_MAX_WORKERS` (64).
    Lowering it stops no running worker; it applies to new ones::

        >>> previous = set_max_workers(200)
        >>> previous
        64
        >>> _ = set_max_workers(previous)

    .. versionadded:: 0.2
    """
    validate.integer("set_max_workers", "max_workers", max_workers, minimum=1)
    return shared.resize(max_workers)
