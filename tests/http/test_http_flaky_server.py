"""The loopback test server's scripted faults, per path."""

from __future__ import annotations

import time

import httpx
import pytest

from buttress.flaky_server import HANG, RESET, FlakyServer, Reply


def test_a_route_answers_its_steps_in_order_then_its_default(server: FlakyServer) -> None:
    server.route("/orders", 503, Reply(429, retry_after="3", headers={"X-Why": "busy"}),
                 then=201)
    with httpx.Client(base_url=server.url) as client:
        first, second, third, fourth = (client.get("/orders") for _ in range(4))
    assert [first.status_code, second.status_code, third.status_code,
            fourth.status_code] == [503, 429, 201, 201]
    assert second.headers["Retry-After"] == "3"
    assert second.headers["X-Why"] == "busy"


def test_requests_are_counted_per_path_and_method(server: FlakyServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/a?page=2")
        client.post("/a", content=b"x")
        client.delete("/b")
    assert server.requests("/a") == 2
    assert server.requests("/a", "POST") == 1
    assert server.requests("/b", "delete") == 1
    assert server.requests("/c") == 0


def test_a_path_without_a_route_falls_back_to_the_global_rules(server: FlakyServer) -> None:
    server.route("/a", 500)
    server.script(502)
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/b").status_code == 502
        assert client.get("/a").status_code == 500
        assert client.get("/a").status_code == 200


def test_a_reset_step_resets_the_connection(server: FlakyServer) -> None:
    server.route("/r", RESET)
    with httpx.Client(base_url=server.url) as client, \
            pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/r")


@pytest.mark.wallclock
def test_a_hang_ends_at_the_hang_limit() -> None:
    with FlakyServer(hang_limit=0.2) as server:
        server.route("/h", HANG)
        started = time.monotonic()
        with httpx.Client(base_url=server.url) as client, pytest.raises(httpx.HTTPError):
            client.get("/h", timeout=5.0)
        assert time.monotonic() - started < 2.0


@pytest.mark.wallclock
def test_stopping_the_server_ends_a_hang_at_once() -> None:
    server = FlakyServer(hang_limit=30.0).start()
    server.route("/h", HANG)
    import threading

    errors: list[BaseException] = []

    def ask() -> None:
        try:
            httpx.get(f"{server.url}/h", timeout=10.0)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=ask)
    caller.start()
    while server.requests("/h") == 0:
        time.sleep(0.002)
    started = time.monotonic()
    server.stop()
    caller.join(5.0)
    assert not caller.is_alive()
    assert time.monotonic() - started < 2.0
    assert len(errors) == 1


def test_a_bad_step_is_refused() -> None:
    with pytest.raises(ValueError, match="route step"):
        FlakyServer().route("/a", 99)
