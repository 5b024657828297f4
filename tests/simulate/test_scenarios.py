"""The published results, reproduced in short runs with fixed seeds."""

from __future__ import annotations

import pytest

from buttress import ConfigurationError
from buttress.simulate import (
    AmplificationResult,
    JitterResult,
    StormResult,
    StormScenario,
    compare_budgets,
    run_amplification,
    run_aws_jitter,
    run_storm,
    token_bucket,
)

SHORT_STORM = StormScenario(duration=200.0, spike_start=30.0, spike_duration=20.0)


@pytest.fixture(scope="module")
def jitter() -> JitterResult:
    return run_aws_jitter((50,), runs=5, seed=1)


@pytest.fixture(scope="module")
def amplification() -> AmplificationResult:
    return run_amplification(duration=20.0, seed=1)


@pytest.fixture(scope="module")
def storm() -> StormResult:
    return run_storm(SHORT_STORM, seed=1)


# --- AWS Architecture Blog 2015, "Exponential Backoff And Jitter" ---------------------------


def test_no_jitter_is_far_the_worst_in_work_and_in_time(jitter: JitterResult) -> None:
    full = jitter.at("full jitter", 50)
    plain = jitter.at("no jitter", 50)
    assert plain.calls > 1.5 * full.calls
    assert plain.time > 5 * full.time
    for strategy in ("full jitter", "equal jitter", "decorrelated jitter"):
        assert plain.calls > 1.4 * jitter.at(strategy, 50).calls


def test_equal_jitter_does_a_little_more_work_than_full_jitter_and_takes_longer(
    jitter: JitterResult,
) -> None:
    full, equal = jitter.at("full jitter", 50), jitter.at("equal jitter", 50)
    assert full.calls <= equal.calls < 1.1 * full.calls
    assert equal.time > 1.1 * full.time


def test_decorrelated_jitter_does_more_work_than_full_jitter_but_finishes_sooner(
    jitter: JitterResult,
) -> None:
    full, decorrelated = jitter.at("full jitter", 50), jitter.at("decorrelated jitter", 50)
    assert full.calls < decorrelated.calls < 1.3 * full.calls
    assert decorrelated.time < full.time


def test_work_grows_faster_than_the_number_of_contenders_without_jitter() -> None:
    result = run_aws_jitter((10, 40), runs=3, seed=2, strategies=("no jitter",))
    small, large = result.at("no jitter", 10), result.at("no jitter", 40)
    assert large.calls > 8 * small.calls  # 4x the clients, more than 8x the work


def test_the_same_seed_gives_the_same_figures() -> None:
    assert run_aws_jitter((20,), runs=2, seed=5) == run_aws_jitter((20,), runs=2, seed=5)


def test_an_unknown_strategy_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match=r"run_aws_jitter\.strategies"):
        run_aws_jitter((10,), strategies=("half jitter",))


# --- retry amplification at 100 % failure --------------------------------------------------


def test_three_retries_send_four_times_the_offered_load(
    amplification: AmplificationResult,
) -> None:
    assert amplification.of("no retry").amplification == 1.0
    assert amplification.of("3 retries").amplification == 4.0


def test_a_budget_keeps_the_load_near_the_offered_load(
    amplification: AmplificationResult,
) -> None:
    assert 1.0 < amplification.of("3 retries + token bucket (10, 0.1)").amplification < 1.05
    assert amplification.of("3 retries + ratio budget 10%").amplification == pytest.approx(
        1.1, abs=0.02)


def test_a_ratio_budgets_floor_is_per_client_and_lets_quiet_clients_retry_a_lot(
    amplification: AmplificationResult,
) -> None:
    # 10 clients at 10 calls/s each: a floor of 10 retries/s each is no cap at all.
    assert amplification.of("3 retries + ratio budget (defaults)").amplification > 2.0


def test_an_open_breaker_makes_each_call_one_attempt_turned_away_locally(
    amplification: AmplificationResult,
) -> None:
    run = amplification.of("3 retries + breaker")
    assert run.attempts_per_call == pytest.approx(1.0, abs=0.05)
    assert run.amplification < 0.05


# --- the retry storm -----------------------------------------------------------------------


def test_without_backoff_and_budget_the_service_stays_collapsed_after_the_spike(
    storm: StormResult,
) -> None:
    for policy in ("retry, no backoff", "retry + jittered backoff"):
        row = storm.row(storm.of(policy))
        assert not row.recovered
        assert row.after == 0.0
        assert row.amplification > 2.5
        assert row.wasted > 10_000  # the server serves requests nobody waits for


def test_a_budget_or_a_breaker_ends_the_storm(storm: StormResult) -> None:
    baseline = storm.row(storm.of("no retry"))
    assert baseline.recovered
    for policy in ("backoff + budget", "backoff + breaker", "backoff + breaker + budget"):
        row = storm.row(storm.of(policy))
        assert row.recovered, policy
        assert row.after == pytest.approx(baseline.after, rel=0.05)
    budget = storm.row(storm.of("backoff + budget"))
    assert budget.recovery_time is not None
    assert baseline.recovery_time is not None
    assert budget.recovery_time <= baseline.recovery_time + 10.0
    assert budget.denied > 0


def test_the_breaker_recovers_only_after_its_recovery_timeout(storm: StormResult) -> None:
    row = storm.row(storm.of("backoff + breaker + budget"))
    assert row.recovery_time is not None
    assert row.recovery_time >= SHORT_STORM.settings.recovery_timeout - 20.0


def test_a_storm_that_does_not_end_before_the_spike_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"StormScenario\.duration"):
        StormScenario(duration=50.0)


def test_a_higher_token_ratio_keeps_retrying_through_ten_percent_random_failures() -> None:
    result = compare_budgets(
        {"none": None, "10/0.1": token_bucket(10.0, 0.1), "10/0.2": token_bucket(10.0, 0.2)},
        scenario=SHORT_STORM, failure_rates=(0.1,), steady_duration=100.0)
    none, grpc, higher = result.row("none"), result.row("10/0.1"), result.row("10/0.2")
    assert none.recovery_time is None
    assert grpc.recovery_time is not None
    assert higher.recovery_time is not None
    assert higher.success[0] > 0.99
    assert grpc.success[0] < higher.success[0] - 0.03


def test_buttress_default_jitter_of_a_tenth_leaves_contenders_colliding(
    jitter: JitterResult,
) -> None:
    full = jitter.at("full jitter", 50)
    default = jitter.at("jitter 0.1 (RetryConfig)", 50)
    presets = jitter.at("jitter 0.5 (presets)", 50)
    assert default.time > 2 * full.time
    assert presets.time < default.time
    assert presets.calls < default.calls
