"""Every live circuit breaker, by name (weakly), and who wants to hear of new ones.

Each breaker's constructor calls :func:`observe`; :mod:`buttress.registry`
reads :data:`observed` (under :data:`lock`) so that statistics and health see
breakers constructed directly too, and offers :func:`on_created` to exporters.
It lives in ``_core`` so that the breaker need not import the registry, which
imports the breaker.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from buttress._core import forksafe

__all__ = ["lock", "observe", "observed", "on_created", "remove_hook"]

Hook = Callable[[Any], object]

#: Guards :data:`observed`, the hooks, and the registry's table of named breakers.
#: Reentrant: the registry constructs breakers while holding it, and each
#: breaker's constructor registers itself under it.
lock = forksafe.rlock()
observed: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_hooks: tuple[Hook, ...] = ()


def observe(breaker: Any) -> tuple[Hook, ...]:
    """Remember a live breaker by name (weakly); return the hooks the caller
    must call with it (outside the lock, each guarded by ``call_hook``)."""
    with lock:
        observed[breaker.name] = breaker
        return _hooks


def on_created(hook: Hook) -> None:
    """Call ``hook(breaker)`` for every breaker created from now on."""
    global _hooks
    with lock:
        _hooks = (*_hooks, hook)


def remove_hook(hook: Hook) -> None:
    """Stop calling ``hook`` (a no-op if it is not there)."""
    global _hooks
    with lock:
        _hooks = tuple(h for h in _hooks if h != hook)
