"""Typed events for every decision a strategy makes, and where they go.

Each strategy owns a :class:`Listeners` hub. A hub delivers an event to its
own listeners and to those of its parents: the global hub (:data:`GLOBAL`)
is every hub's parent, and a pipeline's hub becomes a parent of the hubs of
the strategies it holds. A listener may subscribe to some event kinds only.

Invariants:

- A hub holds its parents and its children weakly (the global hub, which
  never dies, through one shared stand-in). A breaker shared through the
  registry outlives the pipelines built around it (one per request, say); a
  pipeline keeps its own hub alive, and when the pipeline goes, its hub leaves
  the parents of the breaker's hub. So any number of short-lived pipelines on
  one strategy cost it constant memory and constant work.
- A hub's ``_flat`` holds the listeners of the hub and its live ancestors and
  ``_by_kind`` the same by event kind; both are recomputed (for the hub, then
  its descendants) under the one lock on every change that alters them, so
  delivery reads them without locking.
- A dead parent is pruned by a weakref callback. That callback can run in
  any thread, at any allocation, even while its own thread holds the lock:
  it only queues the orphaned child and prunes if the lock is free; whoever
  holds the lock prunes the queue before and after releasing it.

Nothing is built when nobody listens: a strategy asks the hub for the
listeners of one kind (:meth:`Listeners.of`), an empty tuple when there are
none, and constructs the event only when that tuple is not empty. A listener
that raises is logged and never breaks the protected call.

Example::

    import buttress
    from buttress.events import RetryScheduled

    def log_retry(event: RetryScheduled) -> None:
        print(f"{event.name}: attempt {event.attempt} failed, next in {event.delay:.2f}s")

    buttress.add_listener(log_retry, RetryScheduled)
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from buttress._core import forksafe
from buttress._core.logs import logger, redact

__all__ = [
    "GLOBAL",
    "AttemptFailed",
    "AttemptStarted",
    "CallRejected",
    "Event",
    "FallbackUsed",
    "GaveUp",
    "Listener",
    "Listeners",
    "RetryScheduled",
    "SlowCall",
    "StateChanged",
    "Succeeded",
    "TimedOut",
    "add_listener",
    "remove_listener",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: which kind of strategy spoke (``source``: "retry",
    "circuit_breaker", "timeout", "fallback", "bulkhead", "metrics") and the
    name of the policy or operation, when it has one."""

    source: str
    name: str | None


@dataclass(frozen=True, slots=True)
class AttemptStarted(Event):
    """Attempt number ``attempt`` (1-based) is about to call the function."""

    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptFailed(Event):
    """Attempt ``attempt`` raised ``exception`` or returned a ``result`` that
    ``retry_on_result`` rejected (then ``exception`` is None)."""

    attempt: int
    exception: BaseException | None
    result: Any


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """After failed attempt ``attempt``, the next one starts in ``delay`` seconds."""

    attempt: int
    delay: float
    exception: BaseException | None


@dataclass(frozen=True, slots=True)
class GaveUp(Event):
    """The call ended without success after ``attempts`` attempts. ``reason`` is
    "exhausted" (no attempts or time left), "deadline" (the call's deadline
    would pass during the next wait), "not_retryable", or "cancelled"
    (cancellation, an interrupt or an exit: not a verdict on the callee);
    ``duration`` is the whole call's, when it was measured."""

    attempts: int
    exception: BaseException | None
    reason: str
    duration: float | None


@dataclass(frozen=True, slots=True)
class Succeeded(Event):
    """The call succeeded on attempt ``attempts``, ``duration`` seconds after the
    first attempt started (None when it was not measured)."""

    attempts: int
    duration: float | None


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """A circuit breaker moved from ``old_state`` to ``new_state``."""

    old_state: Any
    new_state: Any


@dataclass(frozen=True, slots=True)
class CallRejected(Event):
    """A call was refused without running: by an open breaker (``state``, and the
    ``remaining`` seconds before a probe is allowed) or a full bulkhead."""

    state: Any
    remaining: float


@dataclass(frozen=True, slots=True)
class SlowCall(Event):
    """A call took ``duration`` seconds, at or over the ``threshold``."""

    duration: float
    threshold: float


@dataclass(frozen=True, slots=True)
class TimedOut(Event):
    """A call was stopped (or, for a sync ``with`` block, judged) after ``timeout``
    seconds."""

    timeout: float


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """The fallback answered instead of the call, which failed with
    ``exception``; ``age`` is the age of a cached value, when one was served."""

    exception: BaseException
    age: float | None


