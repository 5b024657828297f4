"""Fork safety: locks and thread pools that start afresh in a child process.

``os.fork()`` copies the whole memory of a process but only the thread that
called it. A lock that another thread held at that moment stays held for ever
in the child (its next ``acquire`` deadlocks), and a pool that lists worker
threads lists threads that do not exist there. Both happen to a service that
forks workers (``multiprocessing`` with the fork start method, gunicorn's
preload, a plain ``os.fork()``) while other threads use buttress.

Rules of this module:

* Every lock buttress takes is made by :func:`lock` or :func:`rlock`. They are
  ordinary ``threading`` locks, remembered weakly; in a child each is
  reinitialised (unlocked, no owner) before any other code runs there.
* An object that keeps threads, waiters or counts tied to threads registers
  itself with :func:`register`; in the child its ``_after_fork_in_child()``
  runs after every lock has been reinitialised, so it may take its own lock.
* Nothing happens in the parent: it neither takes locks before a fork (which
  could deadlock against a thread that holds two of them) nor slows down.
  State that another thread was changing at the moment of the fork is seen in
  the child as that thread left it; each guarded change is a few assignments.
* Forking while the forking thread itself is inside buttress code that holds a
  lock (a listener that forks) is not supported: the child would release a lock
  it no longer holds.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Protocol

__all__ = ["lock", "register", "rlock"]


class AfterFork(Protocol):
    """An object that knows how to forget, in a child, what belonged to the parent."""

    def _after_fork_in_child(self) -> None: ...


_locks: weakref.WeakSet[Any] = weakref.WeakSet()
_objects: weakref.WeakSet[Any] = weakref.WeakSet()


def lock() -> threading.Lock:
    """A new ``threading.Lock`` that a forked child gets back unlocked."""
    new = threading.Lock()
    _locks.add(new)
    return new


def rlock() -> threading.RLock:
    """A new ``threading.RLock`` that a forked child gets back unlocked and unowned."""
    new = threading.RLock()
    _locks.add(new)
    return new


def register(obj: AfterFork) -> None:
    """Call ``obj._after_fork_in_child()`` in every forked child while ``obj`` lives."""
    _objects.add(obj)


def _reinit_in_child() -> None:
    # The child has one thread: nothing can add to these sets while we iterate.
    for each in list(_locks):
        each._at_fork_reinit()
    for obj in list(_objects):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_reinit_in_child)
