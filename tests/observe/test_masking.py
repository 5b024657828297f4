"""Secrets in names and messages are masked wherever they leave the process:
log lines and their fields, events' names, metric labels and names, health JSON.
One function (``redact``) masks them all, and it masks before anything is cut."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from buttress import CircuitBreaker, Retry
from buttress._core.strategy import describe, redact
from buttress.events import Event
from buttress.observe import get_resilience_health, resilience_metrics, with_metrics
from buttress.testing import ScriptedCall, VirtualClock

URL = "postgresql://user:secret@host/db?token=abc"
SECRETS = ("secret", "token=abc", "abc")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def _record_text(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + " ".join(
        str(v) for k, v in record.__dict__.items() if k in ("operation", "breaker", "name"))


def test_redact_masks_credentials_query_and_secret_pairs() -> None:
    assert redact(URL) == "postgresql://***@host/db?***"
    assert redact("postgresql://user:p@ss@host/db") == "postgresql://***@host/db"
    assert redact("connect failed, password=hunter2; retrying") == (
        "connect failed, password=***; retrying")
    assert redact("Authorization: Bearer abc.def") == "Authorization: ***"
    assert redact("mod.get_user") == "mod.get_user"


# 175: the cut falls right after "secret", before the "@" that marks it a password.
_JUST_BEFORE_AT = 200 - 1 - len("postgresql://user:secret")


@pytest.mark.parametrize("prefix", [0, 1, 150, 170, _JUST_BEFORE_AT - 1, _JUST_BEFORE_AT,
                                    180, 190, 199, 200, 250, 20_000])
def test_describe_masks_a_url_wherever_the_200_character_cut_falls(prefix: int) -> None:
    message = "x" * prefix + " " + URL + " tail"
    described = describe(ConnectionError(message))

    assert _leaks(described) == []
    assert described.startswith("ConnectionError: ")
    assert len(described) <= len("ConnectionError: ") + 203


def test_a_retry_named_by_a_url_logs_and_reports_it_masked(
    caplog: pytest.LogCaptureFixture, virtual_clock: VirtualClock,
) -> None:
    heard: list[Event] = []
    retrying = Retry(max_attempts=2, base_delay=0.0, name=URL, clock=virtual_clock)
    retrying.events.add(heard.append)
    caplog.set_level(logging.DEBUG, logger="buttress")

    with pytest.raises(Exception, match="after 2 attempts"):
        retrying.call(ScriptedCall(ConnectionError(f"refused by {'y' * 185} {URL}"),
                                   ConnectionError(URL)))

    assert heard
    assert {e.name for e in heard} == {"postgresql://***@host/db?***"}
    assert caplog.records
    for record in caplog.records:
        assert _leaks(_record_text(record)) == [], record.getMessage()


def test_a_breaker_named_by_a_url_is_masked_in_logs_events_and_health(
    caplog: pytest.LogCaptureFixture, virtual_clock: VirtualClock,
) -> None:
    heard: list[Event] = []
    breaker = CircuitBreaker(URL, failure_threshold=1, clock=virtual_clock)
    breaker.events.add(heard.append)
    caplog.set_level(logging.DEBUG, logger="buttress")

    with pytest.raises(ConnectionError):
        breaker.call(ScriptedCall(ConnectionError))

    assert [(type(e).__name__, e.name) for e in heard] == [
        (kind, "postgresql://***@host/db?***")
        for kind in ("CallStarted", "StateChanged", "CallFinished")]
    assert any("closed -> open" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert _leaks(_record_text(record)) == []
    health = get_resilience_health()
    assert _leaks(json.dumps(health)) == []
    assert health["open_breakers"] == ["postgresql://***@host/db?***"]


def test_metrics_named_by_a_url_are_recorded_and_exported_masked(clock: VirtualClock) -> None:
    @with_metrics(URL, clock=clock)
    def query() -> str:
        raise ValueError(f"bad query against {URL}")

    with pytest.raises(ValueError):
        query()
    resilience_metrics.record(URL, "success")

    exported = resilience_metrics.export_metrics()
    assert _leaks(exported) == []
    assert resilience_metrics.get_metrics(URL)["total"] == 2  # looked up as given
    assert list(resilience_metrics.get_metrics()["operations"]) == [
        "postgresql://***@host/db?***"]


def test_prometheus_labels_of_a_url_name_are_masked(virtual_clock: VirtualClock) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from buttress.observe.prometheus import PrometheusMetrics

    registry: Any = prometheus_client.CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    breaker = CircuitBreaker(URL, failure_threshold=1, clock=virtual_clock)
    metrics.attach(breaker)
    with pytest.raises(ConnectionError):
        breaker.call(ScriptedCall(ConnectionError))

    text = prometheus_client.generate_latest(registry).decode()
    assert "postgresql://***@host/db?***" in text
    assert _leaks(text) == []
