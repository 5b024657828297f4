"""Configuration (C8): typed settings, environment, files, precedence, explain(),
named policies and their hot reload, and the validation messages."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buttress import (
    CircuitBreakerConfig,
    ConfigurationError,
    RetryConfig,
    RetryExhaustedError,
    RetryStrategy,
    get_circuit_breaker,
)
from buttress.config import (
    ENV_NAMES,
    OPERATION_TYPES,
    OperationSettings,
    ResilienceConfig,
    ResilienceSettings,
    configure,
    explain,
    get_settings,
    load_env,
    reset_settings,
    resilience_config,
)
from buttress.presets import database_resilient
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


S0_EXAMPLE = {
    "retry_configs": {
        "http_requests": {"max_attempts": 3, "base_delay": 1.0, "max_delay": 30.0,
                          "exponential_base": 2.0, "strategy": "jittered_exponential"},
        "database": {"max_attempts": 3, "base_delay": 0.5, "max_delay": 10.0,
                     "exponential_base": 2.0, "strategy": "exponential_backoff"},
    },
    "circuit_breaker_configs": {
        "external_apis": {"failure_threshold": 5, "recovery_timeout": 60.0,
                          "name": "external_apis"},
        "database": {"failure_threshold": 3, "recovery_timeout": 30.0, "name": "database"},
    },
}


def write(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON or TOML by suffix (TOML through buttress's own writer)."""
    from buttress.config import _toml_dumps

    text = json.dumps(data, indent=2) if path.suffix == ".json" else _toml_dumps(data)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line containing ``needle``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# --- the settings object -----------------------------------------------------------------------


def test_settings_hold_the_pynomaly_defaults_for_every_operation_type() -> None:
    settings = ResilienceSettings()
    assert settings.resilience_enabled is True
    assert settings.circuit_breaker_enabled is True
    assert settings.database == OperationSettings(
        timeout_seconds=30.0, max_attempts=3, base_delay=0.5, max_delay=10.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=3, recovery_timeout=30.0)
    assert settings.cache == OperationSettings(
        timeout_seconds=5.0, max_attempts=2, base_delay=0.1, max_delay=1.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=3, recovery_timeout=15.0)
    assert settings.api == OperationSettings(
        timeout_seconds=60.0, max_attempts=5, base_delay=1.0, max_delay=30.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=5, recovery_timeout=60.0)
    assert settings.file == OperationSettings(
        timeout_seconds=10.0, max_attempts=3, base_delay=0.2, max_delay=5.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=3, recovery_timeout=30.0)
    assert settings.ml == OperationSettings(
        timeout_seconds=300.0, max_attempts=2, base_delay=5.0, max_delay=30.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=2, recovery_timeout=120.0)
    assert settings.default == OperationSettings(
        timeout_seconds=5.0, max_attempts=3, base_delay=1.0, max_delay=60.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=5, recovery_timeout=60.0)
    assert get_settings() == settings


def test_operation_types_without_a_section_use_the_default_section() -> None:
    settings = ResilienceSettings()
    assert settings.for_operation("custom") is settings.default
    assert settings.for_operation("api") is settings.api