Listener = Callable[[Any], object]
E = TypeVar("E", bound=Event)
L = TypeVar("L", bound=Listener)

_NONE: tuple[Listener, ...] = ()
_NO_KINDS: dict[type[Event], tuple[Listener, ...]] = {}  # shared, never mutated


class _ParentRef(weakref.ref):  # type: ignore[type-arg]
    """A child's weak reference to one parent hub, naming the child (weakly) so
    that the parent's death can prune it."""

    __slots__ = ("child",)

    child: weakref.ref[Listeners]


class _Forever:
    """Stands in for a weak reference to the global hub, which every strategy's
    hub has as a parent and which lives as long as the process: one shared
    object instead of two weak references per hub (about 140 bytes a breaker)."""

    __slots__ = ()

    def __call__(self) -> Listeners:
        return GLOBAL


_FOREVER = _Forever()

# Hubs that lost a parent, queued by _parent_gone until the lock is free.
_orphaned: list[weakref.ref[Listeners]] = []


def _parent_gone(ref: _ParentRef) -> None:
    # A weakref callback (see the module's invariants): never wait for the lock.
    _orphaned.append(ref.child)
    _prune()


def _prune() -> None:
    """Prune orphaned hubs now if no thread holds the lock; a holder prunes on
    release, and checks again after it (a callback may have queued meanwhile)."""
    lock = Listeners._lock
    while _orphaned and lock.acquire(blocking=False):
        try:
            _prune_locked()
        finally:
            lock.release()


def _prune_locked() -> None:
    while _orphaned:
        child = _orphaned.pop()()
        if child is not None:
            child._parents = tuple(ref for ref in child._parents if ref() is not None)
            if child.active:
                child._refresh()


class _Changing:
    """``with _CHANGING:`` holds the hubs' lock for a change and prunes the
    hubs orphaned meanwhile before and after releasing it."""

    __slots__ = ()

    def __enter__(self) -> None:
        Listeners._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        try:
            _prune_locked()
        finally:
            Listeners._lock.release()
        _prune()


_CHANGING = _Changing()


