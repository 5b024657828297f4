"""The per-call context: what one protected call knows about itself.

A :class:`CallContext` carries the operation's name, its absolute deadline on
a clock, the attempt number and the user's items. It lives in one context
variable, so it flows down the call: into nested protected calls, into the
worker thread of a sync timeout, into asyncio tasks created inside. Code under
protection reads it with :func:`remaining_time` (to pass an httpx timeout or a
statement timeout on) and :func:`current_context`.

Rules of this module:

* A context is immutable, but for one field: in a retry's context the attempt
  number follows the retry's attempts as they happen (one context per retried
  call, not one per attempt: each costs an object and a set). A layer that
  changes something (a timeout tightens the deadline, a retry counts its
  attempts) sets a derived context for its own extent and restores the
  previous one when it ends, on every path; after the outermost layer ends,
  :func:`current_context` is what it was before (usually None): nothing leaks.
* The outermost layer creates the context; every layer inside derives from it
  and never replaces its operation name or items. A context made by the user
  (:func:`deadline`) without a name takes the name of the first protected
  layer inside it.
* A deadline only ever tightens: a derived deadline is the earlier of the outer
  one and the layer's own. It is absolute, on the clock of the layer that set
  it (``clock``); a layer on another clock converts through the time remaining.
* Nothing is set unless someone needs it: a layer sets a context only when a
  deadline is involved (a timeout, a :func:`deadline` block) or a retry is
  about to make its second attempt. With none, :func:`remaining_time` is None
  and the success path of a strategy does not touch the context variable.
* A deadline informs; timeouts enforce. Inside a :class:`~buttress.Timeout`
  the limit is the earlier of its own and the deadline (when the deadline is
  the earlier, the error is :class:`~buttress.DeadlineExceededError`), and a
  retry never starts a wait that would end past it. Code under no timeout is
  not interrupted when the deadline passes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Final

from buttress._core import validate
from buttress._core.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "CURRENT", "NO_ITEMS", "CallContext", "Deadline", "FirstContext", "RetryContext",
    "current_context", "deadline", "remaining_time", "retry_context",
]

NO_ITEMS: Final[Mapping[str, object]] = MappingProxyType({})
"""The items of a context that has none (one shared, read-only mapping)."""


class CallContext:
    """What the current protected call knows about itself (read-only).

    ``operation`` is the name of the outermost protected operation (None in a
    :func:`deadline` block that named none, until a protected call names it);
    ``deadline`` is the absolute time, on ``clock``, by which the call should be
    done (None: no deadline); ``attempt`` counts the calls of the nearest retry
    around the code that has retried (1 until one does); ``items`` are the
    user's, given to :func:`deadline`.

    Contexts are made by buttress and never changed (but for a retry's attempt
    number, which follows its attempts): a layer that tightens the deadline or
    counts attempts sets a derived context for its own extent.

    .. versionadded:: 0.2
    """

    __slots__ = ("_attempt", "_clock", "_deadline", "_items", "_operation")

    def __init__(self, operation: str | None, deadline: float | None, clock: Clock,
                 attempt: int = 1, items: Mapping[str, object] = NO_ITEMS) -> None:
        self._operation = operation
        self._deadline = deadline
        self._clock = clock
        self._attempt = attempt
        self._items = items

    @property
    def operation(self) -> str | None:
        """The outermost protected operation's name."""
        return self._operation

    @property
    def deadline(self) -> float | None:
        """Absolute deadline on :attr:`clock` (seconds, its ``monotonic()`` scale), or None."""
        return self._deadline

    @property
    def clock(self) -> Clock:
        """The clock the deadline is measured on."""
        return self._clock

    @property
    def attempt(self) -> int:
        """The attempt number of the nearest retry that has retried (1 before that)."""
        return self._attempt

    @property
    def items(self) -> Mapping[str, object]:
        """The user's items (a read-only mapping)."""
        return self._items

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock.monotonic())

    def __repr__(self) -> str:
        items = f", items={dict(self._items)!r}" if self._items else ""
        return (f"CallContext(operation={self._operation!r}, deadline={self._deadline!r}, "
                f"attempt={self.attempt}{items})")


class FirstContext(CallContext):
    """A :class:`CallContext` for the first attempt, without items, that hot
    paths make without a Python ``__init__``: ``FirstContext()`` is object's
    own (C) constructor, and the caller sets ``_operation``, ``_deadline`` and
    ``_clock``. That saves about 1,000 instructions per object on CPython 3.11
    (a timeout around a call that returns at once makes one per call)."""

    __slots__ = ()

    __init__ = object.__init__
    _attempt = 1
    _items = NO_ITEMS

    def __reduce__(self) -> tuple[type[CallContext], tuple[str | None, float | None, Clock]]:
        # Its class attributes can not be set on an instance: copies are made
        # (copy.copy, pickle) as the plain CallContext it stands for.
        return CallContext, (self._operation, self._deadline, self._clock)


CURRENT: Final[contextvars.ContextVar[CallContext | None]] = contextvars.ContextVar(
    "buttress.context", default=None)
"""The context variable itself, for the layers that derive contexts (its own
``get``/``set``/``reset`` cost no Python frame)."""


def current_context() -> CallContext | None:
    """The context of the protected call running now, or None outside of one
    (or inside one that set none: see the module's rules)::

        >>> current_context() is None
        True
        >>> with deadline(5.0, items={"tenant": "acme"}):
        ...     current_context().items["tenant"]
        'acme'

    .. versionadded:: 0.2
    """
    return CURRENT.get()


