"""``retry_database_operation`` and ``database_resilient`` on top of the client,
against a real PostgreSQL server: the decorated function is the unit that may
run again (decorating it is marking it retryable), the client's own retry of a
connection is not multiplied by theirs, a COMMIT of unknown outcome is never
retried, the preset's ``timeout_seconds`` becomes the statement timeout, and
nothing moves the session to another thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from buttress import (
    CircuitBreakerError,
    CommitOutcomeUnknownError,
    RetryExhaustedError,
    database_resilient,
    retry_database_operation,
)
from buttress.fault_proxy import FaultProxy
from buttress.testing import VirtualClock
from servers.postgres import PostgresServer

from .conftest import ClientFactory


@pytest.fixture
def ledger(postgres: PostgresServer) -> str:
    postgres.execute("DROP TABLE IF EXISTS ledger; "
                     "CREATE TABLE ledger (id serial PRIMARY KEY, entry text NOT NULL)")
    return "ledger"


def test_a_sync_database_resilient_functions_timeout_is_its_statement_timeout(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url, statement_timeout=30.0)

    @database_resilient(operation_name="report", timeout_seconds=2.0)
    def report() -> str:
        with client.session() as session:
            return str(session.execute("SHOW statement_timeout").scalar_one())

    shown = report()
    milliseconds = int(shown[:-2]) if shown.endswith("ms") else int(shown[:-1]) * 1000
    assert 1500 < milliseconds <= 2000


def test_the_decorators_retry_does_not_multiply_the_clients_connection_attempts(
        broken_postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock) -> None:
    client = clients(broken_postgres.url, clock=clock, max_attempts=3, base_delay=0.5,
                     failure_threshold=10)
    opened: list[int] = []
    event.listen(client.engine, "do_connect", lambda *args: opened.append(1))
    broken_postgres.stop()

    @retry_database_operation(max_attempts=3, base_delay=0.5, clock=clock)
    def get_user(user_id: int) -> Any:
        with client.session() as session:
            return session.execute("SELECT :id", {"id": user_id}).fetchone()

    with pytest.raises(RetryExhaustedError) as caught:
        get_user(1)
    assert caught.value.attempts == 3  # the client's: 3 connections, not 3 x 3
    assert len(opened) == 3
    assert clock.sleeps == [0.5, 1.0]


def test_a_decorated_function_is_run_again_after_its_backend_is_terminated(
        postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock,
        ledger: str) -> None:
    client = clients(postgres.url, clock=clock, name="decorated")
    runs: list[int] = []

    @retry_database_operation(max_attempts=3, base_delay=0.5, clock=clock)
    def record(entry: str) -> None:
        with client.session() as session:
            runs.append(1)
            session.execute("INSERT INTO ledger (entry) VALUES (:e)", {"e": entry})
            if len(runs) == 1:
                postgres.terminate_backends("decorated")
            session.execute("SELECT 1")

    record("refund")
    assert runs == [1, 1]
    assert postgres.execute("SELECT entry FROM ledger") == [("refund",)]


def test_database_resilient_opens_its_breaker_on_a_stopped_server_and_fails_fast(
        broken_postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock) -> None:
    client = clients(broken_postgres.url, clock=clock, max_attempts=1, failure_threshold=10)
    broken_postgres.stop()

    @database_resilient(operation_name="lookup", jitter=False, clock=clock)
    def lookup() -> Any:
        with client.session() as session:
            return session.execute("SELECT 1").scalar_one()

    for _ in range(3):  # the preset's threshold is 3
        with pytest.raises(RetryExhaustedError):
            lookup()
    with pytest.raises(CircuitBreakerError):
        lookup()
    assert client.breaker.stats.failure_count == 3  # the client saw only three calls

    broken_postgres.start()
    clock.advance(30.0)
    assert lookup() == 1


@pytest.fixture
def proxy(postgres: PostgresServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", postgres.port) as running:
        yield running


def test_a_commit_of_unknown_outcome_is_not_retried_by_database_resilient(
        postgres: PostgresServer, proxy: FaultProxy, clients: ClientFactory,
        clock: VirtualClock, ledger: str) -> None:
    client = clients(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/postgres",
                     clock=clock)
    runs: list[int] = []

    @database_resilient(operation_name="pay", clock=clock)
    def pay() -> None:
        with client.session() as session:
            runs.append(1)
            session.execute("INSERT INTO ledger (entry) VALUES ('payment')")

    proxy.reset_after(b"COMMIT")
    with pytest.raises(CommitOutcomeUnknownError):
        pay()
    assert runs == [1]
    assert postgres.execute("SELECT count(*) FROM ledger") == [(1,)]


def test_the_decorators_keep_the_session_in_the_callers_thread(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url)
    seen: list[int] = []

    @database_resilient(operation_name="threads")
    @retry_database_operation()
    def work() -> None:
        with client.session() as session:
            seen.append(threading.get_ident())
            session.execute("SELECT 1")

    work()
    assert seen == [threading.get_ident()]


async def test_an_async_database_resilient_function_keeps_its_session_in_the_loops_thread(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url)
    seen: list[int] = []

    @database_resilient(operation_name="async_threads", timeout_seconds=3.0)
    async def work() -> str:
        async with client.async_session() as session:
            seen.append(threading.get_ident())
            return str((await session.execute("SHOW statement_timeout")).scalar_one())

    try:
        shown = await work()
    finally:
        await client.adispose()
    assert seen == [threading.get_ident()]
    assert shown.endswith("ms")
    assert int(shown[:-2]) <= 3000
