"""The database client against a real PostgreSQL server (and SQLite): sessions
commit or roll back, plain SQL strings work, the statement timeout follows the
call's deadline, the breaker counts only the database's failures, health checks."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import sqlalchemy.exc

from buttress import ConfigurationError, deadline
from buttress.stores.database import DatabaseClient, DatabaseClientConfig, get_database_client
from servers.postgres import PostgresServer, free_port

from .conftest import ClientFactory


def _count(client: DatabaseClient, table: str) -> int:
    with client.session() as session:
        return int(session.execute(f"SELECT count(*) FROM {table}").scalar_one())


@pytest.fixture
def accounts(postgres: PostgresServer) -> str:
    postgres.execute("DROP TABLE IF EXISTS accounts; "
                     "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
    return "accounts"


def test_a_session_commits_when_its_block_ends(
        postgres: PostgresServer, clients: ClientFactory, accounts: str) -> None:
    client = clients(postgres.url)
    with client.session() as session:
        session.execute("INSERT INTO accounts VALUES (1, 100)")
    assert postgres.execute("SELECT balance FROM accounts") == [(100,)]


def test_a_session_rolls_back_when_its_block_raises(
        postgres: PostgresServer, clients: ClientFactory, accounts: str) -> None:
    client = clients(postgres.url)
    with pytest.raises(ZeroDivisionError), client.session() as session:
        session.execute("INSERT INTO accounts VALUES (1, 100)")
        1 / 0  # noqa: B018
    assert postgres.execute("SELECT count(*) FROM accounts") == [(0,)]


def test_a_plain_sql_string_takes_named_parameters(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url)
    with client.session() as session:
        assert session.execute("SELECT :a + :b", {"a": 2, "b": 3}).scalar_one() == 5


def test_each_transaction_gets_the_configured_statement_timeout(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url, statement_timeout=7.0)
    with client.session() as session:
        assert session.execute("SHOW statement_timeout").scalar_one() == "7s"


def test_the_statement_timeout_is_the_time_left_of_the_calls_deadline(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url, statement_timeout=30.0)
    with deadline(0.8), client.session() as session:
        shown = session.execute("SHOW statement_timeout").scalar_one()
    assert shown.endswith("ms")
    assert 500 < int(shown[:-2]) <= 800


@pytest.mark.wallclock
def test_a_statement_running_past_the_deadline_is_cancelled_by_the_server(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    client = clients(postgres.url, max_attempts=1)
    started = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught, deadline(0.3), \
            client.session() as session:
        session.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 2.0
    assert caught.value.orig.sqlstate == "57014"  # type: ignore[union-attr]  # query_canceled
    assert client.breaker.stats.failure_count == 1  # too slow counts against the database


def test_an_integrity_error_is_the_database_answering_not_failing(
        postgres: PostgresServer, clients: ClientFactory, accounts: str) -> None:
    client = clients(postgres.url, failure_threshold=1)
    postgres.execute("INSERT INTO accounts VALUES (1, 100)")
    for _ in range(3):
        with pytest.raises(sqlalchemy.exc.IntegrityError), client.session() as session:
            session.execute("INSERT INTO accounts VALUES (1, 5)")
    assert client.breaker.state.value == "closed"
    assert client.breaker.stats.failure_count == 0


def test_sqlite_sessions_commit_and_roll_back_too(tmp_path: Path, clients: ClientFactory) -> None:
    client = clients(f"sqlite:///{tmp_path / 'app.db'}")
    with client.session() as session:
        session.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        session.execute("INSERT INTO users (name) VALUES ('ada')")
    with pytest.raises(RuntimeError), client.session() as session:
        session.execute("INSERT INTO users (name) VALUES ('bob')")
        raise RuntimeError("abandon")
    assert _count(client, "users") == 1


async def test_an_async_session_commits_on_postgresql(
        postgres: PostgresServer, clients: ClientFactory, accounts: str) -> None:
    client = clients(postgres.url)
    try:
        async with client.async_session() as session:
            await session.execute("INSERT INTO accounts VALUES (2, 50)")
        async with deadline(0.9), client.async_session() as session:
            timeout = (await session.execute("SHOW statement_timeout")).scalar_one()
            rows = (await session.execute("SELECT id, balance FROM accounts")).fetchall()
    finally:
        await client.adispose()
    assert rows == [(2, 50)]
    assert timeout.endswith("ms")


def test_async_sessions_on_sqlite_name_the_missing_driver(
        clients: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosqlite", None)  # as where it is not installed
    with pytest.raises(ImportError, match="pip install aiosqlite"):
        clients("sqlite://").async_engine  # noqa: B018


def test_health_check_reports_a_working_database(
        postgres: PostgresServer, clients: ClientFactory) -> None:
    report = clients(postgres.url).health_check()
    assert report["status"] == "healthy"
    assert report["backend"] == "postgresql"
    assert report["circuit_breaker"] == "closed"
    assert report["latency_ms"] >= 0.0
    assert "error" not in report


def test_health_check_reports_an_unreachable_database_without_its_password(
        clients: ClientFactory) -> None:
    client = clients(f"postgresql://app:s3cret@127.0.0.1:{free_port()}/app", connect_timeout=2)
    report = client.health_check()
    assert report["status"] == "unhealthy"
    assert report["error"].startswith("OperationalError")
    assert "s3cret" not in repr(report)
    assert "s3cret" not in repr(client)


def test_get_database_client_gives_the_same_client_for_the_same_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUTTRESS_DATABASE_URL", "sqlite://")
    first = get_database_client()
    assert get_database_client("sqlite://") is first
    assert get_database_client("sqlite://", max_attempts=5) is not first
    assert first.config.max_attempts == 3  # the database settings' default


def test_a_postgresql_url_without_a_driver_uses_psycopg_3() -> None:
    client = DatabaseClient("postgresql://app@db.internal/app")
    assert client.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(("field", "value"), [
    ("max_attempts", 0), ("connect_timeout", 0), ("statement_timeout", -1.0),
    ("failure_threshold", 0), ("pool_size", 0), ("name", ""),
])
def test_a_bad_setting_is_refused_naming_its_field(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"DatabaseClientConfig.{field}"):
        DatabaseClientConfig(**{field: value})  # type: ignore[arg-type]


def test_a_malformed_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        get_database_client("not a url :: s3cret")
    assert "s3cret" not in str(caught.value)
