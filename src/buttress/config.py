"""Configuration: one typed settings object, fed from code, environment and files.

Where an effective value comes from, highest precedence first:

1. **code** — arguments of ``resilient(...)`` and the presets, and :func:`configure`;
2. **environment** — :func:`load_env` (prefix ``BUTTRESS_`` by default, read
   automatically the first time settings are needed; ``load_env(prefix="PYNOMALY_")``
   reads the ``pynomaly`` seed's variables unchanged, ``prefix=""`` the
   ``huleedu`` seed's ``CIRCUIT_BREAKER_*``/``RETRY_*``/``DEFAULT_TIMEOUT``);
3. **file** — :meth:`ResilienceConfig.load_from_file` (JSON or TOML, by suffix);
4. **built-in defaults** — the ``pynomaly`` seed's values per operation type.

:func:`explain` reports, for every effective value, which of these it came from.

Named policies (the ``retry_configs`` and ``circuit_breaker_configs`` sections of a
file, or :meth:`ResilienceConfig.update_config`) are looked up when a protected
call runs, not when it is decorated: every change bumps a generation counter, and
a decorated function compares one integer per call to notice it. So
``configure(resilience_enabled=False)``, :func:`load_env` and
``resilience_config.reload()`` change the behaviour of functions decorated long
before, without a restart::

    resilience_config.load_from_file("resilience.toml")

    @resilience_config.protect("database")
    def get_user(user_id: int) -> dict: ...

    # ... edit resilience.toml ...
    resilience_config.reload()      # get_user follows the new policy from its next call

Every bad value raises :class:`ConfigurationError` naming where it came from (the
file and line, the environment variable, the argument), the key and the value.
"""

from __future__ import annotations

import bisect
import builtins
import difflib
import functools
import importlib
import inspect
import json
import math
import os
import re
import reprlib
import sys
import tempfile
import threading
import tomllib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import (
    Any,
    Concatenate,
    Final,
    Literal,
    ParamSpec,
    Protocol,
    Self,
    TypeVar,
    cast,
    overload,
)

from buttress import registry
from buttress._core import forksafe, validate
from buttress._core.clock import Clock
from buttress._core.errors import ConfigurationError
from buttress._core.events import Listeners
from buttress._core.strategy import check_call, check_protectable, is_async_callable, redact
from buttress.backoff import normalise_jitter
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.pipeline import Pipeline, pipeline
from buttress.retry import RetryConfig
from buttress.timeout import Timeout, TimeoutConfig

__all__ = [
    "MAX_FILE_BYTES",
    "OPERATION_TYPES",
    "Explanation",
    "LivePipeline",
    "OperationSettings",
    "Protected",
    "ResilienceConfig",
    "ResilienceSettings",
    "Setting",
    "configure",
    "explain",
    "get_settings",
    "load_env",
    "reset_settings",
    "resilience_config",
]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
_Q = ParamSpec("_Q")
_S = TypeVar("_S")

OPERATION_TYPES: Final = ("default", "database", "cache", "api", "file", "ml")
"""The operation types with a settings section; any other type uses ``default``."""

_OPERATION_FIELDS: Final = (
    "timeout_seconds", "max_attempts", "base_delay", "max_delay",
    "exponential_base", "jitter", "failure_threshold", "recovery_timeout",
)
_SWITCHES: Final = ("resilience_enabled", "circuit_breaker_enabled")
_INT_FIELDS: Final = frozenset({"max_attempts", "failure_threshold"})
_BOOL_WORDS: Final = {"1": True, "true": True, "yes": True, "on": True,
                      "0": False, "false": False, "no": False, "off": False}
DEFAULT_ENV_PREFIX: Final = "BUTTRESS_"


# --- checking one value ----------------------------------------------------------------------


