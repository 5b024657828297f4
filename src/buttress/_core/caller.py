"""Whether the caller of a call handed to a worker thread still waits for it.

A sync timeout runs the call in a worker thread and stops waiting when time is
up; the worker cannot be stopped. What can be stopped is a call that has not
started yet: one still waiting for a worker, or queued behind a bulkhead inside
the worker. Starting it after its caller was told ``OperationTimeoutError``
would only add load to a dependency that is already saturated, and its result
would go nowhere.

So the timeout gives the worker a :class:`Caller` (through a context variable,
in the worker's copy of the caller's context), marks it when it stops waiting,
and anything in the worker that waits before starting the call (the bulkhead's
queue) asks :func:`current` whether anyone still waits, and can ask to be woken
when the caller gives up.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from buttress._core.context import CURRENT

if TYPE_CHECKING:
    from buttress._core.context import CallContext

__all__ = ["Caller", "current", "run_for"]

T = TypeVar("T")


class Caller:
    """The caller of one call running in a worker thread.

    A timed call made inside the worker of another passes the outer caller's
    giving up on to its own (see ``call_with_thread_timeout``).
    """

    __slots__ = ("_wakers", "gave_up")

    def __init__(self) -> None:
        self.gave_up = False
        self._wakers: list[Callable[[], object]] = []

    def give_up(self) -> None:
        """The caller stops waiting: wake everyone who asked to know."""
        self.gave_up = True
        for wake in list(self._wakers):
            wake()

    def wake_on_give_up(self, wake: Callable[[], object]) -> None:
        """Call ``wake()`` when the caller gives up (at once if it already has)."""
        self._wakers.append(wake)
        # give_up sets the flag before it reads the list, so a waker added
        # concurrently is called by give_up, by this check, or by both.
        if self.gave_up:
            wake()

    def forget(self, wake: Callable[[], object]) -> None:
        """Undo :meth:`wake_on_give_up`."""
        with contextlib.suppress(ValueError):
            self._wakers.remove(wake)


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "buttress.caller", default=None)


def current() -> Caller | None:
    """The caller of the call this thread runs for a sync timeout, if any."""
    return _current.get()


def run_for(caller: Caller, call: CallContext, fn: Callable[..., T], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> T:
    """Run ``fn`` with ``caller`` as :func:`current` and ``call`` as the call's
    context (inside ``Context.run``, so both settings stay in the worker's copy
    of the caller's context)."""
    _current.set(caller)
    CURRENT.set(call)
    return fn(*args, **kwargs)
