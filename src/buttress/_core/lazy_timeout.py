"""An async time limit whose timer is armed only if the call suspends.

``asyncio.timeout`` costs about 33,000 instructions per use on CPython 3.11 (a
Timeout object, the current task, a TimerHandle pushed on the loop's heap),
which would be most of a pipeline's overhead for a call that completes without
ever waiting (a cache hit, a pooled answer). So the first step of the call runs
at once; only when it actually suspends is ``clock.timeout`` entered, with the
time already spent subtracted, and the rest is driven under it (:func:`_rest`).

Invariants:

* The semantics are those of ``asyncio.timeout``: a synchronous first step can
  not be interrupted there either, as no timer runs while it does.
* The call's context (:mod:`buttress._core.context`), its deadline tightened to
  this limit, is set before the first step and reset after the last, on every
  path: code in the first step sees it.
* A call whose outer deadline has already passed is not started.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from types import CoroutineType
from typing import Any, Final

from buttress._core.clock import AsyncTimeout, Clock, reader
from buttress._core.context import CURRENT, CallContext, FirstContext, within
from buttress._core.events import Listeners
from buttress._core.strategy import Steps

__all__ = ["DONE", "Expire", "finish", "limiter", "limiter_steps"]

Expire = Callable[[float, "float | None"], BaseException]
"""Reports a timeout and returns the error to raise: given the seconds the limit
allowed and, when an earlier deadline cut it to those, the limit's own."""


def limiter(fn: Callable[..., Awaitable[Any]] | None, seconds: float, clock: Clock,
            operation: str | None, expire: Expire,
            hub: Listeners | None = None,
            report: Callable[..., Awaitable[Any]] | None = None,
            steps: Steps | None = None,
            ) -> Callable[..., Awaitable[Any]]:
    """``fn`` under a time limit of ``seconds`` on ``clock``, as a coroutine
    function; while ``hub`` has listeners, ``report`` is called instead (``fn``
    under this limit, reported as one operation: see ``Strategy._heard``). With
    ``steps`` (and no ``fn``), the layer inside this one is driven as its
    generator rather than as a coroutine of its own (``Strategy._around``).

    The first step runs in one coroutine frame, with no awaitable object and no
    ABC check on the way (together about 9,000 instructions when they were
    there): a call that returns at once costs a clock read, a context object
    and one set and reset of the context variable.
    """
    monotonic = reader(clock)
    get, set_, reset = CURRENT.get, CURRENT.set, CURRENT.reset

    async def limited(*args: Any, **kwargs: Any) -> Any:
        if hub is not None and hub.active:
            return await report(*args, **kwargs)  # type: ignore[misc]
        # Called before the clock starts and outside this context, as an
        # awaitable given to await_with_timeout would have been.
        awaitable: Any = None
        if steps is None:  # fn(*args) without keywords: fn(**kwargs) copies the dict
            awaitable = fn(*args, **kwargs) if kwargs else fn(*args)  # type: ignore[misc]
        start = monotonic()
        outer = get()
        own: float | None = None
        left = seconds
        if outer is None:  # the common case: this limit makes the call's context
            call: CallContext = FirstContext()
            call._operation = operation
            call._deadline = start + seconds
            call._clock = clock
        else:
            call, left, bound = within(outer, seconds, clock, start, operation)
            if bound:
                own = seconds
                if left <= 0.0:
                    close = getattr(awaitable, "close", None)
                    if close is not None:
                        close()  # never started: no "never awaited" warning
                    raise expire(left, own)
        token = set_(call)
        try:
            # next() with a default on a generator that returns None raises no
            # StopIteration, where awaitable.send(None) would: 600 instructions less.
            box: list[Any] = []
            if steps is not None:
                stepper = steps(box, args, kwargs)
            else:
                if type(awaitable) is not CoroutineType and not isinstance(awaitable, Coroutine):
                    awaitable = awaitable.__await__()  # a future, or another awaitable object
                stepper = _stepper(awaitable, box)
            pending = next(stepper, _DONE)
            if pending is _DONE:
                return box[0]
            await _rest(stepper, pending, left, start, clock, expire, own)
            return box[0]
        finally:
            # Not contextlib.suppress: this runs on every call, and try costs nothing.
            try:  # noqa: SIM105
                reset(token)
            except ValueError:
                pass  # closed by the garbage collector, outside the task's context

    return limited


def limiter_steps(seconds: float, clock: Clock, operation: str | None, expire: Expire,
                  steps: Steps) -> Steps:
    """The layer :func:`limiter` makes of ``steps`` as :data:`Steps` itself, for a
    layer outside it that drives generators (``pipeline_fused``): the limit's own
    coroutine frame, argument tuple and keyword dict are spared (about 900
    instructions per call, counted with callgrind on CPython 3.11). Everything
    the limit does is what ``limited`` does for ``steps``, with no hub (it is
    never the outermost layer)."""
    monotonic = reader(clock)
    get, set_, reset = CURRENT.get, CURRENT.set, CURRENT.reset

    @types.coroutine
    def limited(box: list[Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Generator[Any, Any, None]:
        start = monotonic()
        outer = get()
        own: float | None = None
        left = seconds
        if outer is None:  # as in limiter()
            call: CallContext = FirstContext()
            call._operation = operation
            call._deadline = start + seconds
            call._clock = clock
        else:
            call, left, bound = within(outer, seconds, clock, start, operation)
            if bound:
                own = seconds
                if left <= 0.0:
                    raise expire(left, own)
        token = set_(call)
        try:
            stepper = steps(box, args, kwargs)
            pending = next(stepper, _DONE)
            if pending is not _DONE:
                yield from _rest(stepper, pending, left, start, clock, expire, own)
        finally:
            try:  # noqa: SIM105 - as in limiter()
                reset(token)
            except ValueError:
                pass

    return limited


@types.coroutine
def finish(steps: Any, pending: Any) -> Generator[Any, Any, Any]:
    """Await the rest of ``steps`` (a generator that suspended on ``pending``
    when it was started with ``next(steps, DONE)``)."""
    return (yield from _drive(steps, pending))


_DONE: Final = object()
"""What ``next(stepper, _DONE)`` returns when the awaitable completed in its first step."""
DONE: Final = _DONE


@types.coroutine
def _stepper(steps: Any, box: list[Any]) -> Generator[Any, Any, None]:
    """Await ``steps`` and put its result in ``box``."""
    box.append((yield from steps))


@types.coroutine
def _rest(steps: Any, pending: Any, seconds: float, start: float, clock: Clock,
          expire: Expire, own: float | None) -> Generator[Any, Any, None]:
    """Drive ``steps`` (a :func:`_stepper`), which suspended on ``pending`` in its
    first step, to its end under the time left of ``seconds`` since ``start``."""
    remaining = max(0.0, seconds - (clock.monotonic() - start))
    limit: AsyncTimeout = clock.timeout(remaining)
    yield from limit.__aenter__().__await__()
    try:
        yield from _drive(steps, pending)
    except BaseException as exc:
        try:
            yield from limit.__aexit__(type(exc), exc, exc.__traceback__).__await__()
        except TimeoutError as expired:
            if not limit.expired():
                raise
            raise expire(seconds, own) from expired
        raise
    yield from limit.__aexit__(None, None, None).__await__()


def _drive(steps: Any, pending: Any) -> Generator[Any, Any, Any]:
    """``yield from`` by hand: pass every suspension of ``steps`` up to the task,
    and every value, exception or close back down."""
    while True:
        try:
            value = yield pending
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:
            try:
                pending = steps.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                pending = steps.send(value)
            except StopIteration as done:
                return done.value
