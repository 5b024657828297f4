"""Pipelines rebuilt from the configuration: :class:`LivePipeline` checks one
integer per call and rebuilds when the configuration's generation moved."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import (
    Any,
    Concatenate,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    cast,
    overload,
)

from buttress._core import forksafe
from buttress._core.clock import Clock
from buttress._core.events import Listeners
from buttress._core.strategy import check_call, check_protectable, is_async_callable
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.config.schema import (
    ResilienceSettings,
)
from buttress.pipeline import Pipeline, pipeline
from buttress.retry import RetryConfig
from buttress.timeout import Timeout, TimeoutConfig

__all__ = ["LivePipeline", "Protected", "Store"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
_Q = ParamSpec("_Q")
_S = TypeVar("_S")


class Store(Protocol):
    """What a :class:`LivePipeline` reads from the live configuration
    (:class:`~buttress.config.ResilienceConfig`): the generation, the effective
    settings, and the registered breaker for a config."""

    _generation: int

    @property
    def settings(self) -> ResilienceSettings: ...

    def _circuit_breaker(self, config: CircuitBreakerConfig, clock: Clock | None,
                         generation: int, owner: str) -> CircuitBreaker: ...


# The shared store, set once by buttress.config.live when it creates
# ``resilience_config`` (this module can not import it: the store's ``protect``
# builds pipelines defined here).
_shared: list[Store] = []


def share_store(store: Store) -> None:
    """Make ``store`` the one every :class:`LivePipeline` without its own follows."""
    _shared[:] = [store]

# --- pipelines rebuilt from configuration ----------------------------------------------------


class _Built:
    """One generation's pipeline and the configs it was built from."""

    __slots__ = ("circuit_breaker", "circuit_breaker_config", "generation", "pipeline",
                 "retry_config", "timeout_config")

    def __init__(self, generation: int, pipeline: Pipeline | None = None,
                 retry_config: RetryConfig | None = None,
                 circuit_breaker_config: CircuitBreakerConfig | None = None,
                 timeout_config: TimeoutConfig | None = None,
                 circuit_breaker: CircuitBreaker | None = None) -> None:
        self.generation = generation
        self.pipeline = pipeline
        self.retry_config = retry_config
        self.circuit_breaker_config = circuit_breaker_config
        self.timeout_config = timeout_config
        self.circuit_breaker = circuit_breaker

    # _chain, not wrap: whoever holds the result holds this _Built, and its pipeline.
    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn if self.pipeline is None else self.pipeline._chain(fn)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return fn if self.pipeline is None else self.pipeline._chain_async(fn)


class Protected(Protocol[P, R_co]):
    """What a :class:`LivePipeline` makes of a function, for type checkers: callable
    exactly as the original (same parameters, same result; a method binds as
    usual), with the pipeline protecting it as ``.resilience``::

        @resilience_config.protect("database")
        def get_user(user_id: int) -> dict: ...

        get_user(1)                            # checked against (user_id: int)
        get_user.resilience.retry_config       # RetryConfig | None

    At run time it is the function ``functools.wraps`` made; nothing here runs.
    The presets return the narrower :class:`~buttress.presets.ResilientFunction`.

    .. versionadded:: 0.1
    """

    __name__: str
    __qualname__: str

    @property
    def resilience(self) -> LivePipeline: ...

    @property
    def __wrapped__(self) -> Callable[P, R_co]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    # A method: looked up on the class it stays itself, on an instance it is
    # bound (its first parameter filled).
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(self: Protected[Concatenate[_S, _Q], R_co], instance: _S,
                owner: type[Any] | None = None, /) -> Protected[_Q, R_co]: ...


