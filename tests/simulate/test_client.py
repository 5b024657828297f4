"""Simulated clients drive buttress's real retry, breaker and budget decisions."""

from __future__ import annotations

import random

import pytest

from buttress import CircuitBreakerConfig, ConfigurationError, RetryConfig
from buttress.backoff import RetryStrategy
from buttress.budget import TokenBucketBudget
from buttress.retry import Outcome, RetryPolicy, RetryState
from buttress.simulate import (
    Client,
    ClientPolicy,
    Dependency,
    DependencyModel,
    EventLoop,
    Outage,
    Spike,
    Timeline,
    Traffic,
    ratio_budget,
    run_open_loop,
    token_bucket,
)

DOWN = DependencyModel(capacity=100, service_time=1.0, reject_latency=0.0,
                       outages=(Outage(start=0.0, duration=1e9),))


class Recording(Dependency):
    """A dependency that remembers when each request arrived."""

    def __init__(self, model: DependencyModel, loop: EventLoop) -> None:
        super().__init__(model, loop, random.Random(0))
        self.times: list[float] = []

    def submit(self, answer):  # type: ignore[no-untyped-def]
        self.times.append(self._loop.now)
        super().submit(answer)


def _client(policy: ClientPolicy, model: DependencyModel = DOWN,
            calls: int = 1) -> tuple[Client, Recording, Timeline, EventLoop]:
    loop = EventLoop()
    dependency = Recording(model, loop)
    timeline = Timeline(1000.0)
    client = Client(policy, loop, dependency, timeline)
    for _ in range(calls):
        client.call()
    loop.run()
    return client, dependency, timeline, loop


def test_a_failing_call_makes_exactly_max_attempts_waiting_the_policys_delays() -> None:
    retry = RetryConfig(max_attempts=4, base_delay=1.0, max_delay=60.0, jitter=0.0)
    _, dependency, timeline, _ = _client(ClientPolicy(name="r", retry=retry))
    assert dependency.times == [0.0, 1.0, 3.0, 7.0]
    assert (timeline.total("sent"), timeline.total("retries"), timeline.total("failed")) == (
        4, 3, 1)


def test_jittered_delays_are_exactly_retry_policy_decide_from_the_same_seed() -> None:
    retry = RetryConfig(max_attempts=5, base_delay=1.0, strategy=RetryStrategy.FULL_JITTER)
    _, dependency, _, _ = _client(ClientPolicy(name="r", retry=retry.replace(
        rng=random.Random(9))))
    policy = RetryPolicy(retry.replace(rng=random.Random(9)))
    state, expected, now = RetryState(0.0), [0.0], 0.0
    for attempt in range(1, 5):
        state.attempts = attempt
        decision = policy.decide(state, Outcome.raised(Exception()), now)
        state.previous_delay = decision.delay
        now += decision.delay
        expected.append(now)
    assert dependency.times == pytest.approx(expected)


def test_a_timed_out_attempt_is_retried_and_its_late_answer_counted_as_wasted() -> None:
    slow = DependencyModel(capacity=1, service_time=0.001, queue_limit=10)
    loop = EventLoop()
    dependency = Recording(slow, loop)
    timeline = Timeline(100.0)
    policy = ClientPolicy(name="t", retry=RetryConfig(max_attempts=2, base_delay=0.0),
                          timeout=1.0)
    client = Client(policy, loop, dependency, timeline)
    # Hold the only worker for 5 s, so the first attempt waits past its timeout.
    dependency._busy = 1
    loop.at(5.0, dependency._finish, lambda ok: None)
    client.call()
    loop.run()
    assert timeline.total("timeouts") == 2
    assert timeline.total("late") == 2
    assert timeline.total("failed") == 1
    assert dependency.times == [0.0, 1.0]


def test_an_open_breaker_turns_attempts_away_and_they_are_not_retried() -> None:
    breaker = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=100.0)
    retry = RetryConfig(max_attempts=3, base_delay=0.0)
    client, dependency, timeline, _ = _client(
        ClientPolicy(name="b", retry=retry, breaker=breaker), calls=3)
    # The three calls' first attempts fail together and trip it; each call's retry
    # is turned away, and the rejection ends the call (buttress never retries it).
    assert dependency.times == [0.0, 0.0, 0.0]
    assert (timeline.total("rejected"), timeline.total("failed")) == (3, 3)
    assert client.breaker_state.value == "open"


def test_a_token_bucket_budget_stops_retries_once_half_its_tokens_are_spent() -> None:
    retry = RetryConfig(max_attempts=10, base_delay=0.0)
    _, dependency, timeline, _ = _client(
        ClientPolicy(name="budget", retry=retry, budget=token_bucket(10.0, 0.1)))
    # Failures take the bucket 10 -> 9 -> ... -> 5; at 5 (not above half) it says no.
    assert len(dependency.times) == 5
    assert timeline.total("denied") == 1


def test_a_ratio_budget_reads_the_virtual_clock() -> None:
    retry = RetryConfig(max_attempts=2, base_delay=0.0)
    policy = ClientPolicy(name="ratio", retry=retry, budget=ratio_budget(0.1, 0.0, 10.0))
    _, _dependency, timeline, _ = _client(policy, calls=50)
    # 10 % of 50 first attempts may be retried within the window.
    assert timeline.total("retries") == 5
    assert timeline.total("denied") == 45


def test_the_same_seed_gives_the_same_run_and_the_policy_does_not_change_the_traffic() -> None:
    model = DependencyModel(capacity=5, service_time=0.05, failure_rate=0.2)
    retry = ClientPolicy(name="r", retry=RetryConfig(max_attempts=3), timeout=1.0)
    bare = ClientPolicy(name="bare")
    first = run_open_loop(retry, model, Traffic(rate=50.0), duration=20.0, seed=3)
    again = run_open_loop(retry, model, Traffic(rate=50.0), duration=20.0, seed=3)
    other = run_open_loop(bare, model, Traffic(rate=50.0), duration=20.0, seed=3)
    assert first.timeline.counts == again.timeline.counts
    assert first.timeline.counts["offered"] == other.timeline.counts["offered"]
    assert first.success_rate > other.success_rate


def test_open_loop_arrivals_follow_the_rate_and_the_spike() -> None:
    traffic = Traffic(rate=100.0, spikes=(Spike(start=50.0, duration=50.0, multiplier=3.0),))
    run = run_open_loop(ClientPolicy(name="bare"), DependencyModel(capacity=1000),
                        traffic, duration=100.0, seed=1)
    assert run.timeline.mean_rate("offered", 0.0, 50.0) == pytest.approx(100.0, rel=0.05)
    assert run.timeline.mean_rate("offered", 50.0, 100.0) == pytest.approx(300.0, rel=0.05)


def test_a_bad_policy_names_its_field() -> None:
    with pytest.raises(ConfigurationError, match=r"ClientPolicy\.timeout"):
        ClientPolicy(name="x", timeout=0.0)
    with pytest.raises(ConfigurationError, match=r"TokenBucketBudget\.token_ratio"):
        token_bucket(10.0, 0.0)
    assert TokenBucketBudget(10.0, 0.1).try_spend()
