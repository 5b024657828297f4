"""``resilient(...)``, the five operation presets and ``resilient_context(...)``.

Each is a pipeline (retry → circuit breaker → timeout → the call) whose values
come from the settings of its operation type (:mod:`buttress.config`), with
any keyword given in code taking precedence::

    @database_resilient(operation_name="get_user")
    def get_user(user_id: int) -> dict: ...          # 30 s timeout, 3 attempts, ...

    @api_resilient(operation_name="payment_api", timeout_seconds=30.0, max_attempts=3)
    async def charge(payment: dict) -> dict: ...

Values not given in code are read again whenever the settings change (checked
once per call), and ``configure(resilience_enabled=False)`` makes every one of
them a pass-through from its next call. The breaker is the registry's breaker
named ``operation_name`` (default: the function's module and qualified name), so
every function naming the same operation shares it.

By default only transient failures are retried: connection errors and timeouts
(plus the drivers' ``OperationalError`` for ``database``/``cache``, transport
errors and 408/425/429/5xx statuses for ``api``). ``retry_exceptions=`` retries
exactly the classes given instead. An exhausted retry raises
:class:`~buttress.RetryExhaustedError` (alias ``RetryError``); an open breaker
:class:`~buttress.CircuitBreakerError`, never retried; a timeout
:class:`~buttress.OperationTimeoutError` (a ``TimeoutError``), retried.

Timeouts and threads. A preset never moves a call to another thread unless asked:

* an **async** function is cancelled when ``timeout_seconds`` is up (in its own task);
* a **sync** function runs in the caller's thread and ``timeout_seconds`` is *not*
  enforced on it: Python can not stop a running sync call, only stop waiting for
  it from another thread. Objects bound to their thread (a ``sqlite3``
  connection, thread-local sessions, ``threading.local`` state, most DB-API
  connections) would break there, and an overrunning call would keep running in
  the background while the retry starts another one. Use the client's own
  timeout (``sqlite3.connect(timeout=...)``, the driver's statement timeout,
  ``httpx``/``requests`` ``timeout=``), which really ends the work. The call's
  deadline is set all the same: :func:`~buttress.remaining_time` inside it tells
  how much of ``timeout_seconds`` is left, and the database client
  (:func:`~buttress.get_database_client`) makes it each transaction's statement
  timeout;
* ``timeout_in_thread=True`` asks for the thread: the sync call runs in a worker
  thread and the caller gets :class:`~buttress.OperationTimeoutError` after
  ``timeout_seconds`` (the call itself runs on to its end in the background).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    ParamSpec,
    Protocol,
    Self,
    TypedDict,
    TypeVar,
    cast,
    overload,
)

from buttress._core import validate
from buttress._core.clock import Clock
from buttress._core.context import CURRENT, within
from buttress._core.errors import ConfigurationError, ConfigurationTypeError
from buttress.breaker import CircuitBreakerConfig
from buttress.config import (
    OPERATION_TYPES,
    Explanation,
    LivePipeline,
    Protected,
    ResilienceSettings,
    resilience_config,
)
from buttress.config.schema import _OPERATION_FIELDS, _check_delays, _check_field
from buttress.retry import RetryConfig
from buttress.timeout import Timeout, TimeoutConfig
from buttress.transient import is_transient, is_transient_database_error, is_transient_http_error

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "PresetOptions",
    "Resilience",
    "ResilientFunction",
    "api_resilient",
    "cache_resilient",
    "database_resilient",
    "file_resilient",
    "ml_resilient",
    "resilient",
    "resilient_context",
]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
_Q = ParamSpec("_Q")
_S = TypeVar("_S")

_OVERRIDABLE: Final = _OPERATION_FIELDS

# What counts as transient, per operation type, when retry_exceptions is not given.
_TRANSIENT: Final[dict[str, Callable[[Exception], bool]]] = {
    "database": is_transient_database_error,
    "cache": is_transient_database_error,
    "api": is_transient_http_error,
}


class PresetOptions(TypedDict, total=False):
    """The keywords every preset accepts (those of :func:`resilient` but the type)."""

    operation_name: str | None
    timeout_seconds: float | None
    max_attempts: int | None
    base_delay: float | None
    max_delay: float | None
    exponential_base: float | None
    jitter: bool | float | None
    failure_threshold: int | None
    recovery_timeout: float | None
    retry_exceptions: type[Exception] | tuple[type[Exception], ...] | None
    enable_timeout: bool
    enable_retry: bool
    enable_circuit_breaker: bool
    timeout_in_thread: bool
    clock: Clock | None


class ContextOptions(PresetOptions, total=False):
    """The keywords of :func:`resilient_context`: :func:`resilient`'s."""

    operation_type: str


