"""Retry under extreme inputs and broken hooks: delays stay finite for any attempt
number, ``retry_after`` is asked only before a retry that happens, and a hook
that raises keeps the failure it was judging in view."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _support import Flaky, Throttled
from buttress import Retry, RetryConfig, RetryStrategy
from buttress.backoff import DELAY_CEILING, compute_delay
from buttress.retry import should_retry
from buttress.testing import VirtualClock

# --- every delay is finite -----------------------------------------------------------------

MAX_DELAYS = st.one_of(st.just(math.inf), st.floats(0.0, 1e300), st.just(1e308))


@settings(max_examples=500, deadline=None)
@given(
    strategy=st.sampled_from(list(RetryStrategy)),
    attempt=st.integers(1, 10**6),
    base_delay=st.floats(0.0, 1e6),
    max_delay=MAX_DELAYS,
    exponential_base=st.floats(1.0, 100.0),
    jitter=st.floats(0.0, 1.0),
    previous=st.floats(0.0, 1e308),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_delay_is_finite_and_within_its_cap_for_any_attempt(
    strategy: RetryStrategy, attempt: int, base_delay: float, max_delay: float,
    exponential_base: float, jitter: float, previous: float, seed: int,
) -> None:
    max_delay = max(max_delay, base_delay)  # as RetryConfig requires
    delay = compute_delay(strategy, attempt, base_delay=base_delay, max_delay=max_delay,
                          exponential_base=exponential_base, jitter=jitter,
                          previous=previous, rng=random.Random(seed))
    assert math.isfinite(delay)
    assert 0.0 <= delay <= min(max_delay, DELAY_CEILING)


@pytest.mark.parametrize("strategy", list(RetryStrategy))
def test_an_uncapped_jittered_schedule_stays_finite_past_the_float_range(
    strategy: RetryStrategy,
) -> None:
    # Before: NaN from about attempt 1,030 (inf - inf * jitter).
    config = RetryConfig(base_delay=1.0, max_delay=math.inf, jitter=0.5, strategy=strategy,
                         rng=random.Random(7))
    previous = 0.0
    for attempt in range(1, 2_001):
        previous = config.delay_for(attempt, previous)
        assert math.isfinite(previous), (attempt, previous)
        assert previous >= 0.0, (attempt, previous)


def test_a_long_uncapped_retry_only_ever_waits_finite_times() -> None:
    clock = VirtualClock()
    calls = 0

    @Retry(max_attempts=1_100, base_delay=1.0, max_delay=math.inf, jitter=0.5, clock=clock,
           rng=random.Random(3))
    def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 1_100:
            raise Flaky("again")
        return "done"

    assert fetch() == "done"
    assert len(clock.sleeps) == 1_099
    assert all(math.isfinite(wait) and 0.0 <= wait <= DELAY_CEILING for wait in clock.sleeps)


@pytest.mark.parametrize("hint", [math.inf, 10**400, 1e308], ids=["inf", "huge-int", "1e308"])
def test_a_retry_after_hint_is_capped_to_a_finite_wait(hint: object) -> None:
    clock = VirtualClock()
    calls = 0

    @Retry(max_attempts=2, max_delay=math.inf, clock=clock)
    def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Throttled(hint)
        return "done"

    assert fetch() == "done"
    assert clock.sleeps == [DELAY_CEILING]


# --- retry_after is asked only before a retry ----------------------------------------------


def test_the_retry_after_hook_is_not_called_after_the_last_attempt() -> None:
    asked: list[int] = []

    def retry_after(exc: Exception) -> float:
        asked.append(len(asked) + 1)
        return 0.5

    clock = VirtualClock()
    retry = Retry(max_attempts=3, retry_after=retry_after, reraise=True, clock=clock)
    with pytest.raises(Flaky):
        retry.call(lambda: (_ for _ in ()).throw(Flaky("down")))
    assert asked == [1, 2]  # one per retry; none once attempts are spent
    assert clock.sleeps == [0.5, 0.5]


async def test_the_async_retry_after_hook_is_not_called_after_the_last_attempt() -> None:
    asked = 0

    def retry_after(exc: Exception) -> float:
        nonlocal asked
        asked += 1
        return 0.0

    async def fetch() -> None:
        raise Flaky("down")

    with pytest.raises(Flaky):
        await Retry(max_attempts=4, retry_after=retry_after, reraise=True,
                    clock=VirtualClock()).acall(fetch)
    assert asked == 3


# --- a hook that raises keeps the failure in view ------------------------------------------


class PredicateBug(Exception):
    """The user's retry_condition is broken."""


