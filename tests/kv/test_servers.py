"""The test servers' own contract: under CI a server that can not start fails the
run; elsewhere its tests are skipped with the reason."""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from servers.fixtures import unavailable
from servers.redis import RedisServer


def test_a_server_that_can_not_start_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match=r"redis-server could not start: .*CI=true"):
        unavailable("redis-server", FileNotFoundError("redis-server not found"))


def test_a_server_that_can_not_start_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped, match="redis-server could not start"):
        unavailable("redis-server", FileNotFoundError("redis-server not found"))


def test_a_redis_server_that_exits_at_start_says_why() -> None:
    server = RedisServer(None, "--no-such-option", "1")
    with pytest.raises(RuntimeError, match="redis-server exited at start"):
        server.start()
    server.close()


def test_a_stopped_redis_server_restarts_on_the_same_port(redis_server: RedisServer,
                                                          redis_url: str) -> None:
    port = redis_server.port
    redis_server.stop()
    assert not redis_server.running
    redis_server.start()
    assert redis_server.running
    assert redis_server.port == port
