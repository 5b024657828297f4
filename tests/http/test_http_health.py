"""HealthAwareCircuitBreaker: a background probe of a health URL opens and closes it.

The probe's interval runs on a ``VirtualClock``: each ``clock.advance(interval)``
lets exactly one more probe run. Probes are real requests to the loopback
server, so a test waits (bounded, in real time) for the probe count to move.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time

import pytest

from buttress import CircuitBreakerError, CircuitState, ConfigurationError
from buttress.flaky_server import FlakyServer
from buttress.http import HealthAwareCircuitBreaker
from buttress.http import health as health_module
from buttress.testing import VirtualClock

LIMIT = 5.0  # real seconds any probe may take here


def wait_for_probes(breaker: HealthAwareCircuitBreaker, count: int) -> None:
    give_up = time.monotonic() + LIMIT
    while breaker.probes < count:
        assert time.monotonic() < give_up, f"only {breaker.probes} probes ran"
        time.sleep(0.002)


async def await_probes(breaker: HealthAwareCircuitBreaker, count: int) -> None:
    give_up = time.monotonic() + LIMIT
    while breaker.probes < count:
        assert time.monotonic() < give_up, f"only {breaker.probes} probes ran"
        await asyncio.sleep(0.002)


def make(server: FlakyServer, clock: VirtualClock, **options: object) -> HealthAwareCircuitBreaker:
    return HealthAwareCircuitBreaker(
        "llm-service", health_check_url=f"{server.url}/health", health_check_interval=30.0,
        clock=clock, **options)  # type: ignore[arg-type]


def test_the_probe_thread_opens_the_breaker_while_the_url_fails_and_closes_it_after(
        server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/health", 503, then=503)
    breaker = make(server, clock).start()
    try:
        wait_for_probes(breaker, 1)
        assert breaker.state is CircuitState.OPEN
        assert breaker.healthy is False
        with pytest.raises(CircuitBreakerError), breaker:
            pass
        server.route("/health", 200, then=200)
        clock.advance(30.0)
        wait_for_probes(breaker, 2)
        assert breaker.state is CircuitState.CLOSED
        assert breaker.check_health() is True
        assert server.requests("/health") == 2
    finally:
        breaker.close()


async def test_the_probe_task_opens_the_breaker_while_the_url_fails_and_closes_it_after(
        server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/health", 503, then=503)
    breaker = make(server, clock)
    try:
        assert await breaker.is_healthy() is False
        assert breaker.state is CircuitState.OPEN
        server.route("/health", 200, then=200)
        clock.advance(30.0)
        await await_probes(breaker, 2)
        assert await breaker.is_healthy() is True
        assert breaker.state is CircuitState.CLOSED
        async with breaker:
            pass
    finally:
        await breaker.aclose()
    assert breaker._task is None


async def test_the_seed_example_runs_the_local_path_while_unhealthy(
        server: FlakyServer, clock: VirtualClock) -> None:
    server.route("/health", 503, then=503)
    llm_breaker = make(server, clock)
    try:
        used = "local" if not await llm_breaker.is_healthy() else "llm"
        assert used == "local"
    finally:
        await llm_breaker.aclose()


def test_a_breaker_opened_by_calls_is_left_to_its_own_recovery(
        server: FlakyServer, clock: VirtualClock) -> None:
    breaker = make(server, clock, failure_threshold=1, recovery_timeout=60.0).start()
    try:
        wait_for_probes(breaker, 1)
        with pytest.raises(ZeroDivisionError), breaker:
            1 / 0  # noqa: B018
        assert breaker.state is CircuitState.OPEN
        clock.advance(30.0)
        wait_for_probes(breaker, 2)  # healthy again, but the probe did not open it
        assert breaker.is_open
    finally:
        breaker.close()


def test_close_stops_the_probe_thread(server: FlakyServer, clock: VirtualClock) -> None:
    breaker = make(server, clock).start()
    wait_for_probes(breaker, 1)
    thread = breaker._thread
    assert thread is not None
    assert thread.is_alive()
    breaker.close()
    assert not thread.is_alive()
    clock.advance(300.0)
    assert breaker.probes == 1


def test_interpreter_exit_stops_every_probe(server: FlakyServer, clock: VirtualClock) -> None:
    breaker = make(server, clock).start()
    wait_for_probes(breaker, 1)
    thread = breaker._thread
    assert thread is not None
    health_module._stop_all()  # what atexit runs
    thread.join(LIMIT)
    assert not thread.is_alive()
    assert thread.daemon  # and it can never hold the interpreter up


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_has_no_probe_and_starts_its_own(
        server: FlakyServer, clock: VirtualClock) -> None:
    breaker = make(server, clock).start()
    wait_for_probes(breaker, 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            inherited = breaker._thread is None and not breaker._running()
            breaker.start()
            give_up = time.monotonic() + LIMIT
            while breaker.probes < 2 and time.monotonic() < give_up:
                time.sleep(0.002)
            started_own = breaker.probes >= 2 and breaker._running()
            breaker.close()
            code = 0 if inherited and started_own else 3
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    status = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    breaker.close()
    assert status == bytes([0])


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(ConfigurationError, match="health_check_url"):
        HealthAwareCircuitBreaker("x", health_check_url="not a url")
    with pytest.raises(ConfigurationError, match="health_check_interval"):
        HealthAwareCircuitBreaker("x", health_check_url="http://127.0.0.1:1/health",
                                  health_check_interval=0)


def test_the_probe_survives_an_unreachable_health_url(clock: VirtualClock) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    breaker = HealthAwareCircuitBreaker("gone", health_check_url=f"http://127.0.0.1:{port}/health",
                                        health_check_interval=30.0, clock=clock).start()
    try:
        wait_for_probes(breaker, 1)
        assert breaker.state is CircuitState.OPEN
        assert isinstance(breaker._thread, threading.Thread)
    finally:
        breaker.close()
