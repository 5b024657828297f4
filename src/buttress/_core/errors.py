"""The one error hierarchy of buttress.

Every error buttress raises on its own account derives from :class:`ButtressError`
and carries the facts a caller needs as attributes. Errors that replace an
original exception are chained to it with ``from``.

Every buttress error survives ``pickle``, ``copy.copy`` and ``copy.deepcopy``
with its type, message and attributes, so it crosses a process pool
(``concurrent.futures.ProcessPoolExecutor``, ``multiprocessing.Pool``) intact.
Python's default pickling of an exception calls ``type(exc)(*exc.args)``, which
fails for any error whose ``__init__`` takes other arguments than its message
(and a worker's unpicklable exception breaks the pool or hangs the parent), so
:meth:`ButtressError.__reduce__` rebuilds without calling ``__init__`` at all:
a subclass needs nothing special, whatever its constructor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from buttress._core.breaker_machine import CircuitState

__all__ = [
    "BulkheadFullError",
    "ButtressError",
    "CircuitBreakerError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "DeadlineExceededError",
    "OperationTimeoutError",
    "RetryError",
    "RetryExhaustedError",
]


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """Unpickle a :class:`ButtressError`: make the instance without running
    ``__init__`` (its ``args`` are the message, not the constructor's arguments);
    pickle then restores the attributes through ``__setstate__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    return error


_new_exception = BaseException.__new__


class ButtressError(Exception):
    """Root of every error raised by buttress itself."""

    def __reduce__(self) -> tuple[Any, ...]:
        # (rebuild, its arguments, the attributes) instead of BaseException's
        # (type, args, attributes), which calls __init__ with the message.
        return _rebuild, (type(self), self.args), self.__dict__ or None


_UNSET: Any = object()


class ConfigurationError(ButtressError, ValueError):
    """A configuration value is invalid.

    ``field`` names it (``"RetryConfig.max_attempts"``, ``"database.max_delay"``),
    ``value`` is the value refused and ``expected`` says what would be accepted
    (``">= 1"``); the message is built from them::

        >>> error = ConfigurationError("RetryConfig.max_attempts", 0, ">= 1")
        >>> str(error)
        'RetryConfig.max_attempts must be >= 1, got 0'
        >>> error.field, error.value, error.expected
        ('RetryConfig.max_attempts', 0, '>= 1')

    ``message`` replaces the built message where more context helps (the file and
    line a value came from); the attributes stay. A single argument is a plain
    message, as before: ``field``, ``value`` and ``expected`` are then ``None``.

    .. versionchanged:: 0.2
       ``field``, ``value`` and ``expected``.
    """

    field: str | None
    value: Any
    expected: str | None

    def __init__(self, field: str, value: Any = _UNSET, expected: str | None = None, *,
                 message: str | None = None) -> None:
        if value is _UNSET and expected is None:
            self.field, self.value, self.expected = None, None, None
            super().__init__(field if message is None else message)
            return
        self.field, self.value = field, None if value is _UNSET else value
        self.expected = expected
        if message is None:
            message = f"{field} must be {expected}, got {self.value!r}"
        super().__init__(message)

    def reworded(self, message: str) -> ConfigurationError:
        """The same error (class and attributes) with another message: used to add
        where the value came from (``"config.toml:3: ..."``)."""
        clone = type(self).__new__(type(self), message)
        clone.args = (message,)
        clone.__dict__.update(self.__dict__)
        return clone


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A configuration value has the wrong type (``RetryConfig.max_attempts = "3"``).

    Both a :class:`ConfigurationError` (with ``field``, ``value`` and ``expected``)
    and a :class:`TypeError`, which callers of the configs already catch.

    .. versionadded:: 0.2
    """


class RetryExhaustedError(ButtressError):
    """Every allowed attempt failed (or the retry deadline was spent).

    ``attempts`` is the number of calls made, ``last_exception`` the error of the
    final attempt (``None`` when the final attempt returned a result that the
    ``retry_on_result`` predicate rejected, see ``last_result``). ``reason``
    says why retrying stopped early, when it did (the call's deadline would
    have passed during the next wait), else None.
    """

    def __init__(
        self,
        attempts: int,
        last_exception: BaseException | None,
        last_result: Any = None,
        operation: str | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        self.attempts = attempts
        self.last_exception = last_exception
        self.last_result = last_result
        self.operation = operation
        self.reason = reason
        what = f"{operation!r} " if operation else ""
        if last_exception is not None:
            cause = f"{type(last_exception).__name__}: {last_exception}"
        else:
            cause = f"result {last_result!r} was rejected"
        why = f" ({reason})" if reason else ""
        super().__init__(f"operation {what}failed after {attempts} attempts{why}; last: {cause}")


RetryError = RetryExhaustedError
"""Alias of :class:`RetryExhaustedError` (the spelling several seeds use)."""


class CircuitBreakerError(ButtressError):
    """The circuit breaker rejected the call without running it.

    ``remaining_timeout`` is the number of seconds until the breaker lets a call
    through: until its recovery timeout ends while open, until taken probe
    permits are given back while half-open. ``last_failure`` is the failure that
    opened the breaker (``None`` when it was forced open or tripped by slow
    calls); the error is chained to it (``__cause__``), so a retry loop that
    tripped the breaker still shows what went wrong.
    """

    def __init__(self, name: str, state: CircuitState, remaining_timeout: float,
                 last_failure: BaseException | None = None) -> None:
        # The message is built only when asked for (__str__): an open breaker
        # raises this on every rejected call, and formatting it up front cost
        # more than half of the rejection.
        # The attributes below read ``args``, for the same reason (an instance
        # attribute would cost a __dict__ per rejection).
        if last_failure is None:
            super().__init__(name, state, remaining_timeout)
        else:
            super().__init__(name, state, remaining_timeout, last_failure)
            self.__cause__ = last_failure

    @classmethod
    def rejecting(cls, name: str, state: CircuitState, remaining_timeout: float,
                  last_failure: BaseException | None) -> CircuitBreakerError:
        """The same error as ``cls(name, state, remaining_timeout, last_failure)``,
        built without a Python-level ``__init__`` (``BaseException.__new__`` sets
        ``args``): an open breaker builds one per rejected call, and the
        ``__init__`` call was a third of the rejection."""
        if last_failure is None:
            return _new_exception(cls, name, state, remaining_timeout)
        error = _new_exception(cls, name, state, remaining_timeout, last_failure)
        error.__cause__ = last_failure
        return error

    @property
    def last_failure(self) -> BaseException | None:
        """The failure that opened the breaker (``None`` if forced open or tripped
        by slow calls)."""
        return self.args[3] if len(self.args) > 3 else None

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self.args[0]  # type: ignore[no-any-return]

    @property
    def state(self) -> CircuitState:
        """The breaker's state when it rejected the call."""
        return self.args[1]  # type: ignore[no-any-return]

    @property
    def remaining_timeout(self) -> float:
        """Seconds until a probe call is allowed."""
        return self.args[2]  # type: ignore[no-any-return]

    def __str__(self) -> str:
        return (f"circuit breaker {self.name!r} is {self.state.value}; "
                f"next probe allowed in {self.remaining_timeout:.3f}s")

    @property
    def retry_after(self) -> float:
        """Delay hint for an outer retry: the time until a probe is allowed."""
        return self.remaining_timeout


class OperationTimeoutError(ButtressError, TimeoutError):
    """An operation ran past its time limit.

    A subclass of the builtin :class:`TimeoutError`, so ``except TimeoutError``
    catches it. ``operation`` and ``timeout`` name what ran out of time.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        operation: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.operation = operation
        self.timeout = timeout
        if message is None:
            what = f"operation {operation!r}" if operation else "operation"
            message = f"{what} timed out after {timeout}s"
        super().__init__(message)


class DeadlineExceededError(OperationTimeoutError):
    """The call's deadline ran out before the time limit of its own timeout did.

    Raised by a timeout whose limit was cut short by an outer deadline (an
    outer timeout, or a :func:`~buttress.deadline` block): ``timeout`` is the
    time that was left of the deadline when the call started (seconds),
    ``limit`` the timeout's own limit. An :class:`OperationTimeoutError`, so
    code catching that (or ``TimeoutError``) catches this too.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        operation: str | None = None,
        timeout: float | None = None,
        limit: float | None = None,
    ) -> None:
        self.limit = limit
        if message is None:
            what = f"operation {operation!r}" if operation else "operation"
            facts = []
            if timeout is not None:
                facts.append(f"{timeout:g}s were left of it")
            if limit is not None:
                facts.append(f"the timeout's own limit is {limit:g}s")
            detail = f" ({'; '.join(facts)})" if facts else ""
            message = f"{what} timed out: the call's deadline ran out{detail}"
        super().__init__(message, operation=operation, timeout=timeout)


