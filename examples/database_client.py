"""The resilient database client: ``get_database_client(url)``.

What this shows:

* ``client.session()``: one transaction, committed when the block ends and
  rolled back when it raises; plain SQL strings work as in the seeds;
* ``client.run_transaction(fn, retryable=True)``: the whole function is the unit
  that may run again (after a serialization failure, a deadlock, or a
  connection lost before COMMIT), never a single statement;
* a database that is down: opening a connection is retried (refused three
  times, with backoff), then the breaker is open and sessions fail at once,
  without trying the server; ``health_check()`` says so;
* on PostgreSQL, the call's deadline becoming each transaction's statement
  timeout (``SET LOCAL statement_timeout``), so the server ends slow work.

It uses SQLite in a temporary directory, so it runs anywhere. Point it at
PostgreSQL with an environment variable::

    .venv/bin/python examples/database_client.py
    export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python examples/database_client.py

The "database that is down" is a PostgreSQL URL on a loopback port nobody
listens on: connections are refused at once, no server needed.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from buttress import CircuitBreakerError, RetryExhaustedError, deadline, get_database_client

logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  log: %(message)s")


def transfer(session: Any, amount: int) -> int:
    """Move ``amount`` from account 1 to account 2; the whole function is the unit
    that run_transaction may run again, so it does database work only."""
    session.execute("UPDATE accounts SET balance = balance - :a WHERE id = 1", {"a": amount})
    session.execute("UPDATE accounts SET balance = balance + :a WHERE id = 2", {"a": amount})
    return int(session.execute("SELECT balance FROM accounts WHERE id = 2").scalar_one())


def sessions_and_transactions(url: str) -> None:
    client = get_database_client(url, name="example_db")
    print(f"database: {client.url.get_backend_name()}")
    with client.session() as session:
        session.execute("DROP TABLE IF EXISTS accounts")
        session.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
        session.execute("INSERT INTO accounts VALUES (1, 100), (2, 0)")

    try:
        with client.session() as session:
            session.execute("UPDATE accounts SET balance = 0 WHERE id = 1")
            raise ValueError("changed my mind")
    except ValueError:
        pass
    with client.session() as session:
        balance = session.execute("SELECT balance FROM accounts WHERE id = 1").scalar_one()
    print(f"rolled back: account 1 still has {balance}")

    print(f"transfer -> account 2 has {client.run_transaction(transfer, 30, retryable=True)}")
    print(f"health: {client.health_check()['status']}")

    if client.url.get_backend_name() == "postgresql":
        with deadline(0.5), client.session() as session:
            shown = session.execute("SHOW statement_timeout").scalar_one()
        print(f"statement_timeout under a 0.5 s deadline: {shown}")
    client.dispose()


def a_database_that_is_down() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = get_database_client(f"postgresql://app@127.0.0.1:{port}/app", name="down_db",
                               max_attempts=3, base_delay=0.05, failure_threshold=3)
    try:
        with down.session() as session:
            session.execute("SELECT 1")
    except RetryExhaustedError as exc:
        print(f"RetryExhaustedError after {exc.attempts} attempts "
              f"({type(exc.last_exception).__name__})")
    try:
        with down.session():
            pass
    except CircuitBreakerError as exc:
        print(f"breaker 'down_db' is {exc.state.value}: CircuitBreakerError, server not tried")
    report = down.health_check()
    print(f"health: {report['status']} ({report['error']})")
    down.dispose()


def main() -> None:
    url = os.environ.get("DATABASE_URL")
    with tempfile.TemporaryDirectory() as scratch:
        sessions_and_transactions(url or f"sqlite:///{Path(scratch) / 'example.db'}")
    a_database_that_is_down()


if __name__ == "__main__":
    main()
