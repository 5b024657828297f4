"""Adaptive throttling: the SRE book's formula, on the virtual clock and a
seeded random source."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from buttress import ConfigurationError
from buttress._core.errors import ThrottledError
from buttress.events import CallRejected
from buttress.testing import VirtualClock
from buttress.throttle import AdaptiveThrottle, AdaptiveThrottleConfig, ThrottlePolicy


class Overloaded(Exception):
    pass


class Draws(random.Random):
    """A random source returning the given draws, in turn."""

    def __init__(self, *draws: float) -> None:
        super().__init__(0)
        self.draws = list(draws)

    def random(self) -> float:
        return self.draws.pop(0)


def fail() -> None:
    raise Overloaded("busy")


@pytest.mark.parametrize(("requests", "accepts", "k", "expected"), [
    (10, 10, 2.0, 0.0), (10, 5, 2.0, 0.0), (10, 4, 2.0, 2 / 11), (10, 0, 2.0, 10 / 11),
    (100, 10, 2.0, 80 / 101), (100, 10, 1.5, 85 / 101), (0, 0, 2.0, 0.0),
])
def test_probability_follows_the_sre_formula(requests: int, accepts: int, k: float,
                                             expected: float) -> None:
    policy = ThrottlePolicy(AdaptiveThrottleConfig(k=k), now=0.0)
    for i in range(requests):
        policy.record(0.0, accepted=i < accepts)
    assert policy.probability(0.0) == pytest.approx(expected, abs=1e-12)


def test_a_healthy_dependency_is_never_throttled() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(clock=clock, seed=1)
    for _ in range(1000):
        assert throttle.call(lambda: 7) == 7
    assert throttle.probability == 0.0
    assert throttle.counts() == (1000.0, 1000.0)


def test_refusals_are_drawn_against_the_probability_and_counted_as_requests() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(clock=clock, random_source=Draws(0.99, 0.5, 0.5),
                                rejected_on=(Overloaded,))
    with pytest.raises(Overloaded):
        throttle.call(fail)           # p = 0 before any request: no draw needed
    # requests 1, accepts 0: p = 1/2; a draw of 0.99 passes, the call is sent
    assert throttle.probability == 0.5
    with pytest.raises(Overloaded):
        throttle.call(fail)
    assert throttle.counts() == (2.0, 0.0)
    # p = 2/3; a draw of 0.5 is under it: refused locally, counted as a request
    calls = []
    with pytest.raises(ThrottledError) as info:
        throttle.call(lambda: calls.append(1))
    assert calls == []
    assert info.value.probability == pytest.approx(2 / 3)
    assert throttle.counts() == (3.0, 0.0)
    assert throttle.probability == pytest.approx(3 / 4)


def test_other_failures_count_as_accepted() -> None:
    throttle = AdaptiveThrottle(clock=VirtualClock(), rejected_on=(Overloaded,), seed=3)
    for _ in range(50):
        with pytest.raises(KeyError):
            throttle.call(lambda: {}["x"])
    assert throttle.counts() == (50.0, 50.0)
    assert throttle.probability == 0.0


def test_throttling_lets_about_k_times_the_accepted_load_through_with_a_seed() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(clock=clock, seed=42, k=2.0, window=10.0, slots=10,
                                rejected_on=(Overloaded,))
    free_at = 0.0

    def backend() -> None:  # accepts one request per 20 ms: 50/s of the 200/s offered
        nonlocal free_at
        if clock.now < free_at:
            raise Overloaded("busy")
        free_at = clock.now + 0.02

    outcomes = {"ok": 0, "overloaded": 0, "throttled": 0}
    for _ in range(2000):
        clock.advance(0.005)
        try:
            throttle.call(backend)
            outcomes["ok"] += 1
        except Overloaded:
            outcomes["overloaded"] += 1
        except ThrottledError:
            outcomes["throttled"] += 1
    # Same seed, same run: exact counts. What is sent stays about K = 2 times
    # what is accepted; the rest never leaves the client.
    assert outcomes == {"ok": 289, "overloaded": 295, "throttled": 1416}
    sent = outcomes["ok"] + outcomes["overloaded"]
    assert 1.9 < sent / outcomes["ok"] < 2.1
    again = AdaptiveThrottle(clock=VirtualClock(), seed=42, k=2.0, window=10.0, slots=10,
                             rejected_on=(Overloaded,))
    assert again.config == throttle.config


def test_history_leaves_the_window() -> None:
    clock = VirtualClock()
    throttle = AdaptiveThrottle(clock=clock, window=10.0, slots=10, rejected_on=(Overloaded,),
                                random_source=Draws(*[0.999] * 10))
    for _ in range(10):
        with pytest.raises(Overloaded):
            throttle.call(fail)
    assert throttle.probability == pytest.approx(10 / 11)
    clock.advance(10.0)
    assert throttle.probability == 0.0


def test_a_refusal_reports_a_call_rejected_event() -> None:
    throttle = AdaptiveThrottle(clock=VirtualClock(), random_source=Draws(0.0), name="search")
    seen: list[CallRejected] = []
    throttle.events.add(seen.append, CallRejected)
    throttle.record(False)
    with pytest.raises(ThrottledError):
        throttle.call(lambda: None)
    assert seen == [CallRejected("adaptive_throttle", "search", "throttled", 0.0)]


async def test_async_calls_are_throttled_the_same_way() -> None:
    throttle = AdaptiveThrottle(clock=VirtualClock(), random_source=Draws(0.999, 0.0),
                                rejected_on=(Overloaded,))

    async def failing() -> None:
        raise Overloaded

    with pytest.raises(Overloaded):
        await throttle.acall(failing)
    with pytest.raises(Overloaded):
        await throttle.acall(failing)
    with pytest.raises(ThrottledError):
        await throttle.acall(failing)
    assert throttle.counts() == (3.0, 0.0)


async def test_a_cancelled_call_is_not_counted() -> None:
    throttle = AdaptiveThrottle(clock=VirtualClock(), seed=0)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await throttle.acall(cancelled)
    assert throttle.counts() == (0.0, 0.0)


def test_counts_are_exact_under_eight_threads_and_1000_tasks() -> None:
    throttle = AdaptiveThrottle(clock=VirtualClock(), seed=0)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        for _ in range(500):
            throttle.call(lambda: None)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle.counts() == (4000.0, 4000.0)

    async def one() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(throttle.acall(one) for _ in range(1000)))

    asyncio.run(main())
    assert throttle.counts() == (5000.0, 5000.0)


@pytest.mark.parametrize(("field", "value"), [
    ("k", 0.5), ("window", 0), ("slots", 0), ("slots", 5000), ("seed", -1),
    ("rejected_on", (KeyboardInterrupt,)),
])
def test_config_refuses_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        AdaptiveThrottleConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == f"AdaptiveThrottleConfig.{field}"
