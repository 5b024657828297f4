"""buttress.testing.VirtualClock and the pytest fixtures of the pytest11 plugin."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from buttress import CircuitBreakerConfig, get_circuit_breaker, get_circuit_breaker_stats
from buttress._core.clock import Clock
from buttress.testing import VirtualClock, reset_registries

pytest_plugins = ["pytester"]


# --- time and sleeping -------------------------------------------------------------------


def test_clock_starts_where_told_and_stands_still() -> None:
    clock = VirtualClock(start=100.0)
    assert clock.monotonic() == 100.0
    assert clock() == 100.0
    assert clock.now == 100.0
    assert clock.monotonic() == 100.0
    assert clock.sleeps == []


def test_virtual_clock_satisfies_the_clock_protocol() -> None:
    assert isinstance(VirtualClock(), Clock)


def test_sleep_records_the_exact_wait_and_moves_time_at_once() -> None:
    clock = VirtualClock()
    clock.sleep(1.5)
    clock.sleep(0.25)
    clock.sleep(0.0)
    assert clock.sleeps == [1.5, 0.25, 0.0]
    assert clock.now == 1.75


async def test_async_sleep_records_the_exact_wait_and_moves_time() -> None:
    clock = VirtualClock()
    await clock.async_sleep(3.0)
    await clock.async_sleep(0.5)
    assert clock.sleeps == [3.0, 0.5]
    assert clock.now == 3.5


async def test_async_sleep_yields_to_other_tasks() -> None:
    clock = VirtualClock()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    task = asyncio.create_task(other())
    await clock.async_sleep(1.0)
    assert ran == ["other"]
    await task


def test_advance_rejects_negative_time() -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError, match=r"advance needs seconds >= 0, got -1"):
        clock.advance(-1)
    assert clock.now == 0.0


# --- timers --------------------------------------------------------------------------------


def test_advance_fires_timers_in_time_order_each_at_its_own_time() -> None:
    clock = VirtualClock()
    fired: list[tuple[str, float]] = []
    clock.call_later(3.0, lambda: fired.append(("c", clock.now)))
    clock.call_later(1.0, lambda: fired.append(("a", clock.now)))
    clock.call_later(2.0, lambda: fired.append(("b", clock.now)))
    clock.call_later(10.0, lambda: fired.append(("late", clock.now)))

    clock.advance(5.0)

    assert fired == [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert clock.now == 5.0
    clock.advance(5.0)
    assert fired[-1] == ("late", 10.0)


def test_timers_due_at_the_same_time_fire_in_the_order_scheduled() -> None:
    clock = VirtualClock()
    fired: list[int] = []
    for i in range(5):
        clock.call_later(1.0, functools.partial(fired.append, i))
    clock.advance(1.0)
    assert fired == [0, 1, 2, 3, 4]


def test_sleep_fires_timers_that_come_due_during_it() -> None:
    clock = VirtualClock()
    fired: list[float] = []
    clock.call_later(0.5, lambda: fired.append(clock.now))
    clock.sleep(1.0)
    assert fired == [0.5]
    assert clock.now == 1.0


def test_a_timer_scheduled_by_a_timer_fires_within_the_same_advance() -> None:
    clock = VirtualClock()
    fired: list[tuple[str, float]] = []

    def first() -> None:
        fired.append(("first", clock.now))
        clock.call_later(1.0, lambda: fired.append(("second", clock.now)))

    clock.call_later(1.0, first)
    clock.advance(3.0)
    assert fired == [("first", 1.0), ("second", 2.0)]
    assert clock.now == 3.0


def test_cancelled_timers_do_not_fire() -> None:
    clock = VirtualClock()
    fired: list[str] = []
    keep = clock.call_later(1.0, lambda: fired.append("kept"))
    drop = clock.call_later(1.0, lambda: fired.append("dropped"))
    drop.cancel()
    clock.advance(2.0)
    assert fired == ["kept"]
    assert drop.cancelled
    assert not keep.cancelled


def test_a_timer_with_no_delay_fires_at_once() -> None:
    clock = VirtualClock(start=7.0)
    fired: list[float] = []
    clock.call_later(0.0, lambda: fired.append(clock.now))
    assert fired == [7.0]
    assert clock.now == 7.0


def test_timer_handle_knows_when_it_is_due() -> None:
    clock = VirtualClock(start=2.0)
    handle = clock.call_later(3.0, lambda: None)
    assert handle.when == 5.0


# --- wait ----------------------------------------------------------------------------------


class _WatchedEvent(threading.Event):
    """An event that tells when somebody first waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.watched = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.watched.set()
        return super().wait(timeout)


def test_wait_returns_true_at_once_for_a_set_event() -> None:
    clock = VirtualClock()
    event = threading.Event()
    event.set()
    assert clock.wait(event, 10.0) is True
    assert clock.now == 0.0


def test_wait_returns_true_when_another_thread_sets_the_event() -> None:
    clock = VirtualClock()
    event = threading.Event()
    setter = threading.Thread(target=event.set)
    setter.start()
    assert clock.wait(event, 10.0) is True
    setter.join()


def test_wait_returns_false_when_another_thread_advances_past_the_deadline() -> None:
    clock = VirtualClock()
    event = _WatchedEvent()

    def move() -> None:
        event.watched.wait()  # the waiter has armed its deadline
        clock.advance(5.0)

    mover = threading.Thread(target=move)
    mover.start()
    assert clock.wait(event, 2.0) is False
    mover.join()
    assert not event.is_set()


def test_wait_keeps_waiting_while_time_stays_short_of_the_deadline() -> None:
    clock = VirtualClock()
    event = threading.Event()

    def work() -> None:
        clock.sleep(1.0)
        clock.sleep(0.5)
        event.set()

    worker = threading.Thread(target=work)
    worker.start()
    assert clock.wait(event, 2.0) is True
    worker.join()
    assert clock.now == 1.5


