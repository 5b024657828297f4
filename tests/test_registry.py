"""Named circuit breakers: one breaker per name, its stats, and the decorators sharing it."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from typing import Any

import pytest

import buttress
from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
    async_circuit_breaker,
    circuit_breaker,
    clear_circuit_breakers,
    get_all_circuit_breaker_stats,
    get_circuit_breaker,
    get_circuit_breaker_stats,
    reset_circuit_breakers,
    retry_http_request,
)
from buttress.registry import all_circuit_breakers
from buttress.testing import VirtualClock, reset_registries


class Boom(Exception):
    """The dependency failed."""


def fail() -> None:
    raise Boom("down")


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.config.failure_threshold):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state is CircuitState.OPEN


def test_the_same_name_gives_the_same_breaker() -> None:
    config = CircuitBreakerConfig(failure_threshold=3)
    first = get_circuit_breaker("payments", config)
    assert get_circuit_breaker("payments", config) is first
    assert get_circuit_breaker("payments") is first
    assert get_circuit_breaker("payments", CircuitBreakerConfig(failure_threshold=3)) is first


def test_different_names_give_different_breakers() -> None:
    assert get_circuit_breaker("a") is not get_circuit_breaker("b")


def test_the_breaker_takes_the_name_it_is_registered_under() -> None:
    breaker = get_circuit_breaker("payments", CircuitBreakerConfig(name="other",
                                                                    failure_threshold=3))
    assert breaker.name == "payments"
    assert breaker.config.failure_threshold == 3


def test_keyword_options_configure_a_new_breaker() -> None:
    breaker = get_circuit_breaker("payments", failure_threshold=2, recovery_timeout=5.0)
    assert (breaker.config.failure_threshold, breaker.config.recovery_timeout) == (2, 5.0)
    assert get_circuit_breaker("payments", failure_threshold=2, recovery_timeout=5.0) is breaker


def test_a_different_config_for_an_existing_name_is_refused_naming_the_field() -> None:
    get_circuit_breaker("payments", CircuitBreakerConfig(failure_threshold=5))
    with pytest.raises(ConfigurationError) as info:
        get_circuit_breaker("payments", CircuitBreakerConfig(failure_threshold=3))
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "payments" in message
    assert "failure_threshold=5" in message
    assert "3" in message
    assert "recovery_timeout" not in message


def test_a_different_keyword_option_for_an_existing_name_is_refused() -> None:
    get_circuit_breaker("payments", recovery_timeout=30.0)
    with pytest.raises(ValueError, match="recovery_timeout"):
        get_circuit_breaker("payments", recovery_timeout=60.0)


def test_a_registered_breaker_runs_on_the_clock_it_was_given() -> None:
    clock = VirtualClock()
    breaker = get_circuit_breaker("payments", failure_threshold=1, recovery_timeout=30.0,
                                  success_threshold=1, clock=clock)
    trip(breaker)
    clock.advance(30.0)
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_stats_of_one_breaker_are_a_dict_with_a_string_state() -> None:
    breaker = get_circuit_breaker("payments", failure_threshold=2)
    breaker.call(lambda: "ok")
    trip(breaker)
    stats = get_circuit_breaker_stats("payments")
    assert stats is not None
    assert stats["state"] == "open"
    assert stats["name"] == "payments"
    assert (stats["total_calls"], stats["successful_calls"], stats["failed_calls"]) == (3, 1, 2)
    assert stats["trips"] == 1


def test_stats_of_an_unknown_breaker_are_none() -> None:
    assert get_circuit_breaker_stats("nobody") is None


def test_all_stats_cover_every_breaker_by_name() -> None:
    trip(get_circuit_breaker("b", failure_threshold=1))
    get_circuit_breaker("a")
    direct = CircuitBreaker("c")
    everything = get_all_circuit_breaker_stats()
    assert list(everything) == ["a", "b", "c"]
    assert {name: s["state"] for name, s in everything.items()} == {
        "a": "closed", "b": "open", "c": "closed"}
    assert direct.name == "c"


def test_all_stats_are_empty_without_breakers() -> None:
    assert get_all_circuit_breaker_stats() == {}


def test_directly_constructed_breakers_appear_in_stats_while_alive() -> None:
    breaker = CircuitBreaker("direct", failure_threshold=1)
    trip(breaker)
    stats = get_circuit_breaker_stats("direct")
    assert stats is not None
    assert stats["state"] == "open"
    del breaker
    gc.collect()
    assert get_circuit_breaker_stats("direct") is None
    assert "direct" not in get_all_circuit_breaker_stats()


def test_reset_circuit_breakers_closes_every_breaker_and_clears_counters() -> None:
    named = get_circuit_breaker("named", failure_threshold=1)
    direct = CircuitBreaker("direct", failure_threshold=1)
    trip(named)
    trip(direct)
    reset_circuit_breakers()
    for breaker in (named, direct):
        assert breaker.state is CircuitState.CLOSED
        assert breaker.stats.failed_calls == 0
    assert get_circuit_breaker("named") is named


def test_clear_circuit_breakers_forgets_every_name() -> None:
    first = get_circuit_breaker("payments", failure_threshold=1)
    clear_circuit_breakers()
    assert get_circuit_breaker_stats("payments") is None
    second = get_circuit_breaker("payments", failure_threshold=2)
    assert second is not first
    assert second.config.failure_threshold == 2


def test_reset_registries_forgets_named_breakers() -> None:
    first = get_circuit_breaker("payments")
    reset_registries()
    assert get_circuit_breaker("payments") is not first


def test_concurrent_first_use_of_a_name_creates_one_breaker() -> None:
    config = CircuitBreakerConfig(failure_threshold=4)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke the race
    try:
        for round_ in range(30):
            name = f"race-{round_}"
            start = threading.Barrier(8, timeout=10)
            found: list[CircuitBreaker] = []

            def first_use(name: str = name, start: threading.Barrier = start,
                          found: list[CircuitBreaker] = found) -> None:
                start.wait()
                found.append(get_circuit_breaker(name, config))

            threads = [threading.Thread(target=first_use) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert len(found) == 8
            assert all(breaker is found[0] for breaker in found)
            assert get_circuit_breaker(name) is found[0]
    finally:
        sys.setswitchinterval(interval)


# --- the decorators --------------------------------------------------------------------


def test_circuit_breaker_decorator_protects_with_the_named_breaker() -> None:
    config = CircuitBreakerConfig(name="external_api", failure_threshold=2)

    @circuit_breaker(config)
    def call_external_api(fail_it: bool) -> str:
        if fail_it:
            raise Boom("down")
        return "ok"

    assert call_external_api(False) == "ok"
    for _ in range(2):
        with pytest.raises(Boom):
            call_external_api(True)
    with pytest.raises(CircuitBreakerError) as info:
        call_external_api(False)
    assert info.value.name == "external_api"
    assert get_circuit_breaker("external_api").state is CircuitState.OPEN
    assert call_external_api.__name__ == "call_external_api"


async def test_functions_decorated_with_the_same_config_share_one_breaker() -> None:
    config = CircuitBreakerConfig(name="shared", failure_threshold=2)
    calls: list[str] = []

    @circuit_breaker(config)
    def sync_fail() -> None:
        calls.append("sync")
        raise Boom("down")

    @async_circuit_breaker(config)
    async def async_fail() -> None:
        calls.append("async")
        raise Boom("down")

    @circuit_breaker(config)
    async def also_async() -> str:
        calls.append("also")
        return "ok"

    with pytest.raises(Boom):
        sync_fail()
    with pytest.raises(Boom):
        await async_fail()
    with pytest.raises(CircuitBreakerError):
        await also_async()
    assert calls == ["sync", "async"]
    stats = get_circuit_breaker_stats("shared")
    assert stats is not None
    assert (stats["failed_calls"], stats["rejected_calls"]) == (2, 1)


def test_circuit_breaker_decorator_accepts_keyword_options() -> None:
    breaker = circuit_breaker(name="kw", failure_threshold=7)
    assert breaker is get_circuit_breaker("kw")
    assert breaker.config.failure_threshold == 7


def test_circuit_breaker_decorator_refuses_a_conflicting_config() -> None:
    circuit_breaker(CircuitBreakerConfig(name="api", failure_threshold=5))
    with pytest.raises(ConfigurationError, match="failure_threshold"):
        circuit_breaker(CircuitBreakerConfig(name="api", failure_threshold=1))


def test_async_circuit_breaker_refuses_a_sync_function() -> None:
    decorate = async_circuit_breaker(CircuitBreakerConfig(name="api"))

    def sync_function() -> str:
        return "ok"

    with pytest.raises(TypeError, match="coroutine"):
        decorate(sync_function)


async def test_async_circuit_breaker_protects_a_coroutine_function() -> None:
    clock = VirtualClock()

    @async_circuit_breaker(CircuitBreakerConfig(name="api", failure_threshold=1,
                                                recovery_timeout=10.0), clock=clock)
    async def fetch(key: str) -> str:
        if key == "bad":
            raise Boom("down")
        return key

    assert await fetch("k") == "k"
    with pytest.raises(Boom):
        await fetch("bad")
    with pytest.raises(CircuitBreakerError) as info:
        await fetch("k")
    assert info.value.remaining_timeout == 10.0
    assert asyncio.iscoroutinefunction(fetch)


def test_retry_helpers_put_the_named_breaker_behind_their_retries() -> None:
    clock = VirtualClock()
    breaker = get_circuit_breaker("payments", failure_threshold=2, clock=clock)
    attempts: list[float] = []

    @retry_http_request(max_attempts=5, base_delay=1.0, circuit_breaker="payments", clock=clock)
    def charge() -> None:
        attempts.append(clock.now)
        raise ConnectionError("reset")

    with pytest.raises(CircuitBreakerError):
        charge()
    assert len(attempts) == 2  # the open breaker stopped the third attempt
    stats = breaker.stats
    assert (stats.failed_calls, stats.rejected_calls) == (2, 1)


def test_all_circuit_breakers_lists_every_live_breaker_by_name() -> None:
    named = get_circuit_breaker("named")
    direct = CircuitBreaker("direct")
    assert all_circuit_breakers() == {"named": named, "direct": direct}


@pytest.mark.parametrize(
    "name",
    ["get_circuit_breaker", "get_circuit_breaker_stats", "get_all_circuit_breaker_stats",
     "reset_circuit_breakers", "clear_circuit_breakers", "circuit_breaker",
     "async_circuit_breaker"],
)
def test_registry_functions_are_exported_at_the_top_level(name: str) -> None:
    exported: Any = getattr(buttress, name)
    assert callable(exported)
    assert name in buttress.__all__
