"""Validation rules for config objects, one function per rule.

Every refusal is a :class:`ConfigurationError` (a :class:`ConfigurationTypeError`
for a wrong type) whose ``field`` is ``"Owner.field"``, with the ``value`` refused
and what was ``expected``; the message is built from those three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from buttress._core.errors import ConfigurationError, ConfigurationTypeError


def _bad(owner: str, field: str, value: object, expected: str) -> ConfigurationError:
    return ConfigurationError(f"{owner}.{field}" if owner else field, value, expected)


def _wrong_type(owner: str, field: str, value: object, expected: str) -> ConfigurationTypeError:
    return ConfigurationTypeError(f"{owner}.{field}" if owner else field, value, expected)


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
        raise _wrong_type(owner, field, value, "a number")
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
        raise _wrong_type(owner, field, value, "an int")
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
        raise _wrong_type(owner, field, value, "exception classes")
    result: list[type[Exception]] = []
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigurationTypeError(
                f"{owner}.{field}", item, "exception classes",
                message=f"{owner}.{field} must hold exception classes, got {item!r}")
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
        raise _wrong_type(owner, field, value, "callable or None")
    return value


def text(owner: str, field: str, value: object) -> str:
    """Check that ``value`` is a non-empty string."""
    if not isinstance(value, str):
        raise _wrong_type(owner, field, value, "a str")
    if not value:
        raise _bad(owner, field, value, "a non-empty string")
    return value


def boolean(owner: str, field: str, value: object) -> bool:
    """Check that ``value`` is a bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise _wrong_type(owner, field, value, "a bool")
    return value


def delay_cap(owner: str, base_delay: float, max_delay: float, *,
              base_field: str = "base_delay", max_field: str = "max_delay") -> None:
    """The one rule tying two delays: the cap (``max_delay``) is at least the first
    delay (``base_delay``), else every computed delay would be the cap."""
    if max_delay < base_delay:
        raise _bad(owner, max_field, max_delay, f">= {base_field} ({base_delay:g})")


def optional_instance(owner: str, field: str, value: object, cls: type, expected: str) -> Any:
    """Check that ``value`` is ``None`` or an instance of ``cls``."""
    if value is not None and not isinstance(value, cls):
        raise _wrong_type(owner, field, value, expected)
    return value


def exception_class(owner: str, field: str, value: object) -> type[BaseException]:
    """Check that ``value`` is an exception class."""
    if not (isinstance(value, type) and issubclass(value, BaseException)):
        raise _wrong_type(owner, field, value, "an exception class")
    return value


def optional_text(owner: str, field: str, value: object) -> str | None:
    """Check that ``value`` is ``None`` or a string (possibly empty)."""
    if value is not None and not isinstance(value, str):
        raise _wrong_type(owner, field, value, "a str")
    return value


def as_value_error(exc: ConfigurationError) -> ConfigurationError:
    """``exc`` as a plain :class:`ConfigurationError` (not a ``TypeError``), the
    attributes kept: for layers where every bad value is a configuration error,
    whatever its kind (settings, files, the environment)."""
    if type(exc) is ConfigurationError:
        return exc
    plain = ConfigurationError.__new__(ConfigurationError, str(exc))
    plain.args = exc.args
    plain.__dict__.update(exc.__dict__)
    return plain
