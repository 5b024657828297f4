"""The global test mode (stamina's ``set_testing``): no waits and capped attempts
for every retry at once, on and off in one call or for one block."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from _support import Flaky, NoSleepClock, Throttled
from buttress import Retry, RetryExhaustedError, retry
from buttress.testing import is_testing, set_testing, testing


@pytest.fixture(autouse=True)
def mode_off() -> Iterator[None]:
    yield
    set_testing(False)


class Failing:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error or Flaky()

    def __call__(self) -> None:
        self.calls += 1
        raise self.error


def test_test_mode_caps_attempts_and_never_sleeps() -> None:
    fn = Failing()
    decorated = retry(max_attempts=10, base_delay=5.0, clock=NoSleepClock())(fn)
    set_testing(True, attempts=3)
    with pytest.raises(RetryExhaustedError) as caught:
        decorated()
    assert fn.calls == 3
    assert caught.value.attempts == 3


def test_test_mode_ignores_retry_after_hints() -> None:
    fn = Failing(Throttled(60))
    decorated = retry(max_attempts=2, clock=NoSleepClock())(fn)
    set_testing(True, attempts=2)
    with pytest.raises(RetryExhaustedError):
        decorated()
    assert fn.calls == 2


def test_async_retries_obey_test_mode() -> None:
    calls = 0

    @retry(max_attempts=10, base_delay=5.0, clock=NoSleepClock())
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        raise Flaky

    with testing(attempts=2), pytest.raises(RetryExhaustedError):
        asyncio.run(fetch())
    assert calls == 2


def test_the_default_is_one_attempt_even_above_the_configured_number() -> None:
    fn = Failing()
    decorated = retry(max_attempts=2, clock=NoSleepClock())(fn)
    with testing(), pytest.raises(RetryExhaustedError):
        decorated()
    assert fn.calls == 1
    fn = Failing()
    decorated = retry(max_attempts=2, clock=NoSleepClock())(fn)
    with testing(attempts=4), pytest.raises(RetryExhaustedError):
        decorated()
    assert fn.calls == 4


def test_cap_keeps_a_smaller_configured_number_of_attempts() -> None:
    fn = Failing()
    decorated = retry(max_attempts=2, clock=NoSleepClock())(fn)
    with testing(attempts=5, cap=True), pytest.raises(RetryExhaustedError):
        decorated()
    assert fn.calls == 2


def test_the_context_manager_restores_the_previous_mode() -> None:
    assert not is_testing()
    with testing(attempts=2):
        assert is_testing()
        with set_testing(False):
            assert not is_testing()
        assert is_testing()
    assert not is_testing()


def test_hand_written_loops_obey_test_mode() -> None:
    attempts = 0
    with testing(attempts=2), pytest.raises(RetryExhaustedError):
        for attempt in Retry(max_attempts=5, base_delay=1.0, clock=NoSleepClock()).attempts():
            with attempt:
                attempts += 1
                raise Flaky
    assert attempts == 2


def test_turning_test_mode_off_restores_the_configured_behaviour() -> None:
    set_testing(True, attempts=1)
    set_testing(False)
    fn = Failing()
    decorated = retry(max_attempts=3, base_delay=0, clock=NoSleepClock())(fn)
    with pytest.raises(RetryExhaustedError):
        decorated()
    assert fn.calls == 3


@pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
def test_set_testing_refuses_an_attempt_count_below_one(attempts: object) -> None:
    with pytest.raises(ValueError, match="attempts"):
        set_testing(True, attempts=attempts)  # type: ignore[arg-type]
    assert not is_testing()
