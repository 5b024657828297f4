"""The retry policy: the decisions of retrying, with no sleeping, no locks, no awaits.

:class:`RetryPolicy` decides on an :class:`Outcome` (what one attempt did):
given the call's :class:`RetryState`, it answers with a :class:`Decision`
(*retry after d seconds*, *give up* or *raise as is*). The runners in
:mod:`buttress.retry_runner` drive it; it reports events and logs through the
steps they call (:meth:`RetryPolicy.next_delay`, :meth:`RetryPolicy.finished`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from buttress._core import operation
from buttress._core.clock import Clock
from buttress._core.context import CURRENT, remaining_time
from buttress._core.errors import CircuitBreakerError, RetryExhaustedError
from buttress._core.events import (
    GLOBAL,
    AttemptFailed,
    AttemptStarted,
    GaveUp,
    Listeners,
    RetryScheduled,
    Succeeded,
    deliver,
    maker,
)
from buttress._core.operation import CallStarted
from buttress._core.operation import current as current_operation
from buttress._core.strategy import describe, logger, should_log
from buttress._core.testmode import TEST_MODE
from buttress.backoff import DELAY_CEILING, RetryStrategy, schedule
from buttress.retry_config import _NO_KWARGS, RetryCall, RetryConfig, _judge, _takes_call

__all__ = ["Decision", "Outcome", "RetryPolicy", "RetryState"]


class Outcome:
    """What one attempt did: it returned ``result`` or raised ``exception``
    (then ``result`` is None). Policies decide on outcomes, so a failure and a
    rejected result take the same path::

        >>> Outcome.raised(TimeoutError()).failed
        True
        >>> Outcome.returned(503).result
        503

    .. versionadded:: 0.2
    """

    __slots__ = ("exception", "result")

    def __init__(self, result: Any = None, exception: Exception | None = None) -> None:
        self.result = result
        self.exception = exception

    @classmethod
    def returned(cls, result: Any) -> Outcome:
        """The outcome of an attempt that returned ``result``."""
        return cls(result, None)

    @classmethod
    def raised(cls, exception: Exception) -> Outcome:
        """The outcome of an attempt that raised ``exception``."""
        return cls(None, exception)

    @property
    def failed(self) -> bool:
        """Whether the attempt raised."""
        return self.exception is not None

    def __repr__(self) -> str:
        if self.exception is not None:
            return f"Outcome.raised({self.exception!r})"
        return f"Outcome.returned({self.result!r})"



class Decision:
    """What the policy says after a failed attempt: retry after ``delay``, give
    up, or let the exception through untouched. Giving up because the call's
    deadline would pass during the next wait is its own kind, ``DEADLINE``
    (``delay`` is the wait that did not fit)."""

    __slots__ = ("delay", "kind")

    RETRY: ClassVar[str] = "retry"
    GIVE_UP_KIND: ClassVar[str] = "give_up"
    RAISE_KIND: ClassVar[str] = "raise"
    DEADLINE_KIND: ClassVar[str] = "deadline"
    BUDGET_KIND: ClassVar[str] = "budget"

    GIVE_UP: ClassVar[Decision]
    RAISE: ClassVar[Decision]
    NOW: ClassVar[Decision]

    def __init__(self, kind: str, delay: float = 0.0) -> None:
        self.kind = kind
        self.delay = delay

    @classmethod
    def retry_after(cls, delay: float) -> Decision:
        """Retry once ``delay`` seconds have passed."""
        return cls(cls.RETRY, delay)

    @property
    def reason(self) -> str | None:
        """Why retrying stops (``"not_retryable"``, ``"exhausted"``, ``"deadline"``,
        ``"budget"``), None for a retry."""
        return _REASONS.get(self.kind)

    def __repr__(self) -> str:
        if self.kind == self.RETRY:
            return f"Decision.retry_after({self.delay!r})"
        return f"Decision.{self.kind.upper()}"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Decision) and other.kind == self.kind
                and other.delay == self.delay)

    def __hash__(self) -> int:
        return hash((self.kind, self.delay))


Decision.GIVE_UP = Decision(Decision.GIVE_UP_KIND)
Decision.RAISE = Decision(Decision.RAISE_KIND)
Decision.NOW = Decision(Decision.RETRY)  # retry at once: shared, as it is the common one
_REASONS: Final = {Decision.RAISE_KIND: "not_retryable", Decision.GIVE_UP_KIND: "exhausted",
                   Decision.DEADLINE_KIND: "deadline", Decision.BUDGET_KIND: "budget"}
_RETRY: Final = Decision.RETRY
# The events of retrying, built without calling their classes (see maker()).
_attempt_started: Final = maker(AttemptStarted)
_attempt_failed: Final = maker(AttemptFailed)
_retry_scheduled: Final = maker(RetryScheduled)
_succeeded: Final = maker(Succeeded)
_gave_up: Final = maker(GaveUp)
_call_started: Final = maker(CallStarted)
_NUMBER: Final = (int, float)
_WARNING: Final = logging.WARNING


class RetryState:
    """Per-call bookkeeping; created only once a call needs it (on the first
    failure, or up front when a deadline or a listener needs the start time)."""

    __slots__ = ("args", "attempts", "kwargs", "last_exception", "last_result", "name",
                 "operation", "previous_delay", "start")

    def __init__(self, start: float | None = None, attempts: int = 1,
                 name: str | None = None, args: tuple[Any, ...] = (),
                 kwargs: Mapping[str, Any] = _NO_KWARGS) -> None:
        self.start = start
        # The token of the operation this call opened, as the outermost layer.
        self.operation: Any = None
        self.attempts = attempts
        self.name = name
        self.args = args
        self.kwargs = kwargs
        self.previous_delay = 0.0
        self.last_exception: Exception | None = None
        self.last_result: Any = None


class RetryPolicy:
    """The decision logic of retrying; no sleeping, no locks, no awaits.

    :meth:`decide` is the decision itself, a function of the call's state, the
    attempt's outcome, the time and the time left; everything it needs from the
    config is worked out here, once. The runners' steps (:meth:`next_delay`,
    :meth:`finished`) record the state, report events to the listener hub
    (building an event only for the kinds somebody listens to) and ask it.
    """

    __slots__ = ("_budget", "_condition", "_condition_call", "_constant", "_dispose",
                 "_elapsed_limit", "_exceptions", "_excluded", "_hint_cap", "_hint_of",
                 "_limit", "_reject", "_reject_call", "_result_hint_of", "_tested", "_wait",
                 "_zero", "config", "events", "is_lean", "is_timed", "judges_results", "quick")

    def __init__(self, config: RetryConfig, events: Listeners | None = None) -> None:
        self.config = config
        self.events = Listeners(GLOBAL) if events is None else events
        # "Timed" calls need the clock before the first attempt.
        self.is_timed = config.deadline is not None
        # A lean call needs nothing at all on its success path (when nobody listens).
        self.is_lean = not self.is_timed and config.retry_on_result is None
        # The retry budget shared with other policies and clients (None: none).
        self._budget = config.budget
        self.judges_results = config.retry_on_result is not None
        # The seeds' callbacks are listeners like any other.
        if config.on_retry is not None:
            self.events.add(_OnRetry(config.on_retry), RetryScheduled)
        if config.on_failure is not None:
            self.events.add(_OnFailure(config.on_failure), GaveUp)
        if config.on_success is not None:
            self.events.add(_OnSuccess(config.on_success), Succeeded)
        # What decide() reads, worked out once.
        self._limit = config.max_attempts
        self._elapsed_limit = config.deadline
        self._wait = schedule(config.strategy, base_delay=config.base_delay,
                              max_delay=config.max_delay,
                              exponential_base=config.exponential_base,
                              jitter=config.jitter, rng=config.rng)
        # A schedule that never changes (fixed, or a zero base delay) is a number.
        self._constant: float | None = None
        if config.strategy is not RetryStrategy.DECORRELATED_JITTER and (
                config.base_delay == 0.0 or (
                    config.strategy is RetryStrategy.FIXED_DELAY and not config.jitter)):
            self._constant = self._wait(1, 0.0)
        self._zero = False  # test mode: every wait is zero
        self._exceptions = config.exceptions
        # An open breaker is not retried unless named: retrying into it just
        # burns attempts.
        named = any(issubclass(cls, CircuitBreakerError) for cls in config.exceptions)
        self._excluded = config.non_retryable_exceptions + (
            () if named else (CircuitBreakerError,))
        self._condition = config.retry_condition
        self._condition_call = _takes_call(config.retry_condition)
        self._reject = config.retry_on_result
        self._reject_call = _takes_call(config.retry_on_result)
        self._hint_of = config.retry_after
        self._result_hint_of = config.retry_after_result
        self._hint_cap = min(config.max_delay, DELAY_CEILING)
        self._dispose = config.dispose
        self._tested: tuple[tuple[int, bool], RetryPolicy] | None = None
        #: What the runners need to decide a failure themselves, for the common
        #: policy whose rules come down to two isinstance checks, an attempt
        #: count and a constant wait (no predicate, hook, budget or deadline, no
        #: judged result): (exceptions, excluded, max_attempts, wait), else None.
        #: They ask decide() whenever these do not settle it as a retry.
        self.quick: tuple[tuple[type[Exception], ...], tuple[type[Exception], ...], int,
                          float] | None = None
        if (self.is_lean and self._constant is not None and self._limit is not None
                and self._condition is None and self._hint_of is None and self._budget is None):
            self.quick = (self._exceptions, self._excluded, self._limit, self._constant)

    def begin(self, clock: Clock, name: str | None, attempts: int = 1,
              args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] = _NO_KWARGS) -> RetryState:
        """The state of a call that is watched (by a deadline or a listener) from
        its start; reports attempt ``attempts`` as started."""
        watched = self.is_timed or self.events.active
        if self._budget is not None:
            self._budget.on_request()
        state = RetryState(clock.monotonic() if watched else None, attempts, name, args, kwargs)
        if attempts:
            self.started(state)
        return state

    @staticmethod
    def call_of(state: RetryState) -> RetryCall:
        """The view of the call a two-parameter predicate receives."""
        return RetryCall(state.args, state.kwargs, state.attempts, state.name, CURRENT.get())

    def accepts(self, result: Any, state: RetryState | None = None) -> bool:
        """Whether a returned value ends the call (``retry_on_result`` says no)."""
        check = self._reject
        if check is None:
            return True
        if self._reject_call:
            return not check(result, self.call_of(state or RetryState()))
        return not check(result)

    def retryable(self, exc: Exception, state: RetryState | None = None) -> bool:
        """Whether ``exc`` may be retried (attempts left aside); see
        :meth:`RetryConfig.should_retry`."""
        if not isinstance(exc, self._exceptions) or isinstance(exc, self._excluded):
            return False
        condition = self._condition
        if condition is None:
            return True
        if self._condition_call:
            return bool(_judge(condition, exc, self.call_of(state or RetryState())))
        return bool(_judge(condition, exc))

    def decide(self, state: RetryState, outcome: Outcome, now: float,
               left: float | None = None) -> Decision:
        """The decision after attempt ``state.attempts`` failed with ``outcome``
        (an exception, or a result ``retry_on_result`` rejected): retry after a
        wait, or stop. ``now`` is the clock's time (read only for a config with
        a ``deadline``), ``left`` the seconds left of the call's deadline (None
        without one). It changes nothing: the runner records the state.

        The wait is the ``retry_after`` hint (``retry_after_result`` for a
        result) capped at ``max_delay``, else the schedule's. Stops: a
        non-retryable exception (``Decision.RAISE``), no attempts left or
        ``deadline`` passed (``Decision.GIVE_UP``), a wait that would end at or
        after the call's deadline (a ``DEADLINE`` decision carrying it).
        """
        return self._decide(state, outcome.result, outcome.exception, now, left)

    def _decide(self, state: RetryState, result: Any, exc: Exception | None, now: float,
                left: float | None) -> Decision:
        # decide() on the outcome's two halves: the runners call this with no
        # Outcome built (a class call, ~1,700 instructions per retry on 3.11).
        if exc is not None and (
                not isinstance(exc, self._exceptions) or isinstance(exc, self._excluded)
                or (self._condition is not None and not self.retryable(exc, state))):
            return Decision.RAISE
        limit = self._limit
        if limit is not None and state.attempts >= limit:
            return Decision.GIVE_UP  # before the hint: no retry_after call without a retry
        if self._zero:
            delay = 0.0
        else:
            if exc is not None:
                hint_of = self._hint_of
                hint = getattr(exc, "retry_after", None) if hint_of is None \
                    else _judge(hint_of, exc)
            elif self._result_hint_of is not None:
                hint = _judge(self._result_hint_of, result)
            else:
                hint = None
            if hint is not None:
                hint = self._usable(hint)
            if hint is not None:
                delay = hint
            elif self._constant is not None:
                delay = self._constant
            else:
                delay = self._wait(state.attempts, state.previous_delay)
        elapsed = self._elapsed_limit
        if (elapsed is not None and state.start is not None
                and (now - state.start) + delay > elapsed):
            return Decision.GIVE_UP
        if left is not None and delay >= left:
            # The next attempt would start at or after the call's deadline.
            return Decision(Decision.DEADLINE_KIND, delay)
        return Decision.NOW if delay == 0.0 else Decision(_RETRY, delay)

    def _usable(self, hint: object) -> float | None:
        """A hint as a wait: a non-negative number capped at ``max_delay``."""
        if isinstance(hint, _NUMBER) and not isinstance(hint, bool) and hint >= 0:
            # Compared before converting: float() of a huge int overflows.
            cap = self._hint_cap
            return float(hint if hint < cap else cap)
        return None

    def under_test(self, attempts: int, cap: bool) -> RetryPolicy:
        """This policy as test mode runs it (:func:`buttress.testing.set_testing`):
        no waits, and ``attempts`` attempts (at most as many as configured, with
        ``cap``). Made once per setting and kept."""
        tested = self._tested
        if tested is not None and tested[0] == (attempts, cap):
            return tested[1]
        copy = object.__new__(RetryPolicy)
        for slot in RetryPolicy.__slots__:
            object.__setattr__(copy, slot, getattr(self, slot))
        limit = self._limit
        copy._limit = min(limit, attempts) if cap and limit is not None else attempts
        copy._zero = True
        self._tested = ((attempts, cap), copy)
        return copy

    def final_error(self, state: RetryState, decision: Decision, clock: Clock) -> Exception:
        """The exception a call ends with once the policy stops retrying."""
        last = state.last_exception
        if state.operation is not None:
            _end_operation(state)
        if current_operation() is not None:  # a frame less without one
            operation.attempted(state.attempts)
        gave_up = self.events._by_kind.get(GaveUp)  # of(), a frame less
        out_of_time = decision.kind == Decision.DEADLINE_KIND
        denied = decision.kind == Decision.BUDGET_KIND
        if gave_up:
            deliver(gave_up, _gave_up("retry", state.name, state.attempts, last,
                                      decision.reason or "exhausted",
                                      self._duration(state, clock)))
        if decision is Decision.RAISE and last is not None:
            return last
        why = None
        if out_of_time:
            left = remaining_time()
            why = (f"the call's deadline ran out: the next wait was {decision.delay:g}s"
                   + (f" with {left:g}s left" if left is not None else ""))
        elif denied:
            why = ("the retry budget refused the retry (retries across the callers "
                   "sharing it are over their allowance)")
        if should_log(_WARNING):
            log_gave_up(state.name, state.attempts, last, why)
        if (self.config.reraise or denied) and last is not None:
            # A denied retry ends with the dependency's own error: the call was
            # not exhausted, the budget protected an overloaded dependency.
            if why:
                last.add_note(f"buttress: retrying stopped after {state.attempts} attempts; "
                              f"{why}")
            return last
        error = RetryExhaustedError(state.attempts, last, state.last_result, self.config.name,
                                    reason=why)
        error.__cause__ = last
        return error

    @staticmethod
    def _duration(state: RetryState, clock: Clock) -> float | None:
        return None if state.start is None else clock.monotonic() - state.start

    # The steps every runner takes; the loops differ only in how they wait.

    def interrupted(self, state: RetryState, exc: BaseException, clock: Clock) -> None:
        """Report a call ended by cancellation, an interrupt or an exit: it gave up
        with reason "cancelled" (never retried, and not a verdict on the callee)."""
        _end_operation(state)
        targets = self.events._by_kind.get(GaveUp)
        if targets:
            deliver(targets, _gave_up("retry", state.name, state.attempts, exc, "cancelled",
                                      self._duration(state, clock)))

    def started(self, state: RetryState) -> None:
        """Report that attempt ``state.attempts`` starts."""
        targets = self.events._by_kind.get(AttemptStarted)
        if targets:
            deliver(targets, _attempt_started("retry", state.name, state.attempts))

    def next_delay(self, state: RetryState, failure: Exception | None, result: Any,
                   clock: Clock) -> float:
        """After a failed or rejected attempt: record and report it, ask
        :meth:`decide`, and return the wait before the next attempt (disposing
        of a rejected result), or raise what the call ends with."""
        events = self.events
        if events.active:
            failed = events._by_kind.get(AttemptFailed)
            if failed:
                deliver(failed, _attempt_failed("retry", state.name, state.attempts, failure,
                                                None if failure is not None else result))
        state.last_exception = failure
        state.last_result = result
        call = CURRENT.get()  # inline, not remaining_time(): this runs per retry
        mode = TEST_MODE
        decision = (self if not mode.active else self.under_test(mode.attempts, mode.cap))._decide(
            state, result, failure,
            clock.monotonic() if self._elapsed_limit is not None else 0.0,
            None if call is None or call._deadline is None else call.remaining())
        budget = self._budget
        if budget is not None and decision is not Decision.RAISE:
            budget.on_failure()  # a retryable failure, retried or not
            if decision.kind is _RETRY and not budget.try_spend():
                decision = Decision(Decision.BUDGET_KIND, decision.delay)
        if decision.kind is not _RETRY:
            # The error's traceback holds this frame: it must not hold the error
            # too (a cycle, left for the garbage collector).
            failure = result = None
            raise self.final_error(state, decision, clock)
        delay = state.previous_delay = decision.delay
        if failure is None and self._dispose is not None:
            state.last_result = None
            self._dispose(result)  # the rejected result is retried away: release it
        # notify_retry() inline, down to its cheap checks (~1,500 instructions a
        # retry): the enclosing operation's count, then a log record or an event
        # only when one will be made, each level check made once.
        op = current_operation()
        if op is not None:
            op.retries += 1
        if should_log(_WARNING):
            self._log_retry(state, delay)
        if events.active:
            self._report_retry(state, delay)
        return delay

    def finished(self, state: RetryState, result: Any, clock: Clock) -> bool:
        """After an attempt returned ``result``: whether the call is done (and
        reported as a success)."""
        if self._reject is not None and not self.accepts(result, state):
            return False
        if self._budget is not None:
            self._budget.on_success()
        if state.operation is not None:
            _end_operation(state)
        if state.attempts > 1 and current_operation() is not None:
            operation.attempted(state.attempts)  # for the enclosing operation's record
        targets = self.events._by_kind.get(Succeeded)
        if targets:
            deliver(targets, _succeeded("retry", state.name, state.attempts,
                                        self._duration(state, clock)))
        return True

    def notify_retry(self, state: RetryState, delay: float) -> None:
        """Report the retry about to happen (and log it once, at WARNING)."""
        operation.retried()
        if should_log(_WARNING):
            self._log_retry(state, delay)
        if self.events.active:
            self._report_retry(state, delay)

    @staticmethod
    def _log_retry(state: RetryState, delay: float) -> None:
        log_retry(state.name, state.attempts, state.last_exception, delay)

    def _report_retry(self, state: RetryState, delay: float) -> None:
        targets = self.events._by_kind.get(RetryScheduled)
        if targets:
            deliver(targets, _retry_scheduled("retry", state.name, state.attempts, delay,
                                              state.last_exception))


def log_retry(name: str | None, attempts: int, failure: Exception | None, delay: float) -> None:
    """Log the retry after attempt ``attempts`` failed (with ``failure``, or
    with a rejected result), at WARNING; the caller checked that it is heard."""
    logger.warning(
        "%s: attempt %d failed (%s); retrying in %.3fs", name or "retry", attempts,
        describe(failure) if failure is not None else "result rejected", delay,
        extra={"operation": name, "attempt": attempts, "delay": delay, "outcome": "retry"},
    )


def log_gave_up(name: str | None, attempts: int, last: Exception | None, why: str | None) -> None:
    """Log that a call gives up after ``attempts`` attempts, the last failing with
    ``last`` (None: its result was rejected), at WARNING; the caller checked
    that it is heard."""
    logger.warning(
        "%s: giving up after %d attempts (%s)%s", name or "retry", attempts,
        describe(last) if last is not None else "result rejected", f"; {why}" if why else "",
        extra={"operation": name, "attempts": attempts, "outcome": "gave_up"},
    )


def _end_operation(state: RetryState) -> None:
    """Close the operation this call opened, if it did, before its outcome is
    reported: a retry that is the outermost layer reports the call's one outcome
    itself (``Succeeded``/``GaveUp``), and listeners count those heard outside
    any operation."""
    token = state.operation
    if token is not None:
        state.operation = None
        operation.close_operation(token)


def _open_operation(state: RetryState, named: operation.Operation, events: Listeners) -> None:
    # ``named`` is shared by every call of one wrapped function: it only names
    # the call for inner layers and listeners (the retry counts its own attempts).
    if operation.current() is None:
        state.operation = operation.open_operation(named)
        started = events._by_kind.get(CallStarted)
        if started and state.start is not None:  # a start is read whenever anyone listens
            deliver(started, _call_started("operation", named.name, state.start))


class _Hook:
    """A seed-style callback (``hook(count, value)``) wrapped as a listener."""

    __slots__ = ("hook",)

    def __init__(self, hook: Callable[[int, Any], object]) -> None:
        self.hook = hook

    def __repr__(self) -> str:
        return repr(self.hook)  # the user's callback, as they wrote it


class _OnRetry(_Hook):
    """``on_retry(attempt, exception)`` as a listener."""

    __slots__ = ()

    def __call__(self, event: RetryScheduled) -> None:
        self.hook(event.attempt, event.exception)


class _OnFailure(_Hook):
    """``on_failure(attempts, last_exception)`` as a listener."""

    __slots__ = ()

    def __call__(self, event: GaveUp) -> None:
        if event.reason != "cancelled":  # cancellation is not the call failing
            self.hook(event.attempts, event.exception)


class _OnSuccess(_Hook):
    """``on_success(attempts, duration)`` as a listener."""

    __slots__ = ()

    def __call__(self, event: Succeeded) -> None:
        self.hook(event.attempts, event.duration or 0.0)


# --- the two runners -------------------------------------------------------------------