class ResilientFunction(Protected[P, R_co], Protocol[P, R_co]):
    """A function protected by :func:`resilient` or a preset, for type checkers:
    called exactly as the original, with its :class:`Resilience` as
    ``.resilience``::

        @database_resilient(operation_name="user_lookup")
        def get_user(user_id: int) -> tuple: ...

        get_user("1")                                  # mypy: expected "int"
        get_user.resilience.retry_config               # RetryConfig | None

    .. versionadded:: 0.1
    """

    @property
    def resilience(self) -> Resilience: ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(self: ResilientFunction[Concatenate[_S, _Q], R_co], instance: _S,
                owner: type[Any] | None = None, /) -> ResilientFunction[_Q, R_co]: ...


class _AsyncOnlyTimeout(Timeout):
    """The presets' timeout without ``timeout_in_thread``: async calls are cancelled
    at the limit; sync calls run unlimited in the caller's thread."""

    __slots__ = ()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        # Not enforced on a sync call, but its deadline is set, so that what the
        # call uses can enforce it where the work happens (the database client's
        # statement timeout, ``remaining_time()`` passed to an HTTP client).
        seconds, clock = self.config.timeout_seconds, self.clock
        operation = self.config.operation_name

        def unlimited(*args: Any, **kwargs: Any) -> Any:
            call, _, _ = within(CURRENT.get(), seconds, clock, clock.monotonic(), operation)
            token = CURRENT.set(call)
            try:
                return fn(*args, **kwargs)
            finally:
                CURRENT.reset(token)

        return unlimited

    def __repr__(self) -> str:
        return f"Timeout({self.config.timeout_seconds}s, async calls only)"


