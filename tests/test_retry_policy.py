"""The retry policy alone, with plain numbers: ``decide(state, outcome, now, left)``
returns a wait or a stop and changes nothing; no clock, no sleep, no call."""

from __future__ import annotations

import random

import pytest

from _support import Fatal, FixedDraw, Flaky, Throttled
from buttress import CircuitBreakerError, CircuitState, RetryConfig, RetryStrategy
from buttress.backoff import compute_delay, schedule
from buttress.retry import Decision, Outcome, RetryPolicy, RetryState


def policy(**options: object) -> RetryPolicy:
    options.setdefault("jitter", 0)
    return RetryPolicy(RetryConfig(**options))  # type: ignore[arg-type]


def waits(p: RetryPolicy, attempts: int) -> list[float]:
    """The waits the policy asks for after attempts 1..attempts, each recorded
    as a runner would (the previous wait feeds decorrelated jitter)."""
    state = RetryState()
    out = []
    for attempt in range(1, attempts + 1):
        state.attempts = attempt
        decision = p.decide(state, Outcome.raised(Flaky()), 0.0)
        assert decision.kind == Decision.RETRY
        state.previous_delay = decision.delay
        out.append(decision.delay)
    return out


@pytest.mark.parametrize(("strategy", "expected"), [
    (RetryStrategy.EXPONENTIAL_BACKOFF, [1.0, 2.0, 4.0, 8.0, 10.0]),
    (RetryStrategy.LINEAR_BACKOFF, [1.0, 2.0, 3.0, 4.0, 5.0]),
    (RetryStrategy.FIXED_DELAY, [1.0, 1.0, 1.0, 1.0, 1.0]),
])
def test_each_unjittered_strategy_decides_its_exact_schedule_capped_at_max_delay(
        strategy: RetryStrategy, expected: list[float]) -> None:
    p = policy(strategy=strategy, base_delay=1.0, max_delay=10.0, max_attempts=10)
    assert waits(p, 5) == expected


@pytest.mark.parametrize("strategy", list(RetryStrategy))
@pytest.mark.parametrize("jitter", [0.0, 0.3, 1.0])
def test_the_precomputed_schedule_equals_compute_delay_draw_for_draw(
        strategy: RetryStrategy, jitter: float) -> None:
    options = {"base_delay": 0.5, "max_delay": 20.0, "exponential_base": 3.0, "jitter": jitter}
    bound = schedule(strategy, rng=random.Random(7), **options)
    reference = random.Random(7)
    previous = 0.0
    for attempt in (1, 2, 3, 4, 5, 50, 5000):
        expected = compute_delay(strategy, attempt, previous=previous, rng=reference, **options)
        assert bound(attempt, previous) == expected
        previous = expected


def test_a_zero_base_delay_schedule_draws_no_random_number() -> None:
    class Counting(random.Random):
        draws = 0

        def uniform(self, a: float, b: float) -> float:
            Counting.draws += 1
            return a

    for strategy in (RetryStrategy.FULL_JITTER, RetryStrategy.EXPONENTIAL_BACKOFF):
        wait = schedule(strategy, base_delay=0.0, max_delay=1.0, exponential_base=2.0,
                        jitter=1.0, rng=Counting())
        assert [wait(n, 0.0) for n in (1, 2, 3)] == [0.0, 0.0, 0.0]
    assert Counting.draws == 0


def test_jitter_draws_from_the_lower_part_of_the_scheduled_wait() -> None:
    p = policy(base_delay=2.0, jitter=0.5, rng=FixedDraw(1.0))
    assert waits(p, 2) == [1.0, 2.0]


def test_the_last_attempt_gives_up_without_asking_for_a_wait() -> None:
    asked = []
    p = policy(max_attempts=3, retry_after=lambda exc: asked.append(exc) or 5.0)
    assert p.decide(RetryState(attempts=3), Outcome.raised(Flaky()), 0.0) is Decision.GIVE_UP
    assert asked == []
    assert Decision.GIVE_UP.reason == "exhausted"


def test_a_non_retryable_exception_is_raised_as_is() -> None:
    p = policy(retry_on=(Flaky,))
    decision = p.decide(RetryState(), Outcome.raised(Fatal()), 0.0)
    assert decision is Decision.RAISE
    assert decision.reason == "not_retryable"


def test_an_open_breaker_is_not_retried_unless_named() -> None:
    error = CircuitBreakerError("payments", CircuitState.OPEN, 5.0)
    assert policy().decide(RetryState(), Outcome.raised(error), 0.0) is Decision.RAISE
    named = policy(retry_on=(CircuitBreakerError,))
    assert named.decide(RetryState(), Outcome.raised(error), 0.0).kind == Decision.RETRY


def test_a_rejected_result_is_retried_on_the_schedule() -> None:
    p = policy(base_delay=0.25, retry_on_result=lambda r: r is None)
    assert p.decide(RetryState(), Outcome.returned(None), 0.0) == Decision.retry_after(0.25)


def test_the_elapsed_deadline_stops_a_wait_that_would_pass_it() -> None:
    p = policy(base_delay=2.0, deadline=5.0, max_attempts=None)
    state = RetryState(start=100.0)
    assert p.decide(state, Outcome.raised(Flaky()), 102.0) == Decision.retry_after(2.0)
    assert p.decide(state, Outcome.raised(Flaky()), 103.5) is Decision.GIVE_UP


def test_a_wait_ending_at_or_past_the_calls_deadline_stops_with_that_wait() -> None:
    p = policy(base_delay=2.0)
    assert p.decide(RetryState(), Outcome.raised(Flaky()), 0.0, left=2.5).delay == 2.0
    decision = p.decide(RetryState(), Outcome.raised(Flaky()), 0.0, left=2.0)
    assert (decision.kind, decision.delay, decision.reason) == (
        Decision.DEADLINE_KIND, 2.0, "deadline")


@pytest.mark.parametrize(("hint", "expected"), [
    (3, 3.0), (0.5, 0.5), (0, 0.0), (120, 30.0), (10**400, 30.0)])
def test_a_retry_after_hint_replaces_the_schedule_capped_at_max_delay(
        hint: float, expected: float) -> None:
    p = policy(base_delay=1.0, max_delay=30.0)
    assert p.decide(RetryState(), Outcome.raised(Throttled(hint)), 0.0).delay == expected


@pytest.mark.parametrize("hint", [-1, True, "5", None, float("nan")])
def test_an_unusable_hint_falls_back_to_the_schedule(hint: object) -> None:
    p = policy(base_delay=1.0)
    assert p.decide(RetryState(), Outcome.raised(Throttled(hint)), 0.0).delay == 1.0


def test_deciding_changes_nothing_in_the_state() -> None:
    p = policy(base_delay=1.0)
    state = RetryState(start=3.0, attempts=2, name="op")
    failure = Flaky()
    before = (state.start, state.attempts, state.previous_delay, state.last_exception,
              state.last_result)
    p.decide(state, Outcome.raised(failure), 4.0)
    assert (state.start, state.attempts, state.previous_delay, state.last_exception,
            state.last_result) == before


def test_a_zero_wait_is_the_shared_retry_now_decision() -> None:
    p = policy(base_delay=0.0)
    assert p.decide(RetryState(), Outcome.raised(Flaky()), 0.0) is Decision.NOW


def test_outcomes_say_what_the_attempt_did() -> None:
    failure = Flaky("x")
    assert Outcome.raised(failure).failed
    assert Outcome.raised(failure).exception is failure
    assert not Outcome.returned(0).failed
    assert Outcome.returned(0).result == 0
    assert repr(Outcome.returned(1)) == "Outcome.returned(1)"
