"""A refused configuration value is described by ``field``, ``value`` and
``expected``, wherever it was refused (a config class, a settings layer, a file,
the environment), so callers read attributes instead of parsing messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from buttress import (
    CircuitBreakerConfig,
    ConfigurationError,
    OperationSettings,
    RetryConfig,
    TimeoutConfig,
)
from buttress._core.errors import ConfigurationTypeError
from buttress.backoff import ExponentialBackoff
from buttress.config import ResilienceConfig, configure, load_env, reset_settings


@pytest.fixture(autouse=True)
def _clean_settings() -> Any:
    reset_settings()
    yield
    reset_settings()


def test_the_message_is_built_from_field_value_and_expected() -> None:
    error = ConfigurationError("RetryConfig.max_attempts", 0, ">= 1")
    assert str(error) == "RetryConfig.max_attempts must be >= 1, got 0"
    assert (error.field, error.value, error.expected) == ("RetryConfig.max_attempts", 0, ">= 1")


def test_a_plain_message_still_constructs_an_error_without_attributes() -> None:
    error = ConfigurationError("something is off")
    assert str(error) == "something is off"
    assert (error.field, error.value, error.expected) == (None, None, None)


def test_a_reworded_error_keeps_its_attributes() -> None:
    error = ConfigurationError("RetryConfig.base_delay", -1, ">= 0")
    moved = error.reworded("a.toml:3: RetryConfig.base_delay must be >= 0")
    assert str(moved) == "a.toml:3: RetryConfig.base_delay must be >= 0"
    assert (moved.field, moved.value, moved.expected) == ("RetryConfig.base_delay", -1, ">= 0")


CLASS_CASES: list[tuple[Callable[[], object], str, object, str]] = [
    (lambda: RetryConfig(max_attempts=0), "RetryConfig.max_attempts", 0, ">= 1"),
    (lambda: RetryConfig(base_delay=-1.0), "RetryConfig.base_delay", -1.0, ">= 0"),
    (lambda: RetryConfig(jitter=2.0), "RetryConfig.jitter", 2.0, "<= 1"),
    (lambda: CircuitBreakerConfig(failure_threshold=0), "CircuitBreakerConfig.failure_threshold",
     0, ">= 1"),
    (lambda: TimeoutConfig(timeout_seconds=0), "TimeoutConfig.timeout_seconds", 0, "> 0"),
    (lambda: OperationSettings(max_attempts=0), "OperationSettings.max_attempts", 0, ">= 1"),
]


@pytest.mark.parametrize(("build", "field", "value", "expected"), CLASS_CASES)
def test_a_config_class_names_the_field_the_value_and_what_was_expected(
        build: Callable[[], object], field: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert (caught.value.field, caught.value.value, caught.value.expected) == (
        field, value, expected)


def test_a_wrong_type_is_a_type_error_and_a_configuration_error() -> None:
    with pytest.raises(TypeError) as caught:
        RetryConfig(max_attempts="3")  # type: ignore[arg-type]
    assert isinstance(caught.value, ConfigurationTypeError)
    assert caught.value.field == "RetryConfig.max_attempts"
    assert caught.value.value == "3"
    assert caught.value.expected == "an int"


DELAY_RULE: list[tuple[Callable[[], object], str]] = [
    (lambda: RetryConfig(base_delay=2.0, max_delay=1.0), "RetryConfig.max_delay"),
    (lambda: OperationSettings(base_delay=2.0, max_delay=1.0), "OperationSettings.max_delay"),
    (lambda: ExponentialBackoff(initial_delay=2.0, max_delay=1.0), "ExponentialBackoff.max_delay"),
    (lambda: configure(database_base_delay=20.0), "database.max_delay"),
]


@pytest.mark.parametrize(("build", "field"), DELAY_RULE)
def test_every_place_a_delay_cap_is_set_applies_the_same_rule(
        build: Callable[[], object], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert caught.value.field == field
    assert caught.value.expected is not None
    assert caught.value.expected.startswith(">= ")


def test_a_value_refused_in_a_file_keeps_the_configs_attributes(tmp_path: Path) -> None:
    path = tmp_path / "resilience.json"
    path.write_text(json.dumps({"retry_configs": {"api": {"initial_delay": -1}}}),
                    encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        ResilienceConfig().load_from_file(path)
    assert str(path) in str(caught.value)
    assert (caught.value.field, caught.value.value) == ("RetryConfig.base_delay", -1)
    assert not isinstance(caught.value, TypeError)


def test_a_wrongly_typed_value_in_a_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "resilience.json"
    path.write_text('{"retry_configs": {\n "api": {\n  "max_attempts": "three"}}}',
                    encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        ResilienceConfig().load_from_file(path)
    assert str(caught.value).startswith(f"{path}:3: retry_configs.api.max_attempts")
    assert (caught.value.field, caught.value.value) == ("RetryConfig.max_attempts", "three")


def test_a_value_refused_in_the_environment_keeps_its_attributes() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_env(prefix="T_", environ={"T_DATABASE_MAX_ATTEMPTS": "0"})
    assert "T_DATABASE_MAX_ATTEMPTS" in str(caught.value)
    assert (caught.value.field, caught.value.value, caught.value.expected) == (
        "database.max_attempts", 0, ">= 1")


def test_an_unparsable_environment_value_names_the_setting() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_env(prefix="T_", environ={"T_API_TIMEOUT": "soon"})
    assert (caught.value.field, caught.value.value) == ("api.timeout_seconds", "soon")


def test_the_override_keywords_are_the_operation_settings_fields() -> None:
    from dataclasses import fields
    from typing import get_type_hints

    from buttress.config import OperationOverrides

    assert list(get_type_hints(OperationOverrides)) == [f.name for f in fields(OperationSettings)]
