"""Every script in ``examples/`` runs cleanly and prints what it promises.

Each example runs in its own interpreter, from the repository root, exactly as
a reader would run it. ``EXPECTED`` lists, per example, a few lines of output
that show the example did its job; an example missing from the table fails,
so no example can go untested by being forgotten here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(path.name for path in EXAMPLES_DIR.glob("*.py"))

# Substrings each example's stdout must contain. Chosen to prove the behaviour
# the example is about, not incidental formatting (timestamps, ports).
EXPECTED: dict[str, tuple[str, ...]] = {
    "database_client.py": (
        "rolled back: account 1 still has 100",
        "transfer -> account 2 has 30",
        "RetryExhaustedError after 3 attempts (OperationalError)",
        "breaker 'down_db' is open: CircuitBreakerError, server not tried",
        "health: unhealthy (circuit breaker open)",
    ),
    "cache_client.py": (
        "served from memory: hello Ada",
        "health: degraded (breaker open, 2 writes waiting for Redis)",
        # redis-server is a test requirement (scripts/install-redis.sh)
        "health: healthy (breaker closed, 0 writes waiting for Redis)",
        "Redis holds: hello {'name': 'Ada'} ttl 35",  # 3599 s left, or a little less
    ),
    "observability.py": (
        'circuit_breaker_state{operation="inventory"} 1.0',
        'resilient_retries_total{operation="fetch_price"} 2.0',
        "span 'fetch_price': status=UNSET, attempts=['failure', 'failure', 'success']",
    ),
    "retry_http.py": (
        "server hits: 3 (2 failures + 1 success)",
        "not retried: HTTPError 404, server hits: 1",
        "RetryExhaustedError: attempts=4",
    ),
    "circuit_breaker.py": (
        "rejected by breaker 'flaky-api' (state=open",
        "** breaker 'flaky-api': half_open -> closed",
        "final state: closed",
    ),
    "async_pipeline.py": (
        "OperationTimeoutError: operation 'stock' timed out after 0.2s",
        "OperationTimeoutError: operation 'stock_sync' timed out after 0.2s",
        "-> {'ok': False, 'source': 'fallback'} (server hits +0)",
    ),
    "presets.py": (
        "get_user(1) -> {'id': 1, 'name': 'Ada'} after 2 calls, waits [0.5]",
        "api.max_attempts = 3  (code: argument)",
        "resilience off: ConnectionError(server closed the connection) raised at once, calls=1",
        "ctx.acall: {'id': 1, 'plan': 'pro'} after 2 calls",
    ),
    "configuration.py": (
        "load_order(7): RetryExhaustedError after 5 attempts (database calls +5)",
        "round trip equal: settings True, retry configs True, breaker configs True",
        "database.timeout_seconds = 12.5  (env: BUTTRESS_DATABASE_TIMEOUT)",
        "<tmp>/bad.json:4: retry_configs.orders.max_attemps: unknown key 'max_attemps'",
    ),
    "fastapi_service.py": (
        "GET /prices/7 -> 200 {'item_id': 7, 'price': 16.99} status=healthy",
        "GET /stock/7 with X-Request-Timeout: 1.5 -> 200, deadline seen by the endpoint: True",
        "GET /prices/7 -> 502 retry-after=None status=healthy",
        "GET /prices/7 -> 503 retry-after=30 status=degraded",
        "GET /health -> 503 status=unhealthy checks={'pricing': False}",
        "'pricing': 'open'",
    ),
    "virtual_time_testing.py": (
        "check_backoff_schedule: ok (virtual time 15s, waits [1.0, 2.0, 4.0, 8.0])",
        "check_breaker_recovery: ok (virtual time 30s, waits [])",
        "all checks passed",
    ),
}

# Arguments an example needs to run to its end: a server example serves
# until stopped unless asked for its self-contained demo.
ARGS: dict[str, tuple[str, ...]] = {
    "fastapi_service.py": ("--demo",),
}

TIMEOUT = 30.0


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the interpreter from the repository root, as CI would."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        # BUTTRESS_* variables of the caller's shell would change what the
        # configuration examples print.
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BUTTRESS_")},
             "CI": "true"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _defines_tests(name: str) -> bool:
    source = (EXAMPLES_DIR / name).read_text(encoding="utf-8")
    return re.search(r"^(async )?def test_", source, flags=re.MULTILINE) is not None


def test_every_expectation_names_an_existing_example() -> None:
    assert EXAMPLES, f"no examples found in {EXAMPLES_DIR}"
    stale = sorted(set(EXPECTED) - set(EXAMPLES))
    assert not stale, f"EXPECTED lists examples that do not exist: {stale}"


@pytest.mark.wallclock
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_prints_what_it_shows(name: str) -> None:
    if name not in EXPECTED:
        pytest.fail(f"examples/{name} has no entry in EXPECTED in {Path(__file__).name}; "
                    "add the output lines that show it works")
    # ResourceWarnings (an unclosed socket or response) are shown, and then
    # fail the run through the empty-stderr check below.
    result = _run("-W", "default::ResourceWarning", str(EXAMPLES_DIR / name),
                  *ARGS.get(name, ()))
    output = f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    assert result.returncode == 0, output
    assert result.stderr == "", output
    missing = [line for line in EXPECTED[name] if line not in result.stdout]
    assert not missing, f"missing from the output: {missing}\n{output}"


@pytest.mark.wallclock
@pytest.mark.parametrize("name", [name for name in EXAMPLES if _defines_tests(name)])
def test_example_test_functions_pass_under_pytest(name: str) -> None:
    # addopts cleared: the project's "-q" would hide the "N passed" summary line.
    result = _run("-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider",
                  f"examples/{name}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b[1-9]\d* passed\b", result.stdout), result.stdout