def _check_field(owner: str, field: str, value: object) -> Any:
    """Validate and normalise one settings value; the message names ``owner.field``
    (just ``field`` for a switch without owner) and the value. Wrong types are
    configuration errors here too."""
    try:
        if field in _SWITCHES:
            if not isinstance(value, bool):
                label = f"{owner}.{field}" if owner else field
                raise TypeError(f"{label} must be a bool, got {value!r}")
            return value
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
    except TypeError as exc:
        raise ConfigurationError(str(exc)) from exc


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- the settings object ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationSettings:
    """Timeout, retry and breaker values for one operation type.

    The field defaults are the ``default`` section, which ``resilient()`` uses for
    operation types without a section of their own (such as ``"custom"``); the
    ``database`` section, for example, is::

        OperationSettings(timeout_seconds=30.0, max_attempts=3, base_delay=0.5,
                          max_delay=10.0, failure_threshold=3, recovery_timeout=30.0)

    ``jitter`` is a factor 0..1 (``True`` means 0.5); validated on construction.
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
        if self.max_delay < self.base_delay:
            raise ConfigurationError(
                f"OperationSettings.max_delay must be >= base_delay ({self.base_delay:g}), "
                f"got {self.max_delay!r}"
            )

    def replace(self, **changes: Any) -> OperationSettings:
        """A copy with some values changed (and validated again)."""
        current = {name: getattr(self, name) for name in _OPERATION_FIELDS}
        current.update(changes)
        return OperationSettings(**current)


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


@dataclass(frozen=True, slots=True)
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
    base, cap = merged[f"{section}.base_delay"], merged[f"{section}.max_delay"]
    if cap.value < base.value:
        prefix = f"{owner}: " if owner else ""
        raise ConfigurationError(
            f"{prefix}{section}.max_delay = {cap.value!r} ({cap.where}) must be >= "
            f"{section}.base_delay = {base.value!r} ({base.where})"
        )


# --- environment -----------------------------------------------------------------------------


def _env_names() -> dict[str, str]:
    """Variable name (without prefix) -> settings key. The pynomaly spellings come
    first, so they are the ones :func:`explain` shows when both are set."""
    suffix = {"TIMEOUT": "timeout_seconds", "MAX_ATTEMPTS": "max_attempts",
              "BASE_DELAY": "base_delay", "MAX_DELAY": "max_delay",
              "EXPONENTIAL_BASE": "exponential_base", "JITTER": "jitter",
              "FAILURE_THRESHOLD": "failure_threshold", "RECOVERY_TIMEOUT": "recovery_timeout"}
    names = {"RESILIENCE_ENABLED": "resilience_enabled",
             "CIRCUIT_BREAKER_ENABLED": "circuit_breaker_enabled"}
    for section in OPERATION_TYPES:
        for end, field in suffix.items():
            names[f"{section.upper()}_{end}"] = f"{section}.{field}"
    # The huleedu seed's spellings of the defaults.
    names.update({
        "RETRY_MAX_ATTEMPTS": "default.max_attempts",
        "RETRY_INITIAL_DELAY": "default.base_delay",
        "RETRY_MAX_DELAY": "default.max_delay",
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "default.failure_threshold",
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "default.recovery_timeout",
    })
    return names


ENV_NAMES: Final = MappingProxyType(_env_names())
"""Environment variable names (after the prefix) and the settings key each sets."""

# configure() takes the same names in lower case, and "<section>_<field>".
_CODE_NAMES: Final = {name.lower(): key for name, key in ENV_NAMES.items()} | {
    key.replace(".", "_"): key for key in _DEFAULT_VALUES
}


def _parse_env(var: str, key: str, raw: str) -> Any:
    field = key.rpartition(".")[2]
    text = raw.strip().lower()
    value: Any
    try:
        if field in _SWITCHES:
            if text not in _BOOL_WORDS:
                raise ValueError(text)
            value = _BOOL_WORDS[text]
        elif field in _INT_FIELDS:
            value = int(text)
        elif field == "jitter" and text in _BOOL_WORDS:
            value = _BOOL_WORDS[text]
        else:
            value = float(text)
    except ValueError:
        kind = ("a boolean (true/false, 1/0, yes/no, on/off)" if field in _SWITCHES
                else "an integer" if field in _INT_FIELDS else "a number")
        raise ConfigurationError(
            f"environment variable {var}={raw!r}: {key} must be {kind}"
        ) from None
    owner, _, name = key.rpartition(".")
    try:
        return _check_field(owner, name, value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"environment variable {var}={raw!r}: {exc}") from exc


def _read_env(prefix: str, environ: Mapping[str, str]) -> dict[str, Setting]:
    layer: dict[str, Setting] = {}
    for name, key in ENV_NAMES.items():
        var = prefix + name
        raw = environ.get(var)
        if raw is None:
            continue
        value = _parse_env(var, key, raw)
        prior = layer.get(key)
        if prior is None:
            layer[key] = Setting(key, value, "env", var)
        elif prior.value != value:
            raise ConfigurationError(
                f"environment variables {prior.origin}={environ[prior.origin]!r} and "
                f"{var}={raw!r} both set {key} and disagree"
            )
    return layer


# --- files: locating keys for error messages -------------------------------------------------


KeyPath = tuple[str, ...]
_JSON_WS: Final = re.compile(r"[ \t\n\r]*")


def _json_key_lines(text: str) -> tuple[dict[KeyPath, int], list[KeyPath]]:
    """Line of every object key in (already valid) JSON text, and repeated keys."""
    breaks = [i for i, ch in enumerate(text) if ch == "\n"]
    lines: dict[KeyPath, int] = {}
    repeated: list[KeyPath] = []
    decoder = json.JSONDecoder()

    def skip(i: int) -> int:
        match = _JSON_WS.match(text, i)
        assert match is not None
        return match.end()

    def value(i: int, path: KeyPath) -> int:
        i = skip(i)
        if text[i] == "{":
            i = skip(i + 1)
            if text[i] == "}":
                return i + 1
            while True:
                key, after = decoder.raw_decode(text, i)
                here = (*path, key)
                if here in lines:
                    repeated.append(here)
                else:
                    lines[here] = bisect.bisect_left(breaks, i) + 1
                i = value(skip(after) + 1, here)  # past the ':'
                i = skip(i)
                if text[i] == ",":
                    i = skip(i + 1)
                    continue
                return i + 1
        if text[i] == "[":
            i = skip(i + 1)
            if text[i] == "]":
                return i + 1
            index = 0
            while True:
                i = skip(value(i, (*path, str(index))))
                index += 1
                if text[i] == ",":
                    i += 1
                    continue
                return i + 1
        return decoder.raw_decode(text, i)[1]

    try:
        value(0, ())
    except (ValueError, IndexError, RecursionError):
        return {}, []  # line numbers are a courtesy; the parse itself already succeeded
    return lines, repeated


_TOML_KEY: Final = re.compile(
    r"""\s*((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
    r"""(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*'))*)\s*="""
)
_TOML_PART: Final = re.compile(r"""\s*([A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')\s*(\.|$)""")


def _toml_dotted(text: str) -> KeyPath | None:
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOML_PART.match(text, pos)
        if match is None:
            return None
        token = match.group(1)
        if token.startswith('"'):
            try:
                token = json.loads(token)
            except ValueError:
                token = token[1:-1]
        elif token.startswith("'"):
            token = token[1:-1]
        parts.append(token)
        pos = match.end()
    return tuple(parts)


def _toml_key_lines(text: str) -> dict[KeyPath, int]:
    """Line of every table header and ``key =`` line; enough for the flat shapes
    of a resilience file (keys inside multi-line values may be missed)."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            header = _toml_dotted(stripped[1:stripped.rfind("]")].strip())
            if header is not None:
                table = header
                lines.setdefault(table, number)
            continue
        match = _TOML_KEY.match(line)
        if match is not None:
            key = _toml_dotted(match.group(1).strip())
            if key is not None:
                lines.setdefault((*table, *key), number)
    return lines


_NO_VALUE: Final[Any] = object()

# A file's values appear in error messages shortened: a hostile file must not turn
# one error into megabytes of log.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlong = 40
_MAX_MESSAGE: Final = 800


def _shown(value: object) -> str:
    """``repr(value)``, shortened to a few dozen characters."""
    return _REPR.repr(value)


def _key_shown(key: str) -> str:
    """A key as it appears in a dotted path: itself, or a short repr when it is
    long or holds characters a log line should not."""
    return key if len(key) <= 80 and key.isprintable() else _shown(key)


def _bounded(message: str) -> str:
    """``message`` cut in the middle when it is too long to log, keeping the
    location (front) and the hint (end); secrets are masked before cutting."""
    if len(message) <= _MAX_MESSAGE:
        return message
    message = redact(message)
    omitted = len(message) - 600
    return f"{message[:450]} ... ({omitted} characters omitted) ... {message[-150:]}"


class _Where:
    """Builds error messages that name the file, the line and the key."""

    def __init__(self, path: Path, lines: Mapping[KeyPath, int]) -> None:
        self.path = path
        self.lines = lines

    def origin(self, keys: KeyPath) -> str:
        for depth in range(len(keys), 0, -1):
            line = self.lines.get(keys[:depth])
            if line is not None:
                return f"{self.path}:{line}"
        return str(self.path)

    def error(self, keys: KeyPath, message: str, value: Any = _NO_VALUE) -> ConfigurationError:
        dotted = ".".join(_key_shown(key) for key in keys)
        if value is not _NO_VALUE:
            dotted = f"{dotted} = {_shown(value)}"
        plain = not dotted or message.startswith(dotted + " ")
        text = message if plain else f"{dotted}: {message}"
        return ConfigurationError(_bounded(f"{self.origin(keys)}: {text}"))


# --- files: reading and writing policies -----------------------------------------------------


_TOP_KEYS: Final = ("resilience_enabled", "circuit_breaker_enabled", "operations",
                    "retry_configs", "circuit_breaker_configs")
_RETRY_SCALARS: Final = ("max_attempts", "base_delay", "max_delay", "exponential_base",
                         "strategy", "jitter", "deadline", "reraise", "name")
_RETRY_EXCEPTIONS: Final = ("exceptions", "non_retryable_exceptions")
_RETRY_ALIASES: Final = {"initial_delay": "base_delay", "backoff_multiplier": "exponential_base",
                         "multiplier": "exponential_base", "retry_on": "exceptions",
                         "retryable_exceptions": "exceptions"}
_RETRY_KEYS: Final = frozenset(_RETRY_SCALARS + _RETRY_EXCEPTIONS) | _RETRY_ALIASES.keys()
_RETRY_CALLABLES: Final = ("retry_condition", "retry_on_result", "retry_after",
                           "retry_after_result", "dispose", "on_retry",
                           "on_failure", "on_success", "rng")
_BREAKER_SCALARS: Final = ("name", "failure_threshold", "recovery_timeout", "success_threshold",
                           "half_open_max_calls", "failure_window", "failure_rate_threshold",
                           "minimum_calls", "window_size", "slow_call_duration",
                           "slow_call_rate_threshold", "timeout")
_BREAKER_EXCEPTIONS: Final = ("failure_exceptions", "ignored_exceptions")
_BREAKER_ALIASES: Final = {"exception_whitelist": "ignored_exceptions"}
_BREAKER_KEYS: Final = (frozenset(_BREAKER_SCALARS + _BREAKER_EXCEPTIONS)
                        | _BREAKER_ALIASES.keys())
_CONFIG_FIELD: Final = re.compile(r"^(?:RetryConfig|CircuitBreakerConfig)\.(\w+)")


def _resolve_exception(name: str) -> type[BaseException]:
    """``"ConnectionError"`` (a builtin) or ``"package.module.Class"``."""
    found: object = None
    if "." not in name:
        found = getattr(builtins, name, None)
    else:
        parts = name.split(".")
        for split in range(len(parts) - 1, 0, -1):
            try:
                found = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attr in parts[split:]:
                found = getattr(found, attr, None)
            break
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise LookupError(name)
    return found


def _exception_name(cls: type[BaseException]) -> str:
    """The name :func:`_resolve_exception` finds ``cls`` by."""
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    try:
        same = _resolve_exception(name) is cls
    except LookupError:
        same = False
    if not same:
        raise ConfigurationError(f"exception class {cls!r} can not be saved: it is not "
                                 "importable by its module and qualified name")
    return name


def _exceptions_from_file(value: object, where: _Where, keys: KeyPath) -> tuple[type, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise where.error(keys, f"must be a list of exception class names, got {_shown(value)}")
    result: list[type] = []
    for name in names:
        try:
            result.append(_resolve_exception(name))
        except LookupError:
            raise where.error(keys, f"no exception class named {_shown(name)} "
                                    f"(in {_shown(value)})") from None
    return tuple(result)


def _build_config(kind: str, entry: Mapping[str, Any], where: _Where,
                  keys: KeyPath) -> RetryConfig | CircuitBreakerConfig:
    """Construct one named config, re-raising its own validation error with the
    file, line and key added."""
    retry = kind == "retry_configs"
    known = _RETRY_KEYS if retry else _BREAKER_KEYS
    exception_keys = (_RETRY_EXCEPTIONS if retry else _BREAKER_EXCEPTIONS) + tuple(
        alias for alias, target in (_RETRY_ALIASES if retry else _BREAKER_ALIASES).items()
        if target.endswith("exceptions"))
    options: dict[str, Any] = {}
    for key, value in entry.items():
        if key not in known:
            raise where.error((*keys, key), f"unknown key {_shown(key)} = {_shown(value)}"
                                            f"{_suggest(key, known)}")
        options[key] = (_exceptions_from_file(value, where, (*keys, key))
                        if key in exception_keys else value)
    if not retry:
        options.setdefault("name", keys[-1])
    try:
        return RetryConfig(**options) if retry else CircuitBreakerConfig(**options)
    except (ConfigurationError, TypeError, ValueError) as exc:
        match = _CONFIG_FIELD.match(str(exc))
        field = match.group(1) if match else None
        aliases = _RETRY_ALIASES if retry else _BREAKER_ALIASES
        spelled = next((k for k in entry if k == field or aliases.get(k) == field), None)
        if spelled is None:
            raise where.error(keys, str(exc)) from exc
        raise where.error((*keys, spelled), str(exc), entry[spelled]) from exc


@dataclass(frozen=True, slots=True)
class _FileContent:
    settings: dict[str, Setting]
    retry: dict[str, RetryConfig]
    breakers: dict[str, CircuitBreakerConfig]
    where: _Where


MAX_FILE_BYTES: Final = 1 << 20
"""The largest configuration file :meth:`ResilienceConfig.load_from_file` reads
(1 MiB, some 6,000 named policies); anything larger is refused unread, so a
mistaken path (a log file, ``/dev/zero``) costs neither memory nor time."""

_MAX_DEPTH: Final = 32
# Deeper than any resilience file (its deepest value, a policy's exception list, is
# four levels down); checked without recursion after parsing.
_TOO_DEEP: Final = f"nested too deeply (more than {_MAX_DEPTH} levels of tables and arrays)"


def _read_text(path: Path) -> str:
    """The file's text: at most :data:`MAX_FILE_BYTES`, UTF-8. ``OSError`` (no such
    file, a directory, no permission) passes through as ``open()`` raises it."""
    with path.open("rb") as source:
        raw = source.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigurationError(f"{path}: larger than {MAX_FILE_BYTES} bytes; a resilience "
                                 "configuration file is never this large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise ConfigurationError(f"{path}:{line}:{column}: not UTF-8 text "
                                 f"(byte {raw[exc.start]:#04x})") from exc


def _too_long_number(path: Path, kind: str, text: str, exc: ValueError) -> ConfigurationError:
    """The error for the parsers' plain ``ValueError``: an integer longer than
    Python converts (``sys.get_int_max_str_digits()``, 4,300 by default)."""
    limit = sys.get_int_max_str_digits()
    for match in re.finditer(r"[0-9]+", text):
        if limit and match.end() - match.start() > limit:
            line = text.count("\n", 0, match.start()) + 1
            return ConfigurationError(
                f"{path}:{line}: invalid {kind}: a number with more than {limit} digits")
    return ConfigurationError(_bounded(f"{path}: invalid {kind}: {exc}"))


def _check_shape(data: object, where: _Where) -> None:
    """Refuse nesting deeper than ``_MAX_DEPTH`` and strings that are not valid
    Unicode (JSON's ``"\\ud800"``: no log, file or exporter can write them).
    Iterative, so that depth itself cannot exhaust the stack."""
    pending: list[tuple[KeyPath, object, int]] = [((), data, 0)]
    while pending:
        keys, value, depth = pending.pop()
        if isinstance(value, str):
            _check_unicode(value, where, keys)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth == _MAX_DEPTH:
            raise where.error(keys, _TOO_DEEP)
        if isinstance(value, list):
            pending.extend((keys, item, depth + 1) for item in value)
            continue
        for key, item in value.items():
            _check_unicode(key, where, (*keys, key))
            pending.append(((*keys, key), item, depth + 1))


def _check_unicode(text: str, where: _Where, keys: KeyPath) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise where.error(keys, "not valid Unicode (a lone surrogate)") from exc


def _parse(path: Path) -> tuple[Any, _Where]:
    """Parse by suffix. Whatever the bytes, the outcome is the data or one
    :class:`ConfigurationError` naming the file (never ``RecursionError``,
    ``UnicodeDecodeError`` or the parsers' ``ValueError``)."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ConfigurationError(
            f"{path}: unknown configuration file type {suffix!r}; use .json or .toml")
    text = _read_text(path)
    kind = suffix[1:].upper()
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(_bounded(f"{path}: invalid TOML: {exc}")) from exc
    except RecursionError as exc:
        raise ConfigurationError(f"{path}: {_TOO_DEEP}") from exc
    except ValueError as exc:
        raise _too_long_number(path, kind, text, exc) from exc
    if suffix == ".json":
        lines, repeated = _json_key_lines(text)
        where = _Where(path, lines)
        _check_shape(data, where)
        if repeated:
            raise where.error(repeated[0], "duplicate key (each key may appear once)")
        return data, where
    where = _Where(path, _toml_key_lines(text))
    _check_shape(data, where)
    return data, where


def _section(data: Mapping[str, Any], name: str, where: _Where,
             keys: KeyPath = ()) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise where.error((*keys, name), f"must be a table/object, got {_shown(value)}")
    return value


def _read_file(path: Path) -> _FileContent:
    data, where = _parse(path)
    if not isinstance(data, dict):
        raise ConfigurationError(
            f"{path}: the top level must be an object, got {_shown(data)}")
    for key in data:
        if key not in _TOP_KEYS:
            raise where.error((key,), f"unknown key {_shown(key)} = {_shown(data[key])}"
                                      f"{_suggest(key, _TOP_KEYS)}")
    layer: dict[str, Setting] = {}
    for key in _SWITCHES:
        if key in data:
            layer[key] = Setting(key, _file_value(where, (key,), "", key, data[key]),
                                 "file", where.origin((key,)))
    operations = _section(data, "operations", where)
    for section in operations:
        keys: KeyPath = ("operations", section)
        if section not in OPERATION_TYPES:
            raise where.error(keys, f"unknown operation type {_shown(section)}"
                                    f"{_suggest(section, OPERATION_TYPES)}; "
                                    f"known: {', '.join(OPERATION_TYPES)}")
        for name, value in _section(operations, section, where, ("operations",)).items():
            if name not in _OPERATION_FIELDS:
                raise where.error((*keys, name), f"unknown key {_shown(name)} = {_shown(value)}"
                                                 f"{_suggest(name, _OPERATION_FIELDS)}")
            key = f"{section}.{name}"
            checked = _file_value(where, (*keys, name), f"operations.{section}", name, value)
            layer[key] = Setting(key, checked, "file", where.origin((*keys, name)))
    named: dict[str, dict[str, Any]] = {"retry_configs": {}, "circuit_breaker_configs": {}}
    for kind, result in named.items():
        for name, entry in _section(data, kind, where).items():
            if not name:
                raise where.error((kind, name), "a policy name must not be empty")
            if not isinstance(entry, dict):
                raise where.error((kind, name), f"must be a table/object, got {_shown(entry)}")
            result[name] = _build_config(kind, entry, where, (kind, name))
    breakers: dict[str, CircuitBreakerConfig] = named["circuit_breaker_configs"]
    _check_breaker_names(breakers, lambda key: where.origin(
        ("circuit_breaker_configs", key, "name")))
    return _FileContent(layer, named["retry_configs"], breakers, where)


def _file_value(where: _Where, keys: KeyPath, owner: str, name: str, value: object) -> Any:
    try:
        return _check_field(owner, name, value)
    except ConfigurationError as exc:
        raise where.error(keys, str(exc)) from exc


def _check_breaker_names(configs: Mapping[str, CircuitBreakerConfig],
                         origin_of: Callable[[str], str]) -> None:
    """One breaker name, one config: two policies naming the same breaker must agree."""
    first: dict[str, str] = {}
    for key, config in configs.items():
        other = first.setdefault(config.name, key)
        if other != key and configs[other] != config:
            raise ConfigurationError(
                f"{origin_of(key)}: circuit_breaker_configs.{key}.name = {config.name!r} "
                f"reuses the breaker name of circuit_breaker_configs.{other} with a different "
                f"config ({registry.config_difference(configs[other], config)})"
            )


def _retry_to_dict(name: str, config: RetryConfig) -> dict[str, Any]:
    for field in _RETRY_CALLABLES:
        if getattr(config, field) is not None:
            raise ConfigurationError(
                f"retry_configs.{name}.{field} = {getattr(config, field)!r} can not be saved "
                "to a file (only plain values and exception classes can)")
    result: dict[str, Any] = {}
    for field in _RETRY_SCALARS:
        value = getattr(config, field)
        if field == "strategy":
            value = value.value
        if value is None or (field == "reraise" and value is False):
            continue
        result[field] = value
    if config.exceptions != (Exception,):
        result["exceptions"] = [_exception_name(cls) for cls in config.exceptions]
    if config.non_retryable_exceptions:
        result["non_retryable_exceptions"] = [
            _exception_name(cls) for cls in config.non_retryable_exceptions]
    return result


def _breaker_to_dict(name: str, config: CircuitBreakerConfig) -> dict[str, Any]:
    if config.fallback is not None:
        raise ConfigurationError(
            f"circuit_breaker_configs.{name}.fallback = {config.fallback!r} can not be saved "
            "to a file (only plain values and exception classes can)")
    result = {field: getattr(config, field) for field in _BREAKER_SCALARS
              if getattr(config, field) is not None}
    if config.failure_exceptions != (Exception,):
        result["failure_exceptions"] = [_exception_name(c) for c in config.failure_exceptions]
    if config.ignored_exceptions:
        result["ignored_exceptions"] = [_exception_name(c) for c in config.ignored_exceptions]
    return result


# --- a small TOML writer (the shapes are tables of tables of plain values) -------------------


_BARE_KEY: Final = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                        "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(f"{text!r} can not be written to TOML: {exc}") from exc
    out = []
    for ch in text:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ConfigurationError(f"integer {value!r} is too large for TOML (64-bit)")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise ConfigurationError(f"{value!r} can not be written to TOML")


def _toml_dumps(data: Mapping[str, Any]) -> str:
    lines: list[str] = []

    def table(path: KeyPath, values: Mapping[str, Any]) -> None:
        plain = [(k, v) for k, v in values.items() if not isinstance(v, Mapping)]
        nested = [(k, v) for k, v in values.items() if isinstance(v, Mapping)]
        if path and (plain or not nested):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_toml_key(k) for k in path) + "]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plain)
        for key, sub in nested:
            table((*path, key), sub)

    table((), data)
    return "\n".join(lines) + "\n"


