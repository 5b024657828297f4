"""Hostile configuration files: whatever bytes a file holds, loading it either
succeeds or raises one :class:`ConfigurationError` naming the file, and a refused
file changes nothing (settings, named policies, generation, the file ``reload()``
reads)."""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from buttress import ConfigurationError
from buttress.config import ResilienceConfig, get_settings, reset_settings, resilience_config

GOOD = {
    "operations": {"database": {"max_attempts": 4}},
    "retry_configs": {"http_requests": {"max_attempts": 3, "base_delay": 1.0}},
    "circuit_breaker_configs": {"hostile_db": {"failure_threshold": 3}},
}

DIGITS = sys.get_int_max_str_digits() + 700  # 5,000 with Python's default limit
DEEP = 100_000


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


# (file name, the file's bytes, text the error must contain)
HOSTILE = [
    pytest.param("r.json", b"[" * DEEP + b"]" * DEEP, "nested too deeply", id="json-deep-array"),
    pytest.param("r.json", b'{"a":' * DEEP + b"1" + b"}" * DEEP, "nested too deeply",
                 id="json-deep-object"),
    pytest.param("r.json", b'{"retry_configs": {"x": {"max_attempts": '
                 + b"[" * DEEP + b"]" * DEEP + b"}}}", "nested too deeply",
                 id="json-deep-value"),
    pytest.param("r.toml", b"x = " + b"[" * DEEP + b"]" * DEEP, "nested too deeply",
                 id="toml-deep-array"),
    pytest.param("r.toml", b"x = " + b"{a = " * DEEP + b"1" + b"}" * DEEP,
                 "nested too deeply", id="toml-deep-inline-table"),
    # Deep enough to be unreasonable, shallow enough for Python's parsers.
    pytest.param("r.json", b'{"retry_configs": {"x": {"exceptions": '
                 + b"[" * 200 + b"]" * 200 + b"}}}",
                 "retry_configs.x.exceptions: nested too deeply", id="json-200-levels"),
    pytest.param("r.toml", b"[retry_configs.x]\nexceptions = " + b"[" * 200 + b"]" * 200,
                 "nested too deeply", id="toml-200-levels"),
    pytest.param("r.json", b'{"resilience_enabled": true,\n "x": "\xff\xfe"}',
                 ":2:8: not UTF-8 text", id="json-not-utf8"),
    pytest.param("r.toml", b'resilience_enabled = true\nx = "\xff"\n', ":2:6: not UTF-8 text",
                 id="toml-not-utf8"),
    pytest.param("r.json", b"\x00\x00\x00{\xc3(", ":1:5: not UTF-8 text", id="json-binary"),
    pytest.param("r.json", b'{"operations": {"default": {"max_attempts":\n'
                 + b"9" * DIGITS + b"}}}", f":2: invalid JSON: a number with more than "
                 f"{sys.get_int_max_str_digits()} digits", id="json-5000-digits"),
    pytest.param("r.toml", b"[operations.default]\nmax_attempts = " + b"9" * DIGITS + b"\n",
                 f":2: invalid TOML: a number with more than {sys.get_int_max_str_digits()} "
                 "digits", id="toml-5000-digits"),
    pytest.param("r.json", b'{"operations": {"default": {"timeout_seconds": '
                 + b"9" * 400 + b"}}}", "operations.default.timeout_seconds must be finite",
                 id="json-int-too-large-for-float"),
    pytest.param("r.toml", b'[retry_configs.x]\nbase_delay = ' + b"9" * 400 + b"\n",
                 "retry_configs.x.base_delay = 999", id="toml-int-too-large-for-float"),
    pytest.param("r.json", b'{"circuit_breaker_configs": {"x": {"recovery_timeout": '
                 + b"9" * 400 + b"}}}", "circuit_breaker_configs.x.recovery_timeout = 999",
                 id="breaker-int-too-large-for-float"),
    pytest.param("r.json", b'{"retry_configs": {"\\ud800": {"max_attempts": 2}}}',
                 "retry_configs.'\\ud800': not valid Unicode (a lone surrogate)",
                 id="json-lone-surrogate"),
    pytest.param("r.json", b"", "invalid JSON", id="json-empty"),
    pytest.param("r.json", b"null", "the top level must be an object, got None",
                 id="json-null"),
    pytest.param("r.json", b"[1, 2]", "the top level must be an object", id="json-array"),
    pytest.param("r.json", b'"text"', "the top level must be an object", id="json-string"),
    pytest.param("r.json", b'{"resilience_enabled": NaN}', "resilience_enabled must be a bool",
                 id="json-nan"),
    pytest.param("r.json", b'\xef\xbb\xbf{"resilience_enabled": true}', "invalid JSON",
                 id="json-bom"),
    pytest.param("r.toml", b"resilience_enabled = true\x00\n", "invalid TOML", id="toml-nul"),
    pytest.param("r.toml", b"[operations.default]\ntimeout_seconds = 1979-05-27\n",
                 "operations.default.timeout_seconds must be a number, got "
                 "datetime.date(1979, 5, 27)", id="toml-date"),
    pytest.param("r.json", b'{"operations": {"default": {"timeout_seconds": "5"}}}',
                 "operations.default.timeout_seconds must be a number, got '5'",
                 id="wrong-type-string"),
    pytest.param("r.json", b'{"operations": {"default": {"max_attempts": 2.5}}}',
                 "operations.default.max_attempts must be an int, got 2.5",
                 id="wrong-type-float"),
    pytest.param("r.json", b'{"operations": {"default": {"max_attempts": true}}}',
                 "operations.default.max_attempts must be an int, got True",
                 id="wrong-type-bool"),
    pytest.param("r.json", b'{"retry_configs": {"x": {"max_attempts": null}}}',
                 "retry_configs.x.max_attempts = None", id="wrong-type-null"),
    pytest.param("r.json", b'{"operations": []}', "operations: must be a table/object, got []",
                 id="wrong-type-section"),
    pytest.param("r.json", b'{"circuit_breaker_configs": {"x": {"colour": "red"}}}',
                 "circuit_breaker_configs.x.colour: unknown key 'colour'", id="unknown-key"),
    pytest.param("r.json", b'{"retry_configs": {"x": {"exceptions": ["os.getcwd"]}}}',
                 "retry_configs.x.exceptions: no exception class named 'os.getcwd'",
                 id="exception-name-not-a-class"),
]


