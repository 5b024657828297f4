"""The block forms of :class:`~buttress.breaker.CircuitBreaker`: ``with
breaker:`` and ``async with breaker:``.

A block has no function to wrap, so what its exit needs to know (the epoch it
was admitted in, its start, the breaker's timeout around it) travels in a
*frame* kept in a context variable of the breaker's own, one per thread and
task. Blocks of one breaker nest; each exit pops its own frame.

Invariants: every admitted block settles exactly one outcome (or gives its
permit back); an exit in another context than its entry (a generator resumed
elsewhere) still finds and pops its frame; the closed breaker's block takes
no lock.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from buttress._core import forksafe, operation
from buttress._core.breaker_machine import REJECT
from buttress._core.errors import CircuitBreakerError, OperationTimeoutError

if TYPE_CHECKING:
    from buttress._core.breaker_store import BreakerStore, Gate
    from buttress._core.clock import Clock
    from buttress._core.events import Listeners
    from buttress.breaker_config import CircuitBreakerConfig
    from buttress.timeout import Timeout

__all__ = ["BreakerBlocks"]

# What ``with breaker:`` remembers between enter and exit, as a list (cheaper
# to build than an object): [epoch, start, async timeout or None, the Token of
# the set that pushed it]. The exit resets the token: cheaper than a second set.
# A block reported as an operation holds its Watch (never equal to a ticket, so
# the exit's fast path leaves it to _exit) for the epoch, which the Watch holds.
_Frame = list[Any]
_FRAMES_LOCK: Final = forksafe.lock()


def _pop(frames: contextvars.ContextVar[_Frame | None],
         token: contextvars.Token[_Frame | None]) -> None:
    """Put back the frame that was current before ``token``'s block entered."""
    try:
        frames.reset(token)
    except ValueError:  # exited in another context than it entered (a generator's)
        old = token.old_value
        frames.set(None if old is contextvars.Token.MISSING else old)


