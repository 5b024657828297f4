"""The environment layer: variable names (``BUTTRESS_DATABASE_TIMEOUT``, and the
seeds' spellings such as ``RETRY_MAX_ATTEMPTS``) and how their text is parsed."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import (
    Any,
    Final,
)

from buttress._core.errors import ConfigurationError
from buttress.config.schema import (
    _DEFAULT_VALUES,
    _INT_FIELDS,
    _SWITCHES,
    OPERATION_TYPES,
    Setting,
    _check_field,
)

__all__ = ["DEFAULT_ENV_PREFIX", "ENV_NAMES"]

_BOOL_WORDS: Final = {"1": True, "true": True, "yes": True, "on": True,
                      "0": False, "false": False, "no": False, "off": False}
DEFAULT_ENV_PREFIX: Final = "BUTTRESS_"

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
            key, raw, kind, message=f"environment variable {var}={raw!r}: {key} must be {kind}"
        ) from None
    owner, _, name = key.rpartition(".")
    try:
        return _check_field(owner, name, value)
    except ConfigurationError as exc:
        raise exc.reworded(f"environment variable {var}={raw!r}: {exc}") from exc


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
