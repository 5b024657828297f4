"""Composition: several strategies around one call, in the standard order
fallback → retry → hedge → adaptive throttle → circuit breaker → rate limiter
→ timeout → (bulkhead) → chaos → the call, or in
the order the user gives (``Pipeline(..., ordered=True)``, :class:`PipelineBuilder`),
outermost first.

One pipeline protects sync and async callables alike; the choice is made once
per decorated function, not per call.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from buttress._core import operation
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import ConfigurationError, ConfigurationTypeError
from buttress._core.events import Listeners
from buttress._core.strategy import Strategy, _given_name, check_call, operation_name_of
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.budget import RetryBudget
from buttress.bulkhead import Bulkhead, BulkheadConfig
from buttress.chaos import Chaos, ChaosConfig
from buttress.fallback import CachedFallback, Fallback
from buttress.hedge import Hedge, HedgeConfig
from buttress.pipeline_fused import join, separate, take
from buttress.ratelimit import RateLimiter, RateLimiterConfig
from buttress.retry import Retry, RetryConfig
from buttress.throttle import AdaptiveThrottle, AdaptiveThrottleConfig
from buttress.timeout import Timeout, TimeoutConfig

__all__ = ["Pipeline", "PipelineBuilder", "operation_name_of", "pipeline"]

F = TypeVar("F", bound=Callable[..., Any])
_UNSET: Final[Any] = object()

# A protected function keeps its pipeline, and so the pipeline's listener hub,
# alive: the strategies hold that hub only weakly (see buttress._core.events).
# A map rather than an attribute: functools.wraps would copy one over another.
_KEEP: weakref.WeakKeyDictionary[Callable[..., Any], Pipeline] = weakref.WeakKeyDictionary()


class Pipeline(Strategy):
    """Strategies composed in the standard order, whatever order they are given in::

        protect = Pipeline(Retry(max_attempts=3), CircuitBreaker("api"), Timeout(2.0))

        @protect
        async def fetch() -> bytes: ...

    Listeners added to ``protect.events`` hear the events of every strategy in
    the pipeline (a strategy shared by two pipelines reports to both) while the
    pipeline or a function it protects is alive. A dropped pipeline leaves its
    strategies as it found them: building one per request around a shared
    breaker costs the breaker nothing once the request is over.

    Each call is one operation (:mod:`buttress._core.operation`): its name is
    given by :func:`operation_name_of`, every stage's per-call events are
    labelled with it by the exporters, and the call ends with one
    ``CallFinished`` event (outcome and duration) when somebody listens.

    With ``ordered=True`` the strategies wrap the call in exactly the order
    given, outermost first (see also :class:`PipelineBuilder`). That is how an
    overall timeout around the retries and a per-attempt timeout inside them
    are both expressed::

        protect = Pipeline(Timeout(10.0), Retry(max_attempts=5), Timeout(1.0), ordered=True)

    Each attempt then gets at most 1 s, and never more than what is left of the
    10 s (the per-call deadline, :mod:`buttress._core.context`); the retry never
    starts a wait that would end past the 10 s.

    .. versionchanged:: 0.2 ``ordered``.
    """

    __slots__ = ("_layers", "_one_call", "_outcomes", "events", "ordered", "strategies")

    order = 0
    _measures_itself = True

    def __init__(self, *strategies: Strategy, ordered: bool = False) -> None:
        for strategy in strategies:
            _check_strategy(strategy, "Pipeline takes strategies")
        #: True when the strategies wrap the call in the order given (outermost
        #: first), False when they were sorted into the standard order.
        self.ordered: bool = bool(ordered)
        # sorted() is stable: strategies of the same kind keep the order given.
        #: The strategies, outermost first: the order they wrap the call in.
        self.strategies: tuple[Strategy, ...] = (
            tuple(strategies) if ordered else tuple(sorted(strategies, key=lambda s: s.order)))
        # The layers the call goes through: the strategies, with a pair that has
        # a fused form (a timeout right around a bulkhead) as one layer.
        self._layers = _fused(self.strategies)
        # For a wrapper made for one call (acall): the fused layers' parts, which
        # are cheaper to build than the fused wrapper is.
        self._one_call = separate(self._layers)
        #: This pipeline's listener hub: ``pipeline.events.add(listener, *kinds)``.
        self.events = Listeners()
        for strategy in self.strategies:
            hub = getattr(strategy, "events", None)
            if isinstance(hub, Listeners):
                hub.attach(self.events)
        # Hears whoever listens to any of the strategies (each listener once):
        # where the call's one CallFinished goes.
        hubs = [getattr(s, "events", None) for s in self.strategies]
        self._outcomes = Listeners(*(h for h in hubs if isinstance(h, Listeners)))

    def _given_name(self) -> str | None:
        """The name this strategy gives its calls, if any (see :func:`operation_name_of`)."""
        return _given_name(self.strategies)

    def detach(self) -> None:
        """Stop hearing the events of this pipeline's strategies (for a pipeline
        that is being replaced while its strategies live on elsewhere)."""
        for strategy in self.strategies:
            hub = getattr(strategy, "events", None)
            if isinstance(hub, Listeners):
                hub.detach(self.events)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._kept_by(self._chain(fn), fn)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return self._kept_by(self._chain_async(fn), fn)

    def _chain(self, fn: Callable[..., Any], *, lasting: bool = True) -> Callable[..., Any]:
        """:meth:`wrap`, for a caller that keeps this pipeline alive itself as long
        as the result (a per-call wrapper, or an owner holding both): the result
        does not keep the pipeline, and so its listeners, alive. ``lasting=False``
        for a wrapper made for one call, which is cheaper to build and slower to run."""
        return self._layered(fn, False, lasting)

    def _chain_async(self, fn: Callable[..., Awaitable[Any]], *,
                     lasting: bool = True) -> Callable[..., Awaitable[Any]]:
        """:meth:`wrap_async` without keeping the pipeline alive; see :meth:`_chain`."""
        return self._layered(fn, True, lasting)

    def _layered(self, fn: Callable[..., Any], is_async: bool, lasting: bool
                 ) -> Callable[..., Any]:
        # Each layer takes the name of the user's function, so every stage
        # reports under the operation's name, not its inner wrapper's.
        original = fn
        name = operation_name_of(self.strategies, original)
        clock = _clock_of(self.strategies)
        layers = self._layers
        if lasting and layers:
            # The outermost layer's own wrapper checks whether anybody listens
            # (Strategy._heard): one frame less per unheard call, two wrappers
            # more to build.
            for strategy in reversed(layers[1:]):
                fn = functools.wraps(original)(
                    strategy.wrap_async(fn) if is_async else strategy.wrap(fn))
            return layers[0]._outermost(fn, is_async, self._outcomes, name, clock)
        for strategy in reversed(self._one_call):
            fn = functools.wraps(original)(
                strategy.wrap_async(fn) if is_async else strategy.wrap(fn))
        measure = operation.measure_async if is_async else operation.measure
        return measure(fn, self._outcomes, name, clock)

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once under this pipeline."""
        if check_call(fn, type(self).__name__):
            raise TypeError(f"{fn!r} is a coroutine function: use `await pipeline.acall(fn)`")
        return self._chain(fn, lasting=False)(*args, **kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` once under this pipeline."""
        check_call(fn, type(self).__name__)
        return await self._chain_async(fn, lasting=False)(*args, **kwargs)

    def _kept_by(self, wrapper: F, original: object) -> F:
        if wrapper is not original:
            with contextlib.suppress(TypeError):  # not weakly referenceable
                _KEEP[wrapper] = self
        return wrapper

    def __repr__(self) -> str:
        flag = ", ordered=True" if self.ordered else ""
        return f"Pipeline({', '.join(map(repr, self.strategies))}{flag})"


def _fused(strategies: tuple[Strategy, ...]) -> tuple[Strategy, ...]:
    """``strategies``, each adjacent pair that has a fused form (see
    :meth:`Strategy._around`) and each retry and breaker (after a fallback, or
    not) replaced by one layer (:mod:`buttress.pipeline_fused`), which also
    takes in the layer right inside it when it can; outermost first."""
    layers: list[Strategy] = []
    index = 0
    while index < len(strategies):
        layer: Strategy = strategies[index]
        used = 1
        fused = take(strategies, index)
        if fused is not None:
            layer, used = fused
        elif index + 1 < len(strategies):
            pair = layer._around(strategies[index + 1])
            if pair is not None:
                layer, used = pair, 2
        index += used
        joined = join(layers[-1], layer) if layers else None
        if joined is not None:
            layers[-1] = joined
        else:
            layers.append(layer)
    return tuple(layers)


def _check_strategy(strategy: object, what: str) -> None:
    if not isinstance(strategy, Strategy):
        hint = (" (a class: pass an instance)"
                if isinstance(strategy, type) and issubclass(strategy, Strategy) else "")
        raise TypeError(f"{what}, got {strategy!r} of type {type(strategy).__name__}{hint}")


class PipelineBuilder:
    """Builds a :class:`Pipeline` that keeps the order strategies are added in,
    outermost first::

        protect = (PipelineBuilder()
                   .add(Timeout(10.0))                 # the whole call: 10 s
                   .add(Retry(max_attempts=5))
                   .add(Timeout(1.0))                  # each attempt: 1 s
                   .build())

    :meth:`build` may be called more than once: each call makes a new
    pipeline, and adding to the builder afterwards does not change the
    pipelines already built. (The strategies themselves are shared, as they
    are between any two pipelines given the same strategy.)

    .. versionadded:: 0.2
    """

    __slots__ = ("_strategies",)

    def __init__(self) -> None:
        self._strategies: list[Strategy] = []

    def add(self, strategy: Strategy) -> PipelineBuilder:
        """Add ``strategy`` inside those added before it; returns the builder.

        Raises TypeError for anything but a strategy instance."""
        _check_strategy(strategy, "PipelineBuilder.add() takes a strategy")
        self._strategies.append(strategy)
        return self

    def build(self) -> Pipeline:
        """A new :class:`Pipeline` of the strategies added so far, in that order."""
        return Pipeline(*self._strategies, ordered=True)

    def __len__(self) -> int:
        return len(self._strategies)

    def __repr__(self) -> str:
        return f"PipelineBuilder({', '.join(map(repr, self._strategies))})"


def _clock_of(strategies: tuple[Strategy, ...]) -> Clock:
    for strategy in strategies:
        clock = getattr(strategy, "clock", None)
        if clock is not None:
            return clock  # type: ignore[no-any-return]
    return SYSTEM_CLOCK


def pipeline(
    *strategies: Strategy,
    retry: Retry | RetryConfig | None = None,
    circuit_breaker: CircuitBreaker | CircuitBreakerConfig | str | None = None,
    timeout: Timeout | TimeoutConfig | float | None = None,
    fallback: Fallback | CachedFallback | Callable[..., Any] | None = None,
    fallback_value: Any = _UNSET,
    bulkhead: Bulkhead | BulkheadConfig | int | None = None,
    rate_limit: RateLimiter | RateLimiterConfig | float | None = None,
    hedge: Hedge | HedgeConfig | None = None,
    throttle: AdaptiveThrottle | AdaptiveThrottleConfig | None = None,
    chaos: Chaos | ChaosConfig | None = None,
    budget: RetryBudget | None = None,
    clock: Clock | None = None,
) -> Pipeline:
    """Build a :class:`Pipeline` from strategies and/or configs::

        protect = pipeline(
            retry=RetryConfig(max_attempts=3, base_delay=0.1),
            circuit_breaker=CircuitBreakerConfig(name="payments", failure_threshold=5),
            timeout=2.0,
            fallback_value=None,
            bulkhead=20,
            rate_limit=100.0,                          # at most 100 calls per second
            budget=TokenBucketBudget(max_tokens=10),   # shared by the retry (and hedge)
        )

    A breaker given by config or name comes from the registry
    (:func:`get_circuit_breaker`), so every pipeline naming it shares one breaker.
    ``bulkhead`` may be a :class:`Bulkhead`, its config, or a number of calls
    allowed at once. ``rate_limit`` may be a :class:`RateLimiter`, its config,
    or a rate in calls per second (a burst of 1; a call over the rate is
    refused at once with :class:`RateLimitedError`, whose ``retry_after`` says
    when a permit is free). ``hedge``, ``throttle`` (adaptive throttling) and
    ``chaos`` take the strategy or its config: a bare number would be
    ambiguous (a hedge delay or a quantile? an exception or a latency rate?).
    ``budget`` is given to the retry and the hedge built here from a config,
    so that it bounds retries and hedges together (each of them reports the
    call's outcome to it, so a token bucket then counts an outcome twice:
    failures drain it twice as fast and successes refill it twice as fast).
    A :class:`Retry` or :class:`Hedge` passed ready-made must already hold
    that budget (a different one is refused). ``clock`` is handed to every
    strategy built here.

    .. versionchanged:: 0.3 ``rate_limit``, ``hedge``, ``throttle``, ``chaos``
       and ``budget``.
    """
    from buttress.registry import get_circuit_breaker

    if budget is not None and not isinstance(budget, RetryBudget):
        raise ConfigurationTypeError("pipeline.budget", budget,
                                     "a retry budget (TokenBucketBudget, RatioBudget)")
    if budget is not None and retry is None and hedge is None:
        raise ConfigurationError("pipeline.budget", budget,
                                 "a retry= or hedge= in the same call to spend it")
    parts: list[Strategy] = list(strategies)
    if retry is not None:
        parts.append(_retry_stage(retry, budget, clock))
    if hedge is not None:
        parts.append(_hedge_stage(hedge, budget, clock))
    if throttle is not None:
        parts.append(_built("throttle", throttle, AdaptiveThrottle, AdaptiveThrottleConfig,
                            clock))
    if circuit_breaker is not None:
        if isinstance(circuit_breaker, CircuitBreaker):
            parts.append(circuit_breaker)
        elif isinstance(circuit_breaker, CircuitBreakerConfig):
            parts.append(get_circuit_breaker(circuit_breaker.name, circuit_breaker, clock=clock))
        else:
            parts.append(get_circuit_breaker(circuit_breaker, clock=clock))
    if rate_limit is not None:
        parts.append(_rate_limit_stage(rate_limit, clock))
    if timeout is not None:
        parts.append(timeout if isinstance(timeout, Timeout) else Timeout(timeout, clock=clock))
    if fallback is not None or fallback_value is not _UNSET:
        if isinstance(fallback, Fallback | CachedFallback):
            if fallback_value is not _UNSET:
                raise TypeError(f"pass either a Fallback or fallback_value, not both: "
                                f"{fallback!r}, fallback_value={fallback_value!r}")
            parts.append(fallback)
        elif fallback is not None:
            parts.append(Fallback(fallback=fallback) if fallback_value is _UNSET
                         else Fallback(fallback_value, fallback=fallback))  # TypeError: both
        else:
            parts.append(Fallback(fallback_value))
    if bulkhead is not None:
        if isinstance(bulkhead, Bulkhead):
            parts.append(bulkhead)
        elif isinstance(bulkhead, BulkheadConfig):
            parts.append(Bulkhead(bulkhead, clock=clock))
        else:
            parts.append(Bulkhead(max_concurrent=bulkhead, clock=clock))
    if chaos is not None:
        parts.append(_built("chaos", chaos, Chaos, ChaosConfig, clock))
    return Pipeline(*parts)


def _built(keyword: str, value: object, kind: type[Strategy], config_kind: type,
           clock: Clock | None) -> Strategy:
    """``value`` itself when it is a ``kind``, else ``kind(value)`` from its config."""
    if isinstance(value, kind):
        return value
    if isinstance(value, config_kind):
        return kind(value, clock=clock)  # type: ignore[call-arg]
    raise ConfigurationTypeError(f"pipeline.{keyword}", value,
                                 f"a {kind.__name__} or {config_kind.__name__}")


def _retry_stage(retry: object, budget: RetryBudget | None, clock: Clock | None) -> Retry:
    if isinstance(retry, Retry):
        if budget is not None and retry.config.budget is not budget:
            raise ConfigurationError("pipeline.budget", budget,
                                     f"the budget the given Retry already holds "
                                     f"({retry.config.budget!r}); give it to Retry(budget=...)")
        return retry
    if not isinstance(retry, RetryConfig):
        raise ConfigurationTypeError("pipeline.retry", retry, "a Retry or RetryConfig")
    if budget is not None and retry.budget is not budget:
        if retry.budget is not None:
            raise ConfigurationError("pipeline.budget", budget,
                                     f"the budget of the given RetryConfig ({retry.budget!r}) "
                                     f"or none")
        retry = retry.replace(budget=budget)
    return Retry(retry, clock=clock)


def _hedge_stage(hedge: object, budget: RetryBudget | None, clock: Clock | None) -> Hedge:
    if isinstance(hedge, Hedge):
        if budget is not None and hedge.budget is not budget:
            raise ConfigurationError("pipeline.budget", budget,
                                     f"the budget the given Hedge already holds "
                                     f"({hedge.budget!r}); give it to Hedge(budget=...)")
        return hedge
    if not isinstance(hedge, HedgeConfig):
        raise ConfigurationTypeError(
            "pipeline.hedge", hedge, "a Hedge or HedgeConfig (a number would be ambiguous: "
                                     "HedgeConfig(delay=...) or HedgeConfig(quantile=...))")
    return Hedge(hedge, budget=budget, clock=clock)


def _rate_limit_stage(rate_limit: object, clock: Clock | None) -> RateLimiter:
    if isinstance(rate_limit, RateLimiter):
        return rate_limit
    if isinstance(rate_limit, RateLimiterConfig):
        return RateLimiter(rate_limit, clock=clock)
    if isinstance(rate_limit, bool) or not isinstance(rate_limit, int | float):
        raise ConfigurationTypeError("pipeline.rate_limit", rate_limit,
                                     "a RateLimiter, RateLimiterConfig or calls per second")
    try:
        config = RateLimiterConfig(rate=rate_limit)
    except ConfigurationError as exc:
        raise ConfigurationError("pipeline.rate_limit", rate_limit,
                                 f"calls per second, {exc.expected}") from exc
    return RateLimiter(config, clock=clock)
