"""Rate limiter: GCRA and token bucket conformance, exact waits on the virtual
clock, cancellation, deadlines, counts under 8 threads and 200 tasks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from buttress import ConfigurationError, Pipeline, Timeout, deadline
from buttress._core.errors import RateLimitedError
from buttress.events import CallRejected
from buttress.ratelimit import RateLimiter, RateLimiterConfig, RateMachine
from buttress.testing import VirtualClock

ALGORITHMS = ["gcra", "token_bucket"]


@pytest.fixture(params=ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def test_a_burst_goes_at_once_then_one_permit_per_interval(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=4, burst=3, algorithm=algorithm, clock=clock)
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after() == 0.25
    clock.advance(0.25)
    assert [limiter.try_acquire() for _ in range(2)] == [True, False]
    clock.advance(1.0)  # refills to the burst, not beyond
    assert sum(limiter.try_acquire() for _ in range(10)) == 3


def test_a_rejection_carries_retry_after_and_reports_an_event(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=8, algorithm=algorithm, clock=clock, name="partner")
    seen: list[CallRejected] = []
    limiter.events.add(seen.append, CallRejected)
    limiter.call(lambda: None)
    clock.advance(0.0625)
    with pytest.raises(RateLimitedError) as info:
        limiter.call(lambda: None)
    assert info.value.retry_after == 0.0625
    assert info.value.reason == "no_wait"
    assert info.value.rate == 8.0
    assert seen == [CallRejected("rate_limiter", "partner", "limited", 0.0625)]


def test_waits_are_exact_and_in_order(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=4, burst=1, max_wait=None, algorithm=algorithm, clock=clock)
    starts = []
    for _ in range(5):
        limiter.call(lambda: starts.append(clock.now))
    assert starts == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]


def test_a_wait_longer_than_max_wait_is_refused_without_taking_a_permit(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=2, burst=1, max_wait=0.5, algorithm=algorithm, clock=clock)
    limiter.acquire()
    limiter.acquire()          # waits 0.5 s
    assert clock.now == 0.5
    limiter.try_acquire() or None
    with pytest.raises(RateLimitedError) as info:
        limiter.acquire(max_wait=0.25)
    assert info.value.reason == "max_wait"
    assert info.value.retry_after == 0.5
    assert clock.sleeps == [0.5]


def test_a_wait_past_the_deadline_is_never_started(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=1, max_wait=None, algorithm=algorithm, clock=clock)
    limiter.acquire()
    with deadline(0.5, clock=clock), pytest.raises(RateLimitedError) as info:
        limiter.acquire()
    assert info.value.reason == "deadline"
    assert "deadline" in str(info.value)
    assert clock.sleeps == []
    with deadline(1.0, clock=clock):
        limiter.acquire()      # exactly fits
    assert clock.sleeps == [1.0]


async def test_async_waits_are_exact(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=10, burst=2, max_wait=None, algorithm=algorithm, clock=clock)
    for _ in range(4):
        await limiter.acquire_async()
    assert clock.sleeps == pytest.approx([0.1, 0.1])


async def test_a_cancelled_waiter_gives_its_permit_back(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=1, max_wait=None, algorithm=algorithm, clock=clock)
    limiter.acquire()
    started = asyncio.Event()

    class Blocking(VirtualClock):
        async def async_sleep(self, seconds: float) -> None:
            started.set()
            await asyncio.Event().wait()

    limiter.clock = Blocking()
    limiter.clock.advance(0.0)
    task = asyncio.create_task(limiter.acquire_async())
    await started.wait()
    assert limiter.retry_after() == 2.0  # the waiter holds the next permit
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.retry_after() == 1.0  # given back


def test_inside_a_timeout_a_wait_that_would_outlast_it_is_refused_at_once(
        algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=1, max_wait=None, algorithm=algorithm, clock=clock)
    limiter.acquire()
    protect = Pipeline(Timeout(0.5, clock=clock), limiter, ordered=True)
    calls: list[int] = []
    with pytest.raises(RateLimitedError) as info:
        protect.call(lambda: calls.append(1))
    assert info.value.reason == "deadline"
    assert info.value.retry_after == 1.0
    assert calls == []
    assert limiter.retry_after() == 1.0  # nothing was reserved


def test_try_acquire_waits_for_the_lock_instead_of_failing() -> None:
    limiter = RateLimiter(rate=1000, burst=1, clock=VirtualClock())
    result: list[bool] = []
    limiter._lock.acquire()
    thread = threading.Thread(target=lambda: result.append(limiter.try_acquire()))
    thread.start()
    thread.join(0.05)
    assert thread.is_alive()          # blocked on the lock, not failed
    limiter._lock.release()
    thread.join()
    assert result == [True]


def test_permits_outside_one_to_burst_are_refused() -> None:
    limiter = RateLimiter(rate=1, burst=2, clock=VirtualClock())
    for bad in (0, 3, True, 1.0):
        with pytest.raises(ValueError, match="permits"):
            limiter.try_acquire(bad)  # type: ignore[arg-type]
    assert limiter.try_acquire(2)


def test_holds_its_rate_exactly_under_eight_threads_on_the_virtual_clock(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=100, burst=5, algorithm=algorithm, clock=clock)
    step = threading.Barrier(9)
    granted = [0] * 8
    steps = 400  # 2 s in 5 ms steps

    def worker(i: int) -> None:
        for _ in range(steps):
            step.wait()
            for _ in range(3):
                granted[i] += limiter.try_acquire()
            step.wait()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(steps):
        step.wait()      # workers try at this instant
        step.wait()      # all done
        clock.advance(0.005)
    for thread in threads:
        thread.join()
    # t = 0 .. 1.995: the burst of 5, then one per 10 ms after the first.
    assert sum(granted) == 5 + 199


async def test_holds_its_rate_exactly_under_200_tasks_on_the_virtual_clock(algorithm: str) -> None:
    clock = VirtualClock()
    limiter = RateLimiter(rate=100, burst=5, algorithm=algorithm, clock=clock)
    granted = 0
    stop = False

    async def task() -> None:
        nonlocal granted
        while not stop:
            granted += limiter.try_acquire()
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(task()) for _ in range(200)]
    for _ in range(400):
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        clock.advance(0.005)
    stop = True
    await asyncio.gather(*tasks)
    assert granted == 5 + 199  # t = 0 .. 1.995, as with threads


@pytest.mark.wallclock
def test_holds_its_rate_within_one_percent_over_two_seconds_of_real_time() -> None:
    limiter = RateLimiter(rate=500, burst=1, max_wait=None)
    stop = time.monotonic() + 2.0
    counts = [0] * 8

    def worker(i: int) -> None:
        while True:
            limiter.acquire()
            if time.monotonic() >= stop:
                return
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 990 <= sum(counts) <= 1001


@pytest.mark.parametrize(("field", "value"), [
    ("rate", 0), ("rate", -1), ("burst", 0), ("algorithm", "leaky"), ("max_wait", -1),
    ("name", ""),
])
def test_config_refuses_bad_values_naming_the_field(field: str, value: object) -> None:
    options: dict[str, object] = {"rate": 1.0, field: value}
    with pytest.raises(ConfigurationError) as info:
        RateLimiterConfig(**options)  # type: ignore[arg-type]
    assert info.value.field == f"RateLimiterConfig.{field}"


# --- conformance: both algorithms against a model of the schedule ---------------------------


class LimiterMachine(RuleBasedStateMachine):
    """GCRA and the token bucket agree with each other and with the rule that
    no interval of length L holds more than burst + rate * L permits."""

    def __init__(self) -> None:
        super().__init__()
        config = {"rate": 4.0, "burst": 3}
        self.gcra = RateMachine(RateLimiterConfig(**config, algorithm="gcra"), 0.0)
        self.bucket = RateMachine(RateLimiterConfig(**config, algorithm="token_bucket"), 0.0)
        self.now = 0.0
        self.granted: list[float] = []

    @rule(seconds=st.sampled_from([0.0, 0.0625, 0.125, 0.25, 0.5, 1.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(n=st.integers(1, 3), max_wait=st.sampled_from([0.0, 0.25, None]))
    def take(self, n: int, max_wait: float | None) -> None:
        a = self.gcra.take(self.now, n, max_wait)
        b = self.bucket.take(self.now, n, max_wait)
        assert a == pytest.approx(b)
        if a[0]:
            self.granted.extend([self.now + a[1]] * n)
            self.granted.sort()
            for i, start in enumerate(self.granted):
                inside = sum(1 for t in self.granted[i:] if t <= start + 1.0 + 1e-9)
                assert inside <= 3 + 4 * 1.0

    @rule(n=st.integers(1, 3))
    def refund_last(self, n: int) -> None:
        assert self.gcra.refund(n, self.gcra.serial + 1) is False
        assert self.bucket.refund(n, self.bucket.serial + 1) is False


TestLimiterMachine = LimiterMachine.TestCase
TestLimiterMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
