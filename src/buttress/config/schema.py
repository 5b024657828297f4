"""The settings schema: operation types, their fields and built-in values, how
one value is checked, where a value came from, and the keys (and seed aliases)
a file may hold for named policies.

Every other module of :mod:`buttress.config` reads its field names from here.
"""

from __future__ import annotations

import dataclasses
import difflib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import (
    Any,
    Final,
    Literal,
    TypedDict,
)

from buttress._core import validate
from buttress._core.errors import ConfigurationError, ConfigurationTypeError
from buttress._core.spellings import BREAKER_ALIASES, RETRY_ALIASES
from buttress.backoff import normalise_jitter

__all__ = [
    "OPERATION_TYPES",
    "Explanation",
    "OperationOverrides",
    "OperationSettings",
    "ResilienceSettings",
    "Setting",
]

OPERATION_TYPES: Final = ("default", "database", "cache", "api", "file", "ml")
"""The operation types with a settings section; any other type uses ``default``."""

_SWITCHES: Final = ("resilience_enabled", "circuit_breaker_enabled")
_INT_FIELDS: Final = frozenset({"max_attempts", "failure_threshold"})

# --- checking one value ----------------------------------------------------------------------


def _check_field(owner: str, field: str, value: object) -> Any:
    """Validate and normalise one settings value; the message names ``owner.field``
    (just ``field`` for a switch without owner) and the value. Wrong types are
    configuration errors here too."""
    try:
        if field in _SWITCHES:
            return validate.boolean(owner, field, value)
        if field in _INT_FIELDS:
            return validate.integer(owner, field, value, minimum=1)
        if field == "timeout_seconds":
            return validate.number(owner, field, value, minimum=0.0, strict_minimum=True,
                                   maximum=threading.TIMEOUT_MAX)
        if field == "max_delay":
            return validate.number(owner, field, value, minimum=0.0, allow_inf=True)
        if field == "exponential_base":
            return validate.number(owner, field, value, minimum=1.0)
        if field == "jitter":
            return normalise_jitter(owner, value)
        return validate.number(owner, field, value, minimum=0.0)  # base_delay, recovery_timeout
    except ConfigurationTypeError as exc:
        raise validate.as_value_error(exc) from exc


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- the settings object ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationSettings:
    """Timeout, retry and breaker values for one operation type.

    The field defaults are the ``default`` section, which ``resilient()`` uses for
    operation types without a section of their own (such as ``"custom"``); the
    ``database`` section, for example, is::

        OperationSettings(timeout_seconds=30.0, max_attempts=3, base_delay=0.5,
                          max_delay=10.0, failure_threshold=3, recovery_timeout=30.0)

    ``jitter`` is a factor 0..1 (``True`` means 0.5); validated on construction.

    .. versionchanged:: 0.2 keyword arguments only.
    """

    timeout_seconds: float = 5.0
    max_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    exponential_base: float = 2.0
    jitter: float = 0.5
    failure_threshold: int = 5
    recovery_timeout: float = 60.0

    def __post_init__(self) -> None:
        for name in _OPERATION_FIELDS:
            object.__setattr__(self, name,
                               _check_field("OperationSettings", name, getattr(self, name)))
        validate.delay_cap("OperationSettings", self.base_delay, self.max_delay)

    def replace(self, **changes: Any) -> OperationSettings:
        """A copy with some values changed (and validated again)."""
        current = {name: getattr(self, name) for name in _OPERATION_FIELDS}
        current.update(changes)
        return OperationSettings(**current)


# The one list of an operation type's fields (files, environment, configure(),
# explain() and the presets' overrides all read it).
_OPERATION_FIELDS: Final = tuple(field.name for field in dataclasses.fields(OperationSettings))


class OperationOverrides(TypedDict, total=False):
    """Call arguments overriding an operation type's settings (``None``: not
    overridden): the keywords of :func:`~buttress.config.explain`. Its keys are
    :class:`OperationSettings`' fields (a test holds them equal)."""

    timeout_seconds: float | None
    max_attempts: int | None
    base_delay: float | None
    max_delay: float | None
    exponential_base: float | None
    jitter: bool | float | None
    failure_threshold: int | None
    recovery_timeout: float | None


