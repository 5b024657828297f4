"""Seed S0 — ``utils.resilience`` (``seeds/000_bd9eb1b9a1dab812.txt``): its
database examples against a real PostgreSQL server with real faults.

``test_seed_0_utils_resilience.py`` ports the same examples on a locked sqlite3
file; here the reader's ``get_db_connection()`` / ``get_connection()`` hands
out real psycopg 3 connections to a PostgreSQL server started on loopback
(``tests/servers/postgres.py``), and the faults are real: the server refusing
connections (through the TCP fault proxy) and a backend terminated by the
server (``pg_terminate_backend``). Each example's import line is changed to
``from buttress import ...``; ``clock=clock`` (a ``VirtualClock``) is the one
extra keyword, so the backoff costs no wall time. The proxy comes back during
the first backoff (a timer on that clock), as a restarted server would.

Ported:

* Quick Start — Database Operations (``retry_database_operation``): refused,
  then back; refused throughout (gives up after 3 attempts)
* Integration Examples — Database Layer (``retry_database_operation()`` on a
  method): the first backend terminated by the server, the query run again

Documented difference: the placeholder is the driver's, ``%s`` for psycopg
(the seed's ``?`` is sqlite3's paramstyle); nothing else in the examples changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from buttress import RetryExhaustedError
from buttress.fault_proxy import FaultProxy
from buttress.testing import VirtualClock
from servers.postgres import PostgresServer, shared_server


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


def _connector(proxy: FaultProxy) -> Any:
    """The reader's ``get_db_connection()``: a psycopg connection through the proxy."""
    def get_db_connection() -> psycopg.Connection[Any]:
        return psycopg.connect(host="127.0.0.1", port=proxy.port, user="postgres",
                               dbname="postgres", connect_timeout=2)
    return get_db_connection


def test_database_operations_while_the_server_refuses_then_returns(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    from buttress import retry_database_operation

    get_db_connection = _connector(proxy)
    proxy.refuse()
    clock.call_later(0.2, proxy.restore)  # back during the first backoff

    @retry_database_operation(max_attempts=3, base_delay=0.5, clock=clock)
    def get_user(user_id):
        with get_db_connection() as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT * FROM users WHERE id = %s", (user_id,))
            return cursor.fetchone()

    assert get_user(2) == (2, "grace")
    assert len(clock.sleeps) == 1
    assert 0.45 <= clock.sleeps[0] <= 0.5  # 0.5 s, minus up to 10 % jitter


def test_database_operations_give_up_while_the_server_refuses(
        proxy: FaultProxy, clock: VirtualClock) -> None:
    from buttress import retry_database_operation

    get_db_connection = _connector(proxy)
    proxy.refuse()

    @retry_database_operation(max_attempts=3, base_delay=0.5, clock=clock)
    def get_user(user_id):
        with get_db_connection() as conn:
            cursor = conn.cursor()
            cursor.execute("SELECT * FROM users WHERE id = %s", (user_id,))
            return cursor.fetchone()

    with pytest.raises(RetryExhaustedError) as caught:
        get_user(1)
    assert caught.value.attempts == 3
    assert isinstance(caught.value.last_exception, psycopg.OperationalError)


def test_database_layer_when_the_server_terminates_the_first_backend(
        postgres: PostgresServer, clock: VirtualClock) -> None:
    from buttress import retry_database_operation

    opened: list[int] = []

    class DatabaseLayer:
        def get_connection(self):
            conn = psycopg.connect(postgres.dsn, application_name="seed0_layer")
            opened.append(1)
            if len(opened) == 1:  # the fault: the server ends this backend
                postgres.terminate_backends("seed0_layer")
            return conn

        @retry_database_operation(clock=clock)
        def execute_query(self, query, params=None):
            with self.get_connection() as conn:
                cursor = conn.cursor()
                cursor.execute(query, params or ())
                return cursor.fetchall()

    rows = DatabaseLayer().execute_query("SELECT name FROM users ORDER BY id")
    assert rows == [("ada",), ("grace",)]
    assert len(opened) == 2
    assert len(clock.sleeps) == 1
