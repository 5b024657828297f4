"""The retry loops: what a retried call runs after its first attempt failed.

:func:`resume_sync` and :func:`resume_async` drive any
:class:`~buttress.retry_policy.RetryPolicy` through its steps
(:meth:`~buttress.retry_policy.RetryPolicy.next_delay`, ``finished``); they are,
with :func:`quick_sync` and :func:`quick_async`, the only code of retrying that
sleeps. The quick wrappers are the whole call of the commonest retry (see
``RetryPolicy.quick``) while nobody listens: the first attempt, and the retries
decided inline, with no Python call per retry but the attempt and the log check.

Invariants:

* Every rule of retrying lives in ``RetryPolicy.decide``; the quick wrappers
  decide inline only the failures ``RetryPolicy.quick`` settles as a retry or
  as out of attempts, and hand anything else to :func:`resume_sync` (or
  :func:`resume_async`) before acting on it (tests check both agree).
* A failed attempt's traceback holds the frames it passed through: none of
  them may hold an exception when the call ends (locals are cleared in
  ``finally``), or each retried call leaves a cycle for the garbage collector.
* From the second attempt on, the call's context (a :class:`RetryContext`)
  carries the attempt number, and is reset on every path out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import Any, Final

from buttress._core import operation
from buttress._core.clock import Clock
from buttress._core.context import (
    CURRENT,
    NO_ITEMS,
    CallContext,
    RetryContext,
    retry_context,
)
from buttress._core.logs import should_log
from buttress._core.operation import current as current_operation
from buttress._core.testmode import TEST_MODE
from buttress.retry_policy import Decision, RetryPolicy, RetryState, log_gave_up, log_retry

__all__ = ["quick_async", "quick_sync", "resume_async", "resume_sync"]

_WARNING: Final = logging.WARNING
Heard = Callable[[tuple[Any, ...], dict[str, Any]], Any]


def quick_sync(policy: RetryPolicy, clock: Clock, fn: Callable[..., Any], name: str | None,
               heard: Heard) -> Callable[..., Any]:
    """``fn`` retried under ``policy``, whose ``quick`` is set; ``heard(args,
    kwargs)`` runs the call instead while somebody listens.

    A failure that ``policy.quick`` settles is decided here, inline: two
    isinstance checks, no ``retry_after`` attribute, the attempt count, the
    constant wait. Anything else (a stop for another reason, a hint, a deadline,
    test mode, a listener arriving) goes to :func:`resume_sync` with the state
    so far. One frame for the whole call: next_delay() and decide() per retry,
    a second frame per call, and a RetryState and a context built by Python
    ``__init__`` cost about 12,000 instructions in a call that fails twice then
    succeeds (CPython 3.11).
    """
    exceptions, excluded, limit, wait = policy.quick  # type: ignore[misc]
    events, reraise = policy.events, policy.config.reraise

    def retrying_quick(*args: Any, **kwargs: Any) -> Any:
        if events.active:
            return heard(args, kwargs)
        try:
            # fn(*args) when there are no keywords: fn(**kwargs) copies the
            # dict, ~200 instructions of a ~2,000-instruction wrapper.
            return fn(*args, **kwargs) if kwargs else fn(*args)
        except Exception as exc:
            failure: Exception | None = exc
        # Retried outside the except block so that later failures are not
        # chained onto this one through __context__.
        outer = CURRENT.get()
        op = current_operation()
        attempts = 1
        context: RetryContext | None = None
        token: Token[CallContext | None] | None = None
        try:
            while True:
                if ((outer is None or outer._deadline is None)
                        and not events.active and not TEST_MODE.active
                        and isinstance(failure, exceptions) and not isinstance(failure, excluded)
                        and getattr(failure, "retry_after", None) is None):
                    # decide() for this policy, inline: retry after ``wait``, or give up.
                    if attempts >= limit:
                        if reraise:  # final_error() for this call, inline
                            if op is not None and attempts > op.attempts:
                                op.attempts = attempts  # for the enclosing operation's record
                            if should_log(_WARNING):
                                log_gave_up(name, attempts, failure, None)
                            raise failure
                        raise policy.final_error(
                            _state(attempts, name, args, kwargs, wait, failure),
                            Decision.GIVE_UP, clock)
                    if op is not None:
                        op.retries += 1
                    if should_log(_WARNING):
                        log_retry(name, attempts, failure, wait)
                    if wait > 0.0:
                        clock.sleep(wait)
                else:
                    return resume_sync(policy, clock, fn, args, kwargs,
                                       _state(attempts, name, args, kwargs, wait, failure),
                                       context)
                attempts += 1
                if context is None:  # from here on the context counts this call's attempts
                    # retry_context() inline: a frame less per retried call.
                    context = RetryContext()
                    if outer is None:
                        context._operation = name
                        context._deadline = None
                        context._clock = clock
                        context._items = NO_ITEMS
                    else:
                        context._operation = outer._operation or name
                        context._deadline = outer._deadline
                        context._clock = outer._clock
                        context._items = outer._items
                    context._attempt = attempts
                    token = CURRENT.set(context)
                else:
                    context._attempt = attempts
                try:
                    result = fn(*args, **kwargs) if kwargs else fn(*args)
                except Exception as exc:
                    failure = exc
                    continue
                if events.active:  # a listener came during the call
                    policy.finished(RetryState(None, attempts, name, args, kwargs), result, clock)
                elif op is not None and attempts > op.attempts:
                    op.attempts = attempts  # for the enclosing operation's record
                return result
        finally:
            # A failed attempt's traceback holds this frame: it may not hold an
            # exception when it ends, or each retried call leaves a cycle for
            # the garbage collector (~6,000 instructions a call).
            failure = None
            if token is not None:
                CURRENT.reset(token)

    return retrying_quick


def _state(attempts: int, name: str | None, args: tuple[Any, ...], kwargs: dict[str, Any],
           wait: float, failure: Exception | None) -> RetryState:
    """The state of a quick call after failed attempt ``attempts``, for the
    general loop (or final_error()) to carry on with."""
    state = RetryState(None, attempts, name, args, kwargs)
    state.previous_delay = wait if attempts > 1 else 0.0
    state.last_exception = failure
    return state


def resume_sync(
    policy: RetryPolicy,
    clock: Clock,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    state: RetryState,
    context: RetryContext | None = None,
) -> Any:
    """Continue a sync call after its first attempt failed (``state.last_exception``)
    or its result was rejected (``state.last_result``); with ``context`` (set
    by the caller, who resets it), from a later attempt."""
    outer = CURRENT.get()
    token: Token[CallContext | None] | None = None  # set here, reset here
    failure, result = state.last_exception, state.last_result
    events, judges, budget = policy.events, policy.judges_results, policy.config.budget
    try:
        while True:
            delay = policy.next_delay(state, failure, result, clock)
            if delay > 0.0:
                clock.sleep(delay)
            state.attempts += 1
            if context is None:  # from here on the context counts this call's attempts
                context = retry_context(outer, state.name, clock, state.attempts)
                token = CURRENT.set(context)
            else:
                context._attempt = state.attempts
            if events.active:
                policy.started(state)
            try:
                result = fn(*args, **kwargs) if kwargs else fn(*args)
            except Exception as exc:
                failure = exc
                continue
            failure = None
            if not judges and not events.active:
                if current_operation() is not None:  # a frame less without one
                    operation.attempted(state.attempts)  # for its record
                if budget is not None:
                    budget.on_success()
                return result
            if policy.finished(state, result, clock):
                return result
    finally:
        # A failed attempt's traceback holds this frame, the caller's and next_delay's:
        # none of them may hold an exception when it ends, or each retried call
        # leaves a cycle for the garbage collector (~6,000 instructions a call).
        failure = state.last_exception = None
        if token is not None:
            CURRENT.reset(token)


def quick_async(policy: RetryPolicy, clock: Clock, fn: Callable[..., Awaitable[Any]],
                name: str | None, heard: Callable[..., Awaitable[Any]],
                ) -> Callable[..., Awaitable[Any]]:
    """The async twin of :func:`quick_sync`."""
    exceptions, excluded, limit, wait = policy.quick  # type: ignore[misc]
    events, reraise = policy.events, policy.config.reraise

    async def retrying_quick(*args: Any, **kwargs: Any) -> Any:
        if events.active:
            return await heard(args, kwargs)
        try:
            return await (fn(*args, **kwargs) if kwargs else fn(*args))
        except Exception as exc:
            failure: Exception | None = exc
        outer = CURRENT.get()
        op = current_operation()
        attempts = 1
        context: RetryContext | None = None
        token: Token[CallContext | None] | None = None
        try:
            while True:
                if ((outer is None or outer._deadline is None)
                        and not events.active and not TEST_MODE.active
                        and isinstance(failure, exceptions) and not isinstance(failure, excluded)
                        and getattr(failure, "retry_after", None) is None):
                    if attempts >= limit:
                        if reraise:  # final_error() for this call, inline
                            if op is not None and attempts > op.attempts:
                                op.attempts = attempts  # for the enclosing operation's record
                            if should_log(_WARNING):
                                log_gave_up(name, attempts, failure, None)
                            raise failure
                        raise policy.final_error(
                            _state(attempts, name, args, kwargs, wait, failure),
                            Decision.GIVE_UP, clock)
                    if op is not None:
                        op.retries += 1
                    if should_log(_WARNING):
                        log_retry(name, attempts, failure, wait)
                    if wait > 0.0:
                        await clock.async_sleep(wait)
                else:
                    return await resume_async(policy, clock, fn, args, kwargs,
                                              _state(attempts, name, args, kwargs, wait, failure),
                                              context)
                attempts += 1
                if context is None:
                    context = RetryContext()
                    if outer is None:
                        context._operation = name
                        context._deadline = None
                        context._clock = clock
                        context._items = NO_ITEMS
                    else:
                        context._operation = outer._operation or name
                        context._deadline = outer._deadline
                        context._clock = outer._clock
                        context._items = outer._items
                    context._attempt = attempts
                    token = CURRENT.set(context)
                else:
                    context._attempt = attempts
                try:
                    result = await (fn(*args, **kwargs) if kwargs else fn(*args))
                except Exception as exc:
                    failure = exc
                    continue
                if events.active:
                    policy.finished(RetryState(None, attempts, name, args, kwargs), result, clock)
                elif op is not None and attempts > op.attempts:
                    op.attempts = attempts
                return result
        finally:
            failure = None  # no cycle: see quick_sync
            if token is not None:
                try:  # noqa: SIM105 - as cheap as it gets on the way out
                    CURRENT.reset(token)
                except ValueError:
                    pass  # closed by the garbage collector, outside the task's context

    return retrying_quick


async def resume_async(
    policy: RetryPolicy,
    clock: Clock,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    state: RetryState,
    context: RetryContext | None = None,
) -> Any:
    """The async twin of :func:`resume_sync`; the decisions are the same calls."""
    outer = CURRENT.get()
    token: Token[CallContext | None] | None = None  # set here, reset here
    failure, result = state.last_exception, state.last_result
    events, judges, budget = policy.events, policy.judges_results, policy.config.budget
    try:
        while True:
            delay = policy.next_delay(state, failure, result, clock)
            if delay > 0.0:
                await clock.async_sleep(delay)
            state.attempts += 1
            if context is None:  # from here on the context counts this call's attempts
                context = retry_context(outer, state.name, clock, state.attempts)
                token = CURRENT.set(context)
            else:
                context._attempt = state.attempts
            if events.active:
                policy.started(state)
            try:
                result = await (fn(*args, **kwargs) if kwargs else fn(*args))
            except Exception as exc:
                failure = exc
                continue
            failure = None
            if not judges and not events.active:
                if current_operation() is not None:  # a frame less without one
                    operation.attempted(state.attempts)  # for its record
                if budget is not None:
                    budget.on_success()
                return result
            if policy.finished(state, result, clock):
                return result
    finally:
        failure = state.last_exception = None  # no cycle: see resume_sync
        if token is not None:
            try:  # noqa: SIM105 - as cheap as it gets on the way out
                CURRENT.reset(token)
            except ValueError:
                pass  # closed by the garbage collector, outside the task's context