def _load_good(config: ResilienceConfig, tmp_path: Path) -> Path:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD), encoding="utf-8")
    config.load_from_file(good)
    return good


@pytest.mark.parametrize(("name", "content", "message"), HOSTILE)
def test_a_hostile_file_is_one_configuration_error_naming_it_and_changes_nothing(
        tmp_path: Path, name: str, content: bytes, message: str) -> None:
    _load_good(resilience_config, tmp_path)
    before = (resilience_config.as_dict(), get_settings(), resilience_config.generation)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as caught:
        resilience_config.load_from_file(path)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert message in text
    assert len(text) < 1000
    assert (resilience_config.as_dict(), get_settings(), resilience_config.generation) == before


@pytest.mark.parametrize(("name", "content", "message"), HOSTILE)
def test_reloading_a_file_turned_hostile_keeps_the_previous_configuration(
        tmp_path: Path, name: str, content: bytes, message: str) -> None:
    config = ResilienceConfig()
    good = tmp_path / ("good" + Path(name).suffix)
    good.write_text(json.dumps(GOOD) if good.suffix == ".json" else
                    "[operations.database]\nmax_attempts = 4\n", encoding="utf-8")
    config.load_from_file(good)
    before = (config.as_dict(), config.settings, config.generation)
    good.write_bytes(content)
    with pytest.raises(ConfigurationError, match="^" + str(good).replace("\\", "\\\\")):
        config.reload()
    assert (config.as_dict(), config.settings, config.generation) == before


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_file_larger_than_the_limit_is_refused_before_parsing(
        tmp_path: Path, suffix: str) -> None:
    from buttress.config import MAX_FILE_BYTES

    path = tmp_path / f"huge{suffix}"
    with path.open("wb") as out:  # valid, but far larger than any resilience file
        out.write(b"{}" if suffix == ".json" else b"#")
        out.write(b" " * MAX_FILE_BYTES)
    assert path.stat().st_size > MAX_FILE_BYTES
    with pytest.raises(ConfigurationError) as caught:
        resilience_config.load_from_file(path)
    assert str(caught.value) == (f"{path}: larger than {MAX_FILE_BYTES} bytes; a resilience "
                                 "configuration file is never this large")


def test_a_file_just_under_the_limit_loads(tmp_path: Path) -> None:
    from buttress.config import MAX_FILE_BYTES

    path = tmp_path / "padded.json"
    text = json.dumps(GOOD)
    path.write_text(text + " " * (MAX_FILE_BYTES - len(text)), encoding="utf-8")
    resilience_config.load_from_file(path)
    assert resilience_config.get_retry_config("http_requests").max_attempts == 3


def test_huge_keys_and_values_are_shown_shortened_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"k" * 200_000: "v" * 300_000}), encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        resilience_config.load_from_file(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:1: 'kkkk")
    assert "kkkk': unknown key 'kkkk" in text
    assert len(text) < 1000


def test_a_file_that_cannot_be_read_is_an_os_error_naming_it(tmp_path: Path) -> None:
    # Not a ConfigurationError: callers already handle "no such file" as an OSError,
    # exactly as open() reports it.
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        resilience_config.load_from_file(tmp_path / "missing.json")
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(IsADirectoryError, match=r"dir\.toml"):
        resilience_config.load_from_file(tmp_path / "dir.toml")


def test_a_deep_but_reasonable_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"retry_configs": {"x": {"exceptions": [
        "ConnectionError", "TimeoutError"]}}}), encoding="utf-8")
    resilience_config.load_from_file(path)
    assert resilience_config.get_retry_config("x").exceptions == (ConnectionError, TimeoutError)


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_an_integer_beyond_float_range_is_refused_by_name_in_code_too(value: int) -> None:
    from buttress import CircuitBreakerConfig, RetryConfig

    with pytest.raises(ConfigurationError, match=r"RetryConfig\.base_delay must be"):
        RetryConfig(base_delay=value)
    with pytest.raises(ConfigurationError,
                       match=r"CircuitBreakerConfig\.recovery_timeout must be"):
        CircuitBreakerConfig(recovery_timeout=value)


def test_an_integer_beyond_float_range_is_an_unlimited_max_delay() -> None:
    from buttress import RetryConfig

    assert RetryConfig(max_delay=10**400).max_delay == float("inf")


def test_a_policy_name_ending_in_a_newline_is_saved_quoted_and_reads_back(tmp_path: Path) -> None:
    # A bare-key check with `$` accepted "0\n", writing `[retry_configs.0\n]`,
    # which no TOML reader accepts: the whole key must match.
    from buttress.config import _toml_dumps

    text = _toml_dumps({"retry_configs": {"0\n": {"base_delay": 0.0}}})
    assert '[retry_configs."0\\n"]' in text
    assert tomllib.loads(text) == {"retry_configs": {"0\n": {"base_delay": 0.0}}}
