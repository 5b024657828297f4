"""Chaos: inject latency, failures or results into calls, at given rates.

For tests and game days: put a :class:`Chaos` stage innermost in a pipeline
(its standard place, right around the call) and watch the strategies outside
it cope. Every decision draws from one seeded random source, so a run is
reproducible; the config can be swapped at run time (:meth:`Chaos.configure`)
and switched off (``enabled=False``) without rebuilding anything, also from
configuration files and the environment (:mod:`buttress.config.overload`).

Each call draws twice: once for latency (``latency_rate``: wait ``latency``
seconds on the strategy's clock before going on), once for the outcome:
below ``exception_rate`` it raises ``exception`` (default
:class:`~buttress.ChaosError`, a ``ConnectionError``), below
``exception_rate + result_rate`` it returns ``result`` without calling,
otherwise it calls through. A disabled chaos stage draws nothing.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from buttress._core import forksafe, validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import ChaosError, ConfigurationError, ConfigurationTypeError
from buttress._core.events import GLOBAL, Event, Listeners, deliver, register_kind
from buttress._core.strategy import Strategy

__all__ = ["Chaos", "ChaosConfig", "ChaosError", "FaultInjected"]


@register_kind
@dataclass(frozen=True, slots=True)
class FaultInjected(Event):
    """Chaos injected ``fault`` ("latency", "exception" or "result") into a call;
    ``value`` is the latency in seconds, the exception or the result.

    .. versionadded:: 0.3
    """

    fault: str
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ChaosConfig:
    """Rates are shares of calls in [0, 1]; ``latency`` is seconds. ``exception``
    is an exception class (instantiated per injection, with no arguments) or
    an instance (raised each time). ``seed`` seeds the random source.

    .. versionadded:: 0.3
    """

    enabled: bool = True
    latency: float = 0.0
    latency_rate: float = 0.0
    exception_rate: float = 0.0
    exception: type[Exception] | Exception | None = None
    result_rate: float = 0.0
    result: Any = None
    seed: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        o = "ChaosConfig"
        validate.boolean(o, "enabled", self.enabled)
        validate.number(o, "latency", self.latency, minimum=0.0)
        for field in ("latency_rate", "exception_rate", "result_rate"):
            validate.number(o, field, getattr(self, field), minimum=0.0, maximum=1.0)
        if self.exception_rate + self.result_rate > 1.0:
            raise ConfigurationError(f"{o}.result_rate", self.result_rate,
                                     f"<= 1 - exception_rate ({1 - self.exception_rate:g})")
        error = self.exception
        if error is not None and not isinstance(error, Exception) and not (
                isinstance(error, type) and issubclass(error, Exception)):
            raise ConfigurationTypeError(f"{o}.exception", error,
                                         "an Exception subclass or instance")
        if self.seed is not None:
            validate.integer(o, "seed", self.seed, minimum=0)
        if self.name is not None:
            validate.text(o, "name", self.name)


class Chaos(Strategy):
    """Fault injection as a strategy::

        chaos = Chaos(exception_rate=0.1, latency=0.2, latency_rate=0.05, seed=7)
        protect = Pipeline(Retry(max_attempts=3), chaos)

    ``chaos.configure(enabled=False)`` switches it off at once.

    .. versionadded:: 0.3
    """

    __slots__ = ("__weakref__", "_lock", "_random", "clock", "config", "events", "name")

    order = 60

    def __init__(self, config: ChaosConfig | None = None, *, clock: Clock | None = None,
                 random_source: random.Random | None = None, **options: Any) -> None:
        if config is not None and options:
            raise TypeError("pass a ChaosConfig or keyword options, not both")
        if config is not None and not isinstance(config, ChaosConfig):
            raise TypeError(f"Chaos config must be a ChaosConfig, got {config!r}")
        self.config = ChaosConfig(**options) if config is None else config
        self.name = self.config.name
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._random = (random.Random(self.config.seed) if random_source is None
                        else random_source)
        self._lock = forksafe.lock()
        #: This strategy's listener hub.
        self.events = Listeners(GLOBAL)

    def _given_name(self) -> str | None:
        return self.name

    def configure(self, config: ChaosConfig | None = None, **changes: Any) -> ChaosConfig:
        """Replace the config (a new one, or this one with ``changes``); calls
        already running keep the one they started with. Returns the new config."""
        if config is not None and changes:
            raise TypeError("pass a ChaosConfig or changes, not both")
        if config is None:
            values = {f: getattr(self.config, f) for f in ChaosConfig.__dataclass_fields__}
            values.update(changes)
            config = ChaosConfig(**values)
        elif not isinstance(config, ChaosConfig):
            raise TypeError(f"Chaos config must be a ChaosConfig, got {config!r}")
        self.config = config
        return config

    def _draw(self) -> tuple[float, float]:
        with self._lock:  # random.Random is not safe to share between threads
            return self._random.random(), self._random.random()

    def _report(self, fault: str, value: Any) -> None:
        targets = self.events.of(FaultInjected)
        if targets:
            deliver(targets, FaultInjected("chaos", self.name, fault, value))

    def _outcome(self, config: ChaosConfig, draw: float) -> tuple[bool, Any]:
        """(True, result) to answer without calling; raises an injected error;
        (False, None) to call through."""
        if draw < config.exception_rate:
            error = config.exception
            exc = ChaosError(self.name) if error is None else (
                error() if isinstance(error, type) else error)
            self._report("exception", exc)
            raise exc
        if draw < config.exception_rate + config.result_rate:
            self._report("result", config.result)
            return True, config.result
        return False, None

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def injected(*args: Any, **kwargs: Any) -> Any:
            config = self.config
            if not config.enabled:
                return fn(*args, **kwargs)
            slow, draw = self._draw()
            if slow < config.latency_rate and config.latency > 0.0:
                self._report("latency", config.latency)
                self.clock.sleep(config.latency)
            answered, result = self._outcome(config, draw)
            return result if answered else fn(*args, **kwargs)

        return injected

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def injected(*args: Any, **kwargs: Any) -> Any:
            config = self.config
            if not config.enabled:
                return await fn(*args, **kwargs)
            slow, draw = self._draw()
            if slow < config.latency_rate and config.latency > 0.0:
                self._report("latency", config.latency)
                await self.clock.async_sleep(config.latency)
            answered, result = self._outcome(config, draw)
            return result if answered else await fn(*args, **kwargs)

        return injected

    def __repr__(self) -> str:
        c = self.config
        return (f"Chaos(name={c.name!r}, enabled={c.enabled}, exception_rate="
                f"{c.exception_rate:g}, result_rate={c.result_rate:g}, latency={c.latency:g}, "
                f"latency_rate={c.latency_rate:g})")