def test_settings_objects_are_frozen() -> None:
    with pytest.raises(AttributeError):
        get_settings().resilience_enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("max_attempts", 0, "OperationSettings.max_attempts must be >= 1, got 0"),
    ("max_attempts", 2.0, "OperationSettings.max_attempts must be an int, got 2.0"),
    ("base_delay", -1.0, "OperationSettings.base_delay must be >= 0, got -1.0"),
    ("timeout_seconds", 0.0, "OperationSettings.timeout_seconds must be > 0, got 0.0"),
    ("failure_threshold", 0, "OperationSettings.failure_threshold must be >= 1, got 0"),
    ("jitter", 2.0, "OperationSettings.jitter must be <= 1, got 2.0"),
    ("recovery_timeout", float("nan"), "OperationSettings.recovery_timeout must be a number"),
    ("max_delay", 0.5, "OperationSettings.max_delay must be >= base_delay (1), got 0.5"),
])
def test_operation_settings_are_validated_on_construction(field: str, value: Any,
                                                          message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OperationSettings(**{field: value})
    assert message in str(caught.value)


def test_resilience_settings_validate_their_switches() -> None:
    with pytest.raises(ConfigurationError, match="resilience_enabled must be a bool, got 1"):
        ResilienceSettings(resilience_enabled=1)  # type: ignore[arg-type]


# --- environment -------------------------------------------------------------------------------


# The pynomaly seed's "Environment Variables" block, verbatim.
PYNOMALY_ENV = {
    "PYNOMALY_RESILIENCE_ENABLED": "true",
    "PYNOMALY_DEFAULT_TIMEOUT": "5.0",
    "PYNOMALY_DEFAULT_MAX_ATTEMPTS": "3",
    "PYNOMALY_DATABASE_TIMEOUT": "30.0",
    "PYNOMALY_DATABASE_MAX_ATTEMPTS": "3",
    "PYNOMALY_DATABASE_BASE_DELAY": "0.5",
    "PYNOMALY_DATABASE_FAILURE_THRESHOLD": "3",
    "PYNOMALY_API_TIMEOUT": "60.0",
    "PYNOMALY_API_MAX_ATTEMPTS": "5",
    "PYNOMALY_API_BASE_DELAY": "1.0",
    "PYNOMALY_API_FAILURE_THRESHOLD": "5",
    "PYNOMALY_CACHE_TIMEOUT": "5.0",
    "PYNOMALY_CACHE_MAX_ATTEMPTS": "2",
    "PYNOMALY_CACHE_BASE_DELAY": "0.1",
    "PYNOMALY_CACHE_FAILURE_THRESHOLD": "3",
    "PYNOMALY_FILE_TIMEOUT": "10.0",
    "PYNOMALY_FILE_MAX_ATTEMPTS": "3",
    "PYNOMALY_FILE_BASE_DELAY": "0.2",
    "PYNOMALY_FILE_FAILURE_THRESHOLD": "3",
    "PYNOMALY_ML_TIMEOUT": "300.0",
    "PYNOMALY_ML_MAX_ATTEMPTS": "2",
    "PYNOMALY_ML_BASE_DELAY": "5.0",
    "PYNOMALY_ML_FAILURE_THRESHOLD": "2",
}


def test_load_env_reads_every_pynomaly_variable_of_the_seed() -> None:
    changed = {var: str(float(v) * 2) if "." in v else v for var, v in PYNOMALY_ENV.items()}
    changed["PYNOMALY_API_MAX_ATTEMPTS"] = "7"
    changed["PYNOMALY_RESILIENCE_ENABLED"] = "false"
    settings = load_env(prefix="PYNOMALY_", environ=changed)
    assert settings.resilience_enabled is False
    assert settings.api.max_attempts == 7
    assert settings.ml.timeout_seconds == 600.0
    assert settings.cache.base_delay == 0.2
    report = explain()
    for var in PYNOMALY_ENV:
        key = ENV_NAMES[var.removeprefix("PYNOMALY_")]
        assert report[key].where == f"env: {var}", key


def test_the_seed_values_themselves_leave_the_defaults_unchanged() -> None:
    assert load_env(prefix="PYNOMALY_", environ=PYNOMALY_ENV) == ResilienceSettings()


def test_the_environment_under_buttress_prefix_is_read_on_first_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_CACHE_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("PYNOMALY_CACHE_MAX_ATTEMPTS", "9")  # another prefix: ignored
    reset_settings()
    assert get_settings().cache.max_attempts == 4
    assert explain()["cache.max_attempts"].where == "env: BUTTRESS_CACHE_MAX_ATTEMPTS"


def test_load_env_with_an_empty_prefix_reads_the_huleedu_variables() -> None:
    settings = load_env(prefix="", environ={
        "CIRCUIT_BREAKER_ENABLED": "false", "DEFAULT_TIMEOUT": "30",
        "RETRY_MAX_ATTEMPTS": "4", "RETRY_INITIAL_DELAY": "2", "RETRY_MAX_DELAY": "90",
        "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "6", "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "45"})
    assert settings.circuit_breaker_enabled is False
    assert settings.default == OperationSettings(
        timeout_seconds=30.0, max_attempts=4, base_delay=2.0, max_delay=90.0, exponential_base=2.0,
        jitter=0.5, failure_threshold=6, recovery_timeout=45.0)
    assert explain()["default.failure_threshold"].origin == "CIRCUIT_BREAKER_FAILURE_THRESHOLD"


def test_the_prefix_applies_to_the_huleedu_names_too() -> None:
    settings = load_env(environ={"BUTTRESS_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "8"})
    assert settings.default.failure_threshold == 8


def test_two_spellings_of_one_setting_that_disagree_are_an_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_env(prefix="", environ={"DEFAULT_MAX_ATTEMPTS": "3", "RETRY_MAX_ATTEMPTS": "5"})
    assert str(caught.value) == (
        "environment variables DEFAULT_MAX_ATTEMPTS='3' and RETRY_MAX_ATTEMPTS='5' both set "
        "default.max_attempts and disagree")
    # agreeing spellings are fine
    assert load_env(prefix="", environ={"DEFAULT_MAX_ATTEMPTS": "5",
                                        "RETRY_MAX_ATTEMPTS": "5"}).default.max_attempts == 5


@pytest.mark.parametrize(("var", "raw", "message"), [
    ("P_RESILIENCE_ENABLED", "maybe", "environment variable P_RESILIENCE_ENABLED='maybe': "
                                      "resilience_enabled must be a boolean"),
    ("P_DATABASE_MAX_ATTEMPTS", "three", "environment variable P_DATABASE_MAX_ATTEMPTS="
                                         "'three': database.max_attempts must be an integer"),
    ("P_DATABASE_MAX_ATTEMPTS", "2.5", "database.max_attempts must be an integer"),
    ("P_DATABASE_MAX_ATTEMPTS", "0", "environment variable P_DATABASE_MAX_ATTEMPTS='0': "
                                     "database.max_attempts must be >= 1, got 0"),
    ("P_API_TIMEOUT", "", "environment variable P_API_TIMEOUT='': api.timeout_seconds must "
                          "be a number"),
    ("P_API_TIMEOUT", "-1", "api.timeout_seconds must be > 0, got -1.0"),
    ("P_CACHE_BASE_DELAY", "nan", "cache.base_delay must be a number, not NaN"),
    ("P_ML_JITTER", "1.5", "environment variable P_ML_JITTER='1.5': ml.jitter must be <= 1"),
    ("P_FILE_RECOVERY_TIMEOUT", "inf", "file.recovery_timeout must be finite"),
    ("P_DEFAULT_FAILURE_THRESHOLD", "0", "default.failure_threshold must be >= 1, got 0"),
])
def test_malformed_environment_values_raise_naming_variable_and_value(
        var: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_env(prefix="P_", environ={var: raw})
    assert message in str(caught.value)


def test_boolean_words_and_jitter_switches_parse() -> None:
    settings = load_env(prefix="P_", environ={"P_RESILIENCE_ENABLED": " Off ",
                                              "P_API_JITTER": "no", "P_ML_JITTER": "YES"})
    assert settings.resilience_enabled is False
    assert (settings.api.jitter, settings.ml.jitter) == (0.0, 0.5)


def test_a_failed_load_env_changes_nothing() -> None:
    load_env(prefix="P_", environ={"P_API_MAX_ATTEMPTS": "4"})
    before = resilience_config.generation
    with pytest.raises(ConfigurationError):
        load_env(prefix="P_", environ={"P_API_MAX_ATTEMPTS": "x"})
    assert get_settings().api.max_attempts == 4
    assert resilience_config.generation == before


def test_an_environment_max_delay_below_base_delay_names_both_sources() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_env(prefix="P_", environ={"P_DATABASE_BASE_DELAY": "20"})
    assert str(caught.value) == ("database.max_delay = 10.0 (built-in default) must be >= "
                                 "database.base_delay = 20.0 (env: P_DATABASE_BASE_DELAY)")


# --- code and precedence ---------------------------------------------------------------------


def test_precedence_is_code_then_environment_then_file_then_default(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", {"operations": {"api": {"max_attempts": 2}}})
    key = "api.max_attempts"
    assert explain()[key].where == "built-in default"
    assert get_settings().api.max_attempts == 5

    resilience_config.load_from_file(path)
    assert get_settings().api.max_attempts == 2
    assert explain()[key].where == f"file: {path}:{line_of(path, 'max_attempts')}"

    load_env(prefix="P_", environ={"P_API_MAX_ATTEMPTS": "3"})
    assert get_settings().api.max_attempts == 3
    assert explain()[key].where == "env: P_API_MAX_ATTEMPTS"

    configure(api_max_attempts=4)
    assert get_settings().api.max_attempts == 4
    assert explain()[key].where == "code: configure()"
    # ... and a call argument beats them all
    assert explain("api", max_attempts=6)[key].where == "code: argument"
    assert database_resilient(operation_name="x", max_attempts=6).retry_config is not None

    configure(api_max_attempts=None)  # remove the code value: the environment shows again
    assert get_settings().api.max_attempts == 3


def test_configure_accepts_environment_names_and_section_field_names() -> None:
    settings = configure(database_timeout=12.0, cache_timeout_seconds=2.0,
                         retry_max_attempts=4, circuit_breaker_recovery_timeout=9.0)
    assert settings.database.timeout_seconds == 12.0
    assert settings.cache.timeout_seconds == 2.0
    assert settings.default.max_attempts == 4
    assert settings.default.recovery_timeout == 9.0


def test_configure_rejects_unknown_names_and_bad_values_naming_them() -> None:
    with pytest.raises(ConfigurationError,
                       match="unknown setting 'database_max_attempt'; did you mean "
                             "'database_max_attempts'"):
        configure(database_max_attempt=3)
    with pytest.raises(ConfigurationError) as caught:
        configure(api_base_delay=-1)
    assert str(caught.value) == ("configure(api_base_delay=-1): api.base_delay must be >= 0, "
                                 "got -1")
    with pytest.raises(ConfigurationError, match="resilience_enabled must be a bool, got 'no'"):
        configure(resilience_enabled="no")


def test_explain_lists_every_effective_value_once_per_key() -> None:
    report = explain()
    assert set(report) == set(get_settings().flat())
    assert len(report) == 2 + 8 * len(OPERATION_TYPES)
    assert all(setting.value == get_settings().flat()[key] for key, setting in report.items())
    text = str(report)
    assert "database.timeout_seconds = 30.0  (built-in default)" in text.splitlines()


def test_explain_for_an_operation_type_shows_its_section_and_rejects_unknown_overrides() -> None:
    report = explain("custom", timeout_seconds=3.0)
    assert set(report) == {"resilience_enabled", "circuit_breaker_enabled",
                           *(f"default.{f}" for f in OperationSettings.__dataclass_fields__)}
    assert report["default.timeout_seconds"].value == 3.0
    with pytest.raises(TypeError, match="unknown overrides"):
        explain("api", retries=3)
    with pytest.raises(TypeError):
        explain(max_attempts=3)


# --- files: the S0 shape, JSON and TOML ------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_the_s0_file_shape_loads_into_named_configs(tmp_path: Path, suffix: str) -> None:
    resilience_config.load_from_file(write(tmp_path / f"resilience_config{suffix}", S0_EXAMPLE))
    http = resilience_config.get_retry_config("http_requests")
    assert (http.max_attempts, http.base_delay, http.max_delay, http.strategy) == (
        3, 1.0, 30.0, RetryStrategy.JITTERED_EXPONENTIAL)
    assert resilience_config.configs["database"].strategy is RetryStrategy.EXPONENTIAL_BACKOFF
    assert resilience_config.get_circuit_breaker_config("database") == CircuitBreakerConfig(
        name="database", failure_threshold=3, recovery_timeout=30.0)
    assert set(resilience_config.circuit_breaker_configs) == {"external_apis", "database"}


@pytest.mark.parametrize(("first", "second"), [(".json", ".json"), (".toml", ".toml"),
                                               (".json", ".toml"), (".toml", ".json")])
def test_save_and_load_round_trip_without_loss(tmp_path: Path, first: str, second: str) -> None:
    source = {
        "resilience_enabled": False,
        "operations": {"api": {"timeout_seconds": 12.5, "max_delay": float("inf")},
                       "ml": {"jitter": 0.0, "failure_threshold": 7}},
        "retry_configs": {
            **S0_EXAMPLE["retry_configs"],
            "odd name.with dots": {"max_attempts": 4, "initial_delay": 0.25,
                                   "retry_on": ["ConnectionError", "json.JSONDecodeError"],
                                   "non_retryable_exceptions": ["ConnectionRefusedError"],
                                   "deadline": 9.5, "reraise": True, "name": 'quoted "x"',
                                   "jitter": True, "strategy": "linear"},
        },
        "circuit_breaker_configs": {
            **S0_EXAMPLE["circuit_breaker_configs"],
            "rate": {"failure_rate_threshold": 0.5, "minimum_calls": 4, "window_size": 20,
                     "slow_call_duration": 2.0, "slow_call_rate_threshold": 0.75,
                     "timeout": 3.0, "ignored_exceptions": ["KeyError"],
                     "failure_exceptions": ["OSError", "TimeoutError"], "name": "rätë"},
        },
    }
    resilience_config.load_from_file(write(tmp_path / f"in{first}", source))
    settings = get_settings()
    retry = dict(resilience_config.retry_configs)
    breakers = dict(resilience_config.circuit_breaker_configs)
    assert retry["odd name.with dots"].exceptions[1] is json.JSONDecodeError

    saved = tmp_path / f"out{second}"
    resilience_config.save_to_file(saved)
    fresh = ResilienceConfig()
    fresh.load_from_file(saved)
    assert fresh.settings == settings
    assert dict(fresh.retry_configs) == retry
    assert dict(fresh.circuit_breaker_configs) == breakers
    # Saving again writes the same text: the canonical form is a fixed point.
    again = tmp_path / f"again{second}"
    fresh.save_to_file(again)
    assert again.read_text() == saved.read_text()


def test_save_writes_only_what_differs_from_the_defaults(tmp_path: Path) -> None:
    configure(cache_max_attempts=4)
    resilience_config.save_to_file(tmp_path / "out.json")
    data = json.loads((tmp_path / "out.json").read_text())
    assert data == {"operations": {"cache": {"max_attempts": 4}}, "retry_configs": {},
                    "circuit_breaker_configs": {}}
    resilience_config.save_to_file(tmp_path / "out.toml")
    assert tomllib.loads((tmp_path / "out.toml").read_text()) == data


def test_the_toml_writer_quotes_keys_and_escapes_strings() -> None:
    from buttress.config import _toml_dumps

    data = {"flag": True, "t": {"a.b": {"s": 'q"\\\n\t\x01\x7fé', "n": -0.0, "i": -3,
                                      "big": 1e300, "small": 1e-7, "inf": float("-inf"),
                                      "list": ["x", "y"]},
                                "plain": {"k": 1}}}
    assert tomllib.loads(_toml_dumps(data)) == data


def test_saving_refuses_what_a_file_can_not_hold(tmp_path: Path) -> None:
    resilience_config.update_config("guarded", RetryConfig(retry_condition=lambda e: True))
    with pytest.raises(ConfigurationError, match=r"retry_configs.guarded.retry_condition = "
                                                 r"<function .*> can not be saved"):
        resilience_config.save_to_file(tmp_path / "out.json")
    reset_settings()

    class LocalError(Exception):
        pass

    resilience_config.update_config("local", RetryConfig(exceptions=(LocalError,)))
    with pytest.raises(ConfigurationError, match=r"LocalError.* can not be saved"):
        resilience_config.save_to_file(tmp_path / "out.toml")
    assert not (tmp_path / "out.toml").exists()


def test_unknown_file_types_are_refused(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("{}")
    with pytest.raises(ConfigurationError, match=r"r.yaml: unknown configuration file type "
                                                 r"'.yaml'; use .json or .toml"):
        resilience_config.load_from_file(tmp_path / "r.yaml")
    with pytest.raises(ConfigurationError, match="unknown configuration file type"):
        resilience_config.save_to_file(tmp_path / "r.ini")


def test_syntax_errors_name_the_file_and_position(tmp_path: Path) -> None:
    bad_json = tmp_path / "r.json"
    bad_json.write_text('{\n  "retry_configs": {\n    "x": {"max_attempts": 3,}\n  }\n}\n')
    with pytest.raises(ConfigurationError, match=rf"{bad_json}:3:\d+: invalid JSON"):
        resilience_config.load_from_file(bad_json)
    bad_toml = tmp_path / "r.toml"
    bad_toml.write_text("[retry_configs.x]\nmax_attempts = = 3\n")
    with pytest.raises(ConfigurationError, match=rf"{bad_toml}: invalid TOML: .*line 2"):
        resilience_config.load_from_file(bad_toml)


def test_a_repeated_json_key_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"retry_configs": {"x": {"max_attempts": 3,\n'
                    '                         "max_attempts": 4}}}\n')
    with pytest.raises(ConfigurationError) as caught:
        resilience_config.load_from_file(path)
    assert str(caught.value) == (f"{path}:1: retry_configs.x.max_attempts: duplicate key "
                                 "(each key may appear once)")


# Each case: a change to the S0 example (section, name, field, value; None where the
# change is higher up) and the text the one error must contain. "{path}:{line}" is the
# file and the line of the changed key.
INVALID = [
    pytest.param(("retry_configs", "http_requests", "max_attempt", 3),
                 "retry_configs.http_requests.max_attempt: unknown key 'max_attempt' = 3; "
                 "did you mean 'max_attempts'?", id="unknown-key"),
    pytest.param(("retries", None, None, {"x": 1}),
                 "retries: unknown key 'retries' = {'x': 1}; did you mean 'retry_configs'?",
                 id="unknown-section"),
    pytest.param(("retry_configs", "http_requests", "max_attempts", "3"),
                 "retry_configs.http_requests.max_attempts = '3': RetryConfig.max_attempts "
                 "must be an int, got '3'", id="wrong-type"),
    pytest.param(("retry_configs", "database", "base_delay", -0.5),
                 "retry_configs.database.base_delay = -0.5: RetryConfig.base_delay must be "
                 ">= 0, got -0.5", id="negative-delay"),
    pytest.param(("circuit_breaker_configs", "database", "failure_threshold", 0),
                 "circuit_breaker_configs.database.failure_threshold = 0: "
                 "CircuitBreakerConfig.failure_threshold must be >= 1, got 0", id="zero-threshold"),
    pytest.param(("circuit_breaker_configs", "database", "failure_rate_threshold", 1.5),
                 "circuit_breaker_configs.database.failure_rate_threshold = 1.5: "
                 "CircuitBreakerConfig.failure_rate_threshold must be <= 1, got 1.5",
                 id="rate-above-1"),
    pytest.param(("retry_configs", "http_requests", "jitter", -0.1),
                 "retry_configs.http_requests.jitter = -0.1: RetryConfig.jitter must be >= 0, "
                 "got -0.1", id="rate-below-0"),
    pytest.param(("retry_configs", "http_requests", "max_delay", 0.5),
                 "retry_configs.http_requests.max_delay = 0.5: RetryConfig.max_delay must be "
                 ">= base_delay (1), got 0.5", id="max-delay-below-base"),
    pytest.param(("retry_configs", "http_requests", "strategy", "wobbly"),
                 "retry_configs.http_requests.strategy = 'wobbly': RetryConfig.strategy must "
                 "be one of", id="unknown-strategy"),
    pytest.param(("circuit_breaker_configs", "database", "name", "external_apis"),
                 "circuit_breaker_configs.database.name = 'external_apis' reuses the breaker "
                 "name of circuit_breaker_configs.external_apis with a different config "
                 "(failure_threshold=5 vs 3, recovery_timeout=60.0 vs 30.0)",
                 id="breaker-name-reused"),
    pytest.param(("retry_configs", "database", "exceptions", ["ConectionError"]),
                 "retry_configs.database.exceptions: no exception class named "
                 "'ConectionError'", id="unknown-exception-class"),
    pytest.param(("retry_configs", "database", "exceptions", ["KeyboardInterrupt"]),
                 "retry_configs.database.exceptions = ['KeyboardInterrupt']: "
                 "RetryConfig.exceptions must be Exception subclasses", id="base-exception"),
    pytest.param(("operations", "databse", None, {"max_attempts": 3}),
                 "operations.databse: unknown operation type 'databse'; did you mean "
                 "'database'?", id="unknown-operation-type"),
    pytest.param(("operations", "api", "timeout", 3.0),
                 "operations.api.timeout: unknown key 'timeout' = 3.0; did you mean "
                 "'timeout_seconds'?", id="unknown-operation-field"),
    pytest.param(("operations", "api", "base_delay", 45.0),
                 "api.max_delay = 30.0 (built-in default) must be >= api.base_delay = 45.0 "
                 "(file: {path}:{line})", id="operation-max-delay-below-base"),
    pytest.param(("operations", "api", "failure_threshold", 0),
                 "operations.api.failure_threshold must be >= 1, got 0", id="operation-zero"),
    pytest.param(("resilience_enabled", None, None, "yes"),
                 "resilience_enabled must be a bool, got 'yes'", id="switch-type"),
    pytest.param(("retry_configs", "database", None, 3),
                 "retry_configs.database: must be a table/object, got 3", id="entry-not-table"),
]


def _mutate(change: tuple[Any, Any, Any, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(S0_EXAMPLE))
    section, name, field, value = change
    if name is None:
        data[section] = value
    elif field is None:
        data.setdefault(section, {})[name] = value
    else:
        data.setdefault(section, {}).setdefault(name, {})[field] = value
    return data


def _changed_line(path: Path, change: tuple[Any, Any, Any, Any]) -> int:
    """The line the changed key is on, found from the text (the last matching line,
    since the changed entry follows any entry it copies)."""
    from buttress.config import _toml_value

    section, name, field, value = change
    if path.suffix == ".json":
        needle = (f'"{section}": ' if name is None else f'"{name}": ' if field is None
                  else f'"{field}": [' if isinstance(value, list)
                  else f'"{field}": {json.dumps(value)}')
    elif name is None:
        needle = f"[{section}]" if isinstance(value, dict) else f"{section} = "
    else:
        needle = (f"[{section}.{name}]" if field is None
                  else f"{field} = {_toml_value(value)}")
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    assert found, f"{needle!r} not in {path}"
    return found[-1] if field is not None else found[0]


@pytest.mark.parametrize("suffix", [".json", ".toml"])
@pytest.mark.parametrize(("change", "message"), INVALID)
def test_each_invalid_value_raises_one_error_naming_file_line_key_and_value(
        tmp_path: Path, suffix: str, change: tuple[Any, Any, Any, Any], message: str) -> None:
    if suffix == ".toml" and change[2] is None and not isinstance(change[3], dict):
        return  # TOML can not put a plain value where a table goes; nothing to test
    path = write(tmp_path / f"resilience{suffix}", _mutate(change))
    line = _changed_line(path, change)
    with pytest.raises(ConfigurationError) as caught:
        resilience_config.load_from_file(path)
    text = str(caught.value)
    assert message.replace("{path}", str(path)).replace("{line}", str(line)) in text
    assert f"{path}:{line}" in text
    # nothing was loaded
    assert dict(resilience_config.retry_configs) == {}
    assert get_settings() == ResilienceSettings()


def test_a_file_breaker_conflicting_with_a_live_one_is_refused(tmp_path: Path) -> None:
    get_circuit_breaker("database", failure_threshold=9)
    path = write(tmp_path / "r.json", S0_EXAMPLE)
    with pytest.raises(ConfigurationError) as caught:
        resilience_config.load_from_file(path)
    line = [n for n, text in enumerate(path.read_text().splitlines(), 1)
            if '"database": {' in text][-1]
    assert str(caught.value) == (
        f"{path}:{line}: circuit_breaker_configs.database: circuit breaker 'database' already "
        "exists with a different config (live vs file: failure_threshold=9 vs 3)")


def test_a_failed_load_keeps_the_previous_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.json", S0_EXAMPLE)
    resilience_config.load_from_file(good)
    bad = write(tmp_path / "bad.json", _mutate(("retry_configs", "database", "max_attempts", 0)))
    with pytest.raises(ConfigurationError):
        resilience_config.load_from_file(bad)
    assert set(resilience_config.retry_configs) == {"http_requests", "database"}
    resilience_config.reload()  # still the good file
    assert resilience_config.get_retry_config("database").max_attempts == 3


# --- named policies -------------------------------------------------------------------------


def test_unknown_policy_names_raise_listing_the_known_ones(tmp_path: Path) -> None:
    resilience_config.load_from_file(write(tmp_path / "r.json", S0_EXAMPLE))
    with pytest.raises(ConfigurationError, match=r"no retry config named 'http_request'; "
                                                 r"did you mean 'http_requests'\?"):
        resilience_config.get_retry_config("http_request")
    with pytest.raises(ConfigurationError, match="no circuit breaker config named 'x'"):
        resilience_config.get_circuit_breaker_config("x")
    fallback = RetryConfig()
    assert resilience_config.get_retry_config("x", fallback) is fallback


def test_update_config_overrides_the_file_and_names_unnamed_breakers(tmp_path: Path) -> None:
    resilience_config.load_from_file(write(tmp_path / "r.json", S0_EXAMPLE))
    resilience_config.update_config("database", RetryConfig(max_attempts=9))
    resilience_config.update_config("payments", CircuitBreakerConfig(failure_threshold=2))
    assert resilience_config.get_retry_config("database").max_attempts == 9
    assert resilience_config.get_circuit_breaker_config("payments").name == "payments"
    with pytest.raises(ConfigurationError, match="reuses the breaker name"):
        resilience_config.update_config(
            "other", CircuitBreakerConfig(name="payments", failure_threshold=3))
    with pytest.raises(TypeError, match="RetryConfig or CircuitBreakerConfig"):
        resilience_config.update_config("x", 3)  # type: ignore[arg-type]


def test_protect_by_name_uses_both_sections_of_that_name(tmp_path: Path) -> None:
    resilience_config.load_from_file(write(tmp_path / "r.json", S0_EXAMPLE))
    clock = VirtualClock()
    flaky = ScriptedCall(ConnectionError("1"), ConnectionError("2"), "ok")
    protected = resilience_config.protect("database", clock=clock)(flaky)
    assert protected() == "ok"
    assert flaky.calls == 3
    assert protected.resilience.retry_config == resilience_config.get_retry_config("database")
    assert protected.resilience.circuit_breaker is get_circuit_breaker("database")
    assert protected.resilience.timeout_config is None


async def test_protect_with_separate_names_and_a_timeout_works_for_async(
        tmp_path: Path) -> None:
    resilience_config.load_from_file(write(tmp_path / "r.toml", S0_EXAMPLE))
    clock = VirtualClock()
    flaky = AsyncScriptedCall(ConnectionError("1"), "ok")
    protected = resilience_config.protect(retry="http_requests", circuit_breaker="external_apis",
                                          timeout=5.0, clock=clock)(flaky)
    assert await protected() == "ok"
    assert protected.resilience.circuit_breaker is get_circuit_breaker("external_apis")
    assert protected.resilience.timeout_config is not None
    assert protected.resilience.timeout_config.timeout_seconds == 5.0


def test_protect_looks_policies_up_when_called_not_when_decorating(tmp_path: Path) -> None:
    protected = resilience_config.protect("database", clock=VirtualClock())(lambda: "ok")
    with pytest.raises(ConfigurationError,
                       match=r"resilience_config.protect\('database'\): no retry or circuit "
                             r"breaker config named 'database'"):
        protected()
    resilience_config.load_from_file(write(tmp_path / "r.json", S0_EXAMPLE))
    assert protected() == "ok"
    with pytest.raises(ConfigurationError, match="no retry config named 'nope'"):
        resilience_config.protect(retry="nope")(lambda: 1)()
    with pytest.raises(TypeError, match="needs a policy name"):
        resilience_config.protect()


def test_reload_changes_the_behaviour_of_an_already_decorated_function(tmp_path: Path) -> None:
    path = write(tmp_path / "resilience.toml", {
        "retry_configs": {"db": {"max_attempts": 2, "base_delay": 1.0, "jitter": 0}},
        "circuit_breaker_configs": {"db": {"failure_threshold": 10}}})
    resilience_config.load_from_file(path)
    clock = VirtualClock()
    down = ScriptedCall(ConnectionError("down"))
    protected = resilience_config.protect("db", clock=clock)(down)

    with pytest.raises(RetryExhaustedError) as caught:
        protected()
    assert caught.value.attempts == 2
    assert clock.sleeps == [1.0]
    old_breaker = get_circuit_breaker("db")

    write(path, {"retry_configs": {"db": {"max_attempts": 4, "base_delay": 0.5, "jitter": 0,
                                          "strategy": "linear"}},
                 "circuit_breaker_configs": {"db": {"failure_threshold": 20}}})
    resilience_config.reload()
    clock.sleeps.clear()
    with pytest.raises(RetryExhaustedError) as caught:
        protected()
    assert caught.value.attempts == 4
    assert clock.sleeps == [0.5, 1.0, 1.5]
    # The changed breaker config replaced the old breaker under the same name.
    new_breaker = get_circuit_breaker("db")
    assert new_breaker is not old_breaker
    assert new_breaker.config.failure_threshold == 20
    assert protected.resilience.circuit_breaker is new_breaker


def test_reload_changes_preset_values_read_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", {"operations": {"database": {"max_attempts": 2}}})
    resilience_config.load_from_file(path)
    protected = database_resilient(operation_name="reloaded")(lambda: 1)
    assert protected.resilience.retry_config.max_attempts == 2
    write(path, {"operations": {"database": {"max_attempts": 5}}})
    resilience_config.reload()
    assert protected() == 1
    assert protected.resilience.retry_config.max_attempts == 5


def test_reload_rereads_the_environment_with_the_last_prefix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNOMALY_API_MAX_ATTEMPTS", "2")
    load_env(prefix="PYNOMALY_")
    monkeypatch.setenv("PYNOMALY_API_MAX_ATTEMPTS", "3")
    resilience_config.reload()
    assert get_settings().api.max_attempts == 3


def test_reload_with_nothing_loaded_says_so() -> None:
    with pytest.raises(ConfigurationError, match="no file was loaded"):
        resilience_config.reload()


def test_reset_settings_forgets_everything(tmp_path: Path) -> None:
    resilience_config.load_from_file(write(tmp_path / "r.json", S0_EXAMPLE))
    load_env(prefix="P_", environ={"P_API_MAX_ATTEMPTS": "2"})
    configure(resilience_enabled=False)
    resilience_config.update_config("extra", RetryConfig())
    generation = resilience_config.generation
    reset_settings()
    assert resilience_config.generation > generation
    assert get_settings() == ResilienceSettings()
    assert dict(resilience_config.retry_configs) == {}
    assert dict(resilience_config.circuit_breaker_configs) == {}
    assert all(s.source == "default" for s in explain().values())
