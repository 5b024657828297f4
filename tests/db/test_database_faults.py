"""Real faults against a real PostgreSQL server: stopped, paused (SIGSTOP),
backends terminated, two transactions in a real serialization conflict, and a
connection cut by the TCP fault proxy while COMMIT is in flight.

Each test checks what a user relies on: what is retried (only the opening of a
connection, or a whole transaction marked retryable), what never is (a block
that already ran, a COMMIT whose outcome is unknown), that the breaker opens and
then fails fast without touching the server, and that everything works again
once the server is back. Backoff and recovery timeouts run on a VirtualClock;
only the server's own reactions take wall time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import event

from buttress import CircuitBreakerError, CommitOutcomeUnknownError, RetryExhaustedError
from buttress.fault_proxy import FaultProxy
from buttress.stores.database import DatabaseClient
from buttress.testing import VirtualClock
from buttress.transient import is_database_conflict, is_database_disconnect
from servers.postgres import PostgresServer

from .conftest import ClientFactory


def _connects(client: DatabaseClient) -> list[int]:
    """A list that grows by one each time the client opens a real connection."""
    opened: list[int] = []
    event.listen(client.engine, "do_connect", lambda *args: opened.append(1))
    return opened


def _wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _recover(client: DatabaseClient, clock: VirtualClock) -> None:
    """Let the breaker's recovery timeout pass and close it with two probes."""
    clock.advance(client.config.recovery_timeout)
    for _ in range(2):
        with client.session() as session:
            assert session.execute("SELECT 1").scalar_one() == 1
    assert client.breaker.state.value == "closed"


# --- the server is stopped ---------------------------------------------------------------


def test_a_stopped_server_is_retried_then_the_breaker_opens_fails_fast_and_recovers(
        broken_postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock) -> None:
    client = clients(broken_postgres.url, clock=clock, max_attempts=3, base_delay=0.5,
                     failure_threshold=3, recovery_timeout=30.0)
    with client.session() as session:  # a pooled connection, alive
        session.execute("SELECT 1")
    opened = _connects(client)
    broken_postgres.stop()

    # The pooled connection fails its pre-ping; three connection attempts are
    # refused, with 0.5 s and 1 s of (virtual) backoff between them.
    with pytest.raises(RetryExhaustedError) as caught, client.session():
        pytest.fail("the block must not run without a connection")
    assert caught.value.attempts == 3
    assert is_database_disconnect(caught.value.last_exception)  # type: ignore[arg-type]
    assert len(opened) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert client.breaker.state.value == "open"

    # Open: rejected at once, the server is not even tried.
    started = time.perf_counter()
    with pytest.raises(CircuitBreakerError), client.session():
        pass
    assert time.perf_counter() - started < 0.05
    assert len(opened) == 3
    assert client.health_check()["status"] == "unhealthy"

    broken_postgres.start()  # same port, same data
    _recover(client, clock)
    assert client.health_check()["status"] == "healthy"