class Listeners:
    """A hub of listeners: its own, plus those of its parents.

    ``active`` is True when any listener (own or inherited) exists, so a hot
    path can skip all event work with one attribute read.

    A hub holds its parents weakly: it hears a parent's listeners while
    something else keeps the parent alive (a pipeline keeps its own hub, and
    a function a pipeline protects keeps the pipeline). A dropped pipeline thus
    leaves the strategies it held as it found them.
    """

    __slots__ = ("__weakref__", "_by_kind", "_children", "_flat", "_own", "_parents", "active")

    _lock = forksafe.lock()  # one for all hubs: changes are rare, reads take none

    def __init__(self, *parents: Listeners) -> None:
        # Tuples, a shared empty map and a lazily made WeakSet: every strategy
        # owns a hub, and a thousand idle hubs should weigh little.
        self._own: tuple[tuple[Listener, tuple[type[Event], ...]], ...] = ()
        self._parents: tuple[_ParentRef | _Forever, ...] = ()
        self._children: weakref.WeakSet[Listeners] | None = None
        self._by_kind: dict[type[Event], tuple[Listener, ...]] = _NO_KINDS
        # Own and inherited (listener, kinds) entries, deduplicated, in order.
        self._flat: tuple[tuple[Listener, tuple[type[Event], ...]], ...] = ()
        self.active = False
        for parent in parents:
            self.attach(parent)

    def add(self, listener: L, *kinds: type[Event]) -> L:
        """Deliver events to ``listener``: every kind, or only ``kinds`` (and their
        subclasses). Returns the listener, so this works as a decorator."""
        if not callable(listener):
            raise TypeError(f"a listener must be callable, got {listener!r}")
        for kind in kinds:
            if not (isinstance(kind, type) and issubclass(kind, Event)):
                raise TypeError(f"listener kinds must be Event subclasses, got {kind!r}")
        with _CHANGING:
            self._own = (*self._own, (listener, kinds))
            self._refresh()
        return listener

    def remove(self, listener: Listener) -> None:
        """Stop delivering to ``listener`` (every registration of it)."""
        with _CHANGING:
            before = len(self._own)
            self._own = tuple(entry for entry in self._own if entry[0] != listener)
            if len(self._own) == before:
                raise ValueError(f"{listener!r} is not a listener here")
            self._refresh()

    def clear(self) -> None:
        """Remove this hub's own listeners (inherited ones stay)."""
        with _CHANGING:
            self._own = ()
            self._refresh()

    def attach(self, parent: Listeners) -> None:
        """Also deliver to ``parent``'s listeners, for as long as ``parent`` lives
        (a pipeline attaches its hub to the strategies it holds). The parent is
        held weakly: keep it, or its owner, alive."""
        with _CHANGING:
            if parent is self or self in parent._ancestors():
                raise ValueError("a listener hub can not be its own parent")
            if parent not in self.parents:
                ref: _ParentRef | _Forever
                if parent is GLOBAL:
                    ref = _FOREVER
                else:
                    ref = _ParentRef(parent, _parent_gone)
                    ref.child = weakref.ref(self)
                self._parents = (*self._parents, ref)
                if parent._children is None:
                    parent._children = weakref.WeakSet()
                parent._children.add(self)
                if parent.active:  # a parent with nobody listening changes nothing
                    self._refresh()

    def detach(self, parent: Listeners) -> None:
        """Stop delivering to ``parent``'s listeners."""
        with _CHANGING:
            if parent in self.parents:
                self._parents = tuple(ref for ref in self._parents if ref() is not parent)
                if parent._children is not None:
                    parent._children.discard(self)
                if self.active:  # an inactive hub stays inactive with fewer parents
                    self._refresh()

    @property
    def parents(self) -> tuple[Listeners, ...]:
        """The live hubs this hub delivers to besides its own listeners."""
        return tuple(parent for ref in self._parents if (parent := ref()) is not None)

    def of(self, kind: type[Event]) -> tuple[Listener, ...]:
        """The listeners that want events of ``kind``; empty when nobody does.
        Strategies build an event only when this is not empty.

        Hot paths inside buttress read ``hub._by_kind.get(kind)`` instead: the
        same listeners (falsy when there are none, ``_by_kind`` being empty
        whenever the hub is inactive) without this frame, ~450 instructions."""
        return self._by_kind.get(kind, _NONE) if self.active else _NONE

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every listener that wants its kind."""
        deliver(self.of(type(event)), event)

    @property
    def listeners(self) -> list[Listener]:
        """The own listeners of this hub, in registration order."""
        return [listener for listener, _ in self._own]

    def _ancestors(self) -> set[Listeners]:
        seen: set[Listeners] = set()
        stack = list(self.parents)
        while stack:
            hub = stack.pop()
            if hub not in seen:
                seen.add(hub)
                stack.extend(hub.parents)
        return seen

    def _refresh(self, force: bool = False) -> None:
        # Called with the lock held. Recompute this hub from its own listeners and
        # its parents' flattened ones (current: changes flow parent to child), then
        # its descendants, unless nothing changed here (``force``: a new kind).
        parents = self.parents
        if len(parents) == 1 and not self._own:
            # The common case, a strategy under the global hub only: share its map.
            flat, by_kind = parents[0]._flat, parents[0]._by_kind
        else:
            entries = list(self._own)
            for parent in parents:
                for entry in parent._flat:
                    if entry not in entries:
                        entries.append(entry)
            flat = tuple(entries)
            if flat == self._flat and not force:
                return  # before building a map nobody needs
            by_kind = {
                kind: tuple(listener for listener, kinds in flat
                            if not kinds or issubclass(kind, kinds))
                for kind in _KINDS
            } if flat else _NO_KINDS
        if flat == self._flat and not force:
            return
        self._flat = flat
        self._by_kind = by_kind  # before ``active``: readers take no lock
        self.active = bool(flat)
        for child in list(self._children or ()):
            child._refresh(force)


def deliver(listeners: tuple[Listener, ...], event: Event) -> None:
    """Call each listener with ``event``; one that raises is logged and skipped."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # call_hook's rule, inlined: this runs for every event
            listener_raised(listener)


def listener_raised(listener: Listener) -> None:
    """Log, from its ``except`` block, that ``listener`` raised (and is skipped)."""
    logger.exception("buttress: callback %r raised; the protected call is unaffected",
                     listener)


_KINDS: tuple[type[Event], ...] = (
    AttemptStarted, AttemptFailed, RetryScheduled, GaveUp, Succeeded,
    StateChanged, CallRejected, SlowCall, TimedOut, FallbackUsed,
)

