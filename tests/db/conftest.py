"""Fixtures of the database tests: a real PostgreSQL server (tests/servers/postgres.py).

* ``postgres`` — the server the well-behaved tests share, started once per run
  (session scope) and stopped at the end; a test that stopped it gets it back.
* ``broken_postgres`` — a second server, for the fault tests that stop, pause
  or cut it; each such test gets it running.
* ``clients`` — makes :class:`DatabaseClient` objects and disposes their pools
  after the test.
* ``clock`` — a :class:`VirtualClock` for the retries' backoff and the breakers'
  recovery timeouts (no test sleeps through them).

Under ``CI=true`` a server that can not start fails the run; elsewhere it skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buttress.stores.database import DatabaseClient, DatabaseClientConfig
from buttress.testing import VirtualClock
from servers.postgres import PostgresServer, shared_server, shutdown, spare_server


@pytest.fixture(scope="session")
def _postgres_session() -> Iterator[None]:
    yield
    shutdown()


@pytest.fixture
def postgres(_postgres_session: None) -> PostgresServer:
    """The shared server, running."""
    return shared_server()


@pytest.fixture
def broken_postgres(_postgres_session: None) -> Iterator[PostgresServer]:
    """A server apart from the shared one, which the test may stop, pause or cut
    (handed to the next such test running again)."""
    server = spare_server()
    yield server
    server.resume()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


ClientFactory = Callable[..., DatabaseClient]


@pytest.fixture
def clients() -> Iterator[ClientFactory]:
    """``clients(url, clock=..., engine_options=..., **config)`` -> a client whose
    pools are closed after the test."""
    made: list[DatabaseClient] = []

    def make(url: str, *, clock: Any = None, engine_options: dict[str, Any] | None = None,
             **options: Any) -> DatabaseClient:
        options.setdefault("jitter", False)
        client = DatabaseClient(url, DatabaseClientConfig(**options), clock=clock,
                                engine_options=engine_options)
        made.append(client)
        return client

    yield make
    for client in made:  # async tests close their async engine in their own loop
        client.dispose()
