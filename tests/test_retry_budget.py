"""Retry with a budget shared across policies: exact token arithmetic, the
denied retry's outcome, events and logs, sync and async, threads."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from buttress import (
    ConfigurationError,
    Retry,
    RetryConfig,
    RetryExhaustedError,
    TokenBucketBudget,
)
from buttress.budget import RatioBudget
from buttress.events import GaveUp, RetryScheduled
from buttress.testing import VirtualClock


def always_failing(calls: list[int]):  # type: ignore[no-untyped-def]
    def fail() -> None:
        calls.append(1)
        raise ConnectionError("down")

    return fail


def test_a_shared_token_bucket_stops_retries_across_two_policies() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    clock = VirtualClock()
    first = Retry(max_attempts=4, base_delay=0, jitter=0, reraise=True, budget=budget, clock=clock)
    second = Retry(max_attempts=4, base_delay=0, jitter=0, reraise=True, budget=budget, clock=clock)
    calls: list[int] = []
    with pytest.raises(ConnectionError):
        first.call(always_failing(calls))
    # failures 10 -> 9, 8, 7 (each allows a retry), the 4th attempt fails: 6
    assert len(calls) == 4
    assert budget.tokens == 6.0
    calls.clear()
    with pytest.raises(ConnectionError):
        second.call(always_failing(calls))
    # 6 -> 5: not above 5, the retry is denied after the first attempt
    assert len(calls) == 1
    assert budget.tokens == 5.0


def test_with_no_budget_left_every_call_is_one_attempt_amplification_one() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    retry = Retry(max_attempts=4, base_delay=0, jitter=0, reraise=True, budget=budget,
                  clock=VirtualClock())
    calls: list[int] = []
    for _ in range(100):
        with pytest.raises(ConnectionError):
            retry.call(always_failing(calls))
    # 3 retries (tokens 9, 8, 7 after the failures), then none: 103 attempts
    # for 100 calls, where 400 would go without a budget.
    assert len(calls) == 103


def test_successes_earn_the_retries_back() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.5)
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, reraise=True, budget=budget,
                  clock=VirtualClock())
    for _ in range(6):
        budget.on_failure()
    assert budget.tokens == 4.0
    for _ in range(5):
        assert retry.call(lambda: "ok") == "ok"
    assert budget.tokens == 6.5
    outcomes = iter([ConnectionError("blip"), "ok"])

    def flaky() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    assert retry.call(flaky) == "ok"
    assert budget.tokens == 6.0  # -1 for the failure (5.5 > 5: retried), +0.5 for the success


def test_a_denied_retry_raises_the_last_error_and_says_why() -> None:
    budget = TokenBucketBudget(max_tokens=2, token_ratio=0.1)
    budget.on_failure()
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, reraise=True, budget=budget,
                  name="payments",
                  clock=VirtualClock())
    gave_up: list[GaveUp] = []
    retry.events.add(gave_up.append, GaveUp)
    calls: list[int] = []
    with pytest.raises(ConnectionError) as info:
        retry.call(always_failing(calls))
    assert calls == [1]
    assert [(e.reason, e.attempts) for e in gave_up] == [("budget", 1)]
    assert any("retry budget refused" in note for note in info.value.__notes__)


def test_a_denied_retry_is_logged_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    budget = TokenBucketBudget(max_tokens=1, token_ratio=0.1)
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, reraise=True, budget=budget,
                  clock=VirtualClock())
    with caplog.at_level(logging.WARNING, logger="buttress"), pytest.raises(ConnectionError):
        retry.call(always_failing([]))
    assert "retry budget refused the retry" in caplog.text


def test_a_rejected_result_denied_by_the_budget_ends_in_retry_exhausted() -> None:
    budget = TokenBucketBudget(max_tokens=1, token_ratio=0.1)
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, reraise=True, budget=budget,
                  retry_on_result=lambda r: r == "busy", clock=VirtualClock())
    with pytest.raises(RetryExhaustedError) as info:
        retry.call(lambda: "busy")
    assert info.value.attempts == 1
    assert "budget" in str(info.value)


def test_non_retryable_failures_cost_no_tokens() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, reraise=True, budget=budget,
                  retry_on=(ConnectionError,), clock=VirtualClock())
    for _ in range(20):
        with pytest.raises(KeyError):
            retry.call(lambda: {}["x"])
    assert budget.tokens == 10.0


def test_a_ratio_budget_caps_retries_at_its_share_of_first_attempts() -> None:
    clock = VirtualClock()
    budget = RatioBudget(ratio=0.1, min_retries_per_second=0, window=10, clock=clock)
    retry = Retry(max_attempts=4, base_delay=0, jitter=0, reraise=True, budget=budget, clock=clock)
    scheduled: list[RetryScheduled] = []
    retry.events.add(scheduled.append, RetryScheduled)
    calls: list[int] = []
    for _ in range(100):
        with pytest.raises(ConnectionError):
            retry.call(always_failing(calls))
    assert len(scheduled) == 10
    assert len(calls) == 110
    assert budget.retries == 10


async def test_async_retries_spend_the_same_budget() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    retry = Retry(max_attempts=4, base_delay=0, jitter=0, reraise=True, budget=budget,
                  clock=VirtualClock())
    calls: list[int] = []

    async def fail() -> None:
        calls.append(1)
        raise ConnectionError("down")

    for _ in range(100):
        with pytest.raises(ConnectionError):
            await retry.acall(fail)
    assert len(calls) == 103
    assert budget.tokens == 0.0


def test_eight_threads_share_one_budget_exactly() -> None:
    budget = TokenBucketBudget(max_tokens=100, token_ratio=1)
    retry = Retry(max_attempts=2, base_delay=0, jitter=0, reraise=True, budget=budget,
                  clock=VirtualClock())
    barrier = threading.Barrier(8)
    successes: list[int] = []

    def work() -> None:
        barrier.wait()
        for _ in range(125):
            successes.append(retry.call(lambda: 1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(successes) == 1000
    assert budget.tokens == 100.0


def test_1000_tasks_failing_at_once_get_at_most_half_the_bucket_in_retries() -> None:
    budget = TokenBucketBudget(max_tokens=100, token_ratio=0.1)
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, reraise=True, budget=budget,
                  clock=VirtualClock())
    calls: list[int] = []

    async def fail() -> None:
        calls.append(1)
        await asyncio.sleep(0)
        raise ConnectionError("down")

    async def main() -> None:
        results = await asyncio.gather(*(retry.acall(fail) for _ in range(1000)),
                                       return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)

    asyncio.run(main())
    # Every task fails once (1000 tokens owed); only while the bucket held more
    # than 50 tokens could a retry go: 49 retries (100 -> 51 after 49 failures).
    assert len(calls) == 1000 + 49
    assert budget.tokens == 0.0


def test_budget_must_be_a_retry_budget() -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryConfig(budget=0.2)  # type: ignore[arg-type]
    assert info.value.field == "RetryConfig.budget"


def test_a_config_with_a_budget_can_not_be_saved_to_a_file() -> None:
    from buttress.config.files import _retry_to_dict

    with pytest.raises(ConfigurationError, match="budget"):
        _retry_to_dict("api", RetryConfig(budget=TokenBucketBudget()))
