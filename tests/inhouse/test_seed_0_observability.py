"""Seed S0 — ``utils.resilience`` (``seeds/000_bd9eb1b9a1dab812.txt``): its metrics,
status and health-check examples on buttress.

As in ``test_seed_0_utils_resilience.py``, each test is one example with its
import line changed to ``from buttress import ...``; ``clock=clock`` is the one
extra keyword where an example would wait. The reader's own code is a minimal
stand-in: ``requests`` calls the real loopback ``FlakyServer`` (urllib),
``get_db_connection()`` opens a real sqlite3 database, ``send_alert`` collects
alerts. Relative file names (``"resilience_metrics.json"``) land in a temporary
working directory.

Ported:

* Advanced Usage — Metrics Collection (``with_metrics``, ``resilience_metrics``:
  ``get_metrics``, ``get_success_rate``, ``export_metrics``)
* Advanced Usage — Health Checks with Circuit Breakers
  (``health_check_with_circuit_breaker``)
* Best Practices §5 — Monitor and Alert on Circuit Breaker States
  (``get_resilience_status``)
* Monitoring and Observability — Real-time Status (``get_resilience_status``)
* Monitoring and Observability — Metrics Export (``export_metrics``,
  ``operation_history[-10:]``)

Documented meanings: ``get_success_rate()`` and ``status['success_rate']`` are
percentages (0-100, as the seed's ``{...:.2f}%`` prints them), 0.0 before any
operation; ``with_metrics`` records a call whose retries ran out as one failed
operation with its attempts.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from buttress import CircuitBreakerError, RetryExhaustedError
from buttress.flaky_server import FlakyServer
from buttress.observe import resilience_metrics as _metrics
from buttress.testing import VirtualClock

from ._standins import requests


@pytest.fixture(autouse=True)
def _fresh_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Empty global metrics, and a temporary working directory for the exports."""
    monkeypatch.chdir(tmp_path)
    _metrics.reset()
    yield
    _metrics.reset()


def _database(path: Path) -> Any:
    """Stand-in for the reader's ``get_db_connection()``: a real sqlite3 connection,
    committed and closed when the ``with`` block ends."""

    @contextlib.contextmanager
    def get_db_connection() -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(path)
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    return get_db_connection


# --- Advanced Usage — Metrics Collection ------------------------------------------------------