def test_a_shutdown_ends_the_statement_in_flight_and_the_block_is_not_run_again(
        broken_postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock) -> None:
    client = clients(broken_postgres.url, clock=clock, name="inflight")
    runs: list[int] = []
    errors: list[BaseException] = []

    def slow_report() -> None:
        try:
            with client.session() as session:
                runs.append(1)
                session.execute("SELECT pg_sleep(20)")
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=slow_report)
    worker.start()
    _wait_for(lambda: broken_postgres.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'") == [(1,)])
    broken_postgres.stop()  # fast shutdown: the backend is told to end (57P01)
    worker.join(timeout=10)

    assert runs == [1]  # the block ran once: a statement of yours is never resent
    [error] = errors
    assert isinstance(error, sqlalchemy.exc.OperationalError)
    assert is_database_disconnect(error)
    assert client.breaker.stats.failure_count == 1

    broken_postgres.start()
    with client.session() as session:  # the pool drops the dead connection by itself
        assert session.execute("SELECT 1").scalar_one() == 1


# --- the server hangs (SIGSTOP) ------------------------------------------------------------


@pytest.mark.wallclock
def test_a_paused_server_fails_new_sessions_after_the_connect_timeout_then_fails_fast(
        broken_postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock) -> None:
    client = clients(broken_postgres.url, clock=clock, connect_timeout=2.0, max_attempts=1,
                     failure_threshold=1, recovery_timeout=10.0)
    broken_postgres.pause()
    try:
        started = time.monotonic()
        with pytest.raises(RetryExhaustedError) as caught, client.session():
            pass
        waited = time.monotonic() - started
        assert 1.5 < waited < 4.0  # libpq's connect_timeout, not forever
        assert is_database_disconnect(caught.value.last_exception)  # type: ignore[arg-type]
        assert client.breaker.state.value == "open"

        started = time.monotonic()
        with pytest.raises(CircuitBreakerError), client.session():
            pass
        assert time.monotonic() - started < 0.05
    finally:
        broken_postgres.resume()
    _recover(client, clock)


# --- backends terminated (pg_terminate_backend) -----------------------------------------


def test_an_idle_pooled_connection_terminated_by_the_server_is_replaced_unnoticed(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url, name="idle_terminated")
    with client.session() as session:
        session.execute("SELECT 1")
    opened = _connects(client)
    assert postgres.terminate_backends("idle_terminated") == 1

    with client.session() as session:  # pre-ping finds it dead, a new one is opened
        assert session.execute("SELECT 1").scalar_one() == 1
    assert len(opened) == 1
    assert client.breaker.stats.failure_count == 0


@pytest.fixture
def ledger(postgres: PostgresServer) -> str:
    postgres.execute("DROP TABLE IF EXISTS ledger; "
                     "CREATE TABLE ledger (id serial PRIMARY KEY, entry text NOT NULL)")
    return "ledger"


def test_a_transaction_whose_backend_is_terminated_is_rolled_back_and_not_rerun(
        postgres: PostgresServer, clients: ClientFactory, ledger: str) -> None:
    client = clients(postgres.url, name="terminated")
    runs: list[int] = []
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught, client.session() as session:
        runs.append(1)
        session.execute("INSERT INTO ledger (entry) VALUES ('first')")
        postgres.terminate_backends("terminated")
        session.execute("INSERT INTO ledger (entry) VALUES ('second')")
    assert runs == [1]
    assert caught.value.orig.sqlstate == "57P01"  # type: ignore[union-attr]  # admin_shutdown
    assert postgres.execute("SELECT count(*) FROM ledger") == [(0,)]


def test_a_retryable_transaction_is_replayed_whole_after_its_backend_is_terminated(
        postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock,
        ledger: str) -> None:
    client = clients(postgres.url, clock=clock, name="replayed", base_delay=0.5)
    runs: list[int] = []

    def record(session: Any, entry: str) -> int:
        runs.append(1)
        session.execute("INSERT INTO ledger (entry) VALUES (:e)", {"e": entry})
        if len(runs) == 1:
            postgres.terminate_backends("replayed")
        return int(session.execute("SELECT count(*) FROM ledger").scalar_one())

    assert client.run_transaction(record, "payment", retryable=True) == 1
    assert runs == [1, 1]
    assert clock.sleeps == [0.5]
    assert postgres.execute("SELECT entry FROM ledger") == [("payment",)]  # once, not twice


# --- a real serialization failure ------------------------------------------------------------


@pytest.fixture
def doctors(postgres: PostgresServer) -> str:
    postgres.execute("DROP TABLE IF EXISTS doctors; "
                     "CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL); "
                     "INSERT INTO doctors VALUES ('alice', true), ('bob', true)")
    return "doctors"


def _write_skew(client: DatabaseClient, *, retryable: bool) -> tuple[dict[str, int],
                                                                      list[BaseException]]:
    """Alice and Bob each go off call if someone else is still on call: both read
    "two on call" at the same time (a barrier), then write. Under SERIALIZABLE
    one of them must fail with 40001."""
    barrier = threading.Barrier(2)
    runs = {"alice": 0, "bob": 0}
    errors: list[BaseException] = []

    def go_off_call(session: Any, name: str) -> None:
        runs[name] += 1
        on_call = session.execute("SELECT count(*) FROM doctors WHERE on_call").scalar_one()
        if runs[name] == 1:
            barrier.wait(timeout=10)
        if on_call >= 2:
            session.execute("UPDATE doctors SET on_call = false WHERE name = :n", {"n": name})

    def doctor(name: str) -> None:
        try:
            client.run_transaction(go_off_call, name, retryable=retryable)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=doctor, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return runs, errors


def test_two_concurrent_serializable_transactions_conflict_and_the_loser_is_not_replayed(
        postgres: PostgresServer, clients: ClientFactory, doctors: str) -> None:
    client = clients(postgres.url, failure_threshold=1,
                     engine_options={"isolation_level": "SERIALIZABLE"})
    runs, errors = _write_skew(client, retryable=False)
    assert runs == {"alice": 1, "bob": 1}
    [error] = errors
    assert is_database_conflict(error)
    assert error.orig.sqlstate == "40001"  # type: ignore[attr-defined]
    # A conflict is the database answering: the breaker stays closed.
    assert client.breaker.state.value == "closed"
    assert postgres.execute("SELECT count(*) FROM doctors WHERE on_call") == [(1,)]


def test_a_retryable_transaction_that_loses_a_serialization_conflict_is_replayed_whole(
        postgres: PostgresServer, clients: ClientFactory, clock: VirtualClock,
        doctors: str) -> None:
    client = clients(postgres.url, clock=clock, base_delay=0.5,
                     engine_options={"isolation_level": "SERIALIZABLE"})
    runs, errors = _write_skew(client, retryable=True)
    assert errors == []
    assert sorted(runs.values()) == [1, 2]  # the loser ran again, and saw the winner's write
    assert clock.sleeps == [0.5]
    assert postgres.execute("SELECT count(*) FROM doctors WHERE on_call") == [(1,)]


# --- the connection is cut while COMMIT is in flight ----------------------------------------


@pytest.fixture
def proxy(postgres: PostgresServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", postgres.port) as running:
        yield running


def test_a_connection_lost_during_commit_is_reported_and_never_replayed(
        postgres: PostgresServer, proxy: FaultProxy, clients: ClientFactory,
        clock: VirtualClock, ledger: str) -> None:
    client = clients(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/postgres",
                     clock=clock, name="commit_cut")
    runs: list[int] = []

    def pay(session: Any) -> None:
        runs.append(1)
        session.execute("INSERT INTO ledger (entry) VALUES ('payment')")

    proxy.reset_after(b"COMMIT")
    with pytest.raises(CommitOutcomeUnknownError) as caught:
        client.run_transaction(pay, retryable=True)  # even marked retryable
    assert runs == [1]
    assert clock.sleeps == []
    assert is_database_disconnect(caught.value.__cause__)  # type: ignore[arg-type]
    # The server got the COMMIT and committed: a replay would have paid twice.
    assert postgres.execute("SELECT count(*) FROM ledger") == [(1,)]
    assert client.breaker.stats.failure_count == 1

    proxy.restore()
    with client.session() as session:
        assert session.execute("SELECT count(*) FROM ledger").scalar_one() == 1
