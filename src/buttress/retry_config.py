"""The retry config, and the view of a call its predicates see.

:class:`RetryConfig` says how to retry (when, how often, how long to wait) and
is validated on construction; :class:`RetryCall` is what a two-parameter
predicate receives. The decisions are :mod:`buttress.retry_policy`'s and the
loops that act on them :mod:`buttress.retry_runner`'s; :mod:`buttress.retry`
gathers them all, with the seeds' spellings.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, TypeVar, Unpack

from buttress._core import validate
from buttress._core.context import CURRENT, CallContext
from buttress._core.errors import CircuitBreakerError, ConfigurationError
from buttress._core.spellings import RETRY_ALIASES
from buttress._core.spellings import UNSET as _UNSET
from buttress._core.spellings import pick as _pick
from buttress._core.strategy import describe
from buttress.backoff import RetryStrategy, compute_delay, normalise_jitter, normalise_strategy
from buttress.budget import RetryBudget
from buttress.options import RetryOptions

__all__ = ["RetryCall", "RetryConfig"]

_NO_KWARGS: Final[Mapping[str, Any]] = MappingProxyType({})

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
    .. versionchanged:: 0.2 keyword arguments only.
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
    budget: RetryBudget | None

    def __init__(
        self,
        *,
        max_attempts: int | None = 3,
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
        initial_delay: float = _UNSET,
        backoff_multiplier: float = _UNSET,
        multiplier: float = _UNSET,
        retry_on: Any = _UNSET,
        retryable_exceptions: Any = _UNSET,
        retry_predicate: Callable[..., bool] | None = _UNSET,
        retry_after_result: Callable[[Any], float | None] | None = None,
        dispose: Callable[[Any], object] | None = None,
        budget: RetryBudget | None = None,
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
            "budget": validate.optional_instance(o, "budget", budget, RetryBudget,
                                                 "a RetryBudget (TokenBucketBudget, "
                                                 "RatioBudget) or None"),
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

    def replace(self, **changes: Unpack[RetryOptions]) -> RetryConfig:
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
_ALIASES: Final = RETRY_ALIASES


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

