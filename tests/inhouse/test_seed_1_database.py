"""Seed S1 — ``pynomaly.infrastructure.resilience`` (``seeds/001_6f70dcf2bc98fc51.txt``):
its database examples against a real PostgreSQL server with real faults.

The reader's ``query()`` / ``async_query()`` run the statement on a real psycopg
3 connection to a PostgreSQL server on loopback, through the TCP fault proxy;
``get_database_client()`` is called exactly as in the seed, with its URL in
``BUTTRESS_DATABASE_URL``. Imports are changed to ``from buttress import ...``;
``clock=clock`` (a ``VirtualClock``) is the one extra keyword where an example
waits, and ``jitter=False`` where a test asserts an exact schedule.

Ported:

* Quick Start — Basic Usage and Async Operations (``database_resilient`` on a
  sync and an async function): refused once, then answered
* Operation Types — Database Operations and its "Default Settings" (3 attempts,
  0.5 s base delay, breaker opening after 3 failures, recovering after 30 s):
  a server refusing throughout, then back
* Resilient Clients — Database Client (``get_database_client()``, ``session()``,
  ``async_session()``, ``session.execute("SELECT * FROM users")``, ``fetchall()``)
* Health Monitoring — Client Health Checks, the database part
  (``db_client.health_check()['status']``), reachable and not

Ported elsewhere: the Redis and S3 clients (their own modules); Testing — Unit
Testing (``test_seed_1_observability.py``). Not ported here: the FastAPI
``/health`` route, which needs every client (the FastAPI issue).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from buttress import CircuitBreakerError, RetryError
from buttress.fault_proxy import FaultProxy
from buttress.stores import database
from buttress.testing import VirtualClock
from servers.postgres import PostgresServer, free_port, shared_server


@pytest.fixture
def postgres() -> PostgresServer:
    server = shared_server()
    server.execute("DROP TABLE IF EXISTS users; "
                   "CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL); "
                   "INSERT INTO users VALUES (1, 'ada'), (2, 'grace')")
    return server


@pytest.fixture
def proxy(postgres: PostgresServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", postgres.port) as running:
        yield running


@pytest.fixture
def cached_clients() -> Iterator[None]:
    """Close and forget the clients ``get_database_client()`` made in the test."""
    yield
    for client in database._clients.clear():
        client.dispose()


@pytest.fixture
def database_url(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch,
                 cached_clients: None) -> str:
    """``get_database_client()`` with no argument reaches the test server."""
    monkeypatch.setenv("BUTTRESS_DATABASE_URL", postgres.url)
    return postgres.url


def _dsn(proxy: FaultProxy) -> str:
    return f"host=127.0.0.1 port={proxy.port} user=postgres dbname=postgres connect_timeout=2"


def test_basic_usage_database_resilient_when_refused_once(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    from buttress import database_resilient

    def query(sql, params):  # the reader's own helper
        with psycopg.connect(_dsn(proxy)) as conn:
            return conn.execute(sql, params).fetchall()

    proxy.refuse()
    clock.call_later(0.1, proxy.restore)

    @database_resilient(operation_name="get_user", clock=clock)
    def get_user(user_id: int):
        return query("SELECT * FROM users WHERE id = %s", (user_id,))

    assert get_user(1) == [(1, "ada")]
    assert len(clock.sleeps) == 1


async def test_async_operations_database_resilient_when_refused_once(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    from buttress import database_resilient

    async def async_query(sql, params):
        async with await psycopg.AsyncConnection.connect(_dsn(proxy)) as conn:
            return await (await conn.execute(sql, params)).fetchall()

    proxy.refuse()
    clock.call_later(0.1, proxy.restore)

    @database_resilient(operation_name="async_get_user", clock=clock)
    async def async_get_user(user_id: int):
        return await async_query("SELECT * FROM users WHERE id = %s", (user_id,))

    assert await async_get_user(2) == [(2, "grace")]
    assert len(clock.sleeps) == 1


def test_database_operations_default_settings_on_a_server_refusing_throughout(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    from buttress import database_resilient

    def query(sql, params):
        with psycopg.connect(_dsn(proxy)) as conn:
            return conn.execute(sql, params).fetchall()

    proxy.refuse()

    @database_resilient(operation_name="user_lookup", jitter=False, clock=clock)
    def get_user(user_id: int):
        # Automatic retry with exponential backoff
        # Circuit breaker protection
        # 30-second timeout
        return query("SELECT * FROM users WHERE id = %s", (user_id,))

    # 3 attempts, 0.5 s then 1 s apart; the third failure opens the breaker.
    with pytest.raises(RetryError) as caught:
        get_user(1)
    assert caught.value.attempts == 3
    assert clock.sleeps == [0.5, 1.0]
    assert get_user.resilience.circuit_breaker.state.value == "open"
    with pytest.raises(CircuitBreakerError):
        get_user(1)  # fails fast: no connection is tried

    proxy.restore()
    clock.advance(30.0)  # recovery timeout
    assert get_user(1) == [(1, "ada")]


def test_resilient_clients_database_client(database_url: str) -> None:
    from buttress import get_database_client

    # Get resilient database client
    client = get_database_client()

    # Use context manager for transactions
    with client.session() as session:
        result = session.execute("SELECT * FROM users")
        users = result.fetchall()

    assert users == [(1, "ada"), (2, "grace")]
    assert client.url.render_as_string() == database_url


async def test_resilient_clients_database_client_async(database_url: str) -> None:
    from buttress import get_database_client

    client = get_database_client()

    # Async operations
    async with client.async_session() as session:
        result = await session.execute("SELECT * FROM users")
        users = result.fetchall()

    await client.adispose()
    assert users == [(1, "ada"), (2, "grace")]


def test_client_health_checks_database(database_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from buttress import get_database_client

    # Database health
    db_client = get_database_client()
    db_health = db_client.health_check()
    print(f"Database status: {db_health['status']}")

    assert capsys.readouterr().out == "Database status: healthy\n"


@pytest.mark.usefixtures("cached_clients")
def test_client_health_checks_database_unreachable(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from buttress import get_database_client

    monkeypatch.setenv("BUTTRESS_DATABASE_URL",
                       f"postgresql://app@127.0.0.1:{free_port()}/app")
    db_client = get_database_client()
    db_health = db_client.health_check()
    print(f"Database status: {db_health['status']}")

    assert capsys.readouterr().out == "Database status: unhealthy\n"
    assert "refused" in db_health["error"]
