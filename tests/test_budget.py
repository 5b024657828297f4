"""Retry budgets: exact token arithmetic, the sliding window, threads, and a
state machine checked against a plain model."""

from __future__ import annotations

import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from buttress import ConfigurationError
from buttress.budget import RatioBudget, RetryBudget, TokenBucketBudget
from buttress.testing import VirtualClock


def test_both_budgets_satisfy_the_protocol() -> None:
    assert isinstance(TokenBucketBudget(), RetryBudget)
    assert isinstance(RatioBudget(clock=VirtualClock()), RetryBudget)


# --- token bucket ---------------------------------------------------------------------


def test_token_bucket_starts_full_and_allows_retries_only_above_half() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    assert budget.tokens == 10.0
    allowed = []
    for _ in range(7):
        budget.on_failure()
        allowed.append(budget.try_spend())
    # 9, 8, 7, 6 are above 5; 5 is not; 4 and 3 neither.
    assert allowed == [True, True, True, True, False, False, False]
    assert budget.tokens == 3.0


def test_token_bucket_earns_token_ratio_per_success_exactly() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    for _ in range(5):
        budget.on_failure()
    assert not budget.try_spend()
    for _ in range(10):
        budget.on_success()
    assert budget.tokens == 6.0  # ten times 0.1 is exactly 1
    assert budget.try_spend()


def test_token_bucket_never_exceeds_max_or_drops_below_zero() -> None:
    budget = TokenBucketBudget(max_tokens=2, token_ratio=1)
    for _ in range(5):
        budget.on_success()
    assert budget.tokens == 2.0
    for _ in range(5):
        budget.on_failure()
    assert budget.tokens == 0.0


def test_token_bucket_try_spend_takes_nothing() -> None:
    budget = TokenBucketBudget(max_tokens=10, token_ratio=0.1)
    for _ in range(100):
        assert budget.try_spend()
    assert budget.tokens == 10.0


