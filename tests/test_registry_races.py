"""The breaker registry under concurrency, and its one-breaker-per-name rule.

Races are provoked with real threads released together by a barrier, with the
interpreter switching threads as often as it can; every join is bounded.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

import buttress
from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    ConfigurationError,
    get_all_circuit_breaker_stats,
    get_circuit_breaker,
    get_circuit_breaker_stats,
)
from buttress.observe import get_resilience_health, get_resilience_status
from buttress.registry import all_circuit_breakers
from buttress.testing import VirtualClock

THREADS = 8


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Switch threads as often as possible, to provoke races."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def race(work: Callable[[int], object]) -> list[object]:
    """Run ``work(index)`` in THREADS threads released together; each thread's
    result or exception, by index."""
    start = threading.Barrier(THREADS, timeout=10)
    outcomes: list[object] = [None] * THREADS

    def run(index: int) -> None:
        start.wait()
        try:
            outcomes[index] = work(index)
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


# --- first use of a name, raced ------------------------------------------------------------


@pytest.mark.usefixtures("eager_switching")
def test_racing_first_users_with_different_configs_get_their_own_config_or_an_error() -> None:
    for round_ in range(40):
        name = f"race-{round_}"

        def first_use(index: int, name: str = name) -> object:
            return get_circuit_breaker(name, CircuitBreakerConfig(failure_threshold=index + 1))

        outcomes = race(first_use)
        winners = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, CircuitBreaker)]
        losers = [o for o in outcomes if isinstance(o, ConfigurationError)]
        assert len(winners) == 1, outcomes
        assert len(losers) == THREADS - 1, outcomes
        index, breaker = winners[0]
        assert breaker.config.failure_threshold == index + 1  # never another caller's
        assert get_circuit_breaker(name) is breaker
        for error in losers:
            assert repr(name) in str(error)
            assert "failure_threshold" in str(error)


@pytest.mark.usefixtures("eager_switching")
def test_racing_first_users_on_different_clocks_get_their_own_clock_or_an_error() -> None:
    clocks = [VirtualClock() for _ in range(THREADS)]
    for round_ in range(20):
        name = f"clock-race-{round_}"
        outcomes = race(lambda index, name=name: get_circuit_breaker(name, clock=clocks[index]))
        winners = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, CircuitBreaker)]
        assert len(winners) == 1, outcomes
        index, breaker = winners[0]
        assert breaker.clock is clocks[index]
        assert all(isinstance(o, ConfigurationError) and "clock" in str(o)
                   for o in outcomes if o is not breaker)


# --- one breaker per name ------------------------------------------------------------------


def test_a_directly_constructed_breaker_is_the_one_its_name_gives() -> None:
    direct = CircuitBreaker("inventory", failure_threshold=2)
    assert get_circuit_breaker("inventory") is direct
    assert get_circuit_breaker("inventory", failure_threshold=2) is direct
    assert buttress.pipeline(circuit_breaker="inventory").strategies == (direct,)
    assert all_circuit_breakers() == {"inventory": direct}


def test_another_config_for_a_directly_constructed_breakers_name_is_refused() -> None:
    direct = CircuitBreaker("inventory", failure_threshold=2)
    with pytest.raises(ConfigurationError) as info:
        get_circuit_breaker("inventory", CircuitBreakerConfig(failure_threshold=5))
    message = str(info.value)
    assert "'inventory'" in message
    assert "failure_threshold=2 (existing) vs 5 (requested)" in message
    assert "constructed directly" in message
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        buttress.pipeline(circuit_breaker=CircuitBreakerConfig(name="inventory"))
    assert all_circuit_breakers() == {"inventory": direct}  # still one breaker


def test_a_dropped_breaker_frees_its_name_at_once() -> None:
    changes: list[object] = []
    CircuitBreaker("inventory", failure_threshold=2, on_state_change=lambda *a: changes.append(a))
    # No gc.collect(): a breaker nobody holds is gone by the next line.
    fresh = get_circuit_breaker("inventory", failure_threshold=5)
    assert fresh.config.failure_threshold == 5


def test_an_existing_breaker_on_another_clock_is_refused_naming_both_clocks() -> None:
    ours, theirs = VirtualClock(), VirtualClock()
    theirs.advance(5.0)
    breaker = get_circuit_breaker("inventory", clock=ours)
    assert get_circuit_breaker("inventory", clock=ours) is breaker
    assert get_circuit_breaker("inventory") is breaker  # no clock asked for: any clock
    with pytest.raises(ConfigurationError) as info:
        get_circuit_breaker("inventory", clock=theirs)
    assert "'inventory'" in str(info.value)
    assert f"{ours!r} (registered) vs {theirs!r} (requested)" in str(info.value)
    with pytest.raises(ConfigurationError, match="clock"):
        buttress.pipeline(circuit_breaker="inventory", clock=theirs)


def test_a_directly_constructed_breaker_on_another_clock_is_refused() -> None:
    ours, theirs = VirtualClock(), VirtualClock()
    direct = CircuitBreaker("inventory", clock=ours)
    with pytest.raises(ConfigurationError, match="'inventory' already exists on another clock"
                       ) as info:
        get_circuit_breaker("inventory", clock=theirs)
    # The two clocks print alike, so the message tells them apart by identity.
    assert f"{ours!r} at {id(ours):#x} (existing)" in str(info.value)
    assert f"{theirs!r} at {id(theirs):#x} (requested)" in str(info.value)
    assert get_circuit_breaker("inventory") is direct


# --- readers while breakers come and go ----------------------------------------------------


@pytest.mark.usefixtures("eager_switching")
def test_stats_and_health_hold_while_breakers_are_created_and_dropped() -> None:
    kept = get_circuit_breaker("kept", failure_threshold=1)
    stop = threading.Event()

    def churn(index: int) -> object:
        # Direct breakers, made under the registry's lock and dropped together
        # outside it: their entries die while a reader may be listing them.
        rounds = 0
        while not stop.is_set() and rounds < 500:
            batch = [CircuitBreaker(f"churn-{index}-{n}") for n in range(50)]
            batch.clear()
            rounds += 1
        return rounds

    def read(index: int) -> object:
        try:
            for _ in range(30):
                everything = get_all_circuit_breaker_stats()
                assert everything["kept"]["name"] == "kept"
                assert get_circuit_breaker_stats("kept") is not None
                assert "kept" in get_resilience_health()["circuit_breakers"]
                get_resilience_status()
            return "read"
        finally:
            stop.set()

    outcomes = race(lambda index: churn(index) if index % 2 else read(index))
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == []
    assert kept is get_circuit_breaker("kept")