def test_wait_says_false_when_the_event_is_set_only_after_the_deadline_passed() -> None:
    # The verdict is taken at the virtual deadline, not when the waiter wakes up:
    # a worker that sleeps past the deadline and then finishes was still late,
    # however quickly that happens in real time.
    for _ in range(20):
        clock = VirtualClock()
        event = _WatchedEvent()

        def late(clock: VirtualClock = clock, event: _WatchedEvent = event) -> None:
            event.watched.wait()  # the waiter has armed its deadline
            clock.sleep(3.0)
            event.set()

        worker = threading.Thread(target=late)
        worker.start()
        assert clock.wait(event, 1.0) is False
        worker.join()
        assert event.is_set()


def test_wait_says_true_when_the_event_is_set_just_before_the_deadline() -> None:
    for _ in range(20):
        clock = VirtualClock()
        event = _WatchedEvent()

        def on_time(clock: VirtualClock = clock, event: _WatchedEvent = event) -> None:
            event.watched.wait()
            clock.sleep(0.999)
            event.set()
            clock.sleep(5.0)  # time moving on afterwards changes nothing

        worker = threading.Thread(target=on_time)
        worker.start()
        assert clock.wait(event, 1.0) is True
        worker.join()


def test_wait_with_no_time_left_is_a_poll() -> None:
    clock = VirtualClock()
    event = threading.Event()
    assert clock.wait(event, 0.0) is False
    event.set()
    assert clock.wait(event, 0.0) is True


def test_wait_gives_up_when_nothing_happens_in_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VirtualClock, "REAL_WAIT_LIMIT", 0.01)
    clock = VirtualClock()
    with pytest.raises(RuntimeError, match="nothing set the event or moved the clock"):
        clock.wait(threading.Event(), 5.0)


def test_wait_leaves_no_live_timer_behind() -> None:
    clock = VirtualClock()
    event = threading.Event()
    event.set()
    clock.wait(event, 1.0)
    assert all(handle.cancelled for _, _, handle in clock._timers)


# --- virtual asyncio timeout ------------------------------------------------------------


async def test_virtual_timeout_cancels_the_body_and_raises_timeout_error() -> None:
    clock = VirtualClock()
    cleaned_up: list[float] = []
    limit = clock.timeout(2.0)

    async def body() -> None:
        async with limit:
            try:
                await clock.async_sleep(10.0)
            finally:
                cleaned_up.append(clock.now)

    with pytest.raises(TimeoutError):
        await body()
    assert limit.expired()
    assert cleaned_up == [10.0]


async def test_virtual_timeout_not_reached_does_nothing() -> None:
    clock = VirtualClock()
    limit = clock.timeout(2.0)
    async with limit:
        await clock.async_sleep(1.0)
    assert not limit.expired()
    clock.advance(5.0)  # the deadline timer was cancelled on exit
    assert not limit.expired()


async def test_virtual_timeout_outside_a_task_is_refused() -> None:
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[BaseException] = loop.create_future()

    def from_a_plain_callback() -> None:  # a running loop, but no current task
        entering = VirtualClock().timeout(1.0).__aenter__()
        try:
            entering.send(None)
        except RuntimeError as exc:
            outcome.set_result(exc)
        finally:
            entering.close()

    loop.call_soon(from_a_plain_callback)
    assert "inside a task" in str(await outcome)


def test_repr_shows_the_time() -> None:
    assert repr(VirtualClock(start=3.0)) == "VirtualClock(now=3.0)"


# --- the pytest plugin ------------------------------------------------------------------


def test_virtual_clock_fixture_is_a_fresh_clock_at_zero(virtual_clock: VirtualClock) -> None:
    assert isinstance(virtual_clock, VirtualClock)
    assert virtual_clock.now == 0.0
    assert virtual_clock.sleeps == []


def test_buttress_reset_fixture_starts_with_an_empty_registry(
    buttress_reset: None,
) -> None:
    assert get_circuit_breaker_stats("left-over") is None


def test_reset_registries_forgets_named_breakers() -> None:
    first = get_circuit_breaker("svc", CircuitBreakerConfig(name="svc"))
    assert get_circuit_breaker("svc") is first
    reset_registries()
    assert get_circuit_breaker("svc") is not first


def test_plugin_fixtures_work_in_a_fresh_session(pytester: pytest.Pytester) -> None:
    # The inner session has no conftest: only the pytest11 plugin provides these.
    pytester.makepyfile(
        """
        from buttress import CircuitBreakerConfig, get_circuit_breaker
        from buttress.registry import all_circuit_breakers
        from buttress.testing import VirtualClock

        def test_clock(virtual_clock):
            assert isinstance(virtual_clock, VirtualClock)
            virtual_clock.sleep(2.0)
            assert virtual_clock.sleeps == [2.0]

        def test_clock_is_fresh_per_test(virtual_clock):
            assert virtual_clock.now == 0.0 and virtual_clock.sleeps == []

        def test_leaves_a_breaker_without_the_fixture():
            get_circuit_breaker("before", CircuitBreakerConfig(failure_threshold=9))

        def test_reset_before(buttress_reset):
            assert "before" not in all_circuit_breakers()
            get_circuit_breaker("after", CircuitBreakerConfig(failure_threshold=9))

        def test_reset_after_without_the_fixture():
            assert "after" not in all_circuit_breakers()
            # The same name with another config is accepted: the old breaker is gone.
            get_circuit_breaker("after", CircuitBreakerConfig(failure_threshold=2))
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:asyncio")
    result.assert_outcomes(passed=5)
