"""The seeds' spellings of config fields, in one place.

Each alias names one native field; a config accepts either and stores the native
one (one field per meaning). The configs' constructors (``RetryConfig``,
``CircuitBreakerConfig``), the file loader and the docs read these tables, so an
alias added here is accepted everywhere at once.

Invariant: every value of a table is a native field of its config; an alias is
never itself a native field.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from buttress._core.errors import ConfigurationError

__all__ = ["BREAKER_ALIASES", "RETRY_ALIASES", "UNSET", "pick"]

UNSET: Final[Any] = object()
"""Marks a keyword the caller did not give (``None`` is a meaningful value)."""

RETRY_ALIASES: Final[Mapping[str, str]] = MappingProxyType({
    "initial_delay": "base_delay",
    "backoff_multiplier": "exponential_base",
    "multiplier": "exponential_base",
    "retry_on": "exceptions",
    "retryable_exceptions": "exceptions",
    "retry_predicate": "retry_condition",
})
"""``RetryConfig``: seed spelling -> native field."""

BREAKER_ALIASES: Final[Mapping[str, str]] = MappingProxyType({
    "exception_whitelist": "ignored_exceptions",
})
"""``CircuitBreakerConfig``: seed spelling -> native field."""


def pick(owner: str, names: tuple[str, ...], values: tuple[Any, ...], default: Any) -> Any:
    """Resolve a field given under several spellings (native first); spellings
    that disagree are an error naming both."""
    given = [(n, v) for n, v in zip(names, values, strict=True) if v is not UNSET]
    if not given:
        return default
    first_name, first_value = given[0]
    for name, value in given[1:]:
        if value != first_value:
            raise ConfigurationError(
                f"{owner}.{name}", value, f"equal to {first_name} ({first_value!r})",
                message=f"{owner}.{first_name} and its alias {name} disagree: "
                        f"{first_value!r} != {value!r}")
    return first_value