# The pynomaly seed's "Operation Types" defaults, exactly.
_BUILTIN: Final = {
    "default": OperationSettings(),
    "database": OperationSettings(timeout_seconds=30.0, max_attempts=3, base_delay=0.5,
                                  max_delay=10.0, failure_threshold=3, recovery_timeout=30.0),
    "cache": OperationSettings(timeout_seconds=5.0, max_attempts=2, base_delay=0.1,
                               max_delay=1.0, failure_threshold=3, recovery_timeout=15.0),
    "api": OperationSettings(timeout_seconds=60.0, max_attempts=5, base_delay=1.0,
                             max_delay=30.0, failure_threshold=5, recovery_timeout=60.0),
    "file": OperationSettings(timeout_seconds=10.0, max_attempts=3, base_delay=0.2,
                              max_delay=5.0, failure_threshold=3, recovery_timeout=30.0),
    "ml": OperationSettings(timeout_seconds=300.0, max_attempts=2, base_delay=5.0,
                            max_delay=30.0, failure_threshold=2, recovery_timeout=120.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ResilienceSettings:
    """Every setting in one typed, immutable object: the global switches and one
    :class:`OperationSettings` per operation type.

    ``resilience_enabled=False`` turns every ``resilient(...)``/preset/policy into a
    pass-through (decided at call time); ``circuit_breaker_enabled=False`` leaves
    the breakers out. Read the effective settings with :func:`get_settings`::

        get_settings().database.max_attempts   # 3 unless configured otherwise
    """

    resilience_enabled: bool = True
    circuit_breaker_enabled: bool = True
    default: OperationSettings = _BUILTIN["default"]
    database: OperationSettings = _BUILTIN["database"]
    cache: OperationSettings = _BUILTIN["cache"]
    api: OperationSettings = _BUILTIN["api"]
    file: OperationSettings = _BUILTIN["file"]
    ml: OperationSettings = _BUILTIN["ml"]

    def __post_init__(self) -> None:
        for name in _SWITCHES:
            _check_field("ResilienceSettings", name, getattr(self, name))
        for name in OPERATION_TYPES:
            if not isinstance(getattr(self, name), OperationSettings):
                raise ConfigurationError(
                    f"ResilienceSettings.{name} must be an OperationSettings, "
                    f"got {getattr(self, name)!r}"
                )

    def for_operation(self, operation_type: str) -> OperationSettings:
        """The section for ``operation_type``; ``default`` for types without one."""
        section = operation_type if operation_type in OPERATION_TYPES else "default"
        result: OperationSettings = getattr(self, section)
        return result

    def flat(self) -> dict[str, Any]:
        """Every value under its dotted key (``"database.max_attempts"``)."""
        result: dict[str, Any] = {name: getattr(self, name) for name in _SWITCHES}
        for section in OPERATION_TYPES:
            ops = getattr(self, section)
            for name in _OPERATION_FIELDS:
                result[f"{section}.{name}"] = getattr(ops, name)
        return result

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> ResilienceSettings:
        """Build settings from dotted keys; missing keys keep their defaults."""
        sections: dict[str, dict[str, Any]] = {s: {} for s in OPERATION_TYPES}
        switches: dict[str, Any] = {}
        for key, value in values.items():
            section, _, name = key.rpartition(".")
            if section:
                sections[section][name] = value
            else:
                switches[name] = value
        options: dict[str, Any] = {s: _BUILTIN[s].replace(**v) for s, v in sections.items()}
        options.update(switches)
        return cls(**options)


_DEFAULT_VALUES: Final = ResilienceSettings().flat()


# --- where a value came from -----------------------------------------------------------------


Source = Literal["default", "file", "env", "code"]


@dataclass(frozen=True, slots=True)
class Setting:
    """One effective value and where it came from.

    ``source`` is ``"default"``, ``"file"``, ``"env"`` or ``"code"``; ``origin`` says
    exactly where: ``"built-in"``, ``"path/to/file.toml:12"``, the environment
    variable's name, ``"configure()"`` or ``"argument"``.
    """

    key: str
    value: Any
    source: Source
    origin: str

    @property
    def where(self) -> str:
        """``source`` and ``origin`` as one phrase (``"env: PYNOMALY_API_TIMEOUT"``)."""
        if self.source == "default":
            return "built-in default"
        return f"{self.source}: {self.origin}"

    def __str__(self) -> str:
        return f"{self.key} = {self.value!r}  ({self.where})"


class Explanation(dict[str, Setting]):
    """What :func:`explain` returns: ``{key: Setting}``; ``str()`` gives one line each::

        database.max_attempts = 5  (env: PYNOMALY_DATABASE_MAX_ATTEMPTS)
    """

    def __str__(self) -> str:
        return "\n".join(str(setting) for setting in self.values())


_DEFAULT_LAYER: Final = {
    key: Setting(key, value, "default", "built-in") for key, value in _DEFAULT_VALUES.items()
}


def _check_delays(section: str, merged: Mapping[str, Setting], owner: str | None = None) -> None:
    """The delay rule (:func:`validate.delay_cap`) across layers: the message says
    where each of the two values came from."""
    base, cap = merged[f"{section}.base_delay"], merged[f"{section}.max_delay"]
    try:
        validate.delay_cap(section, base.value, cap.value)
    except ConfigurationError as exc:
        prefix = f"{owner}: " if owner else ""
        raise exc.reworded(
            f"{prefix}{section}.max_delay = {cap.value!r} ({cap.where}) must be >= "
            f"{section}.base_delay = {base.value!r} ({base.where})"
        ) from None


# --- keys of named policies in a file ------------------------------------------------------


_TOP_KEYS: Final = ("resilience_enabled", "circuit_breaker_enabled", "operations",
                    "retry_configs", "circuit_breaker_configs",
                    # read by buttress.config.overload (load_overload)
                    "retry_budgets", "rate_limiters", "adaptive_throttles", "hedges", "chaos")
_RETRY_SCALARS: Final = ("max_attempts", "base_delay", "max_delay", "exponential_base",
                         "strategy", "jitter", "deadline", "reraise", "name")
_RETRY_EXCEPTIONS: Final = ("exceptions", "non_retryable_exceptions")
# The seeds' spellings (buttress._core.spellings) of the fields a file can hold.
_RETRY_ALIASES: Final = {alias: field for alias, field in RETRY_ALIASES.items()
                         if field in _RETRY_SCALARS + _RETRY_EXCEPTIONS}
_RETRY_KEYS: Final = frozenset(_RETRY_SCALARS + _RETRY_EXCEPTIONS) | _RETRY_ALIASES.keys()
_RETRY_CALLABLES: Final = ("retry_condition", "retry_on_result", "retry_after",
                           "retry_after_result", "dispose", "on_retry",
                           "on_failure", "on_success", "rng", "budget")
_BREAKER_SCALARS: Final = ("name", "failure_threshold", "recovery_timeout", "success_threshold",
                           "half_open_max_calls", "failure_window", "failure_rate_threshold",
                           "minimum_calls", "window_size", "slow_call_duration",
                           "slow_call_rate_threshold", "timeout", "critical", "mode",
                           "recovery_timeout_multiplier", "max_recovery_timeout")
_BREAKER_EXCEPTIONS: Final = ("failure_exceptions", "ignored_exceptions")
_BREAKER_ALIASES: Final = {alias: field for alias, field in BREAKER_ALIASES.items()
                           if field in _BREAKER_SCALARS + _BREAKER_EXCEPTIONS}
_BREAKER_KEYS: Final = (frozenset(_BREAKER_SCALARS + _BREAKER_EXCEPTIONS)
                        | _BREAKER_ALIASES.keys())