@pytest.mark.parametrize(("field", "value"), [
    ("max_tokens", 0), ("max_tokens", 1001), ("token_ratio", 0), ("token_ratio", 1.5),
])
def test_token_bucket_refuses_out_of_range_fields(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenBucketBudget(**{field: value})
    assert info.value.field == f"TokenBucketBudget.{field}"
    assert info.value.value == value


def test_token_bucket_counts_every_failure_and_success_under_eight_threads() -> None:
    budget = TokenBucketBudget(max_tokens=1000, token_ratio=1)
    barrier = threading.Barrier(8)

    def fail() -> None:
        barrier.wait()
        for _ in range(100):
            budget.on_failure()

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.tokens == 200.0

    def succeed() -> None:
        barrier.wait()
        for _ in range(50):
            budget.on_success()

    threads = [threading.Thread(target=succeed) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.tokens == 600.0


# --- ratio budget -----------------------------------------------------------------------


def test_ratio_budget_allows_ratio_of_requests_in_the_window() -> None:
    clock = VirtualClock()
    budget = RatioBudget(ratio=0.1, min_retries_per_second=0, window=10, clock=clock)
    for _ in range(100):
        budget.on_request()
    granted = sum(budget.try_spend() for _ in range(20))
    assert granted == 10
    assert budget.retries == 10
    assert budget.requests == 100


def test_ratio_budget_minimum_per_second_lets_a_quiet_client_retry() -> None:
    clock = VirtualClock()
    budget = RatioBudget(ratio=0.2, min_retries_per_second=0.5, window=10, clock=clock)
    assert sum(budget.try_spend() for _ in range(10)) == 5


def test_ratio_budget_forgets_requests_and_retries_that_left_the_window() -> None:
    clock = VirtualClock()
    budget = RatioBudget(ratio=0.5, min_retries_per_second=0, window=10, slots=10, clock=clock)
    for _ in range(10):
        budget.on_request()
    assert sum(budget.try_spend() for _ in range(10)) == 5
    clock.advance(5.0)
    assert not budget.try_spend()  # the 10 requests still count, and so do the 5 retries
    clock.advance(5.0)
    assert budget.requests == 0
    assert budget.retries == 0
    assert not budget.try_spend()


def test_ratio_budget_spreads_requests_counted_between_slow_calls() -> None:
    clock = VirtualClock()
    budget = RatioBudget(ratio=1.0, min_retries_per_second=0, window=10, slots=10, clock=clock)
    budget.try_spend()  # anchors the window at t=0
    for _ in range(200):
        budget.on_request()
    clock.advance(19.0)  # 200 requests over 20 buckets, 10 still in the window
    assert budget.requests == 100


def test_ratio_budget_counts_requests_from_eight_threads_exactly() -> None:
    clock = VirtualClock()
    budget = RatioBudget(ratio=0.25, min_retries_per_second=0, window=10, clock=clock)
    barrier = threading.Barrier(8)
    granted: list[int] = []

    def work() -> None:
        barrier.wait()
        for _ in range(1000):
            budget.on_request()
        granted.append(sum(budget.try_spend() for _ in range(1000)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget.requests == 8000
    assert sum(granted) == 2000


@pytest.mark.parametrize(("field", "value"), [
    ("ratio", -0.1), ("min_retries_per_second", -1), ("window", 0), ("slots", 0),
    ("slots", 10_000),
])
def test_ratio_budget_refuses_bad_fields(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        RatioBudget(**{field: value}, clock=VirtualClock())  # type: ignore[arg-type]
    assert info.value.field == f"RatioBudget.{field}"


# --- state machines ---------------------------------------------------------------------


class TokenBucketMachine(RuleBasedStateMachine):
    """The bucket against a model in thousandths of a token."""

    def __init__(self) -> None:
        super().__init__()
        self.budget = TokenBucketBudget(max_tokens=5, token_ratio=0.3)
        self.model = 5000

    @rule()
    def failure(self) -> None:
        self.budget.on_failure()
        self.model = max(0, self.model - 1000)

    @rule()
    def success(self) -> None:
        self.budget.on_success()
        self.model = min(5000, self.model + 300)

    @rule()
    def spend(self) -> None:
        assert self.budget.try_spend() == (self.model > 2500)

    @invariant()
    def tokens_match(self) -> None:
        assert self.budget.tokens == self.model / 1000


class RatioMachine(RuleBasedStateMachine):
    """The ratio budget against a list of time-stamped events (one slow call
    per step, so no spreading: every request is stamped exactly)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.budget = RatioBudget(ratio=0.5, min_retries_per_second=0.1, window=4, slots=4,
                                  clock=self.clock)
        self.requests: list[int] = []
        self.retries: list[int] = []

    def _bucket(self) -> int:
        return int(self.clock.now // 1)

    def _live(self, stamps: list[int]) -> int:
        now = self._bucket()
        return sum(1 for s in stamps if s > now - 4)

    @rule(n=st.integers(0, 5))
    def requests_sent(self, n: int) -> None:
        assert self.budget.requests == self._live(self.requests)  # moves the window to now
        for _ in range(n):
            self.budget.on_request()
            self.requests.append(self._bucket())
        assert self.budget.requests == self._live(self.requests)

    @rule()
    def spend(self) -> None:
        allowed = 0.5 * self._live(self.requests) + 0.4
        expected = self._live(self.retries) + 1 <= allowed + 1e-9
        assert self.budget.try_spend() == expected
        if expected:
            self.retries.append(self._bucket())

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 3.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def retries_match(self) -> None:
        assert self.budget.retries == self._live(self.retries)


TestTokenBucketMachine = TokenBucketMachine.TestCase
TestTokenBucketMachine.settings = settings(max_examples=60, stateful_step_count=40,
                                           deadline=None)
TestRatioMachine = RatioMachine.TestCase
TestRatioMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
