"""Retry with backoff.

The decision logic is :class:`RetryPolicy`, a sans-IO object: given what an
attempt did, it answers *retry after d seconds*, *give up* or *raise as is*.
Two short loops drive it, one sync and one async; they are the only code here
that sleeps. The success path of a decorated call is one ``try`` and the call.

Retrying honours the call's deadline (:mod:`buttress._core.context`): it never
starts a wait that would end at or past it, and gives up instead, saying so.
From the second attempt on it puts the attempt number in the call's context;
the first attempt, and so the success path, never touches the context.

Only :class:`Exception` subclasses are ever caught, so ``asyncio.CancelledError``,
``KeyboardInterrupt``, ``SystemExit`` and ``GeneratorExit`` always propagate at
once and are never retried or counted.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Final, TypeVar, overload

from buttress._core import operation, validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.context import CURRENT, CallContext, RetryContext, remaining_time
from buttress._core.errors import CircuitBreakerError, ConfigurationError, RetryExhaustedError
from buttress._core.events import (
    GLOBAL,
    AttemptFailed,
    AttemptStarted,
    GaveUp,
    Listeners,
    RetryScheduled,
    Succeeded,
    deliver,
)
from buttress._core.spellings import UNSET as _UNSET
from buttress._core.spellings import pick as _pick
from buttress._core.strategy import (
    Strategy,
    check_protectable,
    describe,
    logger,
    operation_name,
    should_log,
)
from buttress._core.testmode import TEST_MODE
from buttress.backoff import (
    DELAY_CEILING,
    RetryStrategy,
    compute_delay,
    normalise_jitter,
    normalise_strategy,
    schedule,
)
from buttress.transient import is_transient  # re-exported: buttress.retry.is_transient

__all__ = [
    "Attempt",
    "Decision",
    "Outcome",
    "Retry",
    "RetryCall",
    "RetryConfig",
    "RetryPolicy",
    "RetryResult",
    "RetryState",
    "async_retry",
    "async_retry_with_backoff",
    "is_transient",
    "retry",
    "retry_sync",
    "retry_with_backoff",
    "should_retry",
    "with_retry",
]

F = TypeVar("F", bound=Callable[..., Any])



_T = TypeVar("_T")


def _judge(hook: Callable[..., _T], failure: Any, *call: RetryCall) -> _T:
    """``hook(failure)`` for a user hook that judges a failure (``retry_condition``,
    ``retry_after``). If the hook itself raises, its error propagates with the
    failure it was judging still in view: at the end of its ``__context__`` chain
    (where running the hook in an ``except`` block for the failure would have put
    it) and named in a note, so the traceback shows both."""
    try:
        return hook(failure, *call)
    except Exception as error:
        if error is not failure and isinstance(failure, BaseException):
            _chain(error, failure)
            error.add_note(f"raised by {hook!r} while judging {describe(failure)}")
        raise


def _chain(error: BaseException, failure: BaseException) -> None:
    seen = {id(error)}
    link = error
    while link.__context__ is not None:
        link = link.__context__
        if link is failure or id(link) in seen:
            return  # already in the chain (or a cycle, which Python prevents)
        seen.add(id(link))
    link.__context__ = failure


@dataclass(frozen=True, slots=True, init=False)
class RetryConfig:
    """How to retry: when, how often and how long to wait.

    ``max_attempts`` counts every call including the first. The seeds' spellings
    are accepted and read back as aliases: ``initial_delay`` for ``base_delay``,
    ``backoff_multiplier``/``multiplier`` for ``exponential_base``,
    ``retry_on``/``retryable_exceptions`` for ``exceptions``, ``retry_predicate``
    for ``retry_condition``.

    Example::

        config = RetryConfig(max_attempts=5, base_delay=0.2, max_delay=30.0,
                             retry_on=(TimeoutError, ConnectionError))

    Results are outcomes too. ``retry_on_result(result)`` rejects a returned
    value; ``retry_after_result(result)`` may then give the wait in seconds
    (None: the schedule's), as ``retry_after(exc)`` does for an exception, both
    capped at ``max_delay``; ``dispose(result)`` is called on every rejected
    result that is retried away (never on the one the call returns or gives up
    with), to close a response, say; an error it raises ends the call::

        config = RetryConfig(
            retry_on_result=lambda r: r.status_code in (429, 503),
            retry_after_result=lambda r: float(r.headers.get("Retry-After", 1)),
            dispose=lambda r: r.close(),
        )

    ``retry_condition`` and ``retry_on_result`` may take a second parameter,
    the :class:`RetryCall` (the call's arguments, attempt number and per-call
    context): ``retry_condition=lambda exc, call: call.kwargs["method"] == "GET"``.
    Whether a predicate takes it is read once, when the retry is built; a
    second parameter with a default is left alone.

    .. versionadded:: 0.2 ``retry_after_result``, ``dispose``, predicates taking the call.
    """

    max_attempts: int
    base_delay: float
    max_delay: float
    exponential_base: float
    strategy: RetryStrategy
    jitter: float
    exceptions: tuple[type[Exception], ...]
    non_retryable_exceptions: tuple[type[Exception], ...]
    retry_condition: Callable[..., bool] | None
    retry_on_result: Callable[..., bool] | None
    deadline: float | None
    reraise: bool
    retry_after: Callable[[Exception], float | None] | None
    retry_after_result: Callable[[Any], float | None] | None
    dispose: Callable[[Any], object] | None
    on_retry: Callable[[int, Any], object] | None
    on_failure: Callable[[int, Any], object] | None
    on_success: Callable[[int, float], object] | None
    rng: random.Random | None
    name: str | None

    def __init__(
        self,
        max_attempts: int = 3,
        base_delay: float = _UNSET,
        max_delay: float = 60.0,
        exponential_base: float = _UNSET,
        strategy: RetryStrategy | str = RetryStrategy.EXPONENTIAL_BACKOFF,
        jitter: bool | float = 0.1,
        exceptions: Any = _UNSET,
        non_retryable_exceptions: Any = (),
        retry_condition: Callable[..., bool] | None = _UNSET,
        retry_on_result: Callable[..., bool] | None = None,
        deadline: float | None = None,
        reraise: bool = False,
        retry_after: Callable[[Exception], float | None] | None = None,
        on_retry: Callable[[int, Any], object] | None = None,
        on_failure: Callable[[int, Any], object] | None = None,
        on_success: Callable[[int, float], object] | None = None,
        rng: random.Random | None = None,
        name: str | None = None,
        *,
        initial_delay: float = _UNSET,
        backoff_multiplier: float = _UNSET,
        multiplier: float = _UNSET,
        retry_on: Any = _UNSET,
        retryable_exceptions: Any = _UNSET,
        retry_predicate: Callable[..., bool] | None = _UNSET,
        retry_after_result: Callable[[Any], float | None] | None = None,
        dispose: Callable[[Any], object] | None = None,
    ) -> None:
        o = "RetryConfig"
        base = _pick(o, ("base_delay", "initial_delay"), (base_delay, initial_delay), 0.1)
        growth = _pick(
            o,
            ("exponential_base", "backoff_multiplier", "multiplier"),
            (exponential_base, backoff_multiplier, multiplier),
            2.0,
        )
        excs = _pick(
            o,
            ("exceptions", "retry_on", "retryable_exceptions"),
            (exceptions, retry_on, retryable_exceptions),
            (Exception,),
        )
        condition = _pick(
            o, ("retry_condition", "retry_predicate"), (retry_condition, retry_predicate), None
        )
        if max_attempts is None and deadline is None:
            raise ConfigurationError(
                f"{o}.max_attempts", None, "an int >= 1 (None only when a deadline is set)",
                message=f"{o}.max_attempts may only be None when a deadline is set, got None")
        fields: dict[str, Any] = {
            "max_attempts": (
                None if max_attempts is None
                else validate.integer(o, "max_attempts", max_attempts, minimum=1)
            ),
            "base_delay": validate.number(o, "base_delay", base, minimum=0.0),
            "max_delay": validate.number(o, "max_delay", max_delay, minimum=0.0,
                                     allow_inf=True),
            "exponential_base": validate.number(o, "exponential_base", growth, minimum=1.0),
            "strategy": normalise_strategy(o, strategy),
            "jitter": normalise_jitter(o, jitter),
            "exceptions": validate.exception_types(o, "exceptions", excs),
            "non_retryable_exceptions": validate.exception_types(
                o, "non_retryable_exceptions", non_retryable_exceptions
            ),
            "retry_condition": validate.optional_callable(o, "retry_condition", condition),
            "retry_on_result": validate.optional_callable(o, "retry_on_result", retry_on_result),
            "deadline": validate.optional_number(
                o, "deadline", deadline, minimum=0.0, strict_minimum=True
            ),
            "reraise": reraise,
            "retry_after": validate.optional_callable(o, "retry_after", retry_after),
            "retry_after_result": validate.optional_callable(o, "retry_after_result",
                                                             retry_after_result),
            "dispose": validate.optional_callable(o, "dispose", dispose),
            "on_retry": validate.optional_callable(o, "on_retry", on_retry),
            "on_failure": validate.optional_callable(o, "on_failure", on_failure),
            "on_success": validate.optional_callable(o, "on_success", on_success),
            "rng": rng,
            "name": name,
        }
        validate.boolean(o, "reraise", reraise)
        validate.optional_instance(o, "rng", rng, random.Random, "a random.Random or None")
        if name is not None:
            validate.text(o, "name", name)
        validate.delay_cap(o, fields["base_delay"], fields["max_delay"])
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    # Seed spellings, read back.
    @property
    def initial_delay(self) -> float:
        """Alias of ``base_delay``."""
        return self.base_delay

    @property
    def backoff_multiplier(self) -> float:
        """Alias of ``exponential_base``."""
        return self.exponential_base

    @property
    def multiplier(self) -> float:
        """Alias of ``exponential_base``."""
        return self.exponential_base

    @property
    def retry_on(self) -> tuple[type[Exception], ...]:
        """Alias of ``exceptions``."""
        return self.exceptions

    @property
    def retryable_exceptions(self) -> tuple[type[Exception], ...]:
        """Alias of ``exceptions``."""
        return self.exceptions

    @property
    def retry_predicate(self) -> Callable[..., bool] | None:
        """Alias of ``retry_condition``."""
        return self.retry_condition

    def replace(self, **changes: Any) -> RetryConfig:
        """A copy with some fields changed (and validated again); seed spellings
        such as ``retry_on`` or ``initial_delay`` replace the field they alias."""
        current = {name: getattr(self, name) for name in _FIELDS}
        for alias in changes.keys() & _ALIASES.keys():
            # The current value must not linger under its own name, or it would
            # "disagree" with the new value given under the alias.
            current.pop(_ALIASES[alias], None)
        current.update(changes)
        return RetryConfig(**current)

    def should_retry(self, exc: BaseException, call: RetryCall | None = None) -> bool:
        """Whether this config retries ``exc`` (ignoring attempts left); ``call``
        is what a two-parameter ``retry_condition`` receives (an empty one when
        not given).

        :class:`CircuitBreakerError` is only retried when named explicitly in
        ``exceptions``: retrying into an open breaker just burns attempts.
        """
        if not isinstance(exc, self.exceptions) or isinstance(exc, self.non_retryable_exceptions):
            return False
        if isinstance(exc, CircuitBreakerError) and not any(
            issubclass(cls, CircuitBreakerError) for cls in self.exceptions
        ):
            return False
        condition = self.retry_condition
        if condition is None:
            return True
        if _takes_call(condition):
            return bool(_judge(condition, exc, call or RetryCall((), _NO_KWARGS, 1, self.name,
                                                                 CURRENT.get())))
        return bool(_judge(condition, exc))

    def delay_for(self, attempt: int, previous: float = 0.0) -> float:
        """The wait after failed attempt ``attempt`` (1-based), jitter included."""
        return compute_delay(
            self.strategy,
            attempt,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            exponential_base=self.exponential_base,
            jitter=self.jitter,
            previous=previous,
            rng=self.rng,
        )


_FIELDS: Final = tuple(RetryConfig.__dataclass_fields__)
_ALIASES: Final = {
    "initial_delay": "base_delay",
    "backoff_multiplier": "exponential_base",
    "multiplier": "exponential_base",
    "retry_on": "exceptions",
    "retryable_exceptions": "exceptions",
    "retry_predicate": "retry_condition",
}


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


class RetryCall:
    """The call a retry predicate judges, for predicates that take a second
    parameter (``retry_condition(exc, call)``, ``retry_on_result(result, call)``):
    the protected function's ``args`` and ``kwargs``, the number of the
    ``attempt`` being judged, the ``operation`` name and the per-call
    ``context`` (:class:`~buttress.CallContext`, None outside one). An HTTP
    layer can, say, retry only idempotent requests::

        def retryable(exc: Exception, call: RetryCall) -> bool:
            return call.kwargs.get("method", "GET") in {"GET", "PUT", "DELETE"}

    Built only for predicates that ask for it.

    .. versionadded:: 0.2
    """

    __slots__ = ("args", "attempt", "context", "kwargs", "operation")

    def __init__(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], attempt: int,
                 operation: str | None, context: CallContext | None) -> None:
        self.args = args
        self.kwargs = kwargs
        self.attempt = attempt
        self.operation = operation
        self.context = context

    def __repr__(self) -> str:
        return (f"RetryCall(args={self.args!r}, kwargs={dict(self.kwargs)!r}, "
                f"attempt={self.attempt}, operation={self.operation!r})")


def _takes_call(predicate: Callable[..., Any] | None) -> bool:
    """Whether ``predicate`` asks for the call: its second positional parameter
    exists and has no default. Looked at once, when the policy is built."""
    if predicate is None:
        return False
    try:
        signature = inspect.signature(predicate)
    except (TypeError, ValueError):  # some builtins have no signature: one argument
        return False
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty


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
        """Why retrying stops (``"not_retryable"``, ``"exhausted"``, ``"deadline"``),
        None for a retry."""
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
                   Decision.DEADLINE_KIND: "deadline"}
_RETRY: Final = Decision.RETRY
_NUMBER: Final = (int, float)
_NO_KWARGS: Final[Mapping[str, Any]] = MappingProxyType({})


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

    __slots__ = ("_condition", "_condition_call", "_constant", "_dispose",
                 "_elapsed_limit", "_exceptions", "_excluded", "_hint_cap", "_hint_of",
                 "_limit", "_reject", "_reject_call", "_result_hint_of", "_tested", "_wait",
                 "_zero", "config", "events", "is_lean", "is_timed", "judges_results")

    def __init__(self, config: RetryConfig, events: Listeners | None = None) -> None:
        self.config = config
        self.events = Listeners(GLOBAL) if events is None else events
        # "Timed" calls need the clock before the first attempt.
        self.is_timed = config.deadline is not None
        # A lean call needs nothing at all on its success path (when nobody listens).
        self.is_lean = not self.is_timed and config.retry_on_result is None
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

    def begin(self, clock: Clock, name: str | None, attempts: int = 1,
              args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] = _NO_KWARGS) -> RetryState:
        """The state of a call that is watched (by a deadline or a listener) from
        its start; reports attempt ``attempts`` as started."""
        watched = self.is_timed or self.events.active
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
        exc = outcome.exception
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
                hint = _judge(self._result_hint_of, outcome.result)
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
        _end_operation(state)
        operation.attempted(state.attempts)
        gave_up = self.events.of(GaveUp)
        out_of_time = decision.kind == Decision.DEADLINE_KIND
        if gave_up:
            deliver(gave_up, GaveUp("retry", state.name, state.attempts, last,
                                    decision.reason or "exhausted",
                                    self._duration(state, clock)))
        if decision is Decision.RAISE and last is not None:
            return last
        why = None
        if out_of_time:
            left = remaining_time()
            why = (f"the call's deadline ran out: the next wait was {decision.delay:g}s"
                   + (f" with {left:g}s left" if left is not None else ""))
        if should_log(logging.WARNING):
            logger.warning(
                "%s: giving up after %d attempts (%s)%s", state.name or "retry", state.attempts,
                describe(last) if last is not None else "result rejected",
                f"; {why}" if why else "",
                extra={"operation": state.name, "attempts": state.attempts,
                       "outcome": "gave_up"},
            )
        if self.config.reraise and last is not None:
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
        targets = self.events.of(GaveUp)
        if targets:
            deliver(targets, GaveUp("retry", state.name, state.attempts, exc, "cancelled",
                                    self._duration(state, clock)))

    def started(self, state: RetryState) -> None:
        """Report that attempt ``state.attempts`` starts."""
        targets = self.events.of(AttemptStarted)
        if targets:
            deliver(targets, AttemptStarted("retry", state.name, state.attempts))

    def next_delay(self, state: RetryState, failure: Exception | None, result: Any,
                   clock: Clock) -> float:
        """After a failed or rejected attempt: record and report it, ask
        :meth:`decide`, and return the wait before the next attempt (disposing
        of a rejected result), or raise what the call ends with."""
        events = self.events
        if events.active:
            failed = events.of(AttemptFailed)
            if failed:
                deliver(failed, AttemptFailed("retry", state.name, state.attempts, failure,
                                              None if failure is not None else result))
        state.last_exception = failure
        state.last_result = result
        now = clock.monotonic() if self._elapsed_limit is not None else 0.0
        call = CURRENT.get()  # inline, not remaining_time(): this runs per retry
        left = None if call is None or call._deadline is None else call.remaining()
        mode = TEST_MODE
        policy = self if not mode.active else self.under_test(mode.attempts, mode.cap)
        decision = policy.decide(state, Outcome(result, failure), now, left)
        if decision.kind is not _RETRY:
            raise self.final_error(state, decision, clock)
        delay = state.previous_delay = decision.delay
        if failure is None and self._dispose is not None:
            state.last_result = None
            self._dispose(result)  # the rejected result is retried away: release it
        self.notify_retry(state, delay)
        return delay

    def finished(self, state: RetryState, result: Any, clock: Clock) -> bool:
        """After an attempt returned ``result``: whether the call is done (and
        reported as a success)."""
        if not self.accepts(result, state):
            return False
        _end_operation(state)
        if state.attempts > 1:
            operation.attempted(state.attempts)  # for the enclosing operation's record
        targets = self.events.of(Succeeded)
        if targets:
            deliver(targets, Succeeded("retry", state.name, state.attempts,
                                       self._duration(state, clock)))
        return True

    def notify_retry(self, state: RetryState, delay: float) -> None:
        """Report the retry about to happen (and log it once, at WARNING)."""
        operation.retried()
        if should_log(logging.WARNING):
            failure = state.last_exception
            logger.warning(
                "%s: attempt %d failed (%s); retrying in %.3fs", state.name or "retry",
                state.attempts,
                describe(failure) if failure is not None else "result rejected", delay,
                extra={"operation": state.name, "attempt": state.attempts,
                       "delay": delay, "outcome": "retry"},
            )
        events = self.events
        if events.active:
            targets = events.of(RetryScheduled)
            if targets:
                deliver(targets, RetryScheduled("retry", state.name, state.attempts, delay,
                                                state.last_exception))


def _end_operation(state: RetryState) -> None:
    """Close the operation this call opened, if it did, before its outcome is
    reported: a retry that is the outermost layer reports the call's one outcome
    itself (``Succeeded``/``GaveUp``), and listeners count those heard outside
    any operation."""
    token = state.operation
    if token is not None:
        state.operation = None
        operation.close_operation(token)


def _open_operation(state: RetryState, named: operation.Operation) -> None:
    # ``named`` is shared by every call of one wrapped function: it only names
    # the call for inner layers and listeners (the retry counts its own attempts).
    if operation.current() is None:
        state.operation = operation.open_operation(named)


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


def _resume_sync(
    policy: RetryPolicy,
    clock: Clock,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    state: RetryState,
    failure: Exception | None,
    result: Any,
) -> Any:
    """Continue a sync call after its first attempt failed or was rejected."""
    outer = CURRENT.get()
    token = None
    events, judges = policy.events, policy.judges_results
    try:
        while True:
            delay = policy.next_delay(state, failure, result, clock)
            if delay > 0.0:
                clock.sleep(delay)
            state.attempts += 1
            if token is None:  # from here on the context counts this call's attempts
                token = CURRENT.set(RetryContext(outer, state, state.name, clock))
            if events.active:
                policy.started(state)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                failure = exc
                continue
            failure = None
            if not judges and not events.active:
                operation.attempted(state.attempts)  # for an enclosing operation's record
                return result
            if policy.finished(state, result, clock):
                return result
    finally:
        if token is not None:
            CURRENT.reset(token)


async def _resume_async(
    policy: RetryPolicy,
    clock: Clock,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    state: RetryState,
    failure: Exception | None,
    result: Any,
) -> Any:
    """The async twin of :func:`_resume_sync`; the decisions are the same calls."""
    outer = CURRENT.get()
    token = None
    events, judges = policy.events, policy.judges_results
    try:
        while True:
            delay = policy.next_delay(state, failure, result, clock)
            if delay > 0.0:
                await clock.async_sleep(delay)
            state.attempts += 1
            if token is None:  # from here on the context counts this call's attempts
                token = CURRENT.set(RetryContext(outer, state, state.name, clock))
            if events.active:
                policy.started(state)
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                failure = exc
                continue
            failure = None
            if not judges and not events.active:
                operation.attempted(state.attempts)  # for an enclosing operation's record
                return result
            if policy.finished(state, result, clock):
                return result
    finally:
        if token is not None:
            try:  # noqa: SIM105 - as cheap as it gets on the way out
                CURRENT.reset(token)
            except ValueError:
                pass  # closed by the garbage collector, outside the task's context


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
        **options: Any,
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
            state = policy.begin(clock, name, 1, args, kwargs)
            _open_operation(state, named)
            try:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    failure = exc
                else:
                    if policy.finished(state, result, clock):
                        return result
                    return _resume_sync(policy, clock, fn, args, kwargs, state, None, result)
                return _resume_sync(policy, clock, fn, args, kwargs, state, failure, None)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    policy.interrupted(state, exc, clock)
                raise
            finally:
                _end_operation(state)  # also when a retry_condition raised

        if not policy.is_lean:
            return retrying_watched

        def retrying(*args: Any, **kwargs: Any) -> Any:
            if events.active:
                return retrying_watched(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                failure = exc
            # Resumed outside the except block so that later failures are not
            # chained onto this one through __context__.
            return _resume_sync(policy, clock, fn, args, kwargs,
                                RetryState(None, 1, name, args, kwargs), failure, None)

        return retrying

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        policy, clock, events = self.policy, self.clock, self.policy.events
        name = self.config.name or operation_name(fn)
        named = operation.Operation(name)

        async def retrying_watched(*args: Any, **kwargs: Any) -> Any:
            state = policy.begin(clock, name, 1, args, kwargs)
            _open_operation(state, named)
            try:
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    failure = exc
                else:
                    if policy.finished(state, result, clock):
                        return result
                    return await _resume_async(policy, clock, fn, args, kwargs, state, None,
                                               result)
                return await _resume_async(policy, clock, fn, args, kwargs, state, failure, None)
            except BaseException as exc:
                if not isinstance(exc, Exception):
                    policy.interrupted(state, exc, clock)
                raise
            finally:
                _end_operation(state)  # also when a retry_condition raised

        if not policy.is_lean:
            return retrying_watched

        async def retrying(*args: Any, **kwargs: Any) -> Any:
            if events.active:
                return await retrying_watched(*args, **kwargs)
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                failure = exc
            return await _resume_async(
                policy, clock, fn, args, kwargs, RetryState(None, 1, name, args, kwargs),
                failure, None
            )

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


@overload
def retry(config: F, /) -> F: ...
@overload
def retry(
    config: RetryConfig | None = None, /, *, clock: Clock | None = None, **options: Any
) -> Retry: ...
def retry(
    config: Any = None, /, *, clock: Clock | None = None, **options: Any
) -> Any:
    """Retry decorator for sync and async functions.

    Accepts a :class:`RetryConfig`, keyword options (the config's fields), or
    nothing (``@retry`` alone uses the defaults)::

        @retry(max_attempts=3, base_delay=0.5, retry_on=(ConnectionError,))
        async def fetch(url: str) -> bytes: ...
    """
    if (callable(config) or isinstance(config, classmethod | staticmethod)) \
            and not isinstance(config, RetryConfig):
        # ``@retry`` without parentheses (refused at once above a classmethod).
        return Retry(clock=clock, **options)(config)
    return Retry(config, clock=clock, **options)


def with_retry(
    config: RetryConfig | None = None, *, clock: Clock | None = None, **options: Any
) -> Retry:
    """Same as :func:`retry` (the ``svc_infra`` spelling)."""
    return Retry(config, clock=clock, **options)


def async_retry(
    config: RetryConfig | None = None, *, clock: Clock | None = None, **options: Any
) -> Retry:
    """Like :func:`retry`, but insists on a coroutine function (raises ``TypeError``
    at decoration time otherwise)."""
    return Retry(config, clock=clock, _mode="async", **options)


def retry_sync(
    config: RetryConfig | None = None, *, clock: Clock | None = None, **options: Any
) -> Retry:
    """Like :func:`retry`, but insists on a plain (sync) function."""
    return Retry(config, clock=clock, _mode="sync", **options)


def retry_with_backoff(
    config: RetryConfig | None = None,
    *,
    retry_predicate: Callable[[Exception], bool] | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> Retry:
    """Retry decorator in both seed forms: keyword options, or a ``RetryConfig``
    plus an optional ``retry_predicate(exception) -> bool``::

        @retry_with_backoff(max_attempts=3, base_delay=1.0,
                            strategy=RetryStrategy.EXPONENTIAL_BACKOFF)
        def unreliable() -> str: ...

        @retry_with_backoff(RetryConfig(max_attempts=5), retry_predicate=is_retryable)
        async def selective() -> str: ...
    """
    if retry_predicate is not None:
        options["retry_condition"] = retry_predicate
    return Retry(config, clock=clock, **options)


def should_retry(exc: BaseException, config: RetryConfig | None = None) -> bool:
    """Whether ``exc`` should be retried.

    With a config, its own rules decide. Without one, the transient-failure rule
    of :func:`is_transient` does. Cancellation, interrupts and exits: never.
    """
    if not isinstance(exc, Exception):
        return False
    if config is None:
        return is_transient(exc)
    return config.should_retry(exc)


@dataclass(frozen=True, slots=True)
class RetryResult:
    """Outcome of :func:`async_retry_with_backoff`: never raises for a failed call."""

    success: bool
    value: Any
    attempts: int
    last_exception: BaseException | None


async def async_retry_with_backoff(
    fn: Callable[..., Awaitable[Any]],
    /,
    *args: Any,
    config: RetryConfig | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> RetryResult:
    """Await ``fn(*args)`` with retries and return a :class:`RetryResult` instead of
    raising when every attempt fails::

        result = await async_retry_with_backoff(fetch, max_attempts=3, base_delay=1.0,
                                                exceptions=(ConnectionError,))
        if not result.success:
            raise result.last_exception
    """
    strategy = Retry(config, clock=clock, **options)
    # reraise=True makes the runner end with the last attempt's own exception.
    strategy = Retry(strategy.config.replace(reraise=True), clock=strategy.clock)
    attempts = 0

    async def counted() -> Any:
        nonlocal attempts
        attempts += 1
        return await fn(*args)

    try:
        value = await strategy.wrap_async(counted)()
    except Exception as exc:
        return RetryResult(False, None, attempts, exc)
    return RetryResult(True, value, attempts, None)
