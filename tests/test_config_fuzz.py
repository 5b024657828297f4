"""Random configuration files and environments: each is either accepted, and then
saves and loads back unchanged (JSON and TOML), or refused with one
ConfigurationError that names the offending key (or variable)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from buttress import ConfigurationError
from buttress.config import ENV_NAMES, ResilienceConfig, _toml_dumps

FUZZ = settings(max_examples=200, deadline=None)

names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
delays = st.floats(0.0, 100.0)
rates = st.floats(0.01, 1.0)

# Valid values per key, so that a document is valid apart from its one mutation.
RETRY_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_attempts": st.integers(1, 10),
    "base_delay": st.floats(0.0, 5.0),
    "max_delay": st.floats(5.0, 100.0) | st.just(math.inf),
    "exponential_base": st.floats(1.0, 4.0),
    "strategy": st.sampled_from(["exponential_backoff", "linear", "fixed_delay",
                                 "jittered_exponential", "full_jitter", "decorrelated_jitter"]),
    "jitter": st.booleans() | st.floats(0.0, 1.0),
    "deadline": st.floats(0.5, 100.0),
    "reraise": st.booleans(),
    "exceptions": st.lists(st.sampled_from(["ConnectionError", "TimeoutError", "OSError",
                                            "json.JSONDecodeError"]), min_size=1, max_size=3),
    "non_retryable_exceptions": st.lists(st.sampled_from(["KeyError", "ValueError"]),
                                         max_size=2),
}
BREAKER_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "failure_threshold": st.integers(1, 50),
    "recovery_timeout": delays,
    "success_threshold": st.integers(1, 5),
    "half_open_max_calls": st.integers(1, 5),
    "failure_window": st.floats(0.5, 100.0),
    "failure_rate_threshold": rates,
    "minimum_calls": st.integers(1, 10),
    "window_size": st.integers(10, 100),
    "slow_call_duration": st.floats(0.1, 10.0),
    "timeout": st.floats(0.1, 100.0),
    "ignored_exceptions": st.lists(st.sampled_from(["KeyError", "LookupError"]), max_size=2),
}
OPERATION_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "timeout_seconds": st.floats(0.1, 1000.0),
    "max_attempts": st.integers(1, 10),
    "base_delay": st.floats(0.0, 0.5),
    "max_delay": st.floats(60.0, 300.0),
    "exponential_base": st.floats(1.0, 3.0),
    "jitter": st.floats(0.0, 1.0),
    "failure_threshold": st.integers(1, 10),
    "recovery_timeout": delays,
}

# Anything at all, for the one mutated value.
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats() | names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=2),
    max_leaves=4,
)


def entry(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def documents(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    """A valid document plus at most one mutation, and the key an error must name
    (``None``: no mutation, the document must load)."""
    doc: dict[str, Any] = {}
    for switch in ("resilience_enabled", "circuit_breaker_enabled"):
        if draw(st.booleans()):
            doc[switch] = draw(st.booleans())
    operations = draw(st.dictionaries(
        st.sampled_from(["default", "database", "cache", "api", "file", "ml"]),
        entry(OPERATION_FIELDS), max_size=3))
    if operations:
        doc["operations"] = operations
    doc["retry_configs"] = draw(st.dictionaries(names.filter(bool), entry(RETRY_FIELDS),
                                                max_size=3))
    breakers = draw(st.dictionaries(names.filter(bool), entry(BREAKER_FIELDS), max_size=3))
    for config in breakers.values():
        if "slow_call_duration" in config and draw(st.booleans()):
            config["slow_call_rate_threshold"] = draw(rates)
    doc["circuit_breaker_configs"] = breakers

    kind = draw(st.sampled_from(["none", "value", "unknown-key", "entry", "top"]))
    if kind == "none":
        return doc, None
    if kind == "top":
        key = draw(names)
        doc[key] = draw(junk)
        return doc, key
    section = draw(st.sampled_from(["operations", "retry_configs", "circuit_breaker_configs"]))
    table = doc.setdefault(section, {})
    fields = {"operations": OPERATION_FIELDS, "retry_configs": RETRY_FIELDS,
              "circuit_breaker_configs": {**BREAKER_FIELDS, "name": names}}[section]
    name = draw(st.sampled_from(["default", "api", "ml"]) if section == "operations"
                else names if kind == "entry" else names.filter(bool))
    if kind == "entry":
        table[name] = draw(junk)
        return doc, name
    target = table.setdefault(name, {})
    if not isinstance(target, dict):
        return doc, name
    key = draw(st.sampled_from(sorted(fields)) if kind == "value" else names)
    target[key] = draw(junk | fields.get(key, junk))
    return doc, key


def _write(path: Path, doc: dict[str, Any]) -> bool:
    """Write ``doc`` in the format of ``path``; False when TOML can not hold it (null)."""
    if path.suffix == ".json":
        path.write_text(json.dumps(doc), encoding="utf-8")
        return True
    try:
        text = _toml_dumps(doc)
    except ConfigurationError:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def _round_trips(loaded: ResilienceConfig, folder: Path) -> None:
    for suffix in (".json", ".toml"):
        saved = folder / f"saved{suffix}"
        loaded.save_to_file(saved)
        fresh = ResilienceConfig()
        fresh.load_from_file(saved)
        assert fresh.settings == loaded.settings
        assert dict(fresh.retry_configs) == dict(loaded.retry_configs)
        assert dict(fresh.circuit_breaker_configs) == dict(loaded.circuit_breaker_configs)


@FUZZ
@given(documents(), st.sampled_from([".json", ".toml"]))
def test_a_random_file_is_accepted_and_round_trips_or_refused_naming_the_key(
        case: tuple[dict[str, Any], str | None], suffix: str) -> None:
    doc, culprit = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"resilience{suffix}"
        if not _write(path, doc):
            return
        config = ResilienceConfig()
        try:
            config.load_from_file(path)
        except ConfigurationError as exc:
            message = str(exc)
            assert message.startswith(str(path)), message
            assert culprit is not None, f"a valid document was refused: {message}"
            # a key with control characters is shown escaped, as repr() spells it
            assert culprit in message or repr(culprit)[1:-1] in message, (culprit, message)
            return
        _round_trips(config, Path(folder))


@FUZZ
@given(documents().filter(lambda case: case[1] is None))
def test_every_valid_document_loads(case: tuple[dict[str, Any], str | None]) -> None:
    doc, _ = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resilience.json"
        _write(path, doc)
        config = ResilienceConfig()
        config.load_from_file(path)  # must not raise
        _round_trips(config, Path(folder))


def _expected(key: str, raw: str) -> Any:
    text = raw.strip().lower()
    words = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}
    field = key.rpartition(".")[2]
    if field in ("resilience_enabled", "circuit_breaker_enabled"):
        return words[text]
    if field in ("max_attempts", "failure_threshold"):
        return int(text)
    if field == "jitter" and text in words:
        return 0.5 if words[text] else 0.0
    return float(text)


env_values = st.one_of(
    st.integers(-2, 100).map(str),
    st.floats(-1.0, 400.0).map(repr),
    st.sampled_from(["true", "False", " yes ", "off", "", "nan", "inf", "1e3", "3.0", "x"]),
    st.text(max_size=4),
)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(ENV_NAMES)), env_values, max_size=6))
def test_random_environment_values_are_read_exactly_or_refused_naming_the_variable(
        values: dict[str, str]) -> None:
    environ = {f"F_{name}": raw for name, raw in values.items()}
    config = ResilienceConfig()
    try:
        config.load_env(prefix="F_", environ=environ)
    except ConfigurationError as exc:
        error = str(exc)
    else:
        error = ""
    if error:
        assert any(var in error for var in environ), (environ, error)
        return
    report = config.explain()
    for name, raw in values.items():
        setting = report[ENV_NAMES[name]]
        assert setting.source == "env"
        assert setting.value == _expected(setting.key, raw)