class Resilience(LivePipeline):
    """What :func:`resilient`, the presets and :func:`resilient_context` return: a
    decorator for sync and async functions, ``call(fn, ...)``/``await acall(fn, ...)``,
    and a (async) context manager handing itself out.

    ``pipeline``, ``retry_config``, ``circuit_breaker_config``, ``timeout_config``
    and ``circuit_breaker`` show what the current settings built; a decorated
    function carries its ``Resilience`` as ``fn.resilience``::

        @cache_resilient(operation_name="user_cache")
        async def cache_user(user_id: int) -> None: ...

        cache_user.resilience.retry_config.max_attempts   # 2
        print(cache_user.resilience.explain())            # each value and its source
    """

    __slots__ = ("enable_circuit_breaker", "enable_retry", "enable_timeout", "operation_name",
                 "operation_type", "overrides", "retry_exceptions", "timeout_in_thread")

    def __init__(
        self,
        *,
        operation_type: str = "default",
        operation_name: str | None = None,
        overrides: dict[str, Any] | None = None,
        retry_exceptions: type[Exception] | tuple[type[Exception], ...] | None = None,
        enable_timeout: bool = True,
        enable_retry: bool = True,
        enable_circuit_breaker: bool = True,
        timeout_in_thread: bool = False,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(clock)
        o = "resilient"
        self.operation_type = validate.text(o, "operation_type", operation_type)
        self.operation_name = (None if operation_name is None
                               else validate.text(o, "operation_name", operation_name))
        checked: dict[str, Any] = {}
        for name, value in (overrides or {}).items():
            if name not in _OVERRIDABLE:
                raise TypeError(f"resilient() got an unexpected keyword argument {name!r}")
            if value is not None:
                checked[name] = _check_field(o, name, value)
        self.overrides = checked
        try:
            self.retry_exceptions = (None if retry_exceptions is None else
                                     validate.exception_types(o, "retry_exceptions",
                                                              retry_exceptions))
        except ConfigurationTypeError as exc:
            raise validate.as_value_error(exc) from exc
        for name, flag in (("enable_timeout", enable_timeout), ("enable_retry", enable_retry),
                           ("enable_circuit_breaker", enable_circuit_breaker),
                           ("timeout_in_thread", timeout_in_thread)):
            if not isinstance(flag, bool):
                raise ConfigurationError(f"resilient.{name}", flag, "a bool")
        self.enable_timeout = enable_timeout
        self.enable_retry = enable_retry
        self.enable_circuit_breaker = enable_circuit_breaker
        self.timeout_in_thread = timeout_in_thread

    def __call__(self, fn: Callable[P, R]) -> ResilientFunction[P, R]:
        return cast("ResilientFunction[P, R]", super().__call__(fn))

    def _for_function(self, fn: Callable[..., Any]) -> Resilience:
        if self.operation_name is not None:
            return self
        name = f"{getattr(fn, '__module__', None) or '?'}.{getattr(fn, '__qualname__', fn)}"
        return self.renamed(name)

    def renamed(self, operation_name: str) -> Resilience:
        """The same settings for another operation (and so another breaker)."""
        return Resilience(
            operation_type=self.operation_type, operation_name=operation_name,
            overrides=self.overrides, retry_exceptions=self.retry_exceptions,
            enable_timeout=self.enable_timeout, enable_retry=self.enable_retry,
            enable_circuit_breaker=self.enable_circuit_breaker,
            timeout_in_thread=self.timeout_in_thread, clock=self.clock)

    def _timeout_stage(self, config: TimeoutConfig) -> Timeout:
        if self.timeout_in_thread:
            return Timeout(config, clock=self.clock)
        return _AsyncOnlyTimeout(config, clock=self.clock)

    def _name(self) -> str:
        # Unnamed contexts and calls share the breaker of their operation type.
        return self.operation_name or self.operation_type

    def explain(self) -> Explanation:
        """Each effective value of this operation and where it came from."""
        return resilience_config.explain(self.operation_type, **self.overrides)

    def _assemble(self, settings: ResilienceSettings) -> tuple[
            RetryConfig | None, CircuitBreakerConfig | None, TimeoutConfig | None]:
        values = self.explain()
        section = self.operation_type if self.operation_type in OPERATION_TYPES else "default"
        _check_delays(section, values, self._owner())

        def value(field: str) -> Any:
            return values[f"{section}.{field}"].value

        name = self._name()
        retry = None
        if self.enable_retry:
            if self.retry_exceptions is not None:
                exceptions, condition = self.retry_exceptions, None
            else:
                exceptions = (Exception,)
                condition = _TRANSIENT.get(self.operation_type, is_transient)
            retry = RetryConfig(
                max_attempts=value("max_attempts"), base_delay=value("base_delay"),
                max_delay=value("max_delay"), exponential_base=value("exponential_base"),
                jitter=value("jitter"), exceptions=exceptions, retry_condition=condition,
                name=name)
        breaker = (CircuitBreakerConfig(name=name, failure_threshold=value("failure_threshold"),
                                        recovery_timeout=value("recovery_timeout"))
                   if self.enable_circuit_breaker else None)
        limit = (TimeoutConfig(value("timeout_seconds"), operation_name=name)
                 if self.enable_timeout else None)
        return retry, breaker, limit

    def _owner(self) -> str:
        return f"resilient(operation_type={self.operation_type!r}, operation_name={self._name()!r})"

    def __repr__(self) -> str:
        return f"Resilience({self.operation_type!r}, {self._name()!r})"


def resilient(
    *,
    operation_type: str = "default",
    operation_name: str | None = None,
    timeout_seconds: float | None = None,
    max_attempts: int | None = None,
    base_delay: float | None = None,
    max_delay: float | None = None,
    exponential_base: float | None = None,
    jitter: bool | float | None = None,
    failure_threshold: int | None = None,
    recovery_timeout: float | None = None,
    retry_exceptions: type[Exception] | tuple[type[Exception], ...] | None = None,
    enable_timeout: bool = True,
    enable_retry: bool = True,
    enable_circuit_breaker: bool = True,
    timeout_in_thread: bool = False,
    clock: Clock | None = None,
) -> Resilience:
    """Retry, circuit breaker and timeout for a sync or async function, with the
    settings of ``operation_type`` (``database``, ``cache``, ``api``, ``file``, ``ml``;
    any other type, such as ``"custom"``, uses the ``default`` section) and any value
    given here on top::

        @resilient(operation_type="custom", operation_name="critical_operation",
                   timeout_seconds=15.0, max_attempts=5, base_delay=2.0,
                   retry_exceptions=(ConnectionError, TimeoutError))
        def critical_operation(data: dict) -> dict: ...

    A value left as ``None`` follows the settings, also when they change later.
    ``enable_*=False`` leaves that strategy out. ``timeout_seconds`` cancels async
    calls; a sync call stays in the caller's thread and is not limited unless
    ``timeout_in_thread=True`` (see the module docstring for the trade-off). ``clock`` (a
    :class:`~buttress.testing.VirtualClock` in tests) drives every wait. Invalid
    values raise :class:`ConfigurationError` naming the argument.
    """
    built = Resilience(
        operation_type=operation_type, operation_name=operation_name,
        overrides={"timeout_seconds": timeout_seconds, "max_attempts": max_attempts,
                   "base_delay": base_delay, "max_delay": max_delay,
                   "exponential_base": exponential_base, "jitter": jitter,
                   "failure_threshold": failure_threshold, "recovery_timeout": recovery_timeout},
        retry_exceptions=retry_exceptions, enable_timeout=enable_timeout,
        enable_retry=enable_retry, enable_circuit_breaker=enable_circuit_breaker,
        timeout_in_thread=timeout_in_thread, clock=clock)
    if operation_name is not None:
        built.current()  # fail now on a bad combination, and register the breaker
    return built


def resilient_context(**options: Unpack[ContextOptions]) -> Resilience:
    """The same pipeline as :func:`resilient` for several calls in a block::

        with resilient_context(operation_type="database", operation_name="bulk_operations",
                               timeout_seconds=30.0, max_attempts=2) as ctx:
            users = ctx.call(get_users)
            ctx.call(update_user_status, user_id=1, status="active")

        async with resilient_context(operation_type="api") as ctx:
            data = await ctx.acall(fetch_user_data, user_id=1)

    Takes :func:`resilient`'s keywords. Without ``operation_name`` the breaker is
    the one named after the operation type (``"api"``), shared by such contexts.
    """
    context = resilient(**options)
    context.current()
    return context


def _preset(operation_type: str, options: dict[str, Any]) -> Resilience:
    if "operation_type" in options:
        raise TypeError(f"{operation_type}_resilient() sets operation_type itself; "
                        "use resilient(operation_type=...) for another type")
    return resilient(operation_type=operation_type, **options)


def database_resilient(**options: Unpack[PresetOptions]) -> Resilience:
    """For database calls: 30 s timeout, 3 attempts, 0.5 s base delay, 10 s max delay,
    breaker opens after 3 failures and recovers after 30 s. Any of :func:`resilient`'s
    keywords overrides a value::

        @database_resilient(operation_name="user_lookup")
        def get_user(user_id: int) -> tuple: ...

    A sync ``get_user`` runs in the caller's thread (its connection works as usual)
    and its 30 s limit is the driver's to enforce; async functions are cancelled
    after 30 s. ``timeout_in_thread=True`` limits sync calls from a worker thread.
    """
    return _preset("database", dict(options))


def cache_resilient(**options: Unpack[PresetOptions]) -> Resilience:
    """For cache calls, failing fast: 5 s timeout, 2 attempts, 0.1 s base delay, 1 s max
    delay, breaker opens after 3 failures and recovers after 15 s::

        @cache_resilient(operation_name="user_cache")
        async def cache_user(user_id: int, user_data: dict) -> None: ...
    """
    return _preset("cache", dict(options))


def api_resilient(**options: Unpack[PresetOptions]) -> Resilience:
    """For external HTTP APIs: 60 s timeout, 5 attempts, 1 s base delay, 30 s max delay,
    breaker opens after 5 failures and recovers after 60 s::

        @api_resilient(operation_name="payment_api", timeout_seconds=30.0, max_attempts=3)
        def process_payment(payment_data: dict) -> dict: ...
    """
    return _preset("api", dict(options))


def file_resilient(**options: Unpack[PresetOptions]) -> Resilience:
    """For file and object-store (S3) calls: 10 s timeout, 3 attempts, 0.2 s base delay,
    5 s max delay, breaker opens after 3 failures and recovers after 30 s::

        @file_resilient(operation_name="model_upload")
        def upload_model(file_path: str, bucket: str, key: str) -> None: ...
    """
    return _preset("file", dict(options))


def ml_resilient(**options: Unpack[PresetOptions]) -> Resilience:
    """For long, expensive ML work: 300 s timeout, 2 attempts, 5 s base delay, 30 s max
    delay, breaker opens after 2 failures and recovers after 120 s::

        @ml_resilient(operation_name="model_training")
        def train_model(dataset_path: str, config: dict) -> object: ...
    """
    return _preset("ml", dict(options))
