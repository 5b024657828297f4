"""Chaos: seeded injection of latency, failures and results."""

from __future__ import annotations

import contextlib
import random
import threading

import pytest

from buttress import ConfigurationError, Pipeline, Retry
from buttress._core.errors import ChaosError
from buttress.chaos import Chaos, ChaosConfig, FaultInjected
from buttress.testing import VirtualClock


def _counts(chaos: Chaos, calls: int) -> dict[str, int]:
    counts = {"called": 0, "injected error": 0, "injected result": 0}
    for _ in range(calls):
        try:
            result = chaos.call(lambda: "real")
        except ChaosError:
            counts["injected error"] += 1
            continue
        counts["called" if result == "real" else "injected result"] += 1
    return counts


def test_injection_rates_are_reproducible_with_a_seed() -> None:
    config = ChaosConfig(exception_rate=0.1, result_rate=0.2, result="canned", seed=7)
    first = _counts(Chaos(config, clock=VirtualClock()), 10_000)
    again = _counts(Chaos(config, clock=VirtualClock()), 10_000)
    assert first == again == {"called": 6949, "injected error": 966, "injected result": 2085}


def test_latency_is_injected_on_the_clock_at_its_rate() -> None:
    clock = VirtualClock()
    chaos = Chaos(latency=0.25, latency_rate=0.5, seed=1, clock=clock)
    for _ in range(1000):
        chaos.call(lambda: None)
    assert set(clock.sleeps) == {0.25}
    assert len(clock.sleeps) == 502


def test_an_exception_class_or_instance_is_raised() -> None:
    chaos = Chaos(exception_rate=1.0, exception=TimeoutError, clock=VirtualClock())
    with pytest.raises(TimeoutError):
        chaos.call(lambda: None)
    boom = KeyError("boom")
    chaos.configure(exception=boom)
    with pytest.raises(KeyError) as info:
        chaos.call(lambda: None)
    assert info.value is boom


def test_a_disabled_chaos_calls_through_and_draws_nothing() -> None:
    source = random.Random(3)
    chaos = Chaos(exception_rate=1.0, enabled=False, random_source=source, clock=VirtualClock())
    state = source.getstate()
    assert [chaos.call(lambda: 1) for _ in range(100)] == [1] * 100
    assert source.getstate() == state
    chaos.configure(enabled=True)
    with pytest.raises(ChaosError):
        chaos.call(lambda: 1)


def test_retry_outside_chaos_rides_out_injected_failures() -> None:
    clock = VirtualClock()
    chaos = Chaos(exception_rate=0.5, seed=11, clock=clock)
    protect = Pipeline(Retry(max_attempts=10, base_delay=0.0, jitter=0, clock=clock), chaos)
    assert [protect.call(lambda: "ok") for _ in range(100)] == ["ok"] * 100


def test_each_injection_reports_an_event() -> None:
    clock = VirtualClock()
    chaos = Chaos(exception_rate=0.5, result_rate=0.5, result=0, latency=1.0, latency_rate=1.0,
                  seed=2, clock=clock, name="game-day")
    seen: list[FaultInjected] = []
    chaos.events.add(seen.append, FaultInjected)
    for _ in range(10):
        with contextlib.suppress(ChaosError):
            chaos.call(lambda: None)
    faults = [event.fault for event in seen]
    assert faults.count("latency") == 10
    assert faults.count("exception") + faults.count("result") == 10
    assert all(event.name == "game-day" for event in seen)


async def test_async_calls_are_injected_the_same_way() -> None:
    clock = VirtualClock()
    config = ChaosConfig(exception_rate=0.3, latency=0.5, latency_rate=0.2, seed=5)
    sync_run = _counts(Chaos(config, clock=VirtualClock()), 200)
    chaos = Chaos(config, clock=clock)

    async def real() -> str:
        return "real"

    counts = {"called": 0, "injected error": 0, "injected result": 0}
    for _ in range(200):
        try:
            await chaos.acall(real)
            counts["called"] += 1
        except ChaosError:
            counts["injected error"] += 1
    assert counts == sync_run
    assert len(clock.sleeps) > 0


def test_counts_add_up_under_eight_threads() -> None:
    chaos = Chaos(exception_rate=0.25, seed=9, clock=VirtualClock())
    outcomes: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(500):
            try:
                chaos.call(lambda: None)
                ok = True
            except ChaosError:
                ok = False
            with lock:
                outcomes.append(ok)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One seeded source drawn under a lock: the totals do not depend on scheduling.
    assert len(outcomes) == 4000
    assert outcomes.count(False) == _counts(Chaos(exception_rate=0.25, seed=9,
                                                   clock=VirtualClock()), 4000)["injected error"]


@pytest.mark.parametrize(("field", "value"), [
    ("exception_rate", 1.5), ("latency_rate", -0.1), ("latency", -1), ("enabled", "yes"),
    ("exception", "boom"), ("seed", -3),
])
def test_config_refuses_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        ChaosConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == f"ChaosConfig.{field}"


def test_rates_that_add_up_past_one_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="result_rate"):
        ChaosConfig(exception_rate=0.6, result_rate=0.6)