def test_metrics_collection(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import resilience_metrics, retry_http_request, with_metrics

    base_url = server.url  # the reader's API; stopped below to make calls fail

    @with_metrics("user_api_calls")
    @retry_http_request(max_attempts=3, clock=clock)
    def get_user_data(user_id):
        return requests.get(f"{base_url}/api/users/{user_id}")

    assert get_user_data(1).json() == {"ok": True, "path": "/api/users/1"}
    assert get_user_data(2).status_code == 200
    server.stop()  # the API goes down: connection refused
    with pytest.raises(requests.ConnectionError):
        get_user_data(3)

    # Get metrics
    metrics = resilience_metrics.get_metrics()
    success_rate = resilience_metrics.get_success_rate()

    # Export metrics to file
    resilience_metrics.export_metrics("resilience_metrics.json")

    assert metrics["total_operations"] == 3
    assert metrics["successful_operations"] == 2
    assert metrics["failed_operations"] == 1
    assert metrics["operations"]["user_api_calls"]["latency"]["count"] == 3
    assert success_rate == pytest.approx(200 / 3)
    exported = json.loads(Path("resilience_metrics.json").read_text(encoding="utf-8"))
    assert exported["metrics"]["total_operations"] == 3
    assert [r["outcome"] for r in exported["operation_history"]] == [
        "success", "success", "failure"]


# --- Advanced Usage — Health Checks with Circuit Breakers -------------------------------------


def test_health_checks_with_circuit_breakers(tmp_path: Path) -> None:
    from buttress import health_check_with_circuit_breaker

    get_db_connection = _database(tmp_path / "app.db")

    def database_health_check():
        with get_db_connection() as conn:
            conn.execute("SELECT 1")
        return True

    # Health check that respects circuit breaker state
    is_healthy = health_check_with_circuit_breaker("database", database_health_check)

    assert is_healthy is True


def test_health_checks_with_circuit_breakers_when_the_database_is_gone(tmp_path: Path) -> None:
    from buttress import get_circuit_breaker, health_check_with_circuit_breaker

    opened = 0
    connect = _database(tmp_path / "missing-dir" / "app.db")  # unable to open database file

    def get_db_connection() -> Any:
        nonlocal opened
        opened += 1
        return connect()

    def database_health_check():
        with get_db_connection() as conn:
            conn.execute("SELECT 1")
        return True

    results = [health_check_with_circuit_breaker("database", database_health_check)
               for _ in range(7)]

    # Never raises; after 5 failures (the default threshold) the breaker is open
    # and the check is no longer run against the failing database.
    assert results == [False] * 7
    assert opened == 5
    assert get_circuit_breaker("database").state.value == "open"


# --- Best Practices §5 — Monitor and Alert on Circuit Breaker States --------------------------


def test_monitor_and_alert_on_circuit_breaker_states(
    server: FlakyServer, clock: VirtualClock,
) -> None:
    from buttress import get_resilience_status, retry_http_request

    alerts: list[str] = []
    send_alert = alerts.append  # stand-in for the reader's pager

    @retry_http_request(circuit_breaker="payment_api", clock=clock)
    def process_payment(amount):
        response = requests.post(f"{server.url}/charge", json={"amount": amount})
        response.raise_for_status()
        return response.json()

    @retry_http_request(circuit_breaker="github_api", clock=clock)
    def get_repository():
        return requests.get(f"{server.url}/repos/octo/hello").json()

    assert get_repository() == {"ok": True, "path": "/repos/octo/hello"}
    server.script(*[503] * 5)
    with pytest.raises(RetryExhaustedError):
        process_payment(10)
    with pytest.raises(CircuitBreakerError):
        process_payment(10)  # the 5th failure opens "payment_api"

    status = get_resilience_status()
    for name, cb_status in status['circuit_breakers'].items():
        if cb_status['state'] == 'open':
            send_alert(f"Circuit breaker {name} is open!")

    assert alerts == ["Circuit breaker payment_api is open!"]


# --- Monitoring and Observability — Real-time Status ------------------------------------------


def test_real_time_status(
    server: FlakyServer, clock: VirtualClock, capsys: pytest.CaptureFixture[str],
) -> None:
    from buttress import get_resilience_status, retry_http_request, with_metrics

    @with_metrics("fetch_data")
    @retry_http_request(max_attempts=2, circuit_breaker="external_api", clock=clock)
    def fetch_data():
        response = requests.get(f"{server.url}/data")
        response.raise_for_status()
        return response.json()

    server.script(200, 200, 200, 503, 503)
    for _ in range(3):
        fetch_data()
    with pytest.raises(RetryExhaustedError):
        fetch_data()

    status = get_resilience_status()
    print(f"Overall success rate: {status['success_rate']:.2f}%")
    print(f"Total operations: {status['metrics']['total_operations']}")

    for name, cb in status['circuit_breakers'].items():
        print(f"Circuit breaker {name}: {cb['state']}")

    assert capsys.readouterr().out.splitlines() == [
        "Overall success rate: 75.00%",
        "Total operations: 4",
        "Circuit breaker external_api: closed",
    ]


# --- Monitoring and Observability — Metrics Export --------------------------------------------


def test_metrics_export(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import resilience_metrics, retry_http_request, with_metrics

    @with_metrics("report_rows")
    @retry_http_request(max_attempts=3, clock=clock)
    def fetch_row(n):
        response = requests.get(f"{server.url}/rows/{n}")
        response.raise_for_status()
        return response.json()

    server.script(503)  # the first row needs one retry
    for n in range(12):
        fetch_row(n)

    # Export detailed metrics
    resilience_metrics.export_metrics("daily_resilience_report.json")

    # Get operation history
    history = resilience_metrics.operation_history[-10:]  # Last 10 operations

    assert len(history) == 10
    assert all(record.name == "report_rows" and record.success for record in history)
    report = json.loads(Path("daily_resilience_report.json").read_text(encoding="utf-8"))
    assert report["metrics"]["total_operations"] == 12
    assert len(report["operation_history"]) == 12
    assert server.hits == 13
