"""Overload protection from configuration: named retry budgets, rate limiters,
adaptive throttles, hedges and chaos stages, from a mapping, a JSON/TOML file
(the same file as the rest of the configuration may hold these sections) and
the environment.

A file::

    [retry_budgets.payments]
    kind = "token_bucket"          # or "ratio"
    max_tokens = 10
    token_ratio = 0.1

    [retry_configs.charge]         # read by ResilienceConfig.load_from_file
    max_attempts = 3
    budget = "payments"            # resolved there (resilience_config.retry_budgets)

    [rate_limiters.partner]
    rate = 50
    burst = 10
    max_wait = 0.5

    [adaptive_throttles.search]
    k = 2.0
    rejected_on = ["ConnectionError"]

    [hedges.lookup]
    quantile = 0.95
    budget = "payments"            # a budget named above

    [chaos.game_day]
    enabled = false
    exception_rate = 0.05

The environment overrides single fields:
``BUTTRESS_<SECTION>__<NAME>__<FIELD>=value``, the section and field in upper
case (``BUTTRESS_CHAOS__GAME_DAY__ENABLED=true``,
``BUTTRESS_RATE_LIMITERS__PARTNER__RATE=20``); names are matched in lower
case. Values parse as booleans (true/false/yes/no/on/off/1/0), numbers, or
text; exception lists are comma-separated class names.

Every refusal is a :class:`~buttress.ConfigurationError` naming the section,
policy and field (and the file and line, for a file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from buttress._core.clock import Clock
from buttress._core.errors import ConfigurationError
from buttress.budget import RatioBudget, RetryBudget, TokenBucketBudget
from buttress.chaos import Chaos, ChaosConfig
from buttress.config.env import DEFAULT_ENV_PREFIX
from buttress.config.files import _parse, _resolve_exception, _shown, _Where
from buttress.hedge import Hedge, HedgeConfig
from buttress.ratelimit import RateLimiter, RateLimiterConfig
from buttress.throttle import AdaptiveThrottle, AdaptiveThrottleConfig

__all__ = ["OVERLOAD_SECTIONS", "OverloadPolicies", "load_overload", "overload_from_env",
           "overload_from_mapping"]

OVERLOAD_SECTIONS: Final = ("retry_budgets", "rate_limiters", "adaptive_throttles", "hedges",
                            "chaos")
"""The top-level sections this module reads."""

_EXCEPTION_FIELDS: Final = {"rejected_on", "hedge_on", "exception"}
_BUDGET_KINDS: Final = {"token_bucket": TokenBucketBudget, "ratio": RatioBudget}
_BOOL_WORDS: Final = {"true": True, "yes": True, "on": True, "1": True,
                      "false": False, "no": False, "off": False, "0": False}


@dataclass(slots=True)
class OverloadPolicies:
    """The named budgets and strategies built from configuration.

    .. versionadded:: 0.3
    """

    retry_budgets: dict[str, RetryBudget] = field(default_factory=dict)
    rate_limiters: dict[str, RateLimiter] = field(default_factory=dict)
    adaptive_throttles: dict[str, AdaptiveThrottle] = field(default_factory=dict)
    hedges: dict[str, Hedge] = field(default_factory=dict)
    chaos: dict[str, Chaos] = field(default_factory=dict)


def _fail(where: _Where | None, keys: tuple[str, ...], message: str,
          cause: ConfigurationError | None = None) -> ConfigurationError:
    if where is not None:
        return where.error(keys, message, cause=cause)
    text = f"{'.'.join(keys)}: {message}"
    return cause.reworded(text) if cause is not None else ConfigurationError(text)


def _options(section: str, name: str, entry: Mapping[str, Any], allowed: set[str],
             where: _Where | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in entry.items():
        keys = (section, name, key)
        if key not in allowed:
            raise _fail(where, keys, f"unknown key {_shown(key)}; known: "
                                     f"{', '.join(sorted(allowed))}")
        if key in _EXCEPTION_FIELDS and value is not None:
            names = value.split(",") if isinstance(value, str) else value
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _fail(where, keys, f"must be exception class names, got {_shown(value)}")
            try:
                classes = tuple(_resolve_exception(n.strip()) for n in names)
            except LookupError as exc:
                raise _fail(where, keys, f"no exception class named {_shown(str(exc))}") \
                    from None
            value = classes[0] if key == "exception" and len(classes) == 1 else classes
        options[key] = value
    if "name" in allowed:
        options.setdefault("name", name)
    return options


def _config_fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _build(section: str, name: str, entry: Mapping[str, Any], where: _Where | None,
           built: OverloadPolicies, clock: Clock | None) -> None:
    keys = (section, name)
    if not isinstance(entry, Mapping):
        raise _fail(where, keys, f"must be a table/object, got {_shown(entry)}")
    try:
        if section == "retry_budgets":
            kind = entry.get("kind", "token_bucket")
            if kind not in _BUDGET_KINDS:
                raise _fail(where, (*keys, "kind"), f"must be 'token_bucket' or 'ratio', "
                                                    f"got {_shown(kind)}")
            rest = {k: v for k, v in entry.items() if k != "kind"}
            if kind == "ratio":
                allowed = {"ratio", "min_retries_per_second", "window", "slots"}
                options = _options(section, name, rest, allowed, where)
                built.retry_budgets[name] = RatioBudget(**options, clock=clock)
            else:
                options = _options(section, name, rest, {"max_tokens", "token_ratio"}, where)
                built.retry_budgets[name] = TokenBucketBudget(**options)
        elif section == "rate_limiters":
            options = _options(section, name, entry, _config_fields(RateLimiterConfig), where)
            built.rate_limiters[name] = RateLimiter(RateLimiterConfig(**options), clock=clock)
        elif section == "adaptive_throttles":
            allowed = _config_fields(AdaptiveThrottleConfig)
            options = _options(section, name, entry, allowed, where)
            built.adaptive_throttles[name] = AdaptiveThrottle(
                AdaptiveThrottleConfig(**options), clock=clock)
        elif section == "hedges":
            allowed = _config_fields(HedgeConfig) | {"budget"}
            options = _options(section, name, entry, allowed, where)
            budget_name = options.pop("budget", None)
            budget = None
            if budget_name is not None:
                budget = built.retry_budgets.get(budget_name)
                if budget is None:
                    raise _fail(where, (*keys, "budget"),
                                f"no retry budget named {_shown(budget_name)}; known: "
                                f"{', '.join(sorted(built.retry_budgets)) or 'none'}")
            built.hedges[name] = Hedge(HedgeConfig(**options), budget=budget, clock=clock)
        else:
            options = _options(section, name, entry, _config_fields(ChaosConfig), where)
            built.chaos[name] = Chaos(ChaosConfig(**options), clock=clock)
    except ConfigurationError as exc:
        if exc.field is None:
            raise
        field_name = exc.field.rpartition(".")[2]
        raise _fail(where, (*keys, field_name), str(exc), cause=exc) from exc
    except TypeError as exc:  # a wrong argument type the configs did not name
        raise _fail(where, keys, str(exc)) from exc


def overload_from_mapping(data: Mapping[str, Any], *, clock: Clock | None = None,
                          _where: _Where | None = None) -> OverloadPolicies:
    """Build the named budgets and strategies of ``data`` (the sections in
    :data:`OVERLOAD_SECTIONS`; other keys are left to the rest of the
    configuration). Budgets are built first, so hedges can name them::

        >>> policies = overload_from_mapping({
        ...     "retry_budgets": {"api": {"max_tokens": 10, "token_ratio": 0.1}},
        ...     "hedges": {"lookup": {"delay": 0.05, "budget": "api"}},
        ... })
        >>> policies.hedges["lookup"].budget is policies.retry_budgets["api"]
        True

    .. versionadded:: 0.3
    """
    built = OverloadPolicies()
    for section in OVERLOAD_SECTIONS:
        entries = data.get(section, {})
        if not isinstance(entries, Mapping):
            raise _fail(_where, (section,), f"must be a table/object, got {_shown(entries)}")
        for name, entry in entries.items():
            _build(section, name, entry, _where, built, clock)
    return built


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text.lower() in _BOOL_WORDS and text.lower() not in ("0", "1"):
        return _BOOL_WORDS[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _env_layer(environ: Mapping[str, str], prefix: str) -> dict[str, dict[str, dict[str, Any]]]:
    layer: dict[str, dict[str, dict[str, Any]]] = {}
    for variable, raw in environ.items():
        if not variable.startswith(prefix):
            continue
        parts = variable[len(prefix):].split("__")
        if len(parts) != 3 or parts[0].lower() not in OVERLOAD_SECTIONS:
            continue
        section, name, key = parts[0].lower(), parts[1].lower(), parts[2].lower()
        value: Any = raw if key in _EXCEPTION_FIELDS else _env_value(raw)
        if key == "enabled" and value in (0, 1) and not isinstance(value, bool):
            value = bool(value)
        layer.setdefault(section, {}).setdefault(name, {})[key] = value
    return layer


def overload_from_env(base: Mapping[str, Any] | None = None, *,
                      environ: Mapping[str, str] | None = None,
                      prefix: str = DEFAULT_ENV_PREFIX,
                      clock: Clock | None = None) -> OverloadPolicies:
    """:func:`overload_from_mapping` of ``base`` with the environment's
    ``<prefix><SECTION>__<NAME>__<FIELD>`` variables laid over it::

        >>> env = {"BUTTRESS_CHAOS__GAME_DAY__ENABLED": "false",
        ...        "BUTTRESS_CHAOS__GAME_DAY__EXCEPTION_RATE": "0.05"}
        >>> overload_from_env(environ=env).chaos["game_day"].config.exception_rate
        0.05

    .. versionadded:: 0.3
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {k: {n: dict(e) for n, e in v.items()}
                              for k, v in (base or {}).items()
                              if k in OVERLOAD_SECTIONS and isinstance(v, Mapping)}
    for section, entries in _env_layer(environ, prefix).items():
        for name, values in entries.items():
            merged.setdefault(section, {}).setdefault(name, {}).update(values)
    try:
        return overload_from_mapping(merged, clock=clock)
    except ConfigurationError as exc:
        raise exc.reworded(f"environment ({prefix}...): {exc}") from exc


def load_overload(path: str | os.PathLike[str], *, clock: Clock | None = None,
                  environ: Mapping[str, str] | None = None,
                  prefix: str = DEFAULT_ENV_PREFIX) -> OverloadPolicies:
    """Read the overload sections of a JSON or TOML file, then lay the
    environment over them (``environ={}`` to ignore it). Errors name the file,
    line, key and value.

    .. versionadded:: 0.3
    """
    data, where = _parse(Path(path))
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: the top level must be an object")
    overrides = _env_layer(os.environ if environ is None else environ, prefix)
    if not overrides:
        return overload_from_mapping(data, clock=clock, _where=where)
    # Check the file alone first, so its errors name their line.
    overload_from_mapping(data, clock=clock, _where=where)
    return overload_from_env(data, environ=environ, prefix=prefix, clock=clock)