_MAKERS: dict[type[Event], Callable[..., Any]] = {}
# Each kind's draft (see _maker), by kind: a test counts the events made through them.
_DRAFTS: dict[type[Event], type] = {}


def _quick_init(kind: type[Event]) -> None:
    """Give ``kind`` an ``__init__`` that stores each field through its slot, and
    a maker (:func:`maker`) that builds one without calling the class.

    A frozen dataclass's own ``__init__`` goes through ``object.__setattr__``
    for every field: about 480 ns for a four-field event, where storing through
    the slot descriptors takes about 270 ns. Events stay frozen: assignment
    after construction still raises ``FrozenInstanceError``.
    """
    names = [field.name for field in dataclasses.fields(kind)]
    scope: dict[str, Any] = {f"_set{i}": getattr(kind, name).__set__
                             for i, name in enumerate(names)}
    # A name that may hold a secret (a URL, a "token=" pair) is masked here, once,
    # so that no listener ever receives it; other names cost two substring tests.
    scope["_redact"] = redact
    masked = ("name if name.__class__ is not str or ('://' not in name and '=' not in name)"
              " else _redact(name)")
    body = "".join(f"    _set{i}(self, {masked if name == 'name' else name})\n"
                   for i, name in enumerate(names))
    params = ", ".join(names)
    exec(f"def __init__(self, {params}):\n{body}", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{kind.__qualname__}.__init__"
    kind.__init__ = init  # type: ignore[method-assign]
    _MAKERS[kind] = _maker(kind, names, masked)


def _maker(kind: type[E], names: list[str], masked: str) -> Callable[..., E]:
    """The function :func:`maker` gives for ``kind``: it fills a draft, a mutable
    twin of ``kind`` with the same slots (plain attribute stores, about 20
    instructions each where a slot's ``__set__`` costs 640), then makes it a
    ``kind`` by assigning ``__class__``, which the identical layout allows."""
    if kind.__dict__.get("__slots__") is None:  # not a slots dataclass: call the class
        return kind
    draft = type(f"_{kind.__name__}Draft", kind.__bases__, {
        "__slots__": kind.__dict__["__slots__"], "__init__": object.__init__,
        "__setattr__": object.__setattr__, "__delattr__": object.__delattr__})
    _DRAFTS[kind] = draft
    scope: dict[str, Any] = {"_draft": draft, "_kind": kind, "_redact": redact}
    stores = "".join(f"    self.{name} = {masked if name == 'name' else name}\n"
                     for name in names)
    exec(f"def make({', '.join(names)}):\n    self = _draft()\n{stores}"
         f"    self.__class__ = _kind\n    return self\n", scope)
    make: Callable[..., E] = scope["make"]
    make.__qualname__ = make.__name__ = f"make_{kind.__name__}"
    return make


def maker(kind: type[E]) -> Callable[..., E]:
    """A function that builds a ``kind`` event from its fields, positionally, for
    hot paths: ``maker(Succeeded)("retry", "fetch", 1, 0.25)`` is exactly
    ``Succeeded("retry", "fetch", 1, 0.25)`` (same class, fields, masking, equality,
    repr and pickle, and as frozen) for about 1,700 instructions instead of 4,700
    (CPython 3.11: a frozen slot's store is a method call, and calling a class
    whose ``__init__`` is Python code enters a new interpreter loop). ``kind`` is
    a built-in kind or one given to :func:`register_kind`."""
    return _MAKERS[kind]


for _kind in _KINDS:
    _quick_init(_kind)

GLOBAL = Listeners()
"""The global hub: its listeners hear every strategy's events."""


def register_kind(kind: type[E]) -> type[E]:
    """Make a new event class deliverable (for strategies outside the core)."""
    global _KINDS
    with _CHANGING:
        if kind not in _KINDS:
            _quick_init(kind)
            _KINDS = (*_KINDS, kind)
            GLOBAL._refresh(force=True)
    return kind


def add_listener(listener: L, *kinds: type[Event]) -> L:
    """Register a global listener: it hears the events of every strategy.
    Give event classes to receive only those kinds::

        buttress.add_listener(print, buttress.events.StateChanged)
    """
    return GLOBAL.add(listener, *kinds)


def remove_listener(listener: Listener) -> None:
    """Unregister a global listener."""
    GLOBAL.remove(listener)
