"""Named circuit breakers.

``get_circuit_breaker(name, config)`` returns the one breaker of that name,
creating it on first use. Breakers constructed directly are observed too
(weakly), so statistics and health see every live breaker by name.

Invariants (all under ``_lock``, a reentrant lock: a breaker's constructor
calls :func:`observe`, and the registry constructs breakers while holding it):

- One breaker per name: the registry never creates a breaker for a name a live
  breaker already has, whether the registry made it or someone constructed it
  directly; it hands that breaker out, or raises :class:`ConfigurationError`
  naming the name and the difference (config, or clock) when it is not what the
  caller asked for. Checking and creating happen under one hold of the lock,
  so racing first users get one breaker or a clear error, never another
  caller's config in silence.
- Readers (stats, health) work on snapshots taken under the lock, so breakers
  created and dropped meanwhile never break them.

Directly constructed breakers are their constructors' own: names need not be
unique among them (every unnamed breaker is ``"default"``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Unpack

from buttress._core import live
from buttress._core.errors import ConfigurationError
from buttress._core.strategy import call_hook

if TYPE_CHECKING:
    from buttress._core.clock import Clock
    from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
    from buttress.options import _BreakerTuning

__all__ = [
    "clear_circuit_breakers",
    "get_all_circuit_breaker_stats",
    "get_circuit_breaker",
    "get_circuit_breaker_stats",
    "replace_circuit_breaker",
    "reset_circuit_breakers",
]

_lock = live.lock  # one lock for both tables (see buttress._core.live); reentrant:
# a breaker's constructor registers itself under it
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
    **options: Unpack[_BreakerTuning],
) -> CircuitBreaker:
    """The breaker registered under ``name``, created from ``config`` (or keyword
    options) and on ``clock`` on first use::

        breaker = get_circuit_breaker("external_api", CircuitBreakerConfig(failure_threshold=5))

    A live breaker constructed directly under ``name`` is that breaker too. Raises
    :class:`ConfigurationError` when the breaker of that name has a different
    config, or runs on another clock than ``clock`` (``None``: any clock).
    """
    from buttress.breaker import CircuitBreaker, CircuitBreakerConfig

    wanted: CircuitBreakerConfig | None = None
    if config is not None or options:
        base = config if config is not None else CircuitBreakerConfig(name=name)
        wanted = base.replace(name=name, **options)
    with _lock:
        existing = _named.get(name)
        side, how = "registered", ""
        if existing is None:
            existing = _observed.get(name)
            side, how = "existing", "; it was constructed directly: pass that breaker itself"
        if existing is None:
            breaker = CircuitBreaker(
                wanted if wanted is not None else CircuitBreakerConfig(name=name), clock=clock)
            _named[name] = breaker
            return breaker
        if wanted is not None and wanted != existing.config:
            raise ConfigurationError(
                f"circuit breaker {name!r} already exists with a different config: "
                + config_difference(existing.config, wanted, labels=(side, "requested"),
                                    separator="; ") + how)
        if clock is not None and existing.clock is not clock:
            raise ConfigurationError(
                f"circuit breaker {name!r} already exists on another clock: "
                f"{_clock_name(existing.clock, clock)} ({side}) vs "
                f"{_clock_name(clock, existing.clock)} (requested){how}")
        return existing


def _clock_name(clock: Clock, other: Clock) -> str:
    # Two fresh VirtualClocks print alike: then tell them apart by identity.
    text = repr(clock)
    return text if text != repr(other) else f"{text} at {id(clock):#x}"


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


def _live() -> dict[str, CircuitBreaker]:
    # A snapshot. Not dict(_observed): that lists the names, then looks each one
    # up, and a breaker dropped in between raises KeyError. items() skips it.
    with _lock:
        result = dict(_observed.items())
        result.update(_named)
    return result


def _find(name: str) -> CircuitBreaker | None:
    with _lock:
        breaker = _named.get(name)
        return _observed.get(name) if breaker is None else breaker


def get_circuit_breaker_stats(name: str) -> dict[str, Any] | None:
    """Statistics of the breaker called ``name`` as a dict, or ``None`` if there is none."""
    breaker = _find(name)
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
