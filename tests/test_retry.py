"""Retry for sync functions: attempt counts, exact waits on a virtual clock, every
spelling the seeds use, filtering, hints, deadlines, callbacks, interrupts, errors,
configuration validation, and exact counts under threads."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from _support import Fatal, FixedDraw, Flaky, HttpError, NoSleepClock, Throttled
from buttress import (
    ButtressError,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
    OperationTimeoutError,
    Retry,
    RetryConfig,
    RetryError,
    RetryExhaustedError,
    RetryStrategy,
    async_retry,
    is_transient,
    retry,
    retry_sync,
    retry_with_backoff,
    should_retry,
    with_retry,
)
from buttress.testing import VirtualClock


class Script:
    """A sync callable that plays its outcomes in order (raising exceptions, returning
    anything else), then returns ``then``. ``calls`` counts attempts, ``seen`` records
    the arguments of each attempt."""

    def __init__(self, *outcomes: object, then: object = "ok",
                 clock: VirtualClock | None = None, cost: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.then = then
        self.calls = 0
        self.seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.clock = clock
        self.cost = cost

    def __call__(self, *args: Any, **kwargs: Any) -> object:
        self.calls += 1
        self.seen.append((args, kwargs))
        if self.clock is not None and self.cost:
            self.clock.advance(self.cost)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return self.then


def always(exc_type: type[BaseException] = Flaky, **kwargs: Any) -> Script:
    """A script that fails a thousand times with fresh exceptions."""
    return Script(*(exc_type(f"failure {n + 1}") for n in range(1000)), **kwargs)


def exact(clock: VirtualClock, **options: Any) -> Retry:
    """A retry with an exact schedule (no jitter) on ``clock``."""
    options.setdefault("jitter", 0)
    return Retry(clock=clock, **options)


# --- attempts and exact waits ------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (RetryStrategy.EXPONENTIAL_BACKOFF, [1.0, 2.0, 4.0, 8.0]),
        (RetryStrategy.EXPONENTIAL, [1.0, 2.0, 4.0, 8.0]),
        ("exponential", [1.0, 2.0, 4.0, 8.0]),
        ("exponential_backoff", [1.0, 2.0, 4.0, 8.0]),
        (RetryStrategy.LINEAR_BACKOFF, [1.0, 2.0, 3.0, 4.0]),
        (RetryStrategy.LINEAR, [1.0, 2.0, 3.0, 4.0]),
        ("linear", [1.0, 2.0, 3.0, 4.0]),
        (RetryStrategy.FIXED_DELAY, [1.0, 1.0, 1.0, 1.0]),
        (RetryStrategy.CONSTANT, [1.0, 1.0, 1.0, 1.0]),
        ("constant", [1.0, 1.0, 1.0, 1.0]),
        ("fixed_delay", [1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_each_strategy_waits_its_exact_schedule_between_attempts(
    strategy: RetryStrategy | str, expected: list[float]
) -> None:
    clock = VirtualClock()
    fn = always()
    wrapped = exact(clock, max_attempts=5, base_delay=1.0, strategy=strategy)(fn)
    with pytest.raises(RetryExhaustedError) as info:
        wrapped()
    assert fn.calls == 5
    assert info.value.attempts == 5
    assert clock.sleeps == expected
    assert clock.now == sum(expected)


@pytest.mark.parametrize(
    ("strategy", "draw", "expected"),
    [
        (RetryStrategy.FULL_JITTER, 0.25, [0.75, 1.5, 3.0, 6.0]),
        ("full_jitter", 0.25, [0.75, 1.5, 3.0, 6.0]),
        (RetryStrategy.EQUAL_JITTER, 1.0, [0.5, 1.0, 2.0, 4.0]),
        ("equal_jitter", 1.0, [0.5, 1.0, 2.0, 4.0]),
        (RetryStrategy.DECORRELATED_JITTER, 0.5, [1.0, 2.0, 3.5, 5.75]),
        ("decorrelated_jitter", 0.5, [1.0, 2.0, 3.5, 5.75]),
        (RetryStrategy.JITTERED_EXPONENTIAL, 1.0, [0.5, 1.0, 2.0, 4.0]),
        ("jittered_exponential", 1.0, [0.5, 1.0, 2.0, 4.0]),
    ],
)
def test_jittered_strategies_wait_exactly_what_their_draw_gives(
    strategy: RetryStrategy | str, draw: float, expected: list[float]
) -> None:
    clock = VirtualClock()
    fn = always()
    wrapped = exact(clock, max_attempts=5, base_delay=1.0, strategy=strategy,
                    rng=FixedDraw(draw))(fn)
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert fn.calls == 5
    assert clock.sleeps == expected


@pytest.mark.parametrize(
    ("strategy", "low_fraction"),
    [
        (RetryStrategy.JITTERED_EXPONENTIAL, 0.7),
        (RetryStrategy.FULL_JITTER, 0.0),
        (RetryStrategy.EQUAL_JITTER, 0.5),
    ],
)
def test_seeded_jitter_keeps_every_wait_within_its_band(
    strategy: RetryStrategy, low_fraction: float
) -> None:
    clock = VirtualClock()
    wrapped = Retry(max_attempts=9, base_delay=1.0, max_delay=1000.0, strategy=strategy,
                    jitter=0.3, rng=random.Random(42), clock=clock)(always())
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert len(clock.sleeps) == 8
    for attempt, wait in enumerate(clock.sleeps, start=1):
        nominal = 2.0 ** (attempt - 1)
        assert nominal * low_fraction <= wait <= nominal


def test_decorrelated_jitter_waits_stay_between_base_and_three_times_the_last_wait() -> None:
    clock = VirtualClock()
    wrapped = Retry(max_attempts=12, base_delay=0.5, max_delay=1000.0,
                    strategy="decorrelated_jitter", rng=random.Random(3), clock=clock)(always())
    with pytest.raises(RetryExhaustedError):
        wrapped()
    previous = 0.0
    for wait in clock.sleeps:
        assert 0.5 <= wait <= max(0.5, 3 * previous)
        previous = wait


def test_the_same_seed_replays_the_same_jittered_waits() -> None:
    def waits(seed: int) -> list[float]:
        clock = VirtualClock()
        wrapped = Retry(max_attempts=6, base_delay=1.0, strategy="full_jitter",
                        rng=random.Random(seed), clock=clock)(always())
        with pytest.raises(RetryExhaustedError):
            wrapped()
        return clock.sleeps

    assert waits(7) == waits(7)
    assert waits(7) != waits(8)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("exponential", [1.0, 2.0, 4.0, 5.0, 5.0]),
        ("linear", [1.0, 2.0, 3.0, 4.0, 5.0]),
        ("fixed_delay", [5.0, 5.0, 5.0, 5.0, 5.0]),
    ],
)
def test_waits_never_exceed_max_delay(strategy: str, expected: list[float]) -> None:
    clock = VirtualClock()
    base = 5.0 if strategy == "fixed_delay" else 1.0
    wrapped = exact(clock, max_attempts=6, base_delay=base, max_delay=5.0,
                    strategy=strategy)(always())
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert clock.sleeps == expected


def test_exponential_base_sets_the_growth_factor() -> None:
    clock = VirtualClock()
    wrapped = exact(clock, max_attempts=4, base_delay=0.5, exponential_base=3.0)(always())
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert clock.sleeps == [0.5, 1.5, 4.5]


def test_a_call_that_recovers_returns_its_value_after_exactly_the_failed_attempts() -> None:
    clock = VirtualClock()
    fn = Script(Flaky("1"), Flaky("2"), then="payload")
    assert exact(clock, max_attempts=5, base_delay=1.0)(fn)() == "payload"
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 2.0]


def test_a_call_that_succeeds_at_once_never_waits() -> None:
    clock = VirtualClock()
    fn = Script(then=41)
    assert exact(clock, max_attempts=5, base_delay=1.0)(fn)() == 41
    assert fn.calls == 1
    assert clock.sleeps == []


def test_max_attempts_counts_the_first_call() -> None:
    clock = VirtualClock()
    fn = always()
    with pytest.raises(RetryExhaustedError) as info:
        exact(clock, max_attempts=1, base_delay=1.0)(fn)()
    assert fn.calls == 1
    assert info.value.attempts == 1
    assert clock.sleeps == []


def test_every_attempt_gets_the_same_arguments() -> None:
    fn = Script(Flaky(), Flaky())
    exact(VirtualClock(), max_attempts=3, base_delay=1.0)(fn)(1, "two", three=3)
    assert fn.seen == [((1, "two"), {"three": 3})] * 3


def test_retry_call_runs_a_function_under_the_policy() -> None:
    clock = VirtualClock()
    fn = Script(Flaky(), then="done")
    assert exact(clock, max_attempts=2, base_delay=0.5).call(fn, 7, key="v") == "done"
    assert fn.seen == [((7,), {"key": "v"})] * 2
    assert clock.sleeps == [0.5]


def test_a_decorated_function_can_be_called_again_with_a_fresh_attempt_budget() -> None:
    clock = VirtualClock()
    fn = Script(Flaky(), Flaky(), Flaky(), Flaky())
    wrapped = exact(clock, max_attempts=3, base_delay=1.0)(fn)
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert wrapped() == "ok"
    assert fn.calls == 5
    assert clock.sleeps == [1.0, 2.0, 1.0]


# --- zero delays -------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(RetryStrategy))
def test_zero_delay_retries_never_call_sleep(strategy: RetryStrategy) -> None:
    fn = Script(Flaky(), Flaky(), then="ok")
    wrapped = retry(max_attempts=3, base_delay=0, strategy=strategy, clock=NoSleepClock())(fn)
    assert wrapped() == "ok"
    assert fn.calls == 3


def test_a_jitter_draw_of_zero_skips_the_sleep() -> None:
    clock = VirtualClock()
    fn = always()
    wrapped = retry(max_attempts=4, base_delay=1.0, strategy="full_jitter",
                    rng=FixedDraw(1.0), clock=clock)(fn)
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert fn.calls == 4
    assert clock.sleeps == []


# --- spellings ---------------------------------------------------------------------------


class Instant(Exception):
    """Carries a zero Retry-After hint, so default-configured retries never sleep."""

    retry_after = 0.0


def test_bare_retry_decorator_retries_with_the_default_three_attempts() -> None:
    calls = 0

    @retry
    def fetch() -> str:
        nonlocal calls
        calls += 1
        raise Instant(f"attempt {calls}")

    with pytest.raises(RetryExhaustedError) as info:
        fetch()
    assert calls == 3
    assert info.value.attempts == 3
    assert fetch.__name__ == "fetch"


def test_bare_retry_returns_the_value_of_a_recovered_call() -> None:
    fn = Script(Instant(), then="value")
    assert retry(fn)() == "value"
    assert fn.calls == 2


def test_retry_accepts_a_positional_retry_config() -> None:
    clock = VirtualClock()
    config = RetryConfig(max_attempts=4, base_delay=0.5, jitter=0)
    fn = always()
    with pytest.raises(RetryExhaustedError):
        retry(config, clock=clock)(fn)()
    assert fn.calls == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_retry_accepts_keyword_options() -> None:
    clock = VirtualClock()
    fn = always()
    with pytest.raises(RetryExhaustedError):
        retry(max_attempts=2, base_delay=3.0, jitter=0, clock=clock)(fn)()
    assert fn.calls == 2
    assert clock.sleeps == [3.0]


def test_keyword_options_override_a_positional_config_including_seed_spellings() -> None:
    clock = VirtualClock()
    config = RetryConfig(max_attempts=5, base_delay=1.0, jitter=0, exceptions=(Fatal,))
    fn = always()
    wrapped = retry(config, clock=clock, max_attempts=3, initial_delay=2.0,
                    retry_on=(Flaky,))(fn)
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert fn.calls == 3
    assert clock.sleeps == [2.0, 4.0]


def test_with_retry_takes_keyword_options_or_a_config() -> None:
    clock = VirtualClock()
    first, second = always(), always()
    with pytest.raises(RetryExhaustedError):
        with_retry(max_attempts=2, base_delay=1.0, jitter=0, clock=clock)(first)()
    with pytest.raises(RetryExhaustedError):
        with_retry(RetryConfig(max_attempts=3, base_delay=1.0, jitter=0), clock=clock)(second)()
    assert (first.calls, second.calls) == (2, 3)
    assert clock.sleeps == [1.0, 1.0, 2.0]


def test_retry_sync_retries_a_plain_function() -> None:
    fn = Script(Flaky(), then="ok")
    assert retry_sync(max_attempts=2, base_delay=0, clock=NoSleepClock())(fn)() == "ok"
    assert fn.calls == 2


def test_retry_sync_refuses_a_coroutine_function_when_decorating() -> None:
    async def fetch() -> None: ...

    with pytest.raises(TypeError, match="retry_sync"):
        retry_sync(max_attempts=2)(fetch)


def test_async_retry_refuses_a_plain_function_when_decorating() -> None:
    def fetch() -> None: ...

    with pytest.raises(TypeError, match="coroutine function"):
        async_retry(RetryConfig(max_attempts=2))(fetch)


def test_retry_with_backoff_takes_keyword_options() -> None:
    clock = VirtualClock()
    fn = always()
    wrapped = retry_with_backoff(max_attempts=3, base_delay=1.0, jitter=0,
                                 strategy=RetryStrategy.EXPONENTIAL_BACKOFF, clock=clock)(fn)
    with pytest.raises(RetryExhaustedError):
        wrapped()
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 2.0]


def test_retry_with_backoff_takes_a_config_and_a_retry_predicate() -> None:
    clock = VirtualClock()
    config = RetryConfig(max_attempts=5, initial_delay=1.0, backoff_multiplier=2.0, jitter=0)
    fn = Script(HttpError(503), HttpError(502), HttpError(404))
    wrapped = retry_with_backoff(config, retry_predicate=is_transient, clock=clock)(fn)
    with pytest.raises(HttpError) as info:
        wrapped()
    assert info.value.status_code == 404
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 2.0]


def test_retry_with_backoff_accepts_the_config_by_keyword() -> None:
    fn = Script(ConnectionError(), ConnectionError(), then="ok")
    wrapped = retry_with_backoff(config=RetryConfig(max_attempts=5, base_delay=0),
                                 retry_predicate=is_transient, clock=NoSleepClock())(fn)
    assert wrapped() == "ok"
    assert fn.calls == 3


def test_retry_rejects_a_config_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="RetryConfig"):
        Retry({"max_attempts": 3})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "decorate",
    [
        retry,
        retry(max_attempts=2),
        retry(RetryConfig(max_attempts=2)),
        with_retry(max_attempts=2),
        retry_sync(max_attempts=2),
        retry_with_backoff(max_attempts=2),
        retry_with_backoff(RetryConfig(), retry_predicate=is_transient),
    ],
    ids=["bare", "kwargs", "config", "with_retry", "retry_sync", "rwb", "rwb-predicate"],
)
def test_decorating_keeps_the_function_metadata(decorate: Callable[[Any], Any]) -> None:
    def load_user(user_id: int) -> str:
        """Load one user."""
        return f"user {user_id}"

    wrapped = decorate(load_user)
    assert wrapped.__name__ == "load_user"
    assert wrapped.__qualname__ == load_user.__qualname__
    assert wrapped.__doc__ == "Load one user."
    assert wrapped.__module__ == __name__
    assert wrapped.__wrapped__ is load_user
    assert wrapped(7) == "user 7"


# --- RetryConfig spellings ---------------------------------------------------------------


def _is_retryable(exc: Exception) -> bool:
    return isinstance(exc, Flaky)


@pytest.mark.parametrize(
    ("alias", "value", "field"),
    [
        ("initial_delay", 2.5, "base_delay"),
        ("backoff_multiplier", 3.0, "exponential_base"),
        ("multiplier", 3.0, "exponential_base"),
        ("retry_on", (Flaky,), "exceptions"),
        ("retryable_exceptions", (Flaky,), "exceptions"),
        ("retry_predicate", _is_retryable, "retry_condition"),
    ],
)
def test_seed_spellings_set_the_field_and_read_back(alias: str, value: Any, field: str) -> None:
    by_alias = RetryConfig(**{alias: value})
    by_field = RetryConfig(**{field: value})
    assert getattr(by_alias, field) == value
    assert getattr(by_alias, alias) == value
    assert getattr(by_field, alias) == value
    assert by_alias == by_field


@pytest.mark.parametrize(
    ("first", "second", "a", "b"),
    [
        ("base_delay", "initial_delay", 1.0, 2.0),
        ("exponential_base", "backoff_multiplier", 2.0, 3.0),
        ("exponential_base", "multiplier", 2.0, 3.0),
        ("backoff_multiplier", "multiplier", 2.0, 3.0),
        ("exceptions", "retry_on", (Flaky,), (Fatal,)),
        ("retry_on", "retryable_exceptions", (Flaky,), (Fatal,)),
        ("retry_condition", "retry_predicate", _is_retryable, is_transient),
    ],
)
def test_two_spellings_that_disagree_are_a_clear_error(
    first: str, second: str, a: object, b: object
) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryConfig(**{first: a, second: b})
    message = str(info.value)
    assert first in message
    assert second in message
    assert repr(a) in message
    assert repr(b) in message
    assert isinstance(info.value, ValueError)


def test_two_spellings_that_agree_are_accepted() -> None:
    config = RetryConfig(base_delay=0.5, initial_delay=0.5, multiplier=3.0,
                         backoff_multiplier=3.0, retry_on=(Flaky,), exceptions=(Flaky,))
    assert (config.base_delay, config.exponential_base, config.exceptions) == (
        0.5, 3.0, (Flaky,),
    )


def test_seed_spellings_drive_the_schedule() -> None:
    clock = VirtualClock()
    config = RetryConfig(max_attempts=4, initial_delay=1.0, backoff_multiplier=3.0, jitter=False)
    with pytest.raises(RetryExhaustedError):
        retry(config, clock=clock)(always())()
    assert clock.sleeps == [1.0, 3.0, 9.0]


def test_exception_sets_are_accepted_as_the_app_core_seed_writes_them() -> None:
    config = RetryConfig(retryable_exceptions={ConnectionError, TimeoutError},
                         non_retryable_exceptions={ValueError, TypeError})
    assert set(config.exceptions) == {ConnectionError, TimeoutError}
    assert set(config.non_retryable_exceptions) == {ValueError, TypeError}


def test_a_single_exception_class_is_accepted_for_exceptions() -> None:
    assert RetryConfig(exceptions=Flaky).exceptions == (Flaky,)


def test_jitter_true_means_half_and_false_means_none() -> None:
    assert RetryConfig(jitter=True).jitter == 0.5
    assert RetryConfig(jitter=False).jitter == 0.0


def test_defaults_are_three_attempts_exponential_and_capped_at_a_minute() -> None:
    config = RetryConfig()
    assert config.max_attempts == 3
    assert config.base_delay == 0.1
    assert config.max_delay == 60.0
    assert config.exponential_base == 2.0
    assert config.strategy is RetryStrategy.EXPONENTIAL_BACKOFF
    assert config.exceptions == (Exception,)
    assert config.reraise is False


def test_strategy_names_are_normalised_to_members() -> None:
    assert RetryConfig(strategy="exponential").strategy is RetryStrategy.EXPONENTIAL_BACKOFF
    assert RetryConfig(strategy="constant").strategy is RetryStrategy.FIXED_DELAY
    assert RetryConfig(strategy="jittered_exponential").strategy is (
        RetryStrategy.JITTERED_EXPONENTIAL
    )


def test_replace_accepts_seed_spellings_and_validates_again() -> None:
    config = RetryConfig(base_delay=1.0, exceptions=(Fatal,))
    changed = config.replace(initial_delay=2.0, retry_on=(Flaky,))
    assert (changed.base_delay, changed.exceptions) == (2.0, (Flaky,))
    assert (config.base_delay, config.exceptions) == (1.0, (Fatal,))
    with pytest.raises(ConfigurationError, match="max_attempts"):
        config.replace(max_attempts=0)


def test_a_config_is_immutable() -> None:
    config = RetryConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_attempts = 10  # type: ignore[misc]


# --- configuration validation ------------------------------------------------------------


def _bad_configs() -> list[Any]:
    cases: list[tuple[str, dict[str, Any], object, type[Exception]]] = [
        ("max_attempts", {"max_attempts": 0}, 0, ValueError),
        ("max_attempts", {"max_attempts": -3}, -3, ValueError),
        ("max_attempts", {"max_attempts": 2.5}, 2.5, TypeError),
        ("max_attempts", {"max_attempts": True}, True, TypeError),
        ("max_attempts", {"max_attempts": "3"}, "3", TypeError),
        ("max_attempts", {"max_attempts": None}, None, ValueError),
        ("base_delay", {"base_delay": -0.5}, -0.5, ValueError),
        ("base_delay", {"base_delay": math.nan}, math.nan, ValueError),
        ("base_delay", {"base_delay": "1"}, "1", TypeError),
        ("base_delay", {"base_delay": True}, True, TypeError),
        ("max_delay", {"max_delay": -1.0}, -1.0, ValueError),
        ("max_delay", {"max_delay": math.nan}, math.nan, ValueError),
        ("max_delay", {"max_delay": "60"}, "60", TypeError),
        ("max_delay", {"max_delay": False}, False, TypeError),
        ("max_delay", {"base_delay": 5.0, "max_delay": 1.5}, 1.5, ValueError),
        ("exponential_base", {"exponential_base": 0.5}, 0.5, ValueError),
        ("exponential_base", {"exponential_base": 0}, 0, ValueError),
        ("exponential_base", {"exponential_base": -2.0}, -2.0, ValueError),
        ("exponential_base", {"exponential_base": math.nan}, math.nan, ValueError),
        ("exponential_base", {"exponential_base": "2"}, "2", TypeError),
        ("exponential_base", {"exponential_base": True}, True, TypeError),
        ("strategy", {"strategy": "quadratic"}, "quadratic", ValueError),
        ("strategy", {"strategy": 3}, 3, TypeError),
        ("strategy", {"strategy": None}, None, TypeError),
        ("jitter", {"jitter": 1.5}, 1.5, ValueError),
        ("jitter", {"jitter": -0.1}, -0.1, ValueError),
        ("jitter", {"jitter": math.nan}, math.nan, ValueError),
        ("jitter", {"jitter": "0.5"}, "0.5", TypeError),
        ("exceptions", {"exceptions": KeyboardInterrupt}, KeyboardInterrupt, ValueError),
        ("exceptions", {"exceptions": (Flaky, SystemExit)}, SystemExit, ValueError),
        ("exceptions", {"exceptions": (GeneratorExit,)}, GeneratorExit, ValueError),
        ("exceptions", {"exceptions": [asyncio.CancelledError]}, asyncio.CancelledError,
         ValueError),
        ("exceptions", {"exceptions": BaseException}, BaseException, ValueError),
        ("exceptions", {"exceptions": "ValueError"}, "ValueError", TypeError),
        ("exceptions", {"exceptions": (Flaky, 3)}, 3, TypeError),
        ("exceptions", {"exceptions": (int,)}, int, TypeError),
        ("exceptions", {"exceptions": None}, None, TypeError),
        ("non_retryable_exceptions", {"non_retryable_exceptions": SystemExit}, SystemExit,
         ValueError),
        ("non_retryable_exceptions", {"non_retryable_exceptions": "x"}, "x", TypeError),
        ("retry_condition", {"retry_condition": 3}, 3, TypeError),
        ("retry_on_result", {"retry_on_result": "empty"}, "empty", TypeError),
        ("retry_after", {"retry_after": 5.0}, 5.0, TypeError),
        ("deadline", {"deadline": 0}, 0, ValueError),
        ("deadline", {"deadline": -1.0}, -1.0, ValueError),
        ("deadline", {"deadline": math.nan}, math.nan, ValueError),
        ("deadline", {"deadline": "10"}, "10", TypeError),
        ("deadline", {"deadline": True}, True, TypeError),
        ("reraise", {"reraise": "yes"}, "yes", TypeError),
        ("reraise", {"reraise": 1}, 1, TypeError),
        ("on_retry", {"on_retry": "log"}, "log", TypeError),
        ("on_failure", {"on_failure": 1}, 1, TypeError),
        ("on_success", {"on_success": []}, [], TypeError),
        ("rng", {"rng": 42}, 42, TypeError),
        ("name", {"name": ""}, "", ValueError),
        ("name", {"name": 7}, 7, TypeError),
    ]
    return [pytest.param(*case, id=f"{case[0]}={case[2]!r}") for case in cases]


@pytest.mark.parametrize(("field", "kwargs", "bad", "error"), _bad_configs())
def test_retry_config_rejects_bad_values_naming_field_and_value(
    field: str, kwargs: dict[str, Any], bad: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        RetryConfig(**kwargs)
    message = str(info.value)
    assert field in message
    assert repr(bad) in message


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"jitter": 2.0}, {"strategy": "quadratic"}]
)
def test_decorators_validate_their_options_up_front(kwargs: dict[str, Any]) -> None:
    for spelling in (retry, with_retry, retry_sync, retry_with_backoff, async_retry):
        with pytest.raises(ConfigurationError):
            spelling(**kwargs)


def test_range_errors_are_configuration_errors_and_value_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryConfig(base_delay=-1.0)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ButtressError)


def test_max_attempts_may_be_unbounded_only_with_a_deadline() -> None:
    assert RetryConfig(max_attempts=None, deadline=5.0).max_attempts is None  # type: ignore[arg-type]


# --- errors ------------------------------------------------------------------------------


def test_exhaustion_raises_retry_exhausted_error_with_attempts_and_last_exception() -> None:
    failures = [Flaky("first"), Flaky("second"), Flaky("third")]
    fn = Script(*failures)
    with pytest.raises(RetryExhaustedError) as info:
        exact(VirtualClock(), max_attempts=3, base_delay=1.0)(fn)()
    error = info.value
    assert error.attempts == 3
    assert error.last_exception is failures[2]
    assert error.__cause__ is failures[2]
    assert error.last_result is None
    assert "3 attempts" in str(error)
    assert "third" in str(error)


def test_retry_error_is_the_same_class_and_a_buttress_error() -> None:
    assert RetryError is RetryExhaustedError
    with pytest.raises(RetryError) as info:
        exact(VirtualClock(), max_attempts=2, base_delay=1.0)(always())()
    assert isinstance(info.value, ButtressError)


def test_the_config_name_appears_in_the_exhaustion_error() -> None:
    with pytest.raises(RetryExhaustedError) as info:
        exact(VirtualClock(), max_attempts=2, base_delay=1.0, name="payments")(always())()
    assert info.value.operation == "payments"
    assert "'payments'" in str(info.value)


def test_reraise_raises_the_last_exception_itself() -> None:
    failures = [Flaky("first"), Flaky("second")]
    fn = Script(*failures)
    with pytest.raises(Flaky) as info:
        exact(VirtualClock(), max_attempts=2, base_delay=1.0, reraise=True)(fn)()
    assert info.value is failures[1]
    assert fn.calls == 2


def test_later_failures_are_not_chained_onto_earlier_ones() -> None:
    failures = [Flaky("first"), Flaky("second"), Flaky("third")]
    with pytest.raises(Flaky) as info:
        exact(VirtualClock(), max_attempts=3, base_delay=1.0, reraise=True)(Script(*failures))()
    assert info.value is failures[2]
    assert all(exc.__context__ is None for exc in failures)


def test_the_exhaustion_error_is_chained_to_the_last_failure_only() -> None:
    failures = [Flaky("first"), Flaky("second")]
    with pytest.raises(RetryExhaustedError) as info:
        exact(VirtualClock(), max_attempts=2, base_delay=1.0)(Script(*failures))()
    assert info.value.__cause__ is failures[1]
    assert failures[1].__context__ is None
    assert failures[0].__context__ is None


# --- which failures are retried ----------------------------------------------------------


def test_a_non_retryable_exception_is_raised_unwrapped_after_one_attempt() -> None:
    clock = VirtualClock()
    failure = ValueError("bad input")
    fn = Script(failure)
    wrapped = exact(clock, max_attempts=5, base_delay=1.0,
                    non_retryable_exceptions=(ValueError,))(fn)
    with pytest.raises(ValueError) as info:
        wrapped()
    assert info.value is failure
    assert fn.calls == 1
    assert clock.sleeps == []


def test_non_retryable_exceptions_win_over_the_retried_ones() -> None:
    fn = Script(KeyError("k"))
    wrapped = exact(VirtualClock(), max_attempts=5, base_delay=1.0, exceptions=(LookupError,),
                    non_retryable_exceptions=(KeyError,))(fn)
    with pytest.raises(KeyError):
        wrapped()
    assert fn.calls == 1


def test_an_exception_outside_exceptions_is_raised_unwrapped_after_one_attempt() -> None:
    failure = Fatal("no")
    fn = Script(failure)
    with pytest.raises(Fatal) as info:
        exact(VirtualClock(), max_attempts=5, base_delay=1.0, exceptions=(Flaky,))(fn)()
    assert info.value is failure
    assert fn.calls == 1


def test_subclasses_of_a_retried_exception_are_retried() -> None:
    fn = Script(ConnectionResetError(), BrokenPipeError(), then="ok")
    wrapped = exact(VirtualClock(), max_attempts=3, base_delay=1.0,
                    retry_on=(ConnectionError,))(fn)
    assert wrapped() == "ok"
    assert fn.calls == 3


def test_a_non_retryable_failure_on_a_later_attempt_stops_at_once() -> None:
    clock = VirtualClock()
    failure = Fatal("stop")
    fn = Script(Flaky(), failure)
    with pytest.raises(Fatal) as info:
        exact(clock, max_attempts=5, base_delay=1.0, exceptions=(Flaky,))(fn)()
    assert info.value is failure
    assert fn.calls == 2
    assert clock.sleeps == [1.0]


def test_retry_condition_decides_per_exception() -> None:
    seen: list[BaseException] = []

    def worth_it(exc: Exception) -> bool:
        seen.append(exc)
        return "transient" in str(exc)

    failures = [Flaky("transient 1"), Flaky("permanent")]
    fn = Script(*failures)
    with pytest.raises(Flaky) as info:
        exact(VirtualClock(), max_attempts=5, base_delay=1.0, retry_condition=worth_it)(fn)()
    assert info.value is failures[1]
    assert fn.calls == 2
    assert seen == failures


def test_retry_condition_only_sees_exceptions_that_match_exceptions() -> None:
    seen: list[BaseException] = []
    fn = Script(Fatal())
    wrapped = exact(VirtualClock(), max_attempts=3, base_delay=1.0, exceptions=(Flaky,),
                    retry_condition=lambda exc: seen.append(exc) or True)(fn)
    with pytest.raises(Fatal):
        wrapped()
    assert seen == []


def test_retry_on_result_retries_rejected_values() -> None:
    clock = VirtualClock()
    fn = Script(None, None, then={"id": 1})
    wrapped = exact(clock, max_attempts=5, base_delay=1.0,
                    retry_on_result=lambda value: value is None)(fn)
    assert wrapped() == {"id": 1}
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 2.0]


def test_exhausting_retry_on_result_raises_with_the_last_result() -> None:
    fn = Script(then="pending")
    with pytest.raises(RetryExhaustedError) as info:
        exact(VirtualClock(), max_attempts=3, base_delay=1.0,
              retry_on_result=lambda value: value == "pending")(fn)()
    assert info.value.attempts == 3
    assert info.value.last_result == "pending"
    assert info.value.last_exception is None
    assert "'pending'" in str(info.value)
    assert fn.calls == 3


def test_rejected_results_and_exceptions_share_one_attempt_budget() -> None:
    clock = VirtualClock()
    fn = Script(Flaky(), "pending", Flaky(), then="done")
    wrapped = exact(clock, max_attempts=4, base_delay=1.0, strategy="linear",
                    retry_on_result=lambda value: value == "pending")(fn)
    assert wrapped() == "done"
    assert fn.calls == 4
    assert clock.sleeps == [1.0, 2.0, 3.0]


def test_reraise_still_reports_exhaustion_when_the_last_attempt_returned_a_rejected_value() -> None:
    with pytest.raises(RetryExhaustedError) as info:
        exact(VirtualClock(), max_attempts=2, base_delay=1.0, reraise=True,
              retry_on_result=lambda value: True)(Script(then=0))()
    assert info.value.last_result == 0


def test_open_circuit_errors_are_not_retried_by_default() -> None:
    rejection = CircuitBreakerError("payments", CircuitState.OPEN, 30.0)
    fn = Script(rejection)
    with pytest.raises(CircuitBreakerError) as info:
        exact(VirtualClock(), max_attempts=5, base_delay=1.0)(fn)()
    assert info.value is rejection
    assert fn.calls == 1


def test_open_circuit_errors_are_retried_after_the_breaker_timeout_when_named() -> None:
    clock = VirtualClock()
    fn = Script(CircuitBreakerError("payments", CircuitState.OPEN, 7.5), then="ok")
    wrapped = exact(clock, max_attempts=3, base_delay=1.0,
                    exceptions=(CircuitBreakerError, ConnectionError))(fn)
    assert wrapped() == "ok"
    assert fn.calls == 2
    assert clock.sleeps == [7.5]


@pytest.mark.parametrize(
    "interrupt",
    [KeyboardInterrupt(), SystemExit(3), GeneratorExit(), asyncio.CancelledError()],
    ids=lambda exc: type(exc).__name__,
)
def test_interrupts_and_cancellation_propagate_unchanged_after_one_attempt(
    interrupt: BaseException,
) -> None:
    clock = VirtualClock()
    failures: list[Any] = []
    fn = Script(interrupt)
    wrapped = exact(clock, max_attempts=5, base_delay=1.0, exceptions=(Exception,),
                    on_failure=lambda *args: failures.append(args))(fn)
    with pytest.raises(BaseException) as info:
        wrapped()
    assert info.value is interrupt
    assert fn.calls == 1
    assert clock.sleeps == []
    assert failures == []


@pytest.mark.parametrize(
    "interrupt",
    [KeyboardInterrupt(), SystemExit(3), GeneratorExit(), asyncio.CancelledError()],
    ids=lambda exc: type(exc).__name__,
)
def test_an_interrupt_during_a_retry_stops_retrying(interrupt: BaseException) -> None:
    clock = VirtualClock()
    fn = Script(Flaky(), interrupt)
    with pytest.raises(BaseException) as info:
        exact(clock, max_attempts=5, base_delay=1.0)(fn)()
    assert info.value is interrupt
    assert fn.calls == 2
    assert clock.sleeps == [1.0]


# --- Retry-After hints -------------------------------------------------------------------


def test_a_retry_after_attribute_replaces_the_computed_wait() -> None:
    clock = VirtualClock()
    fn = Script(Throttled(7), Throttled(0.25), then="ok")
    assert exact(clock, max_attempts=3, base_delay=1.0, max_delay=60.0)(fn)() == "ok"
    assert clock.sleeps == [7.0, 0.25]


def test_a_retry_after_hint_is_capped_at_max_delay() -> None:
    clock = VirtualClock()
    fn = Script(Throttled(3600), then="ok")
    assert exact(clock, max_attempts=2, base_delay=1.0, max_delay=10.0)(fn)() == "ok"
    assert clock.sleeps == [10.0]


@pytest.mark.parametrize("hint", [None, -5, True, "soon", math.nan])
def test_unusable_retry_after_hints_fall_back_to_the_schedule(hint: object) -> None:
    clock = VirtualClock()
    fn = Script(Throttled(hint), Throttled(hint), then="ok")
    assert exact(clock, max_attempts=3, base_delay=1.0)(fn)() == "ok"
    assert clock.sleeps == [1.0, 2.0]


def test_a_retry_after_callable_sets_the_wait_per_exception() -> None:
    clock = VirtualClock()
    fn = Script(HttpError(429), HttpError(503), HttpError(500), then="ok")
    waits = {429: 30.0, 503: 1000.0}
    wrapped = exact(clock, max_attempts=4, base_delay=1.0, max_delay=60.0,
                    retry_after=lambda exc: waits.get(getattr(exc, "status_code", 0)))(fn)
    assert wrapped() == "ok"
    # 30 s as told, 1000 s capped at 60, and no hint for the 500: the schedule's 4 s.
    assert clock.sleeps == [30.0, 60.0, 4.0]


def test_a_zero_retry_after_hint_retries_without_sleeping() -> None:
    fn = Script(Throttled(0), then="ok")
    assert retry(max_attempts=2, base_delay=5.0, clock=NoSleepClock())(fn)() == "ok"
    assert fn.calls == 2


# --- deadlines ---------------------------------------------------------------------------


def test_a_deadline_stops_when_the_next_wait_would_pass_it() -> None:
    clock = VirtualClock()
    fn = always(clock=clock, cost=1.0)
    wrapped = exact(clock, max_attempts=100, base_delay=1.0, strategy="fixed_delay",
                    deadline=5.0)(fn)
    with pytest.raises(RetryExhaustedError) as info:
        wrapped()
    # t=1 fail, wait to 2; t=3 fail, wait to 4; t=5 fail: 5 + 1 > 5, give up.
    assert fn.calls == 3
    assert info.value.attempts == 3
    assert clock.sleeps == [1.0, 1.0]
    assert clock.now == 5.0


def test_a_wait_that_ends_exactly_at_the_deadline_is_still_taken() -> None:
    clock = VirtualClock()
    fn = always(clock=clock, cost=1.0)
    with pytest.raises(RetryExhaustedError):
        exact(clock, max_attempts=100, base_delay=1.0, strategy="constant", deadline=6.0)(fn)()
    assert fn.calls == 4
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_a_deadline_alone_bounds_an_unlimited_number_of_attempts() -> None:
    clock = VirtualClock()
    fn = always()
    wrapped = exact(clock, max_attempts=None, base_delay=1.0, strategy="constant",
                    deadline=3.5)(fn)
    with pytest.raises(RetryExhaustedError) as info:
        wrapped()
    assert fn.calls == 4
    assert info.value.attempts == 4
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_max_attempts_still_applies_before_the_deadline() -> None:
    clock = VirtualClock()
    fn = always()
    with pytest.raises(RetryExhaustedError):
        exact(clock, max_attempts=2, base_delay=1.0, deadline=100.0)(fn)()
    assert fn.calls == 2


def test_a_deadline_counts_from_the_start_of_the_call_not_of_the_clock() -> None:
    clock = VirtualClock(start=1000.0)
    fn = always(clock=clock, cost=1.0)
    wrapped = exact(clock, max_attempts=100, base_delay=1.0, strategy="constant", deadline=5.0)
    with pytest.raises(RetryExhaustedError):
        wrapped(fn)()
    assert fn.calls == 3


def test_a_deadline_call_that_succeeds_returns_its_value() -> None:
    clock = VirtualClock()
    fn = Script(Flaky(), then="ok", clock=clock, cost=0.5)
    assert exact(clock, max_attempts=None, base_delay=1.0, deadline=10.0)(fn)() == "ok"
    assert fn.calls == 2


# --- callbacks ---------------------------------------------------------------------------


def test_on_retry_gets_the_failed_attempt_number_and_its_exception_before_the_wait() -> None:
    clock = VirtualClock()
    calls: list[tuple[int, Any, float]] = []
    failures = [Flaky("1"), Flaky("2")]
    fn = Script(*failures)
    wrapped = exact(clock, max_attempts=3, base_delay=1.0,
                    on_retry=lambda attempt, exc: calls.append((attempt, exc, clock.now)))(fn)
    assert wrapped() == "ok"
    assert calls == [(1, failures[0], 0.0), (2, failures[1], 1.0)]


def test_on_failure_gets_the_attempt_count_and_the_last_exception_once() -> None:
    calls: list[tuple[int, Any]] = []
    failures = [Flaky("1"), Flaky("2"), Flaky("3")]
    wrapped = exact(VirtualClock(), max_attempts=3, base_delay=1.0,
                    on_failure=lambda attempts, exc: calls.append((attempts, exc)))
    with pytest.raises(RetryExhaustedError):
        wrapped(Script(*failures))()
    assert calls == [(3, failures[2])]


def test_on_failure_is_not_called_when_the_call_recovers() -> None:
    calls: list[Any] = []
    wrapped = exact(VirtualClock(), max_attempts=3, base_delay=1.0,
                    on_failure=lambda *args: calls.append(args))(Script(Flaky()))
    assert wrapped() == "ok"
    assert calls == []


def test_on_success_gets_the_attempt_count_and_the_duration_on_the_clock() -> None:
    clock = VirtualClock()
    calls: list[tuple[int, float]] = []
    fn = Script(Flaky(), Flaky(), then="ok", clock=clock, cost=0.5)
    wrapped = exact(clock, max_attempts=3, base_delay=1.0,
                    on_success=lambda attempts, duration: calls.append((attempts, duration)))(fn)
    assert wrapped() == "ok"
    # three attempts of 0.5 s plus waits of 1 s and 2 s
    assert calls == [(3, 4.5)]


def test_on_success_reports_a_first_try_success_as_one_attempt() -> None:
    clock = VirtualClock()
    calls: list[tuple[int, float]] = []
    fn = Script(then="ok", clock=clock, cost=0.25)
    exact(clock, on_success=lambda *args: calls.append(args))(fn)()
    assert calls == [(1, 0.25)]


def test_all_three_callbacks_run_in_order_for_one_call() -> None:
    events: list[str] = []
    wrapped = exact(
        VirtualClock(), max_attempts=3, base_delay=1.0,
        on_retry=lambda attempt, exc: events.append(f"retry {attempt}"),
        on_failure=lambda attempts, exc: events.append(f"failure {attempts}"),
        on_success=lambda attempts, duration: events.append(f"success {attempts}"),
    )
    wrapped(Script(Flaky(), then="ok"))()
    with pytest.raises(RetryExhaustedError):
        wrapped(always())()
    assert events == ["retry 1", "success 2", "retry 1", "retry 2", "failure 3"]


def test_a_callback_that_raises_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("observer bug")

    wrapped = exact(VirtualClock(), max_attempts=2, base_delay=1.0, on_retry=broken,
                    on_failure=broken, on_success=broken)
    with caplog.at_level(logging.ERROR, logger="buttress"):
        assert wrapped(Script(Flaky(), then="ok"))() == "ok"
        with pytest.raises(RetryExhaustedError) as info:
            wrapped(always())()
    assert isinstance(info.value.last_exception, Flaky)
    logged = [r for r in caplog.records if r.exc_info and str(r.exc_info[1]) == "observer bug"]
    assert len(logged) == 4  # on_retry and on_success, then on_retry and on_failure


# --- should_retry / is_transient ---------------------------------------------------------


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class ClientError(Exception):
    """An error carrying the response, as httpx and requests do."""

    def __init__(self, status_code: int) -> None:
        super().__init__(status_code)
        self.response = Response(status_code)


class StatusError(Exception):
    """An error with a ``.status`` attribute, as aiohttp does."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (ConnectionError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OperationTimeoutError(operation="fetch", timeout=1.0), True),
        (HttpError(503), True),
        (HttpError(429), True),
        (HttpError(502), True),
        (HttpError(504), True),
        (HttpError(500), True),
        (HttpError(408), True),
        (HttpError(404), False),
        (HttpError(400), False),
        (HttpError(401), False),
        (ClientError(503), True),
        (ClientError(404), False),
        (StatusError(503), True),
        (StatusError(404), False),
        (ValueError("bad"), False),
        (KeyError("k"), False),
    ],
    ids=repr,
)
def test_is_transient_recognises_network_failures_and_retryable_statuses(
    exc: Exception, transient: bool
) -> None:
    assert is_transient(exc) is transient
    assert should_retry(exc) is transient


