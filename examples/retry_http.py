"""Retry an HTTP GET that fails twice with 503 and then succeeds.

What this shows:

* ``@retry`` around a plain ``urllib.request`` call, with an exact (jitter-free)
  backoff schedule and an ``on_retry`` hook that reports each failed attempt;
* ``retry_condition=buttress.is_transient`` deciding *which* failures are worth
  another attempt: ``urllib.error.HTTPError`` carries the status in ``.status``
  (and ``.code``), so a 503 is retried while a 404 is raised at once;
* ``RetryExhaustedError`` (with ``.attempts`` and ``.last_exception``) once the
  server keeps failing.

Everything runs against a ``FlakyServer`` on 127.0.0.1 started by the script::

    .venv/bin/python examples/retry_http.py
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import buttress
from buttress import RetryExhaustedError, retry
from buttress.flaky_server import FlakyServer

START = time.monotonic()


def elapsed() -> str:
    """Seconds since the script started, for the log lines."""
    return f"[{time.monotonic() - START:5.2f}s]"


def report_retry(attempt: int, exc: BaseException | None) -> None:
    """The ``on_retry`` hook: runs after a failed attempt, before the wait."""
    print(f"{elapsed()}   attempt {attempt} failed ({exc}); retrying")


# urllib raises URLError (HTTPError is one): is_transient() retries a refused or
# timed-out connection (URLError.reason) and the statuses 408, 425, 429, 500,
# 502, 503 and 504. A 404 will not get better by asking again, so it is raised
# after the first attempt. jitter=0 makes the waits exactly 0.05 s, 0.1 s, 0.2 s.
@retry(
    max_attempts=4,
    base_delay=0.05,
    jitter=0,
    retry_on=(urllib.error.URLError,),
    retry_condition=buttress.is_transient,
    on_retry=report_retry,
)
def fetch_data(base_url: str) -> dict[str, Any]:
    """GET ``/data`` and decode the JSON body."""
    try:
        with urllib.request.urlopen(base_url + "/data", timeout=2.0) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        # An HTTPError holds the open response; close it so the connection is
        # freed. Its status (exc.status / exc.code) stays readable for retry.
        exc.close()
        raise


def main() -> None:
    with FlakyServer() as server:
        print(f"FlakyServer listening on {server.url}")

        # 1. Two 503s, then a 200: the third attempt succeeds.
        server.script(503, 503, 200)
        print(f"{elapsed()} GET /data (server scripted: 503, 503, 200)")
        body = fetch_data(server.url)
        print(f"{elapsed()}   succeeded: {body}")
        print(f"{elapsed()}   server hits: {server.hits} (2 failures + 1 success)")

        # 2. A 404 is not transient: no retry, the HTTPError itself propagates.
        hits_before = server.hits
        server.script(404)
        print(f"{elapsed()} GET /data (server scripted: 404)")
        try:
            fetch_data(server.url)
        except urllib.error.HTTPError as exc:
            print(f"{elapsed()}   not retried: HTTPError {exc.code}, "
                  f"server hits: {server.hits - hits_before}")

        # 3. The server keeps failing: after max_attempts calls, retry gives up.
        hits_before = server.hits
        server.script(503, 503, 503, 503)
        print(f"{elapsed()} GET /data (server scripted: 503 x 4)")
        try:
            fetch_data(server.url)
        except RetryExhaustedError as exc:
            print(f"{elapsed()}   RetryExhaustedError: attempts={exc.attempts}, "
                  f"last_exception={exc.last_exception!r}")
            print(f"{elapsed()}   server hits: {server.hits - hits_before}")


if __name__ == "__main__":
    # buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
    # show them on stdout, between the lines this script prints.
    logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
    main()
