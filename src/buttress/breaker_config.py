"""What a circuit breaker is configured with, what it reports, how it judges
the exception that ended a call, and the weak hooks that tie a breaker to its
store and its state listeners.

:class:`CircuitBreakerConfig` validates every field on construction and names
the bad one; :class:`CircuitBreakerStats` is a consistent snapshot of one
breaker's counters. The runner (:class:`buttress.breaker.CircuitBreaker`) and
the configuration loaders import them from here.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Unpack

from buttress._core import validate
from buttress._core.breaker_machine import MODES, CircuitState
from buttress._core.breaker_store import BreakerCounts
from buttress._core.errors import ConfigurationError, OperationTimeoutError
from buttress.options import CircuitBreakerOptions

if TYPE_CHECKING:
    from buttress._core.breaker_machine import Transition
    from buttress._core.events import StateChanged

__all__ = ["CircuitBreakerConfig", "CircuitBreakerState", "CircuitBreakerStats"]

_UNSET: Final[Any] = object()


CircuitBreakerState = CircuitState
"""Alias of :class:`CircuitState`."""


@dataclass(frozen=True, slots=True, init=False)
class CircuitBreakerConfig:
    """When the breaker trips and how it recovers. Any enabled rule trips it:

    * ``failure_threshold`` consecutive failures (or, with ``failure_window`` set,
      that many failures within ``failure_window`` seconds);
    * a failure rate of at least ``failure_rate_threshold`` over the last
      ``window_size`` calls (or the last ``failure_window`` seconds), once
      ``minimum_calls`` calls are in the window;
    * a rate of calls slower than ``slow_call_duration`` of at least
      ``slow_call_rate_threshold``, measured the same way. A slow call that fails
      counts both as a failure and as slow.

    ``failure_threshold`` defaults to 5, except with ``failure_rate_threshold``
    set: then, as in resilience4j, the rate rule alone decides (nothing trips
    before ``minimum_calls`` calls), unless ``failure_threshold`` is also given,
    which asks for both rules. ``failure_threshold=None`` turns the
    consecutive-failure rule off (a rate rule must then be set)::

        CircuitBreakerConfig(failure_rate_threshold=0.5)  # the rate rule only
        CircuitBreakerConfig(failure_rate_threshold=0.5, failure_threshold=20)  # both

    After ``recovery_timeout`` seconds open, up to ``half_open_max_calls`` probe
    calls run at once; ``success_threshold`` probe successes close the breaker,
    one probe failure reopens it. Exceptions in ``ignored_exceptions`` (alias
    ``exception_whitelist``) count as neither success nor failure; exceptions
    outside ``failure_exceptions`` count as success (the dependency answered).
    An ``ExceptionGroup`` (from a ``TaskGroup``, say) is judged by the exceptions
    it holds, unless its own class is named in those lists: it is a failure if
    any of them is a failure, ignored if all of them are ignored, and a success
    otherwise.
    ``fallback(exc, *args, **kwargs)`` answers rejected calls instead of raising.
    ``critical=True`` marks a dependency the service can not work without: while
    such a breaker is open, :func:`~buttress.get_resilience_health` reports
    "unhealthy" (other open breakers only make it "degraded").
    ``timeout`` limits each protected call (async calls are cancelled; sync
    decorated calls run in a worker thread; a sync ``with`` block that overruns
    is not interrupted but counts as a failure); a call that runs out of time is
    a failure whatever ``failure_exceptions`` says.

    ``failure_on_result(result)`` counts a returned value as a failure (an HTTP
    503 response, say: ``failure_on_result=lambda r: r.status_code >= 500``);
    the caller still gets the value. ``mode`` is ``"enforce"`` (the default),
    ``"observe"`` (record, trip and report as usual but never reject: for
    rolling a breaker out) or ``"disabled"`` (neither record nor reject);
    ``breaker.mode = ...`` switches it at run time. Each trip in a row without
    closing in between multiplies the break by ``recovery_timeout_multiplier``
    (1.0: a fixed break), up to ``max_recovery_timeout`` seconds::

        CircuitBreakerConfig(recovery_timeout=5.0, recovery_timeout_multiplier=2.0,
                             max_recovery_timeout=60.0)  # open 5 s, then 10, 20, 40, 60...

    .. versionadded:: 0.2 ``failure_on_result``, ``mode``,
       ``recovery_timeout_multiplier`` and ``max_recovery_timeout``.
    .. versionchanged:: 0.2 keyword arguments only.
    """

    name: str
    failure_threshold: int | None
    recovery_timeout: float
    success_threshold: int
    half_open_max_calls: int
    failure_window: float | None
    failure_rate_threshold: float | None
    minimum_calls: int
    window_size: int
    slow_call_duration: float | None
    slow_call_rate_threshold: float | None
    timeout: float | None
    failure_exceptions: tuple[type[Exception], ...]
    ignored_exceptions: tuple[type[Exception], ...]
    fallback: Callable[..., Any] | None
    critical: bool
    failure_on_result: Callable[[Any], bool] | None
    mode: str
    recovery_timeout_multiplier: float
    max_recovery_timeout: float | None

    def __init__(
        self,
        *,
        name: str = "default",
        failure_threshold: int | None = _UNSET,
        recovery_timeout: float = 30.0,
        success_threshold: int = 2,
        half_open_max_calls: int = 3,
        failure_window: float | None = None,
        failure_rate_threshold: float | None = None,
        minimum_calls: int = 10,
        window_size: int = 100,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float | None = None,
        timeout: float | None = None,
        failure_exceptions: Any = (Exception,),
        ignored_exceptions: Any = _UNSET,
        fallback: Callable[..., Any] | None = None,
        exception_whitelist: Any = _UNSET,
        critical: bool = False,
        failure_on_result: Callable[[Any], bool] | None = None,
        mode: str = "enforce",
        recovery_timeout_multiplier: float = 1.0,
        max_recovery_timeout: float | None = None,
    ) -> None:
        o = "CircuitBreakerConfig"
        if not isinstance(critical, bool):
            raise ConfigurationError(f"{o}.critical", critical, "a bool")
        if ignored_exceptions is not _UNSET and exception_whitelist is not _UNSET:
            raise ConfigurationError(
                f"{o}.exception_whitelist", exception_whitelist,
                "not given together with its native spelling ignored_exceptions",
                message=f"{o}.ignored_exceptions and its alias exception_whitelist are both "
                        f"given: {ignored_exceptions!r}, {exception_whitelist!r}")
        # Errors name the spelling the caller used.
        ignored_field, ignored = "ignored_exceptions", ignored_exceptions
        if exception_whitelist is not _UNSET:
            ignored_field, ignored = "exception_whitelist", exception_whitelist
        if ignored is _UNSET:
            ignored = ()
        if failure_threshold is _UNSET:
            # The rate rule replaces the count rule unless both are asked for.
            failure_threshold = None if failure_rate_threshold is not None else 5
        f: dict[str, Any] = {
            "name": validate.text(o, "name", name),
            "failure_threshold": (
                None if failure_threshold is None
                else validate.integer(o, "failure_threshold", failure_threshold, minimum=1)),
            "recovery_timeout": validate.number(o, "recovery_timeout", recovery_timeout,
                                                minimum=0.0),
            "success_threshold": validate.integer(o, "success_threshold", success_threshold,
                                                  minimum=1),
            "half_open_max_calls": validate.integer(o, "half_open_max_calls",
                                                    half_open_max_calls, minimum=1),
            "failure_window": validate.optional_number(o, "failure_window", failure_window,
                                                       minimum=0.0, strict_minimum=True),
            "failure_rate_threshold": validate.optional_number(
                o, "failure_rate_threshold", failure_rate_threshold,
                minimum=0.0, maximum=1.0, strict_minimum=True),
            "minimum_calls": validate.integer(o, "minimum_calls", minimum_calls, minimum=1),
            "window_size": validate.integer(o, "window_size", window_size, minimum=1),
            "slow_call_duration": validate.optional_number(
                o, "slow_call_duration", slow_call_duration, minimum=0.0, strict_minimum=True),
            "slow_call_rate_threshold": validate.optional_number(
                o, "slow_call_rate_threshold", slow_call_rate_threshold,
                minimum=0.0, maximum=1.0, strict_minimum=True),
            # Bounded by what a thread wait accepts (sync calls wait for a worker).
            "timeout": validate.optional_number(o, "timeout", timeout, minimum=0.0,
                                                strict_minimum=True,
                                                maximum=threading.TIMEOUT_MAX),
            "failure_exceptions": validate.exception_types(o, "failure_exceptions",
                                                           failure_exceptions),
            "ignored_exceptions": validate.exception_types(o, ignored_field, ignored),
            "fallback": validate.optional_callable(o, "fallback", fallback),
            "critical": critical,
            "failure_on_result": validate.optional_callable(o, "failure_on_result",
                                                            failure_on_result),
            "mode": _mode(o, mode),
            "recovery_timeout_multiplier": validate.number(
                o, "recovery_timeout_multiplier", recovery_timeout_multiplier, minimum=1.0),
            "max_recovery_timeout": validate.optional_number(
                o, "max_recovery_timeout", max_recovery_timeout, minimum=0.0),
        }
        if (f["max_recovery_timeout"] is not None
                and f["max_recovery_timeout"] < f["recovery_timeout"]):
            raise ConfigurationError(
                f"{o}.max_recovery_timeout must be >= recovery_timeout "
                f"({f['recovery_timeout']:g}), got {max_recovery_timeout!r}"
            )
        if f["slow_call_rate_threshold"] is not None and f["slow_call_duration"] is None:
            raise ConfigurationError(
                f"{o}.slow_call_rate_threshold", slow_call_rate_threshold,
                "None unless slow_call_duration is set",
                message=f"{o}.slow_call_rate_threshold needs slow_call_duration, got "
                        f"slow_call_rate_threshold={slow_call_rate_threshold!r} without it")
        uses_rate = (f["failure_rate_threshold"] is not None
                     or f["slow_call_rate_threshold"] is not None)
        if f["failure_threshold"] is None and not uses_rate:
            raise ConfigurationError(
                f"{o}.failure_threshold", None, "an int >= 1 (None only with a rate rule)",
                message=f"{o}.failure_threshold may only be None when a rate rule "
                        f"(failure_rate_threshold or slow_call_rate_threshold) is set, got None "
                        f"without one")
        if uses_rate and f["failure_window"] is None and f["minimum_calls"] > f["window_size"]:
            raise ConfigurationError(
                f"{o}.minimum_calls", minimum_calls, f"<= window_size ({f['window_size']})",
                message=f"{o}.minimum_calls must be <= window_size ({f['window_size']}) or the "
                        f"rate rule can never fire, got {minimum_calls!r}")
        for key, value in f.items():
            object.__setattr__(self, key, value)

    @property
    def exception_whitelist(self) -> tuple[type[Exception], ...]:
        """Alias of ``ignored_exceptions``."""
        return self.ignored_exceptions

    def replace(self, **changes: Unpack[CircuitBreakerOptions]) -> CircuitBreakerConfig:
        """A copy with some fields changed (and validated again)."""
        current = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if current["failure_threshold"] is None and self.failure_rate_threshold is not None:
            # Off because the rate rule replaced it: decided again from the new fields.
            current["failure_threshold"] = _UNSET
        current.update(changes)
        return CircuitBreakerConfig(**current)

    @property
    def uses_window(self) -> bool:
        """Whether a rate rule needs the sliding window of outcomes."""
        return self.failure_rate_threshold is not None or self.slow_call_rate_threshold is not None


def _mode(owner: str, mode: object) -> str:
    if mode not in MODES:
        raise ConfigurationError(
            f"{owner}.mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return str(mode)


@dataclass(frozen=True, slots=True)
class CircuitBreakerStats:
    """A consistent snapshot of one breaker's counters."""

    name: str
    state: CircuitState
    total_calls: int
    successful_calls: int
    failed_calls: int
    rejected_calls: int
    ignored_calls: int
    slow_calls: int
    state_changes: int
    trips: int
    failure_count: int
    failure_threshold: int | None
    failure_rate: float
    last_failure_time: float | None
    remaining_timeout: float

    @classmethod
    def of(cls, name: str, c: BreakerCounts, failure_threshold: int | None
           ) -> CircuitBreakerStats:
        """The snapshot of a store's counts."""
        finished = c.successes + c.failed
        rate = c.failure_rate
        if rate is None:
            rate = c.failed / finished if finished else 0.0
        return cls(
            name=name,
            state=c.state,
            total_calls=c.successes + c.failed + c.ignored + c.rejected,
            successful_calls=c.successes,
            failed_calls=c.failed,
            rejected_calls=c.rejected,
            ignored_calls=c.ignored,
            slow_calls=c.slow,
            state_changes=c.state_changes,
            trips=c.trips,
            failure_count=c.failure_count,
            failure_threshold=failure_threshold,
            failure_rate=rate,
            last_failure_time=c.last_failure_time,
            remaining_timeout=c.remaining,
        )

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a plain dict (``state`` as its string value)."""
        result = {name: getattr(self, name) for name in self.__dataclass_fields__}
        result["state"] = self.state.value
        return result


# --- judging an outcome ----------------------------------------------------------------

_FAILURE: Final = "failure"
_SUCCESS: Final = "success"
_IGNORED: Final = "ignored"
_UNCOUNTED: Final = "uncounted"


def _verdict(config: CircuitBreakerConfig, exc: BaseException) -> str:
    """What an exception ending a call counts as: failure, success (the dependency
    answered), ignored, or uncounted (cancellation, interrupts and exits)."""
    if not isinstance(exc, Exception):
        return _UNCOUNTED
    if isinstance(exc, ExceptionGroup) and not _names_group(config, exc):
        # Judged by what it holds: one failure is a failure; all ignored, ignored.
        verdicts = {_verdict(config, inner) for inner in exc.exceptions}
        if _FAILURE in verdicts:
            return _FAILURE
        return _IGNORED if verdicts == {_IGNORED} else _SUCCESS
    if isinstance(exc, config.ignored_exceptions):
        return _IGNORED
    if isinstance(exc, (config.failure_exceptions, OperationTimeoutError)):
        # A timeout is the dependency not answering, so it counts as a failure
        # even when failure_exceptions names only other errors.
        return _FAILURE
    return _SUCCESS


def _names_group(config: CircuitBreakerConfig, group: ExceptionGroup[Exception]) -> bool:
    """Whether the config names an exception-group class that ``group`` is."""
    return any(issubclass(cls, BaseExceptionGroup) and isinstance(group, cls)
               for cls in (*config.ignored_exceptions, *config.failure_exceptions))


# --- hooks ----------------------------------------------------------------------------



class _StateHook:
    """A ``listener(breaker, old_state, new_state)`` hook as an event listener.

    It lives in the breaker's own hub, so it holds the breaker weakly: a strong
    reference would make a cycle, and a dropped breaker would keep its registry
    name (and its memory) until the garbage collector ran."""

    __slots__ = ("breaker", "hook")

    def __init__(self, breaker: Any, hook: Callable[[Any, CircuitState, CircuitState], object]
                 ) -> None:
        self.breaker = weakref.ref(breaker)
        self.hook = hook

    def __repr__(self) -> str:
        return repr(self.hook)  # the user's callback, as they wrote it

    def __call__(self, event: StateChanged) -> None:
        breaker = self.breaker()
        if breaker is not None:  # it is the one speaking, so it is alive
            self.hook(breaker, event.old_state, event.new_state)


class _Reporter:
    """The store's ``report`` callback: it holds the breaker weakly, because the
    breaker holds the store, and a cycle would keep a dropped breaker (and its
    registry name) alive until the garbage collector ran."""

    __slots__ = ("breaker",)

    def __init__(self, breaker: Any) -> None:
        self.breaker = weakref.ref(breaker)

    def __call__(self, moved: Transition) -> None:
        breaker = self.breaker()
        if breaker is not None:  # it is the one changing, so it is alive
            breaker._notify(moved)