@pytest.mark.parametrize(
    "exc", [KeyboardInterrupt(), SystemExit(0), GeneratorExit(), asyncio.CancelledError()],
    ids=lambda exc: type(exc).__name__,
)
def test_should_retry_never_retries_interrupts_or_cancellation(exc: BaseException) -> None:
    assert should_retry(exc) is False
    assert should_retry(exc, RetryConfig()) is False


def test_should_retry_with_a_config_follows_that_config() -> None:
    config = RetryConfig(retry_on=(Flaky, ValueError), non_retryable_exceptions=(KeyError,),
                         retry_condition=lambda exc: "skip" not in str(exc))
    assert should_retry(Flaky("again"), config) is True
    assert should_retry(ValueError("again"), config) is True
    assert should_retry(Flaky("skip me"), config) is False
    assert should_retry(ConnectionError(), config) is False
    assert should_retry(KeyError("k"), RetryConfig(non_retryable_exceptions=(KeyError,))) is False


def test_should_retry_refuses_open_circuit_errors_unless_named() -> None:
    rejection = CircuitBreakerError("db", CircuitState.OPEN, 1.0)
    assert should_retry(rejection, RetryConfig()) is False
    assert should_retry(rejection, RetryConfig(exceptions=(CircuitBreakerError,))) is True


