"""Hedged requests: the first success wins, the losers are cancelled (async) or
abandoned (sync), hedges never exceed max_hedges or the budget, deadlines hold."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from buttress import ConfigurationError, deadline
from buttress.budget import TokenBucketBudget
from buttress.hedge import Hedge, HedgeConfig, HedgeStarted, LatencyWindow
from buttress.testing import VirtualClock


class Attempts:
    """Async attempts that each wait for the test to finish them."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[str]] = []
        self.cancelled: list[int] = []
        self.started = asyncio.Event()

    async def __call__(self) -> str:
        number = len(self.futures) + 1
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        self.started.set()
        try:
            return await future
        except asyncio.CancelledError:
            self.cancelled.append(number)
            raise


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_slow_attempt_is_hedged_after_the_delay_and_the_loser_cancelled() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, clock=clock)
    seen: list[HedgeStarted] = []
    hedge.events.add(seen.append, HedgeStarted)
    attempts = Attempts()
    call = asyncio.ensure_future(hedge.acall(attempts))
    await _settle()
    assert len(attempts.futures) == 1
    clock.advance(0.099)
    await _settle()
    assert len(attempts.futures) == 1       # not before the delay
    clock.advance(0.001)
    await _settle()
    assert len(attempts.futures) == 2
    attempts.futures[1].set_result("second")
    assert await call == "second"
    assert attempts.cancelled == [1]
    assert seen == [HedgeStarted("hedge", None, 2, 0.1, "slow")]


async def test_a_fast_first_attempt_starts_no_hedge() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, clock=clock)
    attempts = Attempts()
    call = asyncio.ensure_future(hedge.acall(attempts))
    await _settle()
    attempts.futures[0].set_result("first")
    assert await call == "first"
    assert len(attempts.futures) == 1
    assert attempts.cancelled == []


async def test_a_failed_attempt_starts_the_next_at_once() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=10.0, max_hedges=2, clock=clock)
    attempts = Attempts()
    call = asyncio.ensure_future(hedge.acall(attempts))
    await _settle()
    attempts.futures[0].set_exception(ConnectionError("down"))
    await _settle()
    assert len(attempts.futures) == 2
    assert clock.now == 0.0
    attempts.futures[1].set_result("ok")
    assert await call == "ok"


async def test_hedges_stop_at_max_hedges_and_the_last_failure_is_raised() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, max_hedges=2, clock=clock)
    attempts = Attempts()
    call = asyncio.ensure_future(hedge.acall(attempts))
    for _ in range(5):
        await _settle()
        clock.advance(0.1)
    await _settle()
    assert len(attempts.futures) == 3
    for i, future in enumerate(attempts.futures):
        future.set_exception(ConnectionError(f"attempt {i + 1}"))
        await _settle()
    with pytest.raises(ConnectionError, match="attempt 3"):
        await call


async def test_hedges_never_exceed_the_budget() -> None:
    clock = VirtualClock()
    budget = TokenBucketBudget(max_tokens=4, token_ratio=0.1)
    hedge = Hedge(delay=0.1, max_hedges=3, clock=clock, budget=budget)
    for _ in range(2):
        budget.on_failure()          # 2 tokens left: not above 4 / 2
    attempts = Attempts()
    call = asyncio.ensure_future(hedge.acall(attempts))
    for _ in range(3):
        await _settle()
        clock.advance(0.1)
    await _settle()
    assert len(attempts.futures) == 1
    attempts.futures[0].set_result("alone")
    assert await call == "alone"
    assert budget.tokens == 2.1


async def test_a_failure_not_in_hedge_on_ends_the_call() -> None:
    hedge = Hedge(delay=0.1, hedge_on=(ConnectionError,), clock=VirtualClock())
    attempts = Attempts()
    call = asyncio.ensure_future(hedge.acall(attempts))
    await _settle()
    attempts.futures[0].set_exception(KeyError("bad request"))
    with pytest.raises(KeyError):
        await call
    assert len(attempts.futures) == 1


async def test_no_hedge_starts_that_the_deadline_would_cut_short() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, clock=clock)
    attempts = Attempts()

    async def within_deadline() -> str:
        async with deadline(0.15, clock=clock):
            return await hedge.acall(attempts)

    call = asyncio.ensure_future(within_deadline())
    await _settle()
    clock.advance(0.1)           # 0.05 s left, less than the 0.1 s a hedge needs
    await _settle()
    assert len(attempts.futures) == 1
    attempts.futures[0].set_result("first")
    assert await call == "first"


def test_the_quantile_delay_follows_observed_latencies() -> None:
    clock = VirtualClock()
    hedge = Hedge(quantile=0.9, delay=1.0, min_samples=10, samples=100, clock=clock)
    assert hedge.delay == 1.0                  # too few samples: the fixed delay
    window = LatencyWindow(100, 0.9, 10)
    for ms in range(1, 101):
        window.add(ms / 1000)
        hedge._record(ms / 1000)
    assert hedge.delay == window.value() == 0.09


def test_the_latency_window_keeps_only_its_size() -> None:
    window = LatencyWindow(size=20, quantile=0.5, min_samples=1)
    for value in range(1000):
        window.add(float(value))
    assert len(window.values) == 20
    assert sorted(window.values) == [float(v) for v in range(980, 1000)]


def test_sync_hedging_abandons_the_slow_attempt_on_the_worker_pool() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, clock=clock)
    release = threading.Event()
    started: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()

    def attempt() -> str:
        with lock:
            number = len(started) + 1
            started.append(number)
        if number == 1:
            release.wait(10)
            finished.append(number)
            return "slow"
        return "fast"

    done = threading.Event()

    def mover() -> None:
        while not done.is_set():
            if started:
                clock.advance(0.05)
            done.wait(0.002)

    thread = threading.Thread(target=mover)
    thread.start()
    try:
        assert hedge.call(attempt) == "fast"
    finally:
        done.set()
        thread.join()
    assert started == [1, 2]
    assert finished == []       # still running, abandoned
    release.set()


def test_sync_hedging_returns_a_quick_first_attempt_without_hedging() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, clock=clock)
    calls = []
    assert hedge.call(lambda: calls.append(1) or "ok") == "ok"
    assert calls == [1]


def test_sync_attempts_see_the_callers_deadline() -> None:
    clock = VirtualClock()
    hedge = Hedge(delay=0.1, clock=clock)
    from buttress import remaining_time

    with deadline(5.0, clock=clock):
        assert hedge.call(remaining_time) == 5.0


def test_sync_failures_hedge_at_once_and_the_last_is_raised() -> None:
    hedge = Hedge(delay=10.0, max_hedges=2, clock=VirtualClock())
    calls = []

    def failing() -> None:
        calls.append(time.monotonic())
        raise ConnectionError(f"attempt {len(calls)}")

    with pytest.raises(ConnectionError, match="attempt 3"):
        hedge.call(failing)
    assert len(calls) == 3


@pytest.mark.parametrize(("field", "value"), [
    ("delay", -1), ("quantile", 0), ("quantile", 1.5), ("min_samples", 0), ("max_hedges", 0),
    ("samples", 5),
])
def test_config_refuses_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        HedgeConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == f"HedgeConfig.{field}"
