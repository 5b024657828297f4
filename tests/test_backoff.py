"""Backoff schedules: the strategies and their spellings, jitter bounds, capping at
``max_delay``, ``ExponentialBackoff`` for hand-written loops, and its validation."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _support import FixedDraw
from buttress import ConfigurationError, ExponentialBackoff, RetryStrategy
from buttress.backoff import compute_delay

S = RetryStrategy


def schedule(
    strategy: RetryStrategy,
    failures: int,
    *,
    base: float = 1.0,
    cap: float = 1000.0,
    growth: float = 2.0,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> list[float]:
    """The waits after failed attempts 1..failures, carrying the previous wait along
    the way the retry runner does."""
    waits: list[float] = []
    previous = 0.0
    for attempt in range(1, failures + 1):
        previous = compute_delay(
            strategy, attempt, base_delay=base, max_delay=cap, exponential_base=growth,
            jitter=jitter, previous=previous, rng=rng,
        )
        waits.append(previous)
    return waits


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "member"),
    [(S.EXPONENTIAL, S.EXPONENTIAL_BACKOFF), (S.LINEAR, S.LINEAR_BACKOFF),
     (S.CONSTANT, S.FIXED_DELAY)],
)
def test_seed_aliases_are_the_same_strategy(alias: RetryStrategy, member: RetryStrategy) -> None:
    assert alias is member


def test_there_are_exactly_seven_distinct_strategies() -> None:
    assert {m.name for m in RetryStrategy} == {
        "EXPONENTIAL_BACKOFF", "LINEAR_BACKOFF", "FIXED_DELAY", "JITTERED_EXPONENTIAL",
        "FULL_JITTER", "EQUAL_JITTER", "DECORRELATED_JITTER",
    }


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("exponential", S.EXPONENTIAL_BACKOFF),
        ("exponential_backoff", S.EXPONENTIAL_BACKOFF),
        ("EXPONENTIAL", S.EXPONENTIAL_BACKOFF),
        ("linear", S.LINEAR_BACKOFF),
        ("linear_backoff", S.LINEAR_BACKOFF),
        ("constant", S.FIXED_DELAY),
        ("fixed", S.FIXED_DELAY),
        ("fixed_delay", S.FIXED_DELAY),
        ("jittered_exponential", S.JITTERED_EXPONENTIAL),
        ("full_jitter", S.FULL_JITTER),
        ("Full-Jitter", S.FULL_JITTER),
        ("equal_jitter", S.EQUAL_JITTER),
        (" decorrelated_jitter ", S.DECORRELATED_JITTER),
    ],
)
def test_strategies_are_found_by_their_string_names(name: str, member: RetryStrategy) -> None:
    assert RetryStrategy(name) is member


def test_an_unknown_strategy_name_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'quadratic'"):
        RetryStrategy("quadratic")


def test_strategy_values_are_plain_lower_case_strings() -> None:
    assert RetryStrategy.EXPONENTIAL_BACKOFF == "exponential_backoff"
    assert str(RetryStrategy.FULL_JITTER) == "full_jitter"


# --- exact schedules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (S.EXPONENTIAL_BACKOFF, [1.0, 2.0, 4.0, 8.0, 16.0]),
        (S.LINEAR_BACKOFF, [1.0, 2.0, 3.0, 4.0, 5.0]),
        (S.FIXED_DELAY, [1.0, 1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_deterministic_strategies_follow_their_formula(
    strategy: RetryStrategy, expected: list[float]
) -> None:
    assert schedule(strategy, 5) == expected


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (S.EXPONENTIAL_BACKOFF, [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]),
        (S.LINEAR_BACKOFF, [1.0, 2.0, 3.0, 4.0, 5.0, 5.0]),
        (S.FULL_JITTER, [0.75, 1.5, 3.0, 3.75, 3.75, 3.75]),
        (S.EQUAL_JITTER, [0.75, 1.5, 3.0, 3.75, 3.75, 3.75]),
    ],
)
def test_every_strategy_is_capped_at_max_delay(
    strategy: RetryStrategy, expected: list[float]
) -> None:
    draw = 0.25 if strategy is S.FULL_JITTER else 0.5
    assert schedule(strategy, 6, cap=5.0, rng=FixedDraw(draw)) == expected


def test_exponential_growth_follows_exponential_base() -> None:
    assert schedule(S.EXPONENTIAL_BACKOFF, 4, base=0.5, growth=3.0) == [0.5, 1.5, 4.5, 13.5]


def test_full_jitter_draws_from_zero_up_to_the_exponential_delay() -> None:
    assert schedule(S.FULL_JITTER, 4, rng=FixedDraw(0.25)) == [0.75, 1.5, 3.0, 6.0]
    assert schedule(S.FULL_JITTER, 3, rng=FixedDraw(0.0)) == [1.0, 2.0, 4.0]


def test_equal_jitter_keeps_at_least_half_the_exponential_delay() -> None:
    assert schedule(S.EQUAL_JITTER, 4, rng=FixedDraw(1.0)) == [0.5, 1.0, 2.0, 4.0]


def test_decorrelated_jitter_draws_between_base_and_three_times_the_previous_wait() -> None:
    # prev 0 -> U(1, 1) = 1; prev 1 -> U(1, 3) = 2; prev 2 -> U(1, 6) = 3.5; ...
    assert schedule(S.DECORRELATED_JITTER, 4, rng=FixedDraw(0.5)) == [1.0, 2.0, 3.5, 5.75]


def test_decorrelated_jitter_is_capped_at_max_delay() -> None:
    assert schedule(S.DECORRELATED_JITTER, 5, cap=4.0, rng=FixedDraw(1.0)) == [
        1.0, 3.0, 4.0, 4.0, 4.0,
    ]


def test_jittered_exponential_uses_the_given_jitter_factor() -> None:
    assert schedule(S.JITTERED_EXPONENTIAL, 3, jitter=0.2, rng=FixedDraw(1.0)) == pytest.approx(
        [0.8, 1.6, 3.2]
    )


def test_jittered_exponential_without_a_jitter_factor_still_jitters_by_half() -> None:
    assert schedule(S.JITTERED_EXPONENTIAL, 3, jitter=0.0, rng=FixedDraw(1.0)) == [0.5, 1.0, 2.0]


def test_a_jitter_factor_shortens_a_deterministic_schedule_but_never_lengthens_it() -> None:
    assert schedule(S.FIXED_DELAY, 2, base=2.0, jitter=0.25, rng=FixedDraw(1.0)) == [1.5, 1.5]
    assert schedule(S.FIXED_DELAY, 2, base=2.0, jitter=0.25, rng=FixedDraw(0.0)) == [2.0, 2.0]


@pytest.mark.parametrize(
    ("strategy", "jitter", "low_fraction"),
    [
        (S.JITTERED_EXPONENTIAL, 0.3, 0.7),
        (S.EXPONENTIAL_BACKOFF, 0.1, 0.9),
        (S.FULL_JITTER, 0.0, 0.0),
        (S.EQUAL_JITTER, 0.0, 0.5),
    ],
)
def test_seeded_jitter_stays_within_its_documented_band(
    strategy: RetryStrategy, jitter: float, low_fraction: float
) -> None:
    rng = random.Random(1234)
    for attempt in range(1, 200):
        nominal = min(2.0 ** (attempt - 1), 100.0)
        delay = compute_delay(strategy, attempt, base_delay=1.0, max_delay=100.0,
                              exponential_base=2.0, jitter=jitter, previous=0.0, rng=rng)
        assert nominal * low_fraction <= delay <= nominal


def test_the_same_seed_gives_the_same_jittered_schedule() -> None:
    for strategy in (S.JITTERED_EXPONENTIAL, S.FULL_JITTER, S.EQUAL_JITTER, S.DECORRELATED_JITTER):
        first = schedule(strategy, 10, jitter=0.5, rng=random.Random(99))
        again = schedule(strategy, 10, jitter=0.5, rng=random.Random(99))
        assert first == again
        assert len(set(first)) > 1


def test_huge_attempt_numbers_are_capped_instead_of_overflowing() -> None:
    delay = compute_delay(S.EXPONENTIAL_BACKOFF, 100_000, base_delay=1.0, max_delay=30.0,
                          exponential_base=2.0, jitter=0.0, previous=0.0)
    assert delay == 30.0


def test_a_zero_base_delay_stays_zero_even_past_the_float_range() -> None:
    delay = compute_delay(S.EXPONENTIAL_BACKOFF, 100_000, base_delay=0.0, max_delay=30.0,
                          exponential_base=2.0, jitter=0.0, previous=0.0)
    assert delay == 0.0


# --- ExponentialBackoff ------------------------------------------------------------------


def test_next_delay_counts_attempts_from_zero() -> None:
    backoff = ExponentialBackoff(initial_delay=0.5, max_delay=60.0, multiplier=2.0)
    assert [backoff.next_delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_next_delay_is_capped_at_max_delay() -> None:
    backoff = ExponentialBackoff(initial_delay=0.5, max_delay=60.0, multiplier=2.0)
    assert backoff.next_delay(7) == 60.0
    assert backoff.next_delay(10_000) == 60.0


def test_exponential_backoff_has_no_jitter_by_default() -> None:
    backoff = ExponentialBackoff(initial_delay=1.0, multiplier=3.0)
    assert [backoff.next_delay(n) for n in range(3)] == [1.0, 3.0, 9.0]


def test_exponential_backoff_jitter_true_draws_from_the_upper_half() -> None:
    backoff = ExponentialBackoff(initial_delay=1.0, max_delay=100.0, jitter=True,
                                 rng=random.Random(5))
    for attempt in range(6):
        nominal = 2.0**attempt
        assert nominal / 2 <= backoff.next_delay(attempt) <= nominal


def test_exponential_backoff_jitter_is_exact_with_a_controlled_draw() -> None:
    backoff = ExponentialBackoff(initial_delay=1.0, jitter=0.5, rng=FixedDraw(1.0))
    assert [backoff.next_delay(n) for n in range(3)] == [0.5, 1.0, 2.0]


def test_exponential_backoff_accepts_retry_config_spellings() -> None:
    backoff = ExponentialBackoff(base_delay=0.25, exponential_base=4.0)
    assert backoff.initial_delay == 0.25
    assert backoff.multiplier == 4.0
    assert [backoff.next_delay(n) for n in range(3)] == [0.25, 1.0, 4.0]


@pytest.mark.parametrize("attempt", [-1, 1.0, True, "0", None])
def test_next_delay_rejects_an_attempt_that_is_not_a_non_negative_int(attempt: object) -> None:
    with pytest.raises(ValueError, match="attempt") as info:
        ExponentialBackoff().next_delay(attempt)  # type: ignore[arg-type]
    assert repr(attempt) in str(info.value)


@pytest.mark.parametrize(
    ("field", "kwargs", "bad", "error"),
    [
        ("initial_delay", {"initial_delay": -0.1}, -0.1, ValueError),
        ("initial_delay", {"initial_delay": math.nan}, math.nan, ValueError),
        ("initial_delay", {"initial_delay": "0.5"}, "0.5", TypeError),
        ("initial_delay", {"initial_delay": True}, True, TypeError),
        ("max_delay", {"max_delay": -1.0}, -1.0, ValueError),
        ("max_delay", {"max_delay": math.nan}, math.nan, ValueError),
        ("max_delay", {"max_delay": None}, None, TypeError),
        ("max_delay", {"initial_delay": 5.0, "max_delay": 1.0}, 1.0, ValueError),
        ("multiplier", {"multiplier": 0.5}, 0.5, ValueError),
        ("multiplier", {"multiplier": 0}, 0, ValueError),
        ("multiplier", {"multiplier": math.nan}, math.nan, ValueError),
        ("multiplier", {"multiplier": "2"}, "2", TypeError),
        ("multiplier", {"multiplier": False}, False, TypeError),
        ("jitter", {"jitter": 1.5}, 1.5, ValueError),
        ("jitter", {"jitter": -0.1}, -0.1, ValueError),
        ("jitter", {"jitter": math.nan}, math.nan, ValueError),
        ("jitter", {"jitter": "yes"}, "yes", TypeError),
        ("rng", {"rng": 42}, 42, TypeError),
    ],
)
def test_exponential_backoff_rejects_bad_values_naming_field_and_value(
    field: str, kwargs: dict[str, object], bad: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        ExponentialBackoff(**kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert field in message
    assert repr(bad) in message


def test_exponential_backoff_range_errors_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        ExponentialBackoff(initial_delay=-1.0)


# --- properties --------------------------------------------------------------------------


@given(
    strategy=st.sampled_from(list(RetryStrategy)),
    base=st.floats(min_value=0.0, max_value=1e3),
    headroom=st.floats(min_value=0.0, max_value=1e4),
    growth=st.floats(min_value=1.0, max_value=50.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    attempt=st.integers(min_value=1, max_value=10_000),
    previous_fraction=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_every_delay_lies_between_zero_and_max_delay(
    strategy: RetryStrategy,
    base: float,
    headroom: float,
    growth: float,
    jitter: float,
    attempt: int,
    previous_fraction: float,
    seed: int,
) -> None:
    cap = base + headroom
    delay = compute_delay(
        strategy, attempt, base_delay=base, max_delay=cap, exponential_base=growth,
        jitter=jitter, previous=cap * previous_fraction, rng=random.Random(seed),
    )
    assert 0.0 <= delay <= cap


@given(
    strategy=st.sampled_from([S.EXPONENTIAL_BACKOFF, S.LINEAR_BACKOFF, S.FIXED_DELAY]),
    base=st.floats(min_value=0.0, max_value=1e3),
    headroom=st.floats(min_value=0.0, max_value=1e4),
    growth=st.floats(min_value=1.0, max_value=50.0),
    attempt=st.integers(min_value=1, max_value=10_000),
)
def test_unjittered_schedules_never_shrink_from_one_attempt_to_the_next(
    strategy: RetryStrategy, base: float, headroom: float, growth: float, attempt: int
) -> None:
    def delay(n: int) -> float:
        return compute_delay(strategy, n, base_delay=base, max_delay=base + headroom,
                             exponential_base=growth, jitter=0.0, previous=0.0)

    assert 0.0 <= delay(attempt) <= delay(attempt + 1)


@given(
    initial=st.floats(min_value=0.0, max_value=1e3),
    headroom=st.floats(min_value=0.0, max_value=1e4),
    growth=st.floats(min_value=1.0, max_value=50.0),
    attempt=st.integers(min_value=0, max_value=10_000),
)
def test_exponential_backoff_is_monotone_and_capped(
    initial: float, headroom: float, growth: float, attempt: int
) -> None:
    backoff = ExponentialBackoff(initial_delay=initial, max_delay=initial + headroom,
                                 multiplier=growth)
    assert 0.0 <= backoff.next_delay(attempt) <= backoff.next_delay(attempt + 1)
    assert backoff.next_delay(attempt + 1) <= initial + headroom