class BreakerBlocks:
    """``with``/``async with`` for :class:`~buttress.breaker.CircuitBreaker`,
    which provides the attributes declared here."""

    __slots__ = ()

    if TYPE_CHECKING:
        name: str
        config: CircuitBreakerConfig
        clock: Clock
        events: Listeners
        _frames: contextvars.ContextVar[_Frame | None] | None
        _entered: asyncio.Future[Self] | None
        _exited: asyncio.Future[None] | None
        _gate: Gate
        _store: BreakerStore
        _timed: bool
        _limit: Timeout | None
        _successes: Iterator[object]
        _open_rejection: Callable[[float, float], CircuitBreakerError]
        _rejection: Callable[[float], CircuitBreakerError]
        _succeeded: Callable[[int, float], None]
        _failed: Callable[[int, BaseException, float], None]

    def _context(self) -> contextvars.ContextVar[_Frame | None]:
        with _FRAMES_LOCK:
            frames = self._frames
            if frames is None:
                frames = contextvars.ContextVar(f"buttress.breaker.{self.name}", default=None)
                self._frames = frames  # type: ignore[misc]  # a slot of CircuitBreaker
        return frames

    def _enter(self, timeout: Any) -> None:
        if self.events.active and operation.current() is None:
            watch = operation.enter_block(self.events, self.name, self.clock,
                                          lambda: self._enter(timeout))  # entered plainly
            if watch is not None:  # the frame holds the Watch, which holds the epoch
                top = self._context().get()
                assert top is not None
                watch.held = top[0]
                top[0] = watch
                return
        gate = self._gate
        epoch = gate.ticket
        if epoch < 0:
            now = self.clock.monotonic()
            until = gate.open_until
            if now < until:
                raise self._open_rejection(now, until)
            epoch = self._store.admit(now)
            if epoch == REJECT:
                raise self._rejection(now)
        start = self.clock.monotonic() if self._timed else 0.0
        frames = self._frames
        if frames is None:
            frames = self._context()
        frame: _Frame = [epoch, start, timeout, None]
        frame[3] = frames.set(frame)

    def _frame(self) -> _Frame | None:
        return None if self._frames is None else self._frames.get()

    def _exit(self, exc: BaseException | None, *, judge_overrun: bool = False) -> None:
        frames = self._frames
        frame = None if frames is None else frames.get()
        if frame is None or frames is None:
            raise RuntimeError(f"circuit breaker {self.name!r} exited without being entered")
        epoch = frame[0]
        if epoch.__class__ is operation.Watch:  # settle the breaker, then end the operation
            frame[0] = epoch.held
            try:
                self._exit(exc, judge_overrun=judge_overrun)
            finally:
                operation.end(epoch, exc)
            return
        _pop(frames, frame[3])
        if not self._timed:
            if exc is None:
                self._succeeded(epoch, 0.0)
            else:
                self._failed(epoch, exc, 0.0)
            return
        config = self.config
        duration = self.clock.monotonic() - frame[1]
        if exc is None and judge_overrun and config.timeout is not None \
                and duration > config.timeout:
            exc = OperationTimeoutError(operation=self.name, timeout=config.timeout)
        if exc is None:
            self._succeeded(epoch, duration)
        else:
            self._failed(epoch, exc, duration)

    def __enter__(self) -> Self:
        gate = self._gate
        epoch = gate.ticket
        frames = self._frames
        if epoch < 0 or self._timed or frames is None or self.events.active:
            if epoch < 0:  # an open breaker refuses here, a frame up from _enter
                now = self.clock.monotonic()
                if now < gate.open_until and not self.events.active:
                    raise self._open_rejection(now, gate.open_until)
            self._enter(None)
        else:
            # The closed breaker's fast path: _enter inlined.
            frame: _Frame = [epoch, 0.0, None, None]
            frame[3] = frames.set(frame)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        frames = self._frames
        if exc is None and not self._timed and frames is not None:
            frame = frames.get()
            if frame is not None and self._gate.ticket == frame[0]:
                # The closed breaker's fast path: _exit and _succeeded inlined.
                try:
                    frames.reset(frame[3])
                except ValueError:
                    _pop(frames, frame[3])
                next(self._successes)
                return
        # A sync block can not be interrupted; one that overran ``timeout`` still
        # counts as a failure (its own result stands).
        self._exit(exc, judge_overrun=True)

    # ``async with`` under asyncio: __aenter__ and __aexit__ are plain functions
    # that do their work at once and return a future that is already done (one
    # per breaker, made on the first block), so ``await`` takes its result in C
    # without creating and running a coroutine: ~1,000 instructions less per
    # block. A done future is never pending, so any loop (or no asyncio at all)
    # may await it. Without a running asyncio loop (trio), and for a breaker
    # with ``timeout=``, whose entry and exit do await, the coroutines serve.

    def __aenter__(self) -> Awaitable[Self]:
        entered = self._entered
        if entered is None:
            return self._aenter()
        self.__enter__()  # no timeout= (else no done future): the same entry
        return entered

    def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                  tb: TracebackType | None) -> Awaitable[None]:
        exited = self._exited
        if exited is None:
            return self._aexit(exc_type, exc, tb)
        frames = self._frames
        if exc is None and not self._timed and frames is not None:
            frame = frames.get()
            if frame is not None and self._gate.ticket == frame[0]:
                try:
                    frames.reset(frame[3])
                except ValueError:
                    _pop(frames, frame[3])
                next(self._successes)
                return exited
        self._exit(exc)
        return exited

    async def _aenter(self) -> Self:
        limit = self._limit
        if limit is None:
            if self._entered is None and (loop := asyncio._get_running_loop()) is not None:
                entered, exited = loop.create_future(), loop.create_future()
                entered.set_result(self)
                exited.set_result(None)
                self._exited = exited  # type: ignore[misc]  # before _entered, which turns both on
                self._entered = entered  # type: ignore[misc]  # slots of CircuitBreaker
            self._enter(None)
            return self
        # Its timeout (named after the breaker, on its hub) reports the block.
        await limit.__aenter__()
        try:
            self._enter(limit)
        except BaseException:
            await limit.__aexit__(None, None, None)
            raise
        return self

    async def _aexit(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                     tb: TracebackType | None) -> None:
        frame = self._frame()
        limit = frame[2] if frame is not None else None
        if limit is not None:
            # The timeout ends first: a body it cut short is a failure of the call
            # (OperationTimeoutError), not a cancellation.
            try:
                await limit.__aexit__(exc_type, exc, tb)
            except OperationTimeoutError as error:
                self._exit(error)
                raise
        self._exit(exc)