def remaining_time() -> float | None:
    """Seconds left of the current call's deadline (never negative), or None
    when it has none. Pass it on to what the call waits for::

        remaining = remaining_time()
        response = client.get(url, timeout=remaining)  # None: the client's default

    Inside a :class:`~buttress.Timeout` this is the earlier of the timeout's
    limit and any outer deadline::

        >>> remaining_time() is None
        True
        >>> with deadline(5.0):
        ...     0.0 < remaining_time() <= 5.0
        True

    .. versionadded:: 0.2
    """
    context = CURRENT.get()
    if context is None or context._deadline is None:
        return None
    return max(0.0, context._deadline - context._clock.monotonic())


def within(outer: CallContext | None, seconds: float, clock: Clock, now: float,
           operation: str | None) -> tuple[CallContext, float, bool]:
    """The context inside a limit of ``seconds`` on ``clock`` (``now`` read from it):
    that context, the seconds the limit really allows, and whether the outer
    deadline is what binds (it is earlier than the limit)."""
    if outer is None:
        return CallContext(operation, now + seconds, clock), seconds, False
    name = outer._operation or operation
    previous = outer._deadline
    if previous is not None:
        left = previous - (now if outer._clock is clock else outer._clock.monotonic())
        if left < seconds:
            left = max(0.0, left)
            if outer._clock is clock and name is outer._operation:
                return outer, left, True
            return CallContext(name, now + left, clock, outer.attempt, outer._items), left, True
    return CallContext(name, now + seconds, clock, outer.attempt, outer._items), seconds, False


class RetryContext(CallContext):
    """The context of a retry's second and later attempts: the outer context's
    fields (or a new context named by the retry), with the attempt number the
    retry's runner moves on before each attempt (``_attempt``), so one object
    serves every attempt of the call.

    Like :class:`FirstContext` it is made without a Python ``__init__``
    (``RetryContext()`` is object's own constructor, about 1,000 instructions
    less per retried call on CPython 3.11): the runner sets all five fields,
    with :func:`retry_context` or inline."""

    __slots__ = ()

    __init__ = object.__init__


def retry_context(outer: CallContext | None, operation: str | None, clock: Clock,
                  attempt: int) -> RetryContext:
    """The :class:`RetryContext` of a retry inside ``outer`` (None: the retry is
    the outermost layer, and its context is named ``operation``)."""
    context: RetryContext = RetryContext()
    if outer is None:
        context._operation = operation
        context._deadline = None
        context._clock = clock
        context._items = NO_ITEMS
    else:
        context._operation = outer._operation or operation
        context._deadline = outer._deadline
        context._clock = outer._clock
        context._items = outer._items
    context._attempt = attempt
    return context


class Deadline:
    """A block of code with a deadline, made by :func:`deadline`; usable with
    ``with`` and ``async with``. One object serves one block at a time."""

    __slots__ = ("_clock", "_items", "_operation", "_seconds", "_tokens")

    def __init__(self, seconds: float | None, clock: Clock, items: Mapping[str, object],
                 operation: str | None) -> None:
        self._seconds = seconds
        self._clock = clock
        self._items = items
        self._operation = operation
        self._tokens: list[contextvars.Token[CallContext | None]] = []

    def __enter__(self) -> CallContext:
        outer = CURRENT.get()
        seconds, clock = self._seconds, self._clock
        if outer is None:
            items: Mapping[str, object] = MappingProxyType(dict(self._items)) \
                if self._items else NO_ITEMS
            at = None if seconds is None else clock.monotonic() + seconds
            context = CallContext(self._operation, at, clock, 1, items)
        else:
            items = MappingProxyType({**outer._items, **self._items}) \
                if self._items else outer._items
            name = outer._operation or self._operation
            if seconds is None:
                context = CallContext(name, outer._deadline, outer._clock, outer.attempt, items)
            else:
                context, _, _ = within(outer, seconds, clock, clock.monotonic(), name)
                context = CallContext(context._operation, context._deadline, context._clock,
                                      context.attempt, items)
        self._tokens.append(CURRENT.set(context))
        return context

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        CURRENT.reset(self._tokens.pop())

    async def __aenter__(self) -> CallContext:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"deadline({self._seconds!r})"


def deadline(seconds: float | None = None, *, clock: Clock | None = None,
             items: Mapping[str, object] | None = None,
             operation: str | None = None) -> Deadline:
    """Give the code in a block a deadline ``seconds`` from now (and, optionally,
    items and an operation name), in sync and async code alike::

        with deadline(5.0):
            handle(request)        # every timeout inside ends by then

        async with deadline(5.0, items={"request_id": rid}):
            await handle(request)

    Protected calls in the block inherit it: a :class:`~buttress.Timeout`
    inside limits its call to the earlier of its own limit and the deadline,
    and a retry never starts a wait that would end past it. It never extends
    an outer deadline. ``seconds=None`` keeps the outer deadline (if any) and
    only adds ``items``, which are merged over the outer block's. ``clock``
    (default: the system clock) measures the deadline; give the clock your
    strategies use (a :class:`~buttress.testing.VirtualClock` in tests).

    The block itself is not interrupted when the deadline passes: timeouts
    enforce it, and :func:`remaining_time` reports it.

    .. versionadded:: 0.2
    """
    if seconds is not None:
        seconds = validate.number("deadline", "seconds", seconds, minimum=0.0)
    if items is not None and not isinstance(items, Mapping):
        raise TypeError(f"deadline items must be a mapping, got {items!r}")
    if operation is not None:
        validate.text("deadline", "operation", operation)
    return Deadline(seconds, SYSTEM_CLOCK if clock is None else clock,
                    items or NO_ITEMS, operation)
