"""Every live circuit breaker, by name (weakly).

Each breaker's constructor calls :func:`observe`; :mod:`buttress.registry`
reads :data:`observed` (under :data:`lock`) so that statistics and health see
breakers constructed directly too. It lives in ``_core`` so that the breaker
need not import the registry, which imports the breaker.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from buttress._core import forksafe

__all__ = ["lock", "observe", "observed"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


#: Guards :data:`observed` and the registry's own table of named breakers.
lock = forksafe.lock()
observed: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()


def observe(breaker: _Named) -> None:
    """Remember a live breaker by name (weakly)."""
    with lock:
        observed[breaker.name] = breaker
