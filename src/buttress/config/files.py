"""Files: JSON and TOML read (with the limits that keep a hostile file to one
:class:`ConfigurationError`) and written, with every error naming the file,
line, key and value."""

from __future__ import annotations

import bisect
import builtins
import importlib
import json
import math
import re
import reprlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Final,
)

from buttress import registry
from buttress._core import validate
from buttress._core.errors import ConfigurationError
from buttress._core.strategy import redact
from buttress.breaker import CircuitBreakerConfig
from buttress.budget import RatioBudget, RetryBudget, TokenBucketBudget
from buttress.config.schema import (
    _BREAKER_ALIASES,
    _BREAKER_EXCEPTIONS,
    _BREAKER_KEYS,
    _BREAKER_SCALARS,
    _OPERATION_FIELDS,
    _RETRY_ALIASES,
    _RETRY_CALLABLES,
    _RETRY_EXCEPTIONS,
    _RETRY_KEYS,
    _RETRY_SCALARS,
    _SWITCHES,
    _TOP_KEYS,
    OPERATION_TYPES,
    Setting,
    _check_field,
    _suggest,
)
from buttress.retry import RetryConfig

__all__ = ["MAX_FILE_BYTES"]

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

    def error(self, keys: KeyPath, message: str, value: Any = _NO_VALUE, *,
              cause: ConfigurationError | None = None) -> ConfigurationError:
        """The error for ``keys``; with ``cause`` (a config's own refusal) its
        ``field``, ``value`` and ``expected`` are kept."""
        dotted = ".".join(_key_shown(key) for key in keys)
        if value is not _NO_VALUE:
            dotted = f"{dotted} = {_shown(value)}"
        plain = not dotted or message.startswith(dotted + " ")
        text = _bounded(f"{self.origin(keys)}: {message if plain else f'{dotted}: {message}'}")
        if cause is not None:
            return validate.as_value_error(cause).reworded(text)
        return ConfigurationError(text)


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


def _named_budget(value: object, budgets: Mapping[str, RetryBudget], where: _Where,
                  keys: KeyPath) -> RetryBudget:
    """The budget a retry config names (``budget = "payments"``), from the file's
    ``retry_budgets`` section."""
    if not isinstance(value, str):
        raise where.error(keys, f"must be the name of a budget in retry_budgets, "
                                f"got {_shown(value)}")
    budget = budgets.get(value)
    if budget is None:
        raise where.error(keys, f"no retry budget named {_shown(value)} in retry_budgets"
                                f"{_suggest(value, budgets)}; known: "
                                f"{', '.join(sorted(budgets)) or 'none'}", value)
    return budget


def _build_config(kind: str, entry: Mapping[str, Any], where: _Where, keys: KeyPath,
                  budgets: Mapping[str, RetryBudget] | None = None,
                  ) -> RetryConfig | CircuitBreakerConfig:
    """Construct one named config, re-raising its own validation error with the
    file, line and key added. A retry config's ``budget`` names one of ``budgets``."""
    retry = kind == "retry_configs"
    known = _RETRY_KEYS | {"budget"} if retry else _BREAKER_KEYS
    exception_keys = (_RETRY_EXCEPTIONS if retry else _BREAKER_EXCEPTIONS) + tuple(
        alias for alias, target in (_RETRY_ALIASES if retry else _BREAKER_ALIASES).items()
        if target.endswith("exceptions"))
    options: dict[str, Any] = {}
    for key, value in entry.items():
        if key not in known:
            raise where.error((*keys, key), f"unknown key {_shown(key)} = {_shown(value)}"
                                            f"{_suggest(key, known)}")
        if key == "budget":
            options[key] = _named_budget(value, budgets or {}, where, (*keys, key))
            continue
        options[key] = (_exceptions_from_file(value, where, (*keys, key))
                        if key in exception_keys else value)
    if not retry:
        options.setdefault("name", keys[-1])
    try:
        return RetryConfig(**options) if retry else CircuitBreakerConfig(**options)
    except (ConfigurationError, TypeError, ValueError) as exc:
        cause = exc if isinstance(exc, ConfigurationError) else None
        owner, _, field = (cause.field or "").partition(".") if cause else ("", "", "")
        if owner not in ("RetryConfig", "CircuitBreakerConfig"):
            field = ""
        aliases = _RETRY_ALIASES if retry else _BREAKER_ALIASES
        spelled = next((k for k in entry if k == field or aliases.get(k) == field), None)
        if spelled is None:
            raise where.error(keys, str(exc), cause=cause) from exc
        raise where.error((*keys, spelled), str(exc), entry[spelled], cause=cause) from exc


