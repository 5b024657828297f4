"""Overload policies from mappings, files and the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from buttress import ConfigurationError, resilience_config
from buttress.budget import RatioBudget, TokenBucketBudget
from buttress.config.overload import load_overload, overload_from_env, overload_from_mapping
from buttress.testing import VirtualClock

TOML = """\
[retry_budgets.payments]
kind = "token_bucket"
max_tokens = 10
token_ratio = 0.1

[retry_budgets.search]
kind = "ratio"
ratio = 0.2
min_retries_per_second = 5

[rate_limiters.partner]
rate = 50
burst = 10
max_wait = 0.5

[adaptive_throttles.search]
k = 1.5
rejected_on = ["ConnectionError", "TimeoutError"]

[hedges.lookup]
quantile = 0.95
budget = "payments"

[chaos.game_day]
enabled = false
exception_rate = 0.05
exception = "TimeoutError"
"""


def test_a_toml_file_builds_every_named_policy(tmp_path: Path) -> None:
    path = tmp_path / "overload.toml"
    path.write_text(TOML)
    clock = VirtualClock()
    policies = load_overload(path, clock=clock, environ={})
    payments = policies.retry_budgets["payments"]
    assert isinstance(payments, TokenBucketBudget)
    assert (payments.max_tokens, payments.token_ratio) == (10.0, 0.1)
    search = policies.retry_budgets["search"]
    assert isinstance(search, RatioBudget)
    assert (search.ratio, search.min_retries_per_second) == (0.2, 5.0)
    limiter = policies.rate_limiters["partner"]
    assert (limiter.config.rate, limiter.config.burst, limiter.config.max_wait) == (50, 10, 0.5)
    assert limiter.name == "partner"
    assert limiter.clock is clock
    throttle = policies.adaptive_throttles["search"]
    assert throttle.config.k == 1.5
    assert throttle.config.rejected_on == (ConnectionError, TimeoutError)
    assert policies.hedges["lookup"].budget is payments
    assert policies.hedges["lookup"].config.quantile == 0.95
    chaos = policies.chaos["game_day"]
    assert chaos.config.enabled is False
    assert chaos.config.exception is TimeoutError


def test_the_same_file_loads_into_the_rest_of_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "all.toml"
    path.write_text("[retry_configs.api]\nmax_attempts = 4\n\n" + TOML)
    loaded = resilience_config.__class__()
    loaded.load_from_file(path)
    assert loaded.retry_configs["api"].max_attempts == 4


def test_the_environment_switches_chaos_on_and_overrides_fields(tmp_path: Path) -> None:
    path = tmp_path / "overload.json"
    path.write_text('{"chaos": {"game_day": {"enabled": false, "exception_rate": 0.05}}}')
    env = {"BUTTRESS_CHAOS__GAME_DAY__ENABLED": "on",
           "BUTTRESS_CHAOS__GAME_DAY__EXCEPTION_RATE": "0.2",
           "BUTTRESS_RATE_LIMITERS__PARTNER__RATE": "20",
           "BUTTRESS_UNRELATED": "x"}
    policies = load_overload(path, environ=env)
    assert policies.chaos["game_day"].config.enabled is True
    assert policies.chaos["game_day"].config.exception_rate == 0.2
    assert policies.rate_limiters["partner"].config.rate == 20


def test_a_bad_value_in_a_file_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[rate_limiters.partner]\nrate = 50\nburst = 0\n")
    with pytest.raises(ConfigurationError) as info:
        load_overload(path, environ={})
    assert f"{path}:3" in str(info.value)
    assert "burst" in str(info.value)
    assert info.value.field == "RateLimiterConfig.burst"
    assert info.value.value == 0


def test_an_unknown_key_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[hedges.lookup]\nquantil = 0.9\n")
    with pytest.raises(ConfigurationError, match=r"unknown key 'quantil'.*quantile"):
        load_overload(path, environ={})


def test_a_hedge_naming_a_missing_budget_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no retry budget named 'nope'"):
        overload_from_mapping({"hedges": {"h": {"budget": "nope"}}})


def test_a_bad_environment_value_says_it_came_from_the_environment() -> None:
    with pytest.raises(ConfigurationError, match="environment") as info:
        overload_from_env(environ={"BUTTRESS_RETRY_BUDGETS__API__MAX_TOKENS": "-1"})
    assert info.value.field == "TokenBucketBudget.max_tokens"


def test_an_unknown_budget_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'token_bucket' or 'ratio'"):
        overload_from_mapping({"retry_budgets": {"a": {"kind": "leaky"}}})