class BulkheadFullError(ButtressError):
    """Raised instead of running a call when every permit is taken and the queue
    is full (or the wait in the queue ran out)."""

    def __init__(self, name: str | None, max_concurrent: int, max_queue: int,
                 waited: bool = False) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.waited = waited
        why = "waited too long in the queue" if waited else "all permits taken and queue full"
        super().__init__(f"bulkhead {name or ''!s} rejected the call: {why} "
                         f"(max_concurrent={max_concurrent}, max_queue={max_queue})")


class CommitOutcomeUnknownError(ButtressError):
    """The connection was lost while a COMMIT was in flight: the transaction may
    or may not have been committed, and nobody can tell from here.

    buttress never retries it (a replay could apply the transaction twice), and
    the transient classifiers never call it transient. Check the database (an
    idempotency key, a unique constraint, re-reading what was written) before
    doing the work again. ``operation`` names the client; the driver's error is
    the ``__cause__``.

    .. versionadded:: 0.2
    """

    def __init__(self, operation: str | None = None, cause: BaseException | None = None) -> None:
        self.operation = operation
        what = f" on {operation!r}" if operation else ""
        detail = f": {type(cause).__name__}: {cause}".rstrip() if cause is not None else ""
        super().__init__(f"connection lost during COMMIT{what}; the transaction may or may not "
                         f"have been committed (not retried){detail}")