# --- concurrency -------------------------------------------------------------------------


def test_attempt_counts_are_exact_under_eight_threads() -> None:
    threads, calls_per_thread = 8, 10_000
    local = threading.local()

    @retry(max_attempts=3, base_delay=0, retry_on=(Flaky,), clock=NoSleepClock())
    def first_attempt_fails() -> int:
        local.attempts += 1
        local.total += 1
        if local.attempts == 1:
            raise Flaky("first attempt")
        return local.attempts

    def worker() -> tuple[list[int], int]:
        local.total = 0
        attempts_per_call = []
        for _ in range(calls_per_thread):
            local.attempts = 0
            attempts_per_call.append(first_attempt_fails())
        return attempts_per_call, local.total

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [f.result() for f in [pool.submit(worker) for _ in range(threads)]]

    assert all(per_call == [2] * calls_per_thread for per_call, _ in results)
    assert sum(total for _, total in results) == threads * calls_per_thread * 2 == 160_000


def test_waits_are_exact_when_threads_share_a_virtual_clock() -> None:
    clock = VirtualClock()
    local = threading.local()

    @retry(max_attempts=3, base_delay=0.5, jitter=0, clock=clock)
    def first_attempt_fails() -> str:
        local.attempts = getattr(local, "attempts", 0) + 1
        if local.attempts % 2 == 1:
            raise Flaky()
        return "ok"

    def worker() -> list[str]:
        return [first_attempt_fails() for _ in range(500)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [f.result() for f in [pool.submit(worker) for _ in range(8)]]

    assert results == [["ok"] * 500] * 8
    assert clock.sleeps == [0.5] * 4000



def test_is_transient_sees_through_urllib_errors() -> None:
    import urllib.error

    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert is_transient(refused)
    assert not is_transient(urllib.error.URLError("unknown url type"))

    class CodeOnly(Exception):
        code = 503

    assert is_transient(CodeOnly())
    assert not is_transient(HttpError(404))
