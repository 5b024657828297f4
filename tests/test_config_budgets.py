"""Retry configs in a configuration file name a retry budget of the file's
``retry_budgets`` section: resolved at load, shared, overridden from the
environment, kept across reloads, and saved back by name."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from buttress import ConfigurationError, Retry, RetryConfig, TokenBucketBudget
from buttress.budget import RatioBudget
from buttress.config import ResilienceConfig
from buttress.testing import VirtualClock

TOML = """\
[retry_budgets.payments]
max_tokens = 4
token_ratio = 0.5

[retry_configs.orders]
max_attempts = 4
base_delay = 0.1
jitter = 0
reraise = true
budget = "payments"

[retry_configs.refunds]
max_attempts = 2
budget = "payments"

[retry_configs.search]
max_attempts = 3
"""


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> ResilienceConfig:
    for name in ("BUTTRESS_RETRY_BUDGETS__PAYMENTS__MAX_TOKENS",
                 "BUTTRESS_RETRY_BUDGETS__PAYMENTS__TOKEN_RATIO"):
        monkeypatch.delenv(name, raising=False)
    return ResilienceConfig()


def _toml(tmp_path: Path, text: str = TOML) -> Path:
    path = tmp_path / "resilience.toml"
    path.write_text(text)
    return path


def test_retry_configs_naming_a_budget_share_the_one_budget_the_file_defines(
        config: ResilienceConfig, tmp_path: Path) -> None:
    config.load_from_file(_toml(tmp_path))
    payments = config.retry_budgets["payments"]
    assert isinstance(payments, TokenBucketBudget)
    assert (payments.max_tokens, payments.token_ratio) == (4.0, 0.5)
    assert config.get_retry_config("orders").budget is payments
    assert config.get_retry_config("refunds").budget is payments
    assert config.get_retry_config("search").budget is None


def test_a_protected_call_under_a_named_config_spends_the_files_budget(
        config: ResilienceConfig, tmp_path: Path) -> None:
    config.load_from_file(_toml(tmp_path))
    clock = VirtualClock()
    attempts = 0

    @config.protect(retry="orders", clock=clock)
    def charge() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("503")

    for _ in range(10):
        with pytest.raises(ConnectionError):
            charge()
    # 4 tokens: the first failure leaves 3 (> 2, one retry), its retry's 2: no more.
    assert attempts == 11
    assert config.retry_budgets["payments"].tokens == 0.0  # type: ignore[attr-defined]


def test_a_json_file_names_a_ratio_budget(config: ResilienceConfig, tmp_path: Path) -> None:
    path = tmp_path / "resilience.json"
    path.write_text(json.dumps({
        "retry_budgets": {"search": {"kind": "ratio", "ratio": 0.1,
                                     "min_retries_per_second": 2, "window": 5}},
        "retry_configs": {"lookup": {"max_attempts": 3, "budget": "search"}},
    }))
    config.load_from_file(path)
    budget = config.get_retry_config("lookup").budget
    assert isinstance(budget, RatioBudget)
    assert (budget.ratio, budget.min_retries_per_second, budget.window) == (0.1, 2.0, 5.0)


def test_a_missing_budget_name_is_refused_naming_file_line_key_and_value(
        config: ResilienceConfig, tmp_path: Path) -> None:
    config.load_from_file(_toml(tmp_path))
    before = config.get_retry_config("orders")
    bad = _toml(tmp_path, TOML.replace('budget = "payments"\n\n[retry_configs.refunds]',
                                       'budget = "paymnts"\n\n[retry_configs.refunds]'))
    with pytest.raises(ConfigurationError) as info:
        config.load_from_file(bad)
    message = str(info.value)
    assert f"{bad}:10:" in message
    assert "retry_configs.orders.budget = 'paymnts'" in message
    assert "did you mean 'payments'?" in message
    assert "known: payments" in message
    assert config.get_retry_config("orders") is before       # nothing changed


def test_a_budget_given_as_anything_but_a_name_is_refused(
        config: ResilienceConfig, tmp_path: Path) -> None:
    path = _toml(tmp_path, TOML.replace('budget = "payments"', "budget = 3", 1))
    with pytest.raises(ConfigurationError, match=r"orders\.budget: must be the name of a "
                                                 r"budget in retry_budgets, got 3"):
        config.load_from_file(path)


def test_a_bad_budget_field_is_refused_naming_its_line_and_value(
        config: ResilienceConfig, tmp_path: Path) -> None:
    path = _toml(tmp_path, TOML.replace("max_tokens = 4", "max_tokens = 0"))
    with pytest.raises(ConfigurationError) as info:
        config.load_from_file(path)
    assert f"{path}:2:" in str(info.value)
    assert (info.value.field, info.value.value) == ("TokenBucketBudget.max_tokens", 0)


def test_the_environment_overrides_a_named_budgets_fields(
        config: ResilienceConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_RETRY_BUDGETS__PAYMENTS__MAX_TOKENS", "20")
    config.load_from_file(_toml(tmp_path))
    budget = config.get_retry_config("orders").budget
    assert isinstance(budget, TokenBucketBudget)
    assert (budget.max_tokens, budget.token_ratio) == (20.0, 0.5)


def test_a_bad_environment_value_for_a_budget_names_the_variable(
        config: ResilienceConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_RETRY_BUDGETS__PAYMENTS__MAX_TOKENS", "-1")
    with pytest.raises(ConfigurationError, match=r"environment \(BUTTRESS_\.\.\.\).*max_tokens"):
        config.load_from_file(_toml(tmp_path))


def test_a_reload_keeps_an_unchanged_budget_with_its_tokens(
        config: ResilienceConfig, tmp_path: Path) -> None:
    path = _toml(tmp_path)
    config.load_from_file(path)
    budget = config.retry_budgets["payments"]
    assert isinstance(budget, TokenBucketBudget)
    budget.on_failure()
    budget.on_failure()
    path.write_text(TOML.replace("max_attempts = 2", "max_attempts = 5"))
    config.reload()
    assert config.retry_budgets["payments"] is budget
    assert config.get_retry_config("refunds").max_attempts == 5
    assert config.get_retry_config("refunds").budget is budget
    assert config.get_retry_config("orders").budget is budget
    assert budget.tokens == 2.0                             # not refilled by the reload


def test_a_reload_that_changes_a_budget_builds_a_new_one(
        config: ResilienceConfig, tmp_path: Path) -> None:
    path = _toml(tmp_path)
    config.load_from_file(path)
    old = config.retry_budgets["payments"]
    path.write_text(TOML.replace("max_tokens = 4", "max_tokens = 8"))
    config.reload()
    new = config.retry_budgets["payments"]
    assert new is not old
    assert new.max_tokens == 8.0  # type: ignore[attr-defined]
    assert config.get_retry_config("orders").budget is new


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_saving_writes_the_budget_by_name_and_loads_back_shared(
        config: ResilienceConfig, tmp_path: Path, suffix: str) -> None:
    config.load_from_file(_toml(tmp_path))
    saved = tmp_path / f"saved{suffix}"
    config.save_to_file(saved)
    text = saved.read_text()
    data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    assert data["retry_budgets"] == {"payments": {"kind": "token_bucket", "max_tokens": 4.0,
                                                  "token_ratio": 0.5}}
    assert data["retry_configs"]["orders"]["budget"] == "payments"
    assert "budget" not in data["retry_configs"]["search"]
    fresh = ResilienceConfig()
    fresh.load_from_file(saved)
    assert fresh.get_retry_config("orders").budget is fresh.retry_budgets["payments"]
    assert fresh.get_retry_config("refunds").budget is fresh.retry_budgets["payments"]
    assert fresh.as_dict()["retry_configs"] == config.as_dict()["retry_configs"]


def test_a_config_given_in_code_with_a_file_budget_is_saved_by_name(
        config: ResilienceConfig, tmp_path: Path) -> None:
    config.load_from_file(_toml(tmp_path))
    config.update_config("partner", RetryConfig(max_attempts=2,
                                                budget=config.retry_budgets["payments"]))
    saved = config.as_dict()["retry_configs"]["partner"]
    assert (saved["max_attempts"], saved["budget"]) == (2, "payments")


def test_a_budget_the_file_does_not_name_can_not_be_saved(
        config: ResilienceConfig, tmp_path: Path) -> None:
    config.update_config("partner", RetryConfig(budget=TokenBucketBudget()))
    with pytest.raises(ConfigurationError, match=r"retry_configs\.partner\.budget = "
                                                 r"TokenBucketBudget.*only a budget named in "
                                                 r"retry_budgets"):
        config.save_to_file(tmp_path / "out.toml")


def test_a_retry_built_from_a_named_config_uses_its_budget(
        config: ResilienceConfig, tmp_path: Path) -> None:
    config.load_from_file(_toml(tmp_path))
    retry = Retry(config.get_retry_config("refunds"))
    assert retry.config.budget is config.retry_budgets["payments"]