# --- the live configuration ------------------------------------------------------------------


class ResilienceConfig:
    """The process-wide configuration: settings layers, named policies, and the
    generation counter that tells decorated functions to rebuild.

    Use the shared instance :data:`resilience_config`. Seed ``utils.resilience``
    spellings: ``load_from_file``, ``save_to_file``, ``get_retry_config``,
    ``get_circuit_breaker_config``, ``update_config``, ``configs``::

        resilience_config.load_from_file("resilience_config.json")
        resilience_config.get_retry_config("http_requests").max_attempts   # 3
        resilience_config.save_to_file("resilience_config.toml")
    """

    def __init__(self) -> None:
        self._lock = forksafe.rlock()
        self._generation = 0
        # Breakers this module created: name -> (generation last wanted, breaker).
        # A breaker wanted only by an older generation may be replaced by a new config.
        self._managed: dict[str, tuple[int, CircuitBreaker]] = {}
        self._clear()

    def _clear(self) -> None:
        self._file_layer: dict[str, Setting] = {}
        self._env_layer: dict[str, Setting] = {}
        self._code_layer: dict[str, Setting] = {}
        self._env_prefix: str | None = None
        self._file_path: Path | None = None
        self._file_retry: dict[str, RetryConfig] = {}
        self._file_breakers: dict[str, CircuitBreakerConfig] = {}
        self._code_retry: dict[str, RetryConfig] = {}
        self._code_breakers: dict[str, CircuitBreakerConfig] = {}
        self._cache: tuple[int, ResilienceSettings, dict[str, Setting]] | None = None

    # -- generation --

    @property
    def generation(self) -> int:
        """Bumped by every change; protected calls rebuild when it moves."""
        return self._generation

    def _bump(self) -> None:
        self._generation += 1
        self._cache = None

    # -- settings --

    def _merge(self, file: Mapping[str, Setting], env: Mapping[str, Setting],
               code: Mapping[str, Setting]) -> tuple[ResilienceSettings, dict[str, Setting]]:
        merged = dict(_DEFAULT_LAYER)
        for layer in (file, env, code):
            merged.update(layer)
        for section in OPERATION_TYPES:
            _check_delays(section, merged)
        settings = ResilienceSettings.from_flat({k: s.value for k, s in merged.items()})
        return settings, merged

    def _effective(self) -> tuple[ResilienceSettings, dict[str, Setting]]:
        cache = self._cache
        if cache is not None and cache[0] == self._generation:
            return cache[1], cache[2]
        with self._lock:
            if self._env_prefix is None:
                # First use: the environment under the default prefix. Not a change
                # anybody has built on yet, so no new generation.
                self._env_layer = _read_env(DEFAULT_ENV_PREFIX, os.environ)
                self._env_prefix = DEFAULT_ENV_PREFIX
            settings, merged = self._merge(self._file_layer, self._env_layer, self._code_layer)
            self._cache = (self._generation, settings, merged)
            return settings, merged

    @property
    def settings(self) -> ResilienceSettings:
        """The effective :class:`ResilienceSettings` (code > env > file > defaults)."""
        return self._effective()[0]

    def load_env(self, prefix: str = DEFAULT_ENV_PREFIX,
                 environ: Mapping[str, str] | None = None) -> ResilienceSettings:
        """Read the environment layer again, from variables named ``<prefix><NAME>``
        (see :data:`ENV_NAMES`), replacing what an earlier call read::

            load_env(prefix="PYNOMALY_")   # PYNOMALY_DATABASE_MAX_ATTEMPTS=5, ...
            load_env(prefix="")            # CIRCUIT_BREAKER_FAILURE_THRESHOLD=5, ...

        A malformed value raises :class:`ConfigurationError` naming the variable and
        its value; nothing changes then.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"load_env prefix must be a str, got {prefix!r}")
        layer = _read_env(prefix, os.environ if environ is None else environ)
        with self._lock:
            self._merge(self._file_layer, layer, self._code_layer)
            self._env_layer, self._env_prefix = layer, prefix
            self._bump()
        return self.settings

    def configure(self, **values: Any) -> ResilienceSettings:
        """Set values in code (the highest layer below call arguments); ``None``
        removes a value set here before::

            configure(resilience_enabled=False)               # every preset passes through
            configure(database_max_attempts=5, default_timeout=2.0)

        Names are the environment names in lower case (``database_timeout``,
        ``retry_max_attempts``, ``circuit_breaker_enabled``) or
        ``<section>_<field>`` (``database_timeout_seconds``).
        """
        layer = dict(self._code_layer)
        for name, value in values.items():
            key = _CODE_NAMES.get(name)
            if key is None:
                raise ConfigurationError(f"configure() got an unknown setting {name!r}"
                                         f"{_suggest(name, _CODE_NAMES)}")
            if value is None:
                layer.pop(key, None)
                continue
            owner, _, field = key.rpartition(".")
            try:
                checked = _check_field(owner, field, value)
            except ConfigurationError as exc:
                raise ConfigurationError(f"configure({name}={value!r}): {exc}") from exc
            layer[key] = Setting(key, checked, "code", "configure()")
        with self._lock:
            self._merge(self._file_layer, self._env_layer, layer)
            self._code_layer = layer
            self._bump()
        return self.settings

    def explain(self, operation_type: str | None = None, **overrides: Any) -> Explanation:
        """Every effective value and where it came from::

            print(explain())                       # all settings
            explain("database")["database.timeout_seconds"].where   # 'env: PYNOMALY_...'

        With ``operation_type``, only the switches and the section that type uses
        (``default`` for types without one); ``overrides`` are call arguments
        (``max_attempts=5``), reported as code.
        """
        merged = self._effective()[1]
        if operation_type is None:
            if overrides:
                raise TypeError("explain() takes overrides only with an operation_type")
            return Explanation(merged)
        section = operation_type if operation_type in OPERATION_TYPES else "default"
        result = Explanation({key: merged[key] for key in _SWITCHES})
        for field in _OPERATION_FIELDS:
            key = f"{section}.{field}"
            value = overrides.pop(field, None)
            result[key] = (merged[key] if value is None else
                           Setting(key, _check_field("argument", field, value), "code",
                                   "argument"))
        if overrides:
            raise TypeError(f"explain() got unknown overrides {sorted(overrides)}")
        return result

    # -- named policies --

    @property
    def retry_configs(self) -> Mapping[str, RetryConfig]:
        """Named retry configs (from the file, overridden by :meth:`update_config`)."""
        return MappingProxyType({**self._file_retry, **self._code_retry})

    configs = retry_configs
    """Alias of :attr:`retry_configs` (the ``utils.resilience`` seed's attribute)."""

    @property
    def circuit_breaker_configs(self) -> Mapping[str, CircuitBreakerConfig]:
        """Named breaker configs (from the file, overridden by :meth:`update_config`)."""
        return MappingProxyType({**self._file_breakers, **self._code_breakers})

    def get_retry_config(self, name: str, default: RetryConfig | None = None) -> RetryConfig:
        """The retry config called ``name``; ``default`` if given and there is none,
        else :class:`ConfigurationError` listing the names there are."""
        found = self.retry_configs.get(name, default)
        if found is None:
            raise ConfigurationError(f"no retry config named {name!r}"
                                     f"{_suggest(name, self.retry_configs)}; "
                                     f"known: {sorted(self.retry_configs)}")
        return found

    def get_circuit_breaker_config(self, name: str, default: CircuitBreakerConfig | None = None
                                   ) -> CircuitBreakerConfig:
        """The circuit breaker config called ``name`` (see :meth:`get_retry_config`)."""
        found = self.circuit_breaker_configs.get(name, default)
        if found is None:
            raise ConfigurationError(f"no circuit breaker config named {name!r}"
                                     f"{_suggest(name, self.circuit_breaker_configs)}; "
                                     f"known: {sorted(self.circuit_breaker_configs)}")
        return found

    def update_config(self, name: str, config: RetryConfig | CircuitBreakerConfig) -> None:
        """Set a named policy in code (above the file); protected calls use it from
        their next call. A breaker config still named ``"default"`` takes ``name``."""
        validate.text("update_config", "name", name)
        with self._lock:
            if isinstance(config, RetryConfig):
                self._code_retry[name] = config
            elif isinstance(config, CircuitBreakerConfig):
                if config.name == "default":
                    config = config.replace(name=name)
                merged = {**self._file_breakers, **self._code_breakers, name: config}
                _check_breaker_names({name: config, **merged},
                                     lambda key: f"update_config({name!r})")
                self._code_breakers[name] = config
            else:
                raise TypeError(f"update_config takes a RetryConfig or CircuitBreakerConfig, "
                                f"got {config!r}")
            self._bump()

    # -- files --

    def load_from_file(self, path: str | os.PathLike[str]) -> None:
        """Load settings and named policies from a JSON or TOML file (by suffix),
        replacing what an earlier file set. The ``utils.resilience`` seed's shape::

            {"retry_configs": {"http_requests": {"max_attempts": 3, "base_delay": 1.0,
                                                 "strategy": "jittered_exponential"}},
             "circuit_breaker_configs": {"database": {"failure_threshold": 3,
                                                      "recovery_timeout": 30.0}}}

        plus optional ``resilience_enabled``, ``circuit_breaker_enabled`` and
        ``operations.<type>.<field>``. Exception classes are given by name
        (``"ConnectionError"``, ``"httpx.ConnectError"``). Anything invalid raises one
        :class:`ConfigurationError` naming the file, line, key and value, and
        nothing changes: also for hostile files (not UTF-8, nested more than 32
        levels, integers longer than Python converts, larger than
        :data:`MAX_FILE_BYTES`). A file that cannot be opened raises the
        ``OSError`` of ``open()`` (``FileNotFoundError``, ...), which names it.
        """
        path = Path(path)
        content = _read_file(path)
        with self._lock:
            self._merge(content.settings, self._env_layer, self._code_layer)
            self._check_live_breakers(content)
            self._file_layer = content.settings
            self._file_retry, self._file_breakers = content.retry, content.breakers
            self._file_path = path
            self._bump()

    def _check_live_breakers(self, content: _FileContent) -> None:
        """One breaker name, one config: a file may not redefine a live breaker that
        other code created (breakers this module created for older generations are
        replaced instead)."""
        live = registry.all_circuit_breakers()
        merged = {**content.breakers, **self._code_breakers}
        _check_breaker_names(merged, lambda key: content.where.origin(
            ("circuit_breaker_configs", key, "name")) if key in content.breakers
            else f"update_config({key!r})")
        for key, config in content.breakers.items():
            breaker = live.get(config.name)
            managed = self._managed.get(config.name)
            if (breaker is not None and breaker.config != config
                    and (managed is None or managed[1] is not breaker)):
                raise content.where.error(
                    ("circuit_breaker_configs", key),
                    f"circuit breaker {config.name!r} already exists with a different config "
                    f"(live vs file: {registry.config_difference(breaker.config, config)})")

    def reload(self) -> None:
        """Read the last loaded file and the environment again (with the prefix of
        the last :meth:`load_env`, or ``BUTTRESS_`` once settings have been read);
        protected calls follow the new values from their next call. Raises
        :class:`ConfigurationError` when there is nothing to read again."""
        with self._lock:
            path, prefix = self._file_path, self._env_prefix
        if path is None and prefix is None:
            raise ConfigurationError("reload(): no file was loaded and no environment read")
        content = _read_file(path) if path is not None else None
        env = _read_env(prefix, os.environ) if prefix is not None else None
        with self._lock:
            file_layer = content.settings if content is not None else self._file_layer
            env_layer = env if env is not None else self._env_layer
            self._merge(file_layer, env_layer, self._code_layer)
            if content is not None:
                self._check_live_breakers(content)
                self._file_retry, self._file_breakers = content.retry, content.breakers
            self._file_layer, self._env_layer = file_layer, env_layer
            self._bump()

    def save_to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the effective configuration as JSON or TOML (by suffix): every
        setting that is not a built-in default, and every named policy. Loading the
        file back gives the same settings and policies. The file is replaced
        atomically, so a concurrent :meth:`reload` never reads half of it."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise ConfigurationError(
                f"{path}: unknown configuration file type {suffix!r}; use .json or .toml")
        data = self.as_dict()
        text = json.dumps(data, indent=2) + "\n" if suffix == ".json" else _toml_dumps(data)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def as_dict(self) -> dict[str, Any]:
        """The file shape of the effective configuration (what :meth:`save_to_file`
        writes)."""
        data: dict[str, Any] = {}
        operations: dict[str, dict[str, Any]] = {}
        for key, setting in self._effective()[1].items():
            if setting.source == "default":
                continue
            section, _, field = key.rpartition(".")
            if section:
                operations.setdefault(section, {})[field] = setting.value
            else:
                data[key] = setting.value
        if operations:
            data["operations"] = operations
        data["retry_configs"] = {n: _retry_to_dict(n, c) for n, c in self.retry_configs.items()}
        data["circuit_breaker_configs"] = {
            n: _breaker_to_dict(n, c) for n, c in self.circuit_breaker_configs.items()}
        return data

    # -- protected calls --

    def protect(self, name: str | None = None, *, retry: str | None = None,
                circuit_breaker: str | None = None, timeout: float | TimeoutConfig | None = None,
                clock: Clock | None = None) -> LivePipeline:
        """A decorator (and ``call``/``acall``/``with`` helper) applying named policies,
        looked up at call time so :meth:`reload` changes it without a restart::

            @resilience_config.protect("database")            # retry_configs.database
            def get_user(user_id: int) -> dict: ...           # + circuit_breaker_configs.database

            @resilience_config.protect(retry="http_requests", circuit_breaker="external_apis",
                                       timeout=5.0)
            async def fetch() -> bytes: ...

        ``name`` takes both sections' entries of that name (at least one must exist
        when the call runs); ``retry``/``circuit_breaker`` name one each (it must exist).
        ``timeout`` is applied as :func:`~buttress.timeout` applies it: a sync call
        then runs in a worker thread (the only way to stop waiting for it), so give
        it only to sync functions whose objects may cross threads.
        """
        return _NamedPolicy(name, retry, circuit_breaker, timeout, clock)

    def _circuit_breaker(self, config: CircuitBreakerConfig, clock: Clock | None,
                         generation: int, owner: str) -> CircuitBreaker:
        """The registered breaker for ``config``; one created here for an older
        generation is replaced when the config changed, anything else that differs
        is an error (one name, one config)."""
        name = config.name
        with self._lock:
            before = registry.all_circuit_breakers().get(name)
            managed = self._managed.get(name)
            try:
                breaker = registry.get_circuit_breaker(name, config, clock=clock)
            except ConfigurationError as exc:
                existing = registry.get_circuit_breaker(name)
                if managed is None or managed[1] is not existing or managed[0] >= generation:
                    raise ConfigurationError(f"{owner}: {exc}") from exc
                breaker = _replace_circuit_breaker(name, config, clock)
                before = None
            if breaker is not before or (managed is not None and managed[1] is breaker):
                last = managed[0] if managed is not None and managed[1] is breaker else generation
                self._managed[name] = (max(generation, last), breaker)
            return breaker

    def reset(self) -> None:
        """Forget every setting, loaded file, named policy and read environment (for
        tests); protected functions rebuild from built-in defaults on their next call."""
        with self._lock:
            self._clear()
            self._bump()


