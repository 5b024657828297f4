"""Named circuit breakers.

``get_circuit_breaker(name, config)`` returns the one breaker of that name,
creating it on first use; asking again with a *different* config is an error,
not a silent second breaker. Breakers constructed directly are observed too
(weakly), so statistics and health see every live breaker by name.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from buttress._core import live
from buttress._core.errors import ConfigurationError
from buttress._core.strategy import call_hook

if TYPE_CHECKING:
    from buttress._core.clock import Clock
    from buttress.breaker import CircuitBreaker, CircuitBreakerConfig

__all__ = [
    "clear_circuit_breakers",
    "get_all_circuit_breaker_stats",
    "get_circuit_breaker",
    "get_circuit_breaker_stats",
    "replace_circuit_breaker",
    "reset_circuit_breakers",
]

_lock = live.lock  # one lock for both tables (see buttress._core.live)
_named: dict[str, CircuitBreaker] = {}
_observed: weakref.WeakValueDictionary[str, CircuitBreaker] = live.observed


def observe(breaker: CircuitBreaker) -> None:
    """Remember a live breaker by name (weakly); called by every breaker's constructor.
    Hooks given to :func:`on_breaker_created` hear of it (exporters give a new
    breaker its state series at once)."""
    for hook in live.observe(breaker):
        call_hook(hook, breaker)


def on_breaker_created(hook: Callable[[CircuitBreaker], object]) -> None:
    """Call ``hook(breaker)`` for every breaker created from now on."""
    live.on_created(hook)


def remove_breaker_hook(hook: Callable[[CircuitBreaker], object]) -> None:
    """Stop calling ``hook`` (a no-op if it is not there)."""
    live.remove_hook(hook)


def get_circuit_breaker(
    name: str,
    config: CircuitBreakerConfig | None = None,
    *,
    clock: Clock | None = None,
    **options: Any,
) -> CircuitBreaker:
    """The breaker registered under ``name``, created from ``config`` (or keyword
    options) on first use::

        breaker = get_circuit_breaker("external_api", CircuitBreakerConfig(failure_threshold=5))

    Raises :class:`ConfigurationError` when ``name`` exists with a different config.
    """
    from buttress.breaker import CircuitBreaker, CircuitBreakerConfig

    wanted: CircuitBreakerConfig | None = None
    if config is not None or options:
        base = config if config is not None else CircuitBreakerConfig(name=name)
        wanted = base.replace(name=name, **options)
    with _lock:
        existing = _named.get(name)
        if existing is not None:
            if wanted is not None and wanted != existing.config:
                raise ConfigurationError(
                    f"circuit breaker {name!r} already exists with a different config: "
                    + _difference(existing.config, wanted)
                )
            return existing
    breaker = CircuitBreaker(wanted if wanted is not None else CircuitBreakerConfig(name=name),
                             clock=clock)
    with _lock:
        # Another thread may have won the race; keep the first one.
        return _named.setdefault(name, breaker)


def replace_circuit_breaker(
    name: str,
    config: CircuitBreakerConfig,
    *,
    clock: Clock | None = None,
) -> CircuitBreaker:
    """Register a new breaker under ``name`` with ``config``, dropping the old one
    (for a configuration that was deliberately changed, e.g. by a reload). The
    new breaker starts closed with empty counters; holders of the old one keep
    it. Use :func:`get_circuit_breaker` everywhere else."""
    from buttress.breaker import CircuitBreaker

    breaker = CircuitBreaker(config.replace(name=name), clock=clock)
    with _lock:
        _named[name] = breaker
    return breaker


def config_difference(old: CircuitBreakerConfig, new: CircuitBreakerConfig, *,
                      labels: tuple[str, str] | None = None, separator: str = ", ") -> str:
    """The fields where two breaker configs differ, as ``field=old vs new`` (with
    ``labels`` naming the two sides), for error messages."""
    left, right = (f" ({labels[0]})", f" ({labels[1]})") if labels else ("", "")
    return separator.join(
        f"{field}={getattr(old, field)!r}{left} vs {getattr(new, field)!r}{right}"
        for field in old.__dataclass_fields__
        if getattr(old, field) != getattr(new, field)
    )


def _difference(old: CircuitBreakerConfig, new: CircuitBreakerConfig) -> str:
    return config_difference(old, new, labels=("registered", "requested"), separator="; ")


def _live() -> dict[str, CircuitBreaker]:
    with _lock:
        result = dict(_observed)
        result.update(_named)
    return result


def get_circuit_breaker_stats(name: str) -> dict[str, Any] | None:
    """Statistics of the breaker called ``name`` as a dict, or ``None`` if there is none."""
    breaker = _live().get(name)
    return None if breaker is None else breaker.stats.as_dict()


def get_all_circuit_breaker_stats() -> dict[str, dict[str, Any]]:
    """Statistics of every live breaker, by name."""
    return {name: b.stats.as_dict() for name, b in sorted(_live().items())}


def all_circuit_breakers() -> dict[str, CircuitBreaker]:
    """Every live breaker, by name."""
    return _live()


def reset_circuit_breakers() -> None:
    """Reset every live breaker to CLOSED with cleared counters."""
    for breaker in _live().values():
        breaker.reset()


def clear_circuit_breakers() -> None:
    """Forget every named breaker (tests use this between cases)."""
    with _lock:
        _named.clear()
        _observed.clear()
