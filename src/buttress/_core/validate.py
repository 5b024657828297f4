"""Validation helpers for config objects: every message names the field and the value."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from buttress._core.errors import ConfigurationError


def _bad(owner: str, field: str, value: object, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{owner}.{field} must be {expected}, got {value!r}")


def number(
    owner: str,
    field: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float after checking its type, finiteness and range.

    Infinity is refused unless ``allow_inf``: a limit of "forever" is spelled
    ``None`` (no limit) where a field allows it.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}.{field} must be a number, got {value!r}")
    try:
        result = float(value)
    except OverflowError:  # an int beyond float range: as large as infinity
        result = math.inf if value > 0 else -math.inf
    if math.isnan(result):
        raise _bad(owner, field, value, "a number, not NaN")
    if math.isinf(result) and not allow_inf:
        raise _bad(owner, field, value, "finite")
    if minimum is not None:
        if strict_minimum and not result > minimum:
            raise _bad(owner, field, value, f"> {minimum:g}")
        if not strict_minimum and result < minimum:
            raise _bad(owner, field, value, f">= {minimum:g}")
    if maximum is not None and result > maximum:
        raise _bad(owner, field, value, f"<= {maximum:g}")
    return result


def optional_number(
    owner: str,
    field: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float | None:
    """Like :func:`number` but ``None`` passes through."""
    if value is None:
        return None
    return number(
        owner, field, value, minimum=minimum, maximum=maximum, strict_minimum=strict_minimum
    )


def integer(owner: str, field: str, value: object, *, minimum: int) -> int:
    """Return ``value`` after checking it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{field} must be an int, got {value!r}")
    if value < minimum:
        raise _bad(owner, field, value, f">= {minimum}")
    return value


def exception_types(owner: str, field: str, value: object) -> tuple[type[Exception], ...]:
    """Normalise a class, tuple, list or set of exception classes to a tuple.

    Only subclasses of :class:`Exception` are accepted: cancellation, interrupts
    and exits (``BaseException`` subclasses) are never retried or counted.
    """
    items: Iterable[Any]
    if isinstance(value, type):
        items = (value,)
    elif isinstance(value, tuple | list | set | frozenset):
        items = value
    else:
        raise TypeError(f"{owner}.{field} must be exception classes, got {value!r}")
    result: list[type[Exception]] = []
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"{owner}.{field} must hold exception classes, got {item!r}")
        if not issubclass(item, Exception):
            raise _bad(
                owner,
                field,
                item,
                "Exception subclasses (cancellation, interrupts and exits are never handled)",
            )
        result.append(item)
    # Sets have no order; sort by name so configs compare and print stably.
    if isinstance(value, set | frozenset):
        result.sort(key=lambda cls: (cls.__module__, cls.__qualname__))
    return tuple(result)


def optional_callable(owner: str, field: str, value: object) -> Callable[..., Any] | None:
    """Check that ``value`` is ``None`` or callable."""
    if value is not None and not callable(value):
        raise TypeError(f"{owner}.{field} must be callable or None, got {value!r}")
    return value


def text(owner: str, field: str, value: object) -> str:
    """Check that ``value`` is a non-empty string."""
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{field} must be a str, got {value!r}")
    if not value:
        raise _bad(owner, field, value, "a non-empty string")
    return value