def _replace_circuit_breaker(name: str, config: CircuitBreakerConfig,
                             clock: Clock | None) -> CircuitBreaker:
    # get_circuit_breaker rightly refuses a second config for a name. A changed
    # setting or a reloaded file is the one legitimate change: the breaker this
    # module created for the old config gives its name to a fresh one (closed,
    # empty counters).
    return registry.replace_circuit_breaker(name, config, clock=clock)


resilience_config: Final = ResilienceConfig()
"""The shared configuration (settings, environment, files, named policies)."""


def get_settings() -> ResilienceSettings:
    """The effective settings (code > environment > file > built-in defaults)."""
    return resilience_config.settings


def load_env(prefix: str = DEFAULT_ENV_PREFIX,
             environ: Mapping[str, str] | None = None) -> ResilienceSettings:
    """Read settings from environment variables ``<prefix><NAME>``; see
    :meth:`ResilienceConfig.load_env`::

        load_env(prefix="PYNOMALY_")
    """
    return resilience_config.load_env(prefix, environ)


def configure(**values: Any) -> ResilienceSettings:
    """Set settings in code; see :meth:`ResilienceConfig.configure`::

        configure(resilience_enabled=False)
    """
    return resilience_config.configure(**values)


def explain(operation_type: str | None = None, **overrides: Any) -> Explanation:
    """Every effective value and where it came from; see
    :meth:`ResilienceConfig.explain`::

        print(explain("database"))
    """
    return resilience_config.explain(operation_type, **overrides)


