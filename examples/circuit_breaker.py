"""A circuit breaker riding out an outage of an HTTP dependency.

What this shows:

* a ``CircuitBreaker`` that trips after 3 consecutive failures and, once open,
  turns calls away at once (``CircuitBreakerError`` with ``name``, ``state``
  and ``remaining_timeout``) instead of letting them pile up on a dead server;
* every state change (closed -> open -> half_open -> ...), reported by a
  listener registered with ``breaker.add_listener``;
* recovery: after ``recovery_timeout`` (0.2 s here) the breaker lets probe
  calls through; a probe during the outage reopens it, and once the outage is
  over two successful probes (``success_threshold``) close it again;
* ``breaker.stats``: what the breaker counted along the way.

Everything runs against a ``FlakyServer`` on 127.0.0.1 started by the script::

    .venv/bin/python examples/circuit_breaker.py
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from buttress import CircuitBreaker, CircuitBreakerError, CircuitState
from buttress.flaky_server import FlakyServer

START = time.monotonic()
OUTAGE = 0.6  # seconds of real time during which the server answers 503 to everything


def elapsed() -> str:
    """Seconds since the script started, for the log lines."""
    return f"[{time.monotonic() - START:5.2f}s]"


def report_change(breaker: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
    """A state listener: called after every transition, outside the breaker's lock."""
    print(f"{elapsed()}   ** breaker {breaker.name!r}: {old.value} -> {new.value}")


# Three failures in a row open the breaker; 0.2 s later it admits probes.
# (A real service would use something like recovery_timeout=30.0.)
breaker = CircuitBreaker("flaky-api", failure_threshold=3, recovery_timeout=0.2,
                         success_threshold=2)
breaker.add_listener(report_change)


@breaker
def fetch_data(base_url: str) -> dict[str, Any]:
    """GET ``/data``; any exception (here: HTTP 503) counts as a failure."""
    try:
        with urllib.request.urlopen(base_url + "/data", timeout=2.0) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        exc.close()  # free the connection; the error still carries its status
        raise


def attempt(server: FlakyServer, label: str) -> None:
    """Make one call through the breaker and say what happened to it."""
    hits_before = server.hits
    try:
        body = fetch_data(server.url)
    except CircuitBreakerError as exc:
        # Rejected without calling the server: no hit was made.
        print(f"{elapsed()} {label}: rejected by breaker {exc.name!r} "
              f"(state={exc.state.value}, next probe in {exc.remaining_timeout:.2f}s, "
              f"server hits +{server.hits - hits_before})")
    except urllib.error.HTTPError as exc:
        print(f"{elapsed()} {label}: failed with HTTP {exc.code} "
              f"(server hits +{server.hits - hits_before})")
    else:
        print(f"{elapsed()} {label}: ok {body} (server hits +{server.hits - hits_before})")


def main() -> None:
    with FlakyServer() as server:
        print(f"FlakyServer listening on {server.url}; outage for {OUTAGE}s starts now")
        server.outage(OUTAGE)

        # The first three calls reach the server and fail; the third trips the
        # breaker. The next two are turned away without touching the server.
        for n in range(1, 6):
            attempt(server, f"call {n}")

        # After recovery_timeout the breaker is willing to probe. The outage is
        # still on, so the probe fails and the breaker opens again at once.
        time.sleep(0.25)
        attempt(server, "call 6 (probe during the outage)")
        attempt(server, "call 7")

        # Wait for the outage to end (and for the next recovery_timeout), then
        # two successful probes close the breaker; calls flow normally again.
        time.sleep(0.5)
        for n in range(8, 11):
            attempt(server, f"call {n}")

        stats = breaker.stats
        print(f"final state: {stats.state.value}")
        print(f"stats: total={stats.total_calls} successful={stats.successful_calls} "
              f"failed={stats.failed_calls} rejected={stats.rejected_calls} "
              f"trips={stats.trips} state_changes={stats.state_changes}")
        print(f"server hits: {server.hits} (10 calls, {stats.rejected_calls} never sent)")


if __name__ == "__main__":
    # buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
    # show them on stdout, between the lines this script prints.
    logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
    main()