def broken_condition(exc: Exception) -> bool:
    raise PredicateBug("condition crashed")


def failing(failure: Exception) -> Any:
    def fetch() -> None:
        raise failure

    return fetch


def assert_keeps(error: BaseException, failure: BaseException) -> None:
    chain = []
    link: BaseException | None = error
    while link is not None:
        chain.append(link)
        link = link.__context__
    assert failure in chain, "the failure being judged fell out of the traceback"
    assert any("while judging Flaky: the real problem" in note
               for note in getattr(error, "__notes__", []))


def test_a_retry_condition_that_raises_keeps_the_failure_it_was_judging() -> None:
    failure = Flaky("the real problem")
    retry = Retry(max_attempts=3, retry_condition=broken_condition, clock=VirtualClock())
    with pytest.raises(PredicateBug) as caught:
        retry.call(failing(failure))
    assert caught.value.__context__ is failure
    assert_keeps(caught.value, failure)


async def test_an_async_retry_condition_that_raises_keeps_the_failure() -> None:
    failure = Flaky("the real problem")

    async def fetch() -> None:
        raise failure

    retry = Retry(max_attempts=3, retry_condition=broken_condition, clock=VirtualClock())
    with pytest.raises(PredicateBug) as caught:
        await retry.acall(fetch)
    assert_keeps(caught.value, failure)


def test_the_failure_goes_at_the_end_of_the_hooks_own_chain() -> None:
    failure = Flaky("the real problem")

    def condition(exc: Exception) -> bool:
        try:
            return {}["missing"]  # type: ignore[no-any-return]
        except KeyError:
            raise PredicateBug("lookup failed") from None

    with pytest.raises(PredicateBug) as caught:
        Retry(max_attempts=2, retry_condition=condition, clock=VirtualClock()).call(
            failing(failure))
    inner = caught.value.__context__
    assert isinstance(inner, KeyError)
    assert inner.__context__ is failure


def test_a_retry_after_hook_that_raises_keeps_the_failure() -> None:
    failure = Flaky("the real problem")

    def retry_after(exc: Exception) -> float:
        raise PredicateBug("hint crashed")

    with pytest.raises(PredicateBug) as caught:
        Retry(max_attempts=2, retry_after=retry_after, clock=VirtualClock()).call(
            failing(failure))
    assert_keeps(caught.value, failure)


def test_should_retry_with_a_broken_condition_keeps_the_failure() -> None:
    failure = Flaky("the real problem")
    with pytest.raises(PredicateBug) as caught:
        should_retry(failure, RetryConfig(retry_condition=broken_condition))
    assert_keeps(caught.value, failure)


def test_a_hand_written_attempt_loop_keeps_the_failure_too() -> None:
    failure = Flaky("the real problem")
    retry = Retry(max_attempts=3, retry_condition=broken_condition, clock=VirtualClock())
    with pytest.raises(PredicateBug) as caught:
        for attempt in retry.attempts():
            with attempt:
                raise failure
    assert_keeps(caught.value, failure)


def test_a_condition_that_reraises_the_failure_lets_it_through_untouched() -> None:
    failure = Flaky("the real problem")

    def condition(exc: Exception) -> bool:
        raise exc

    with pytest.raises(Flaky) as caught:
        Retry(max_attempts=2, retry_condition=condition, clock=VirtualClock()).call(
            failing(failure))
    assert caught.value is failure
    assert not getattr(failure, "__notes__", None)
