"""The presets give every operation a retry budget, so an outage does not
multiply the load on the dependency that is already failing.

The default is ``TokenBucketBudget(max_tokens=10, token_ratio=0.2)`` per
operation name (the storm simulation in ``buttress.simulate`` is why): a healthy
dependency never meets it, an outage costs a handful of retries and then one
attempt per call.
"""

from __future__ import annotations

import pytest

from buttress import (
    ConfigurationError,
    RetryExhaustedError,
    TokenBucketBudget,
    api_resilient,
    database_resilient,
    resilient,
)
from buttress.presets import default_budget
from buttress.testing import VirtualClock, reset_registries


class Down(ConnectionError):
    pass


def _attempts_over(calls: int, protect: object) -> int:
    attempts = 0

    def fetch() -> None:
        nonlocal attempts
        attempts += 1
        raise Down("refused")

    guarded = protect(fetch)  # type: ignore[operator]
    for _ in range(calls):
        # Exhausted retries raise RetryExhaustedError; a retry the budget refused
        # raises the dependency's own error.
        with pytest.raises((Down, RetryExhaustedError)):
            guarded()
    return attempts


def test_an_outage_costs_five_retries_then_one_attempt_per_call() -> None:
    reset_registries()
    protect = database_resilient(operation_name="budget-outage", max_attempts=3,
                                 base_delay=0.0, jitter=0.0, enable_circuit_breaker=False,
                                 clock=VirtualClock())
    # 10 tokens, each failed attempt costs one, a retry goes only while more than
    # 5 are left: the first call makes 3 attempts (10 -> 7), the second retries
    # once (7 -> 5, and 5 is not more than 5), then every call is one attempt.
    assert _attempts_over(100, protect) == 3 + 2 + 98


def test_without_a_budget_the_same_outage_triples_the_load() -> None:
    protect = database_resilient(operation_name="budget-off", max_attempts=3, base_delay=0.0,
                                 jitter=0.0, enable_circuit_breaker=False,
                                 retry_budget=False, clock=VirtualClock())
    assert _attempts_over(100, protect) == 300


def test_successes_earn_the_retries_back() -> None:
    reset_registries()
    budget = default_budget("budget-earn")
    for _ in range(6):
        budget.on_failure()
    assert not budget.try_spend()
    for _ in range(10):  # 0.2 each: two tokens back
        budget.on_success()
    assert budget.tokens == pytest.approx(6.0)
    assert budget.try_spend()


def test_one_budget_per_operation_shared_by_every_pipeline_built_for_it() -> None:
    first = api_resilient(operation_name="budget-shared")
    second = api_resilient(operation_name="budget-shared")
    other = api_resilient(operation_name="budget-other")
    assert first.current().retry_config is not None
    budget = first.current().retry_config.budget  # type: ignore[union-attr]
    assert budget is default_budget("budget-shared")
    assert second.current().retry_config.budget is budget  # type: ignore[union-attr]
    assert other.current().retry_config.budget is not budget  # type: ignore[union-attr]
    assert isinstance(budget, TokenBucketBudget)
    assert (budget.max_tokens, budget.token_ratio) == (10.0, 0.2)


def test_a_budget_of_your_own_is_used_as_given() -> None:
    mine = TokenBucketBudget(max_tokens=4, token_ratio=0.5)
    protect = resilient(operation_name="budget-mine", retry_budget=mine)
    assert protect.current().retry_config.budget is mine  # type: ignore[union-attr]


def test_reset_registries_fills_the_default_budgets_again() -> None:
    budget = default_budget("budget-reset")
    for _ in range(10):
        budget.on_failure()
    assert budget.tokens == 0
    reset_registries()
    assert budget.tokens == 10


def test_a_bad_retry_budget_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="retry_budget"):
        resilient(operation_name="budget-bad", retry_budget="yes")  # type: ignore[arg-type]