def reset_settings() -> None:
    """Clear settings, the read environment, loaded files and named policies (for
    tests); the next use reads ``BUTTRESS_*`` again and starts from the defaults."""
    resilience_config.reset()


# --- pipelines rebuilt from configuration ----------------------------------------------------


class _Built:
    """One generation's pipeline and the configs it was built from."""

    __slots__ = ("circuit_breaker", "circuit_breaker_config", "generation", "pipeline",
                 "retry_config", "timeout_config")

    def __init__(self, generation: int, pipeline: Pipeline | None = None,
                 retry_config: RetryConfig | None = None,
                 circuit_breaker_config: CircuitBreakerConfig | None = None,
                 timeout_config: TimeoutConfig | None = None,
                 circuit_breaker: CircuitBreaker | None = None) -> None:
        self.generation = generation
        self.pipeline = pipeline
        self.retry_config = retry_config
        self.circuit_breaker_config = circuit_breaker_config
        self.timeout_config = timeout_config
        self.circuit_breaker = circuit_breaker

    # _chain, not wrap: whoever holds the result holds this _Built, and its pipeline.
    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn if self.pipeline is None else self.pipeline._chain(fn)

    def wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return fn if self.pipeline is None else self.pipeline._chain_async(fn)


class Protected(Protocol[P, R_co]):
    """What a :class:`LivePipeline` makes of a function, for type checkers: callable
    exactly as the original (same parameters, same result; a method binds as
    usual), with the pipeline protecting it as ``.resilience``::

        @resilience_config.protect("database")
        def get_user(user_id: int) -> dict: ...

        get_user(1)                            # checked against (user_id: int)
        get_user.resilience.retry_config       # RetryConfig | None

    At run time it is the function ``functools.wraps`` made; nothing here runs.
    The presets return the narrower :class:`~buttress.presets.ResilientFunction`.

    .. versionadded:: 0.1
    """

    __name__: str
    __qualname__: str

    @property
    def resilience(self) -> LivePipeline: ...

    @property
    def __wrapped__(self) -> Callable[P, R_co]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    # A method: looked up on the class it stays itself, on an instance it is
    # bound (its first parameter filled).
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(self: Protected[Concatenate[_S, _Q], R_co], instance: _S,
                owner: type[Any] | None = None, /) -> Protected[_Q, R_co]: ...


