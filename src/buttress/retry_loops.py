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
    constant wait (:func:`_quick_step`, shared with :func:`quick_async`). Anything
    else (a stop for another reason, a hint, a deadline, test mode, a listener
    arriving) goes to :func:`resume_sync` with the state so far. One frame for
    the whole call and one small step per retry: next_delay() and decide() per
    retry, a second frame per call, and a RetryState built by Python
    ``__init__`` cost about 10,000 instructions more in a call that fails twice
    then succeeds (CPython 3.11).
    """
    wait = policy.quick[3]  # type: ignore[index]
    events = policy.events

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
                step = _quick_step(policy, clock, outer, op, name, attempts, failure, args, kwargs)
                if step is None:
                    return resume_sync(policy, clock, fn, args, kwargs,
                                       _state(attempts, name, args, kwargs, wait, failure),
                                       context)
                if isinstance(step, BaseException):
                    raise step
                if step > 0.0:
                    clock.sleep(step)
                attempts += 1
                if context is None:  # from here on the context counts this call's attempts
                    context = retry_context(outer, name, clock, attempts)
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
            failure = step = None
            if token is not None:
                CURRENT.reset(token)

    return retrying_quick


def _quick_step(policy: RetryPolicy, clock: Clock, outer: CallContext | None,
                op: operation.Operation | None, name: str | None, attempts: int,
                failure: Exception | None, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> float | BaseException | None:
    """``decide()`` for a quick policy after failed attempt ``attempts``, shared
    by both quick wrappers: the wait before the next attempt, the error the call
    ends with, or None when the general loop must decide (a deadline, a
    listener, test mode, a failure not listed or carrying a ``retry_after``)."""
    exceptions, excluded, limit, wait = policy.quick  # type: ignore[misc]
    if ((outer is not None and outer._deadline is not None)
            or policy.events.active or TEST_MODE.active
            or not isinstance(failure, exceptions) or isinstance(failure, excluded)
            or getattr(failure, "retry_after", None) is not None):
        return None
    if attempts >= limit:
        if not policy.config.reraise:
            return policy.final_error(_state(attempts, name, args, kwargs, wait, failure),
                                      Decision.GIVE_UP, clock)
        # final_error() for this call, inline: the failure itself is raised.
        if op is not None and attempts > op.attempts:
            op.attempts = attempts  # for the enclosing operation's record
        if should_log(_WARNING):
            log_gave_up(name, attempts, failure, None)
        return failure
    if op is not None:
        op.retries += 1
    if should_log(_WARNING):
        log_retry(name, attempts, failure, wait)
    return wait


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
    wait = policy.quick[3]  # type: ignore[index]
    events = policy.events

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
                step = _quick_step(policy, clock, outer, op, name, attempts, failure, args, kwargs)
                if step is None:
                    return await resume_async(policy, clock, fn, args, kwargs,
                                              _state(attempts, name, args, kwargs, wait, failure),
                                              context)
                if isinstance(step, BaseException):
                    raise step
                if step > 0.0:
                    await clock.async_sleep(step)
                attempts += 1
                if context is None:
                    context = retry_context(outer, name, clock, attempts)
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
            failure = step = None  # no cycle: see quick_sync
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