@dataclass(frozen=True, slots=True)
class _FileContent:
    settings: dict[str, Setting]
    retry: dict[str, RetryConfig]
    breakers: dict[str, CircuitBreakerConfig]
    where: _Where
    budgets: dict[str, RetryBudget]


BudgetsOf = Callable[[Mapping[str, Any], _Where], Mapping[str, RetryBudget]]
"""Builds the named budgets of a parsed file (its ``retry_budgets`` section):
given by :mod:`buttress.config.live`, which may import the overload builders."""


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
    toml_error: type[Exception] | tuple[()] = ()
    if suffix == ".toml":
        # Imported here: only TOML files need the parser, and importing it
        # was some 15 ms of `import buttress` (python -X importtime).
        import tomllib

        toml_error = tomllib.TOMLDecodeError
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except toml_error as exc:
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


def _read_file(path: Path, budgets_of: BudgetsOf | None = None) -> _FileContent:
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
    budgets = dict(budgets_of(data, where)) if budgets_of is not None else {}
    named: dict[str, dict[str, Any]] = {"retry_configs": {}, "circuit_breaker_configs": {}}
    for kind, result in named.items():
        for name, entry in _section(data, kind, where).items():
            if not name:
                raise where.error((kind, name), "a policy name must not be empty")
            if not isinstance(entry, dict):
                raise where.error((kind, name), f"must be a table/object, got {_shown(entry)}")
            result[name] = _build_config(kind, entry, where, (kind, name), budgets)
    breakers: dict[str, CircuitBreakerConfig] = named["circuit_breaker_configs"]
    _check_breaker_names(breakers, lambda key: where.origin(
        ("circuit_breaker_configs", key, "name")))
    return _FileContent(layer, named["retry_configs"], breakers, where, budgets)


def _file_value(where: _Where, keys: KeyPath, owner: str, name: str, value: object) -> Any:
    try:
        return _check_field(owner, name, value)
    except ConfigurationError as exc:
        raise where.error(keys, str(exc), cause=exc) from exc


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


def _budget_to_dict(budget: RetryBudget) -> dict[str, Any]:
    """The ``retry_budgets`` entry that builds a budget like ``budget``."""
    if isinstance(budget, TokenBucketBudget):
        return {"kind": "token_bucket", "max_tokens": budget.max_tokens,
                "token_ratio": budget.token_ratio}
    if isinstance(budget, RatioBudget):
        return {"kind": "ratio", "ratio": budget.ratio,
                "min_retries_per_second": budget.min_retries_per_second,
                "window": budget.window, "slots": budget.slots}
    raise ConfigurationError(f"retry budget {budget!r} can not be saved to a file (only "
                             "TokenBucketBudget and RatioBudget can)")


def _retry_to_dict(name: str, config: RetryConfig,
                   budget_names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """``config`` in the file's shape; its budget is written by name when it is one
    of the named budgets (``budget_names``: ``id(budget)`` to name)."""
    budget_name = None
    if config.budget is not None:
        budget_name = (budget_names or {}).get(id(config.budget))
        if budget_name is None:
            raise ConfigurationError(
                f"retry_configs.{name}.budget = {config.budget!r} can not be saved to a file: "
                "only a budget named in retry_budgets can (resilience_config.retry_budgets)")
    for field in _RETRY_CALLABLES:
        if field != "budget" and getattr(config, field) is not None:
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
    if budget_name is not None:
        result["budget"] = budget_name
    return result


def _breaker_to_dict(name: str, config: CircuitBreakerConfig) -> dict[str, Any]:
    for field in ("fallback", "failure_on_result"):
        value = getattr(config, field)
        if value is not None:
            raise ConfigurationError(
                f"circuit_breaker_configs.{name}.{field} = {value!r} can not be saved "
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