class LivePipeline:
    """A pipeline built from the current configuration, and built again whenever the
    configuration changes (checked once per call: one integer comparison).

    Use it as a decorator (sync or async), with ``call``/``acall``, or as a (async)
    context manager that hands itself out::

        with resilient_context(operation_type="database") as ctx:
            rows = ctx.call(fetch_rows, limit=10)

    ``events`` is a listener hub that outlives the rebuilds: every pipeline built
    for this object delivers its events there too.
    """

    __slots__ = ("_build_lock", "_built", "clock", "events")

    _eager: bool = True

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self._built: _Built | None = None
        self._build_lock = forksafe.lock()
        self.events = Listeners()

    # what subclasses decide

    def _assemble(self, settings: ResilienceSettings) -> tuple[
            RetryConfig | None, CircuitBreakerConfig | None, TimeoutConfig | None]:
        raise NotImplementedError

    def _owner(self) -> str:
        return repr(self)

    def _for_function(self, fn: Callable[..., Any]) -> LivePipeline:
        return self

    def _timeout_stage(self, config: TimeoutConfig) -> Timeout:
        """The timeout strategy for ``config``: by default sync calls run in a worker
        thread (only used where a timeout was asked for explicitly)."""
        return Timeout(config, clock=self.clock)

    # building

    def current(self) -> _Built:
        """This generation's pipeline, built now if the configuration changed."""
        built = self._built
        if built is not None and built.generation == resilience_config._generation:
            return built
        with self._build_lock:
            generation = resilience_config._generation
            built = self._built
            if built is not None and built.generation == generation:
                return built
            settings = resilience_config.settings
            if not settings.resilience_enabled:
                built = _Built(generation)
            else:
                retry, breaker_config, limit = self._assemble(settings)
                if not settings.circuit_breaker_enabled:
                    breaker_config = None
                breaker = (None if breaker_config is None else resilience_config._circuit_breaker(
                    breaker_config, self.clock, generation, self._owner()))
                built_pipeline = pipeline(
                    retry=retry, circuit_breaker=breaker,
                    timeout=None if limit is None else self._timeout_stage(limit),
                    clock=self.clock)
                built_pipeline.events.attach(self.events)
                built = _Built(generation, built_pipeline, retry, breaker_config, limit,
                               breaker)
            old = self._built
            if old is not None and old.pipeline is not None:
                # Its strategies may live on (a shared breaker): stop feeding the
                # old pipeline's hub, or every rebuild would add one more parent.
                old.pipeline.detach()
            self._built = built
            return built

    @property
    def pipeline(self) -> Pipeline | None:
        """The current :class:`Pipeline` (``None`` while resilience is disabled)."""
        return self.current().pipeline

    @property
    def retry_config(self) -> RetryConfig | None:
        """The current retry config (``None`` when retry is off)."""
        return self.current().retry_config

    @property
    def circuit_breaker_config(self) -> CircuitBreakerConfig | None:
        """The current breaker config (``None`` when the breaker is off)."""
        return self.current().circuit_breaker_config

    @property
    def circuit_breaker(self) -> CircuitBreaker | None:
        """The current (registered) breaker, or ``None``."""
        return self.current().circuit_breaker

    @property
    def timeout_config(self) -> TimeoutConfig | None:
        """The current timeout config (``None`` when the timeout is off)."""
        return self.current().timeout_config

    # using

    def __call__(self, fn: Callable[P, R]) -> Protected[P, R]:
        check_protectable(fn, type(self).__name__)
        return cast("Protected[P, R]", self._for_function(fn)._decorate(fn))

    def _decorate(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        first = self.current() if self._eager else None
        state = resilience_config
        wrapper: Callable[..., Any]
        if is_async_callable(fn):
            pair_async = (first, fn if first is None else first.wrap_async(fn))

            async def protected_async(*args: Any, **kwargs: Any) -> Any:
                nonlocal pair_async
                built, wrapped = pair_async
                if built is None or built.generation != state._generation:
                    built = self.current()
                    wrapped = built.wrap_async(fn)
                    pair_async = (built, wrapped)
                return await wrapped(*args, **kwargs)

            wrapper = protected_async
        else:
            pair = (first, fn if first is None else first.wrap(fn))

            def protected(*args: Any, **kwargs: Any) -> Any:
                nonlocal pair
                built, wrapped = pair
                if built is None or built.generation != state._generation:
                    built = self.current()
                    wrapped = built.wrap(fn)
                    pair = (built, wrapped)
                return wrapped(*args, **kwargs)

            wrapper = protected
        functools.update_wrapper(wrapper, fn)
        wrapper.__dict__["resilience"] = self
        return wrapper

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once under the current pipeline."""
        if check_call(fn, type(self).__name__):
            raise TypeError(f"{fn!r} is a coroutine function: use `await ctx.acall(fn)`")
        return self.current().wrap(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` once under the current pipeline; ``fn`` may
        also be a plain callable returning an awaitable (``lambda: client.get(url)``)."""
        if check_call(fn, type(self).__name__):
            return await self.current().wrap_async(fn)(*args, **kwargs)

        async def awaited(*a: Any, **kw: Any) -> Any:
            result = fn(*a, **kw)
            return await result if inspect.isawaitable(result) else result

        return await self.current().wrap_async(awaited)(*args, **kwargs)

    def __enter__(self) -> LivePipeline:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    async def __aenter__(self) -> LivePipeline:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None


class _NamedPolicy(LivePipeline):
    """What :meth:`ResilienceConfig.protect` returns."""

    __slots__ = ("circuit_breaker_name", "name", "retry_name", "timeout")

    # Policies are often loaded after the functions using them are decorated.
    _eager = False

    def __init__(self, name: str | None, retry: str | None, circuit_breaker: str | None,
                 timeout: float | TimeoutConfig | None, clock: Clock | None) -> None:
        super().__init__(clock)
        if name is None and retry is None and circuit_breaker is None:
            raise TypeError("protect() needs a policy name, retry= or circuit_breaker=")
        for field, value in (("name", name), ("retry", retry),
                             ("circuit_breaker", circuit_breaker)):
            if value is not None:
                validate.text("protect", field, value)
        self.name = name
        self.retry_name = retry
        self.circuit_breaker_name = circuit_breaker
        self.timeout = (timeout if timeout is None or isinstance(timeout, TimeoutConfig)
                        else TimeoutConfig(timeout))

    def _assemble(self, settings: ResilienceSettings) -> tuple[
            RetryConfig | None, CircuitBreakerConfig | None, TimeoutConfig | None]:
        config = resilience_config
        retry = (config.get_retry_config(self.retry_name) if self.retry_name is not None
                 else config.retry_configs.get(self.name) if self.name is not None else None)
        breaker = (config.get_circuit_breaker_config(self.circuit_breaker_name)
                   if self.circuit_breaker_name is not None
                   else config.circuit_breaker_configs.get(self.name)
                   if self.name is not None else None)
        if self.name is not None and retry is None and breaker is None and (
                self.retry_name is None or self.circuit_breaker_name is None):
            raise ConfigurationError(
                f"{self._owner()}: no retry or circuit breaker config named {self.name!r}; "
                f"known: {sorted({*config.retry_configs, *config.circuit_breaker_configs})}")
        return retry, breaker, self.timeout

    def _owner(self) -> str:
        parts = [repr(self.name)] if self.name is not None else []
        if self.retry_name is not None:
            parts.append(f"retry={self.retry_name!r}")
        if self.circuit_breaker_name is not None:
            parts.append(f"circuit_breaker={self.circuit_breaker_name!r}")
        return f"resilience_config.protect({', '.join(parts)})"

    def __repr__(self) -> str:
        return self._owner()

