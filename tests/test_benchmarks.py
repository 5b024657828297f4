"""Smoke test of the benchmark harness and report: a few tiny cases, a few rounds,
no peer libraries and no assertions on timings."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness, machine, report  # noqa: E402
from benchmarks.functions import failing, succeeding  # noqa: E402
from benchmarks.groups import BREAKER_OPEN, PIPELINE, RETRY_SUCCESS  # noqa: E402
from benchmarks.harness import Case, Settings  # noqa: E402
from benchmarks.results import Findings, Footprint, SleepCheck, Throughput  # noqa: E402

import buttress  # noqa: E402

TARGET_NAMES = (
    "success-path retry overhead (sync)",
    "success-path retry overhead (async)",
    "success-path retry vs tenacity (sync)",
    "closed-breaker overhead (async)",
    "open-breaker rejection, caught (sync)",
    "five-strategy async pipeline overhead",
    "zero-delay retries make no sleep call",
    "breaker-protected I/O, 8 threads vs 1",
)


def _retried(kind: harness.Kind) -> Callable[[], Callable[[], Any]]:
    return lambda: buttress.retry(max_attempts=3, base_delay=0, jitter=0)(succeeding(kind))


def _open_breaker() -> Callable[[], Any]:
    breaker = buttress.CircuitBreaker("bench-smoke", failure_threshold=1)
    protected: Callable[[], Any] = breaker(failing("sync"))
    with contextlib.suppress(ConnectionError):
        protected()
    return protected


def _broken() -> Callable[[], Any]:
    raise RuntimeError("peer API changed")


def _tiny_cases() -> list[Case]:
    return [
        Case(RETRY_SUCCESS, "buttress", "sync", _retried("sync")),
        Case(RETRY_SUCCESS, "buttress", "async", _retried("async")),
        Case(RETRY_SUCCESS, "plain peer", "sync", lambda: succeeding("sync")),
        Case(BREAKER_OPEN, "buttress", "sync", _open_breaker,
             expect=(buttress.CircuitBreakerError,)),
        Case(RETRY_SUCCESS, "broken peer", "sync", _broken),
    ]


def _render(timings: harness.Timings) -> str:
    findings = Findings(
        timings,
        throughput=[Throughput("buttress", 1, 900.0), Throughput("buttress", 8, 7000.0)],
        memory=[Footprint("buttress", 1, 700), Footprint("buttress", 1000, 500_000)],
        sleep_check=SleepCheck(calls=10, sleeps=0),
        pipeline_strategies=4,
    )
    return report.render(findings, machine.describe(), "smoke", "2024-01-01 00:00 UTC")


def test_harness_times_every_case_once_per_round_and_reports_failures() -> None:
    timings = harness.run(_tiny_cases(), Settings(rounds=3, batch_ms=0.05))

    assert set(timings.per_call_ns) == {
        harness.bare_id("sync"), harness.bare_id("async"),
        f"{RETRY_SUCCESS}/sync/buttress", f"{RETRY_SUCCESS}/async/buttress",
        f"{RETRY_SUCCESS}/sync/plain peer", f"{BREAKER_OPEN}/sync/buttress",
    }
    assert all(len(samples) == 3 for samples in timings.per_call_ns.values())
    assert timings.errors == {
        f"{RETRY_SUCCESS}/sync/broken peer": "RuntimeError: peer API changed"
    }


def test_report_has_group_tables_and_every_target_line() -> None:
    text = _render(harness.run(_tiny_cases(), Settings(rounds=2, batch_ms=0.05)))

    assert "## a. Success-path retry" in text
    assert "## e. Open breaker rejection" in text
    assert re.search(r"^\| bare call \| [\d.]+ \| — \| — \| — \|$", text, re.MULTILINE)
    assert re.search(r"^\| buttress \| [\d.]+ \| -?[\d.]+ \| — \| — \|$", text, re.MULTILINE)
    assert re.search(r"^\| plain peer \| [\d.]+ \| -?[\d.]+ \| [\d.e-]+ \(.*\) \| .* \|$", text,
                     re.MULTILINE)
    assert "| broken peer | error: RuntimeError: peer API changed |" in text
    assert "| buttress | 900/s (1.0x) | 7,000/s (7.8x) |" in text
    assert "| buttress | 700 | 500,000 | 500 |" in text
    assert "## Targets" in text
    for name in TARGET_NAMES:
        assert re.search(rf"^\| {re.escape(name)} \| .+ \| .+ \| (pass|MISS|not run) \|$", text,
                         re.MULTILINE), name
    assert "| breaker-protected I/O, 8 threads vs 1 | ≥ 6x calls/s | 7.8x | pass |" in text
    assert "| five-strategy async pipeline overhead | < 3 µs | not run | not run |" in text
    assert "Zero-delay retries make no sleep call: pass" in text


def test_report_marks_a_missing_bulkhead() -> None:
    timings = harness.run(
        [Case(PIPELINE, "buttress", "async", _retried("async"))], Settings(1, 0.05)
    )

    text = _render(timings)

    assert "**Bulkhead missing:**" in text
    assert "with 4 strategies: no Bulkhead yet" in text
