"""Testing resilient code without sleeping: ``buttress.testing.VirtualClock``.

Every buttress strategy takes a ``clock``. A ``VirtualClock`` only moves when
someone sleeps on it or calls ``clock.advance(seconds)``, and it records every
wait in ``clock.sleeps``. So a test can:

* assert the *exact* backoff schedule of a retry (1 s, 2 s, 4 s, ...) and run
  it in microseconds;
* cross a 30 s circuit-breaker recovery timeout with ``clock.advance(30)``.

The same checks appear twice: as plain ``assert``s in ``main()``, so the file
runs as a script, and as pytest test functions at the bottom, which use the
``virtual_clock`` fixture that buttress's pytest plugin provides::

    .venv/bin/python examples/virtual_time_testing.py
    .venv/bin/python -m pytest examples/virtual_time_testing.py
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from buttress import (
    CircuitBreaker,
    CircuitBreakerError,
    CircuitState,
    RetryExhaustedError,
    retry,
)
from buttress.testing import VirtualClock

E = TypeVar("E", bound=BaseException)


def raised(expected: type[E], call: Callable[[], object]) -> E:
    """The exception ``call()`` raised: ``pytest.raises`` in miniature, so that the
    checks also run as a plain script, without pytest installed."""
    try:
        call()
    except expected as exc:
        return exc
    raise AssertionError(f"expected {expected.__name__}, nothing was raised")


class FlakyDependency:
    """A stand-in for a remote service: fails ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"call {self.calls} refused")
        return "ok"


def check_backoff_schedule(clock: VirtualClock) -> None:
    """Retry with an exact, jitter-free exponential schedule."""
    dependency = FlakyDependency(failures=4)
    fetch = retry(max_attempts=5, base_delay=1.0, jitter=0, clock=clock)(dependency)

    assert fetch() == "ok"
    assert dependency.calls == 5
    # Four failures, four waits: 1, 2, 4, 8 seconds. None of them really happened.
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert clock.now == 15.0


def check_retry_gives_up(clock: VirtualClock) -> None:
    """When every attempt fails, the waits are still exact and the error says why."""
    dependency = FlakyDependency(failures=10)
    fetch = retry(max_attempts=3, base_delay=0.5, max_delay=0.8, jitter=0,
                  clock=clock)(dependency)

    error = raised(RetryExhaustedError, fetch)
    assert error.attempts == 3
    assert isinstance(error.last_exception, ConnectionError)
    assert clock.sleeps == [0.5, 0.8]  # the second wait (1.0) is capped at max_delay


def check_breaker_recovery(clock: VirtualClock) -> None:
    """A 30 s recovery timeout, crossed with ``clock.advance(30)``."""
    breaker = CircuitBreaker("virtual-api", failure_threshold=2, recovery_timeout=30.0,
                             success_threshold=1, clock=clock)
    transitions: list[tuple[str, str]] = []
    breaker.add_listener(lambda _, old, new: transitions.append((old.value, new.value)))
    dependency = FlakyDependency(failures=2)
    call = breaker(dependency)

    # Two failures in a row trip the breaker.
    raised(ConnectionError, call)
    raised(ConnectionError, call)
    assert breaker.is_open

    # Open: rejected without calling the dependency, and it says how long to wait.
    rejection = raised(CircuitBreakerError, call)
    assert rejection.state is CircuitState.OPEN
    assert rejection.remaining_timeout == 30.0
    assert dependency.calls == 2

    # The whole recovery timeout passes at once; the next look finds it half-open,
    # ready to let a probe call through.
    clock.advance(30)
    assert not breaker.is_open
    assert breaker.state is CircuitState.HALF_OPEN

    # The dependency has recovered: one successful probe closes the breaker.
    assert call() == "ok"
    assert breaker.is_closed
    assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert clock.sleeps == []  # nothing slept; time moved only because we said so


def main() -> None:
    started = time.perf_counter()
    for check in (check_backoff_schedule, check_retry_gives_up, check_breaker_recovery):
        clock = VirtualClock()
        check(clock)
        print(f"{check.__name__}: ok (virtual time {clock.now:g}s, waits {clock.sleeps})")
    real_ms = (time.perf_counter() - started) * 1000
    print(f"all checks passed in {real_ms:.1f} ms of real time")


# --- the same checks as pytest tests ---------------------------------------------------------
# `virtual_clock` is a fixture of buttress's pytest plugin (installed with
# buttress): a fresh VirtualClock starting at 0.0 for each test.


def test_retry_waits_follow_the_exact_backoff_schedule(virtual_clock: VirtualClock) -> None:
    check_backoff_schedule(virtual_clock)


def test_retry_gives_up_after_max_attempts(virtual_clock: VirtualClock) -> None:
    check_retry_gives_up(virtual_clock)


def test_breaker_recovers_once_30_virtual_seconds_pass(virtual_clock: VirtualClock) -> None:
    check_breaker_recovery(virtual_clock)


if __name__ == "__main__":
    # buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
    # show them on stdout, between the lines this script prints.
    logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
    main()
