"""Session-scoped real servers for the store clients (imported by tests/kv/conftest.py
and the seed ports): ``redis-server`` and moto's
S3 server on 127.0.0.1 random ports, stopped after the session.

Outside CI a server that can not start skips its tests (with the reason); under
``CI=true`` it fails them: CI must run against the real thing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from servers.redis import RedisServer
from servers.s3 import MotoS3, S3Shim


def unavailable(what: str, error: BaseException) -> None:
    """Fail under CI, skip elsewhere, naming what could not start and why."""
    message = f"{what} could not start: {type(error).__name__}: {error}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: a missing server is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (fault tests stop and restart it)."""
    try:
        server = RedisServer().start()
    except (OSError, RuntimeError) as exc:
        unavailable("redis-server", exc)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A running, empty Redis (restarted if a test left it stopped or paused)."""
    if not redis_server.running:
        redis_server.start()
    redis_server.resume()
    redis_server.flushall()
    yield redis_server.url
    if redis_server.running:
        redis_server.resume()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's S3 server for the session."""
    try:
        server = MotoS3().start()
    except Exception as exc:  # ImportError (no moto[server]), OSError
        unavailable("moto S3 server", exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _s3_shim(moto_s3: MotoS3) -> Iterator[S3Shim]:
    shim = S3Shim(moto_s3.port).start()
    try:
        yield shim
    finally:
        shim.stop()


@pytest.fixture
def s3_shim(_s3_shim: S3Shim) -> S3Shim:
    """The fault shim in front of moto, with no faults scripted and zeroed counters."""
    _s3_shim.clear()
    return _s3_shim


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region for moto; nothing reaches AWS."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