class LivePipeline:
    """A pipeline built from the current configuration, and built again whenever the
    configuration changes (checked once per call: one integer comparison).

    Use it as a decorator (sync or async), with ``call``/``acall``, or as a (async)
    context manager that hands itself out::

        with resilient_context(operation_type="database") as ctx:
            rows = ctx.call(fetch_rows, limit=10)

    ``events`` is a listener hub that outlives the rebuilds: every pipeline built
    for this object delivers its events there too.
    """

    __slots__ = ("_build_lock", "_built", "_store", "clock", "events")

    _eager: bool = True

    def __init__(self, clock: Clock | None = None, *, store: Store | None = None) -> None:
        self.clock = clock
        self._store = store if store is not None else _shared[0]
        self._built: _Built | None = None
        self._build_lock = forksafe.lock()
        self.events = Listeners()

    # what subclasses decide

    def _assemble(self, settings: ResilienceSettings) -> tuple[
            RetryConfig | None, CircuitBreakerConfig | None, TimeoutConfig | None]:
        raise NotImplementedError

    def _owner(self) -> str:
        return repr(self)

    def _for_function(self, fn: Callable[..., Any]) -> LivePipeline:
        return self

    def _timeout_stage(self, config: TimeoutConfig) -> Timeout:
        """The timeout strategy for ``config``: by default sync calls run in a worker
        thread (only used where a timeout was asked for explicitly)."""
        return Timeout(config, clock=self.clock)

    # building

    def current(self) -> _Built:
        """This generation's pipeline, built now if the configuration changed."""
        built = self._built
        store = self._store
        if built is not None and built.generation == store._generation:
            return built
        with self._build_lock:
            generation = store._generation
            built = self._built
            if built is not None and built.generation == generation:
                return built
            settings = store.settings
            if not settings.resilience_enabled:
                built = _Built(generation)
            else:
                retry, breaker_config, limit = self._assemble(settings)
                if not settings.circuit_breaker_enabled:
                    breaker_config = None
                breaker = (None if breaker_config is None else store._circuit_breaker(
                    breaker_config, self.clock, generation, self._owner()))
                built_pipeline = pipeline(
                    retry=retry, circuit_breaker=breaker,
                    timeout=None if limit is None else self._timeout_stage(limit),
                    clock=self.clock)
                built_pipeline.events.attach(self.events)
                built = _Built(generation, built_pipeline, retry, breaker_config, limit,
                               breaker)
            old = self._built
            if old is not None and old.pipeline is not None:
                # Its strategies may live on (a shared breaker): stop feeding the
                # old pipeline's hub, or every rebuild would add one more parent.
                old.pipeline.detach()
            self._built = built
            return built

    @property
    def pipeline(self) -> Pipeline | None:
        """The current :class:`Pipeline` (``None`` while resilience is disabled)."""
        return self.current().pipeline

    @property
    def retry_config(self) -> RetryConfig | None:
        """The current retry config (``None`` when retry is off)."""
        return self.current().retry_config

    @property
    def circuit_breaker_config(self) -> CircuitBreakerConfig | None:
        """The current breaker config (``None`` when the breaker is off)."""
        return self.current().circuit_breaker_config

    @property
    def circuit_breaker(self) -> CircuitBreaker | None:
        """The current (registered) breaker, or ``None``."""
        return self.current().circuit_breaker

    @property
    def timeout_config(self) -> TimeoutConfig | None:
        """The current timeout config (``None`` when the timeout is off)."""
        return self.current().timeout_config

    # using

    def __call__(self, fn: Callable[P, R]) -> Protected[P, R]:
        check_protectable(fn, type(self).__name__)
        return cast("Protected[P, R]", self._for_function(fn)._decorate(fn))

    def _decorate(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        first = self.current() if self._eager else None
        state = self._store
        wrapper: Callable[..., Any]
        if is_async_callable(fn):
            pair_async = (first, fn if first is None else first.wrap_async(fn))

            async def protected_async(*args: Any, **kwargs: Any) -> Any:
                nonlocal pair_async
                built, wrapped = pair_async
                if built is None or built.generation != state._generation:
                    built = self.current()
                    wrapped = built.wrap_async(fn)
                    pair_async = (built, wrapped)
                return await wrapped(*args, **kwargs)

            wrapper = protected_async
        else:
            pair = (first, fn if first is None else first.wrap(fn))

            def protected(*args: Any, **kwargs: Any) -> Any:
                nonlocal pair
                built, wrapped = pair
                if built is None or built.generation != state._generation:
                    built = self.current()
                    wrapped = built.wrap(fn)
                    pair = (built, wrapped)
                return wrapped(*args, **kwargs)

            wrapper = protected
        functools.update_wrapper(wrapper, fn)
        wrapper.__dict__["resilience"] = self
        return wrapper

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once under the current pipeline."""
        if check_call(fn, type(self).__name__):
            raise TypeError(f"{fn!r} is a coroutine function: use `await ctx.acall(fn)`")
        return self.current().wrap(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` once under the current pipeline; ``fn`` may
        also be a plain callable returning an awaitable (``lambda: client.get(url)``)."""
        if check_call(fn, type(self).__name__):
            return await self.current().wrap_async(fn)(*args, **kwargs)

        async def awaited(*a: Any, **kw: Any) -> Any:
            result = fn(*a, **kw)
            return await result if inspect.isawaitable(result) else result

        return await self.current().wrap_async(awaited)(*args, **kwargs)

    def __enter__(self) -> LivePipeline:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    async def __aenter__(self) -> LivePipeline:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None
