"""The retry runners: the :class:`Retry` strategy and the wrappers it builds.

A decorated call's first attempt runs in its wrapper (on the success path, one
``try`` and the call); after a failure the loops of :mod:`buttress.retry_loops`
drive :class:`~buttress.retry_policy.RetryPolicy`. :class:`Attempt` is the same
loop turned inside out, for ``for attempt in retry.attempts(): with attempt: ...``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar, Unpack

from buttress._core import operation
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.events import AttemptStarted, Succeeded, deliver, listener_raised
from buttress._core.operation import CallStarted, close_operation, open_operation
from buttress._core.operation import current as current_operation
from buttress._core.strategy import Strategy, check_protectable, operation_name
from buttress.options import RetryOptions
from buttress.retry_config import RetryConfig
from buttress.retry_loops import quick_async, quick_sync, resume_async, resume_sync
from buttress.retry_policy import (
    RetryPolicy,
    RetryState,
    _attempt_started,
    _call_started,
    _end_operation,
    _open_operation,
    _succeeded,
)

__all__ = ["Attempt", "Retry"]

F = TypeVar("F", bound=Callable[..., Any])


class Attempt:
    """One attempt of a hand-written retry loop; use it as a context manager.

    Leaving the block with a retryable exception suppresses it (the loop goes on
    after the wait); a non-retryable exception propagates; giving up raises what
    the decorator would raise (``RetryExhaustedError``, or the last exception
    with ``reraise=True``). Cancellation, interrupts and exits always propagate.
    """

    __slots__ = ("_clock", "_delay", "_finished", "_policy", "_state", "number")

    def __init__(self, number: int, policy: RetryPolicy, state: RetryState, clock: Clock) -> None:
        self.number = number
        self._policy = policy
        self._state = state
        self._clock = clock
        self._delay: float | None = None
        self._finished = False

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        self._finished = True
        if exc is None or not isinstance(exc, Exception):
            return False
        try:
            self._delay = self._policy.next_delay(self._state, exc, None, self._clock)
        except Exception as error:
            if error is exc:
                return False  # not retryable: let the original propagate untouched
            raise
        return True

    def _next_delay(self) -> float | None:
        """After the block: the wait before the next attempt, or None when done."""
        if not self._finished:
            raise RuntimeError("each attempt of Retry.attempts() must be entered with `with`")
        if self._delay is None:
            self._policy.finished(self._state, None, self._clock)
        return self._delay


class Retry(Strategy):
    """The retry strategy: a decorator, a pipeline stage, or ``retry.call(fn)``.

    Example::

        @Retry(RetryConfig(max_attempts=3, base_delay=0.5))
        def fetch() -> bytes: ...
    """

    __slots__ = ("_mode", "clock", "config", "events", "policy")

    order = 20
    # A retry opens its call's operation itself, on its watched path (only when
    # somebody listens), and reports its outcome as Succeeded/GaveUp.
    _measures_itself = True

    def __init__(
        self,
        config: RetryConfig | None = None,
        *,
        clock: Clock | None = None,
        _mode: str = "any",
        **options: Unpack[RetryOptions],
    ) -> None:
        if config is not None and not isinstance(config, RetryConfig):
            raise TypeError(f"retry config must be a RetryConfig, got {config!r}")
        if config is None:
            config = RetryConfig(**options)
        elif options:
            config = config.replace(**options)
        self.config = config
        self.policy = RetryPolicy(config)
        #: This retry's listener hub: ``retry.events.add(listener, *kinds)``.
        self.events = self.policy.events
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._mode = _mode

    def _given_name(self) -> str | None:
        """The name this strategy gives its calls, if any (see :func:`operation_name_of`)."""
        return self.config.name

    def __call__(self, fn: F) -> F:
        is_async = check_protectable(fn, "Retry")
        if self._mode == "async" and not is_async:
            raise TypeError(
                f"async_retry needs a coroutine function, got {fn!r}; "
                "use retry() or retry_sync() for sync functions"
            )
        if self._mode == "sync" and is_async:
            raise TypeError(
                f"retry_sync needs a plain function, got coroutine function {fn!r}; "
                "use retry() or async_retry() for async functions"
            )
        return super().__call__(fn)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        policy, clock, events = self.policy, self.clock, self.policy.events
        name = self.config.name or operation_name(fn)
        named = operation.Operation(name)

        def retrying_watched(*args: Any, **kwargs: Any) -> Any:
            state = policy.begin(clock, name, 0, args, kwargs)
            _open_operation(state, named, events)  # CallStarted before AttemptStarted
            state.attempts = 1
            policy.started(state)
            try:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    state.last_exception = exc  # not a local: see retry_loops
                else:
                    if policy.finished(state, result, clock):
                        return result
                    state.last_result = result
                return resume_sync(policy, clock, fn, args, kwargs, state)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    policy.interrupted(state, exc, clock)
                raise
            finally:
                _end_operation(state)  # also when a retry_condition raised

        if not policy.is_lean:
            return retrying_watched
        budget = self.config.budget

        def retrying_heard(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            # retrying_watched() for a lean policy (no deadline, no judged result),
            # with begin(), _open_operation(), started() and finished() inline:
            # a success builds no state and makes no call it can skip (~7,000
            # instructions less a call with a metrics listener installed).
            if budget is not None:
                budget.on_request()
            start = clock.monotonic()
            token = None
            if current_operation() is None:
                token = open_operation(named)
                targets = events._by_kind.get(CallStarted)
                if targets:  # CallStarted before AttemptStarted
                    deliver(targets, _call_started("operation", name, start))
            targets = events._by_kind.get(AttemptStarted)
            if targets:
                deliver(targets, _attempt_started("retry", name, 1))
            try:
                result = fn(*args, **kwargs) if kwargs else fn(*args)
            except Exception as exc:
                state = RetryState(start, 1, name, args, kwargs)
                state.last_exception = exc  # not a local: see retry_loops
            except BaseException as exc:
                state = RetryState(start, 1, name, args, kwargs)
                state.operation = token
                policy.interrupted(state, exc, clock)
                raise
            else:
                if budget is not None:
                    budget.on_success()
                if token is not None:
                    close_operation(token)
                targets = events._by_kind.get(Succeeded)
                if targets:
                    event = _succeeded("retry", name, 1, clock.monotonic() - start)
                    for listener in targets:  # deliver() inline: a frame less a call
                        try:
                            listener(event)
                        except Exception:
                            listener_raised(listener)
                return result
            state.operation = token
            try:
                return resume_sync(policy, clock, fn, args, kwargs, state)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    policy.interrupted(state, exc, clock)
                raise
            finally:
                _end_operation(state)  # also when a retry_condition raised

        if budget is not None:
            on_request, on_success = budget.on_request, budget.on_success

            def retrying_on_budget(*args: Any, **kwargs: Any) -> Any:
                if events.active:
                    return retrying_heard(args, kwargs)
                on_request()
                try:
                    result = fn(*args, **kwargs) if kwargs else fn(*args)
                except Exception as exc:
                    state = RetryState(None, 1, name, args, kwargs)
                    state.last_exception = exc  # not a local: see retry_loops
                else:
                    on_success()
                    return result
                return resume_sync(policy, clock, fn, args, kwargs, state)

            return retrying_on_budget

        if policy.quick is not None:  # the commonest retry: see retry_loops
            return quick_sync(policy, clock, fn, name, retrying_heard)

        def retrying(*args: Any, **kwargs: Any) -> Any:
            if events.active:
                return retrying_heard(args, kwargs)
            try:
                # fn(*args) when there are no keywords: fn(**kwargs) copies the
                # dict, ~200 instructions of a ~2,000-instruction wrapper.
                return fn(*args, **kwargs) if kwargs else fn(*args)
            except Exception as exc:
                state = RetryState(None, 1, name, args, kwargs)
                state.last_exception = exc  # not a local: see retry_loops
            # Resumed outside the except block so that later failures are not
            # chained onto this one through __context__.
            return resume_sync(policy, clock, fn, args, kwargs, state)

        return retrying

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        policy, clock, events = self.policy, self.clock, self.policy.events
        name = self.config.name or operation_name(fn)
        named = operation.Operation(name)

        async def retrying_watched(*args: Any, **kwargs: Any) -> Any:
            state = policy.begin(clock, name, 0, args, kwargs)
            _open_operation(state, named, events)  # CallStarted before AttemptStarted
            state.attempts = 1
            policy.started(state)
            try:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    state.last_exception = exc  # not a local: see retry_loops
                else:
                    if policy.finished(state, result, clock):
                        return result
                    state.last_result = result
                return await resume_async(policy, clock, fn, args, kwargs, state)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    policy.interrupted(state, exc, clock)
                raise
            finally:
                _end_operation(state)  # also when a retry_condition raised

        if not policy.is_lean:
            return retrying_watched
        budget = self.config.budget

        async def retrying_heard(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            # The twin of wrap()'s retrying_heard().
            if budget is not None:
                budget.on_request()
            start = clock.monotonic()
            token = None
            if current_operation() is None:
                token = open_operation(named)
                targets = events._by_kind.get(CallStarted)
                if targets:  # CallStarted before AttemptStarted
                    deliver(targets, _call_started("operation", name, start))
            targets = events._by_kind.get(AttemptStarted)
            if targets:
                deliver(targets, _attempt_started("retry", name, 1))
            try:
                result = await (fn(*args, **kwargs) if kwargs else fn(*args))
            except Exception as exc:
                state = RetryState(start, 1, name, args, kwargs)
                state.last_exception = exc  # not a local: see retry_loops
            except BaseException as exc:
                state = RetryState(start, 1, name, args, kwargs)
                state.operation = token
                policy.interrupted(state, exc, clock)
                raise
            else:
                if budget is not None:
                    budget.on_success()
                if token is not None:
                    close_operation(token)
                targets = events._by_kind.get(Succeeded)
                if targets:
                    event = _succeeded("retry", name, 1, clock.monotonic() - start)
                    for listener in targets:  # deliver() inline: a frame less a call
                        try:
                            listener(event)
                        except Exception:
                            listener_raised(listener)
                return result
            state.operation = token
            try:
                return await resume_async(policy, clock, fn, args, kwargs, state)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    policy.interrupted(state, exc, clock)
                raise
            finally:
                _end_operation(state)  # also when a retry_condition raised

        if budget is not None:
            on_request, on_success = budget.on_request, budget.on_success

            async def retrying_on_budget(*args: Any, **kwargs: Any) -> Any:
                if events.active:
                    return await retrying_heard(args, kwargs)
                on_request()
                try:
                    result = await (fn(*args, **kwargs) if kwargs else fn(*args))
                except Exception as exc:
                    state = RetryState(None, 1, name, args, kwargs)
                    state.last_exception = exc  # not a local: see retry_loops
                else:
                    on_success()
                    return result
                return await resume_async(policy, clock, fn, args, kwargs, state)

            return retrying_on_budget

        if policy.quick is not None:
            return quick_async(policy, clock, fn, name, retrying_heard)

        async def retrying(*args: Any, **kwargs: Any) -> Any:
            if events.active:
                return await retrying_heard(args, kwargs)
            try:
                return await (fn(*args, **kwargs) if kwargs else fn(*args))
            except Exception as exc:
                state = RetryState(None, 1, name, args, kwargs)
                state.last_exception = exc  # not a local: see retry_loops
            return await resume_async(policy, clock, fn, args, kwargs, state)

        return retrying

    def attempts(self) -> Iterator[Attempt]:
        """The retry loop as an iterator, for code that is not a single function::

            for attempt in Retry(max_attempts=3).attempts():
                with attempt:
                    response = session.get(url)

        ``retry_on_result`` does not apply here (there is no result to look at).
        """
        policy, clock = self.policy, self.clock
        state = policy.begin(clock, self.config.name, attempts=0)
        while True:
            state.attempts += 1
            policy.started(state)
            attempt = Attempt(state.attempts, policy, state, clock)
            yield attempt
            delay = attempt._next_delay()
            if delay is None:
                return
            if delay > 0.0:
                clock.sleep(delay)

    async def attempts_async(self) -> AsyncIterator[Attempt]:
        """The async twin of :meth:`attempts`::

            async for attempt in Retry(max_attempts=3).attempts_async():
                with attempt:
                    response = await client.get(url)
        """
        policy, clock = self.policy, self.clock
        state = policy.begin(clock, self.config.name, attempts=0)
        while True:
            state.attempts += 1
            policy.started(state)
            attempt = Attempt(state.attempts, policy, state, clock)
            yield attempt
            delay = attempt._next_delay()
            if delay is None:
                return
            if delay > 0.0:
                await clock.async_sleep(delay)

    def __repr__(self) -> str:
        return f"Retry({self.config!r})"


# --- the seeds' spellings ----------------------------------------------------------------
