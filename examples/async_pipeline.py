"""One pipeline protecting an async and a sync function alike.

What this shows:

* ``buttress.pipeline(retry=..., circuit_breaker=..., timeout=..., fallback_value=...)``
  builds one decorator that works on ``async def`` and plain ``def`` functions;
* the standard order, whatever order the options are given in:
  fallback -> retry -> circuit breaker -> timeout -> the call. So the timeout
  bounds *each attempt*, the breaker counts every attempt, and the fallback
  answers whatever is left (exhausted retries, timeouts, an open breaker);
* a slow server (0.5 s per answer) against a 0.2 s timeout: each attempt ends
  in ``OperationTimeoutError``, retry tries once more, and the fallback value
  is returned instead of an exception;
* after enough timed-out attempts the shared breaker opens, and the fallback
  answers at once, without the request ever reaching the server.

The async function runs the blocking ``urllib`` call in a thread with
``asyncio.to_thread``; the timeout cancels the *await* (the thread finishes on
its own in the background, bounded by urlopen's own socket timeout)::

    .venv/bin/python examples/async_pipeline.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import buttress
from buttress import CircuitBreakerConfig, CircuitState, RetryConfig, pipeline
from buttress.flaky_server import FlakyServer

START = time.monotonic()
FALLBACK = {"ok": False, "source": "fallback"}


def elapsed() -> str:
    """Seconds since the script started, for the log lines."""
    return f"[{time.monotonic() - START:5.2f}s]"


def report_retry(attempt: int, exc: BaseException | None) -> None:
    """Retry's ``on_retry`` hook: runs after a failed attempt, before the wait."""
    print(f"{elapsed()}     attempt {attempt} failed: {type(exc).__name__}: {exc}")


def report_change(breaker: buttress.CircuitBreaker, old: CircuitState,
                  new: CircuitState) -> None:
    """A breaker listener: called after every state change."""
    print(f"{elapsed()}     ** breaker {breaker.name!r}: {old.value} -> {new.value}")


protect = pipeline(
    # Two attempts per call, 0.05 s apart; retry what is transient: timeouts
    # (OperationTimeoutError is a TimeoutError) and HTTP 408, 425, 429, 500,
    # 502, 503 and 504 answers (see is_transient).
    retry=RetryConfig(max_attempts=2, base_delay=0.05, jitter=0,
                      retry_condition=buttress.is_transient, on_retry=report_retry),
    # Four failed attempts in a row (whichever function made them) open the
    # breaker for 5 s. Given as a config, the breaker comes from the registry:
    # every pipeline naming "inventory" shares this one breaker.
    circuit_breaker=CircuitBreakerConfig(name="inventory", failure_threshold=4,
                                         recovery_timeout=5.0),
    # Each attempt gets 0.2 s.
    timeout=0.2,
    # Whatever still fails is answered with this value (a fresh copy each time).
    fallback_value=FALLBACK,
)
breaker = buttress.get_circuit_breaker("inventory")  # the pipeline's breaker
breaker.add_listener(report_change)


def get_json(url: str) -> dict[str, Any]:
    """A plain blocking GET; HTTP errors propagate as ``urllib.error.HTTPError``."""
    try:
        # urlopen's own timeout is a backstop for the abandoned worker threads.
        with urllib.request.urlopen(url, timeout=2.0) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        exc.close()  # free the connection; the status stays on the error
        raise


@protect
async def stock(base_url: str) -> dict[str, Any]:
    """The async client: the blocking call runs in a worker thread."""
    return await asyncio.to_thread(get_json, base_url + "/data")


@protect
def stock_sync(base_url: str) -> dict[str, Any]:
    """The sync client, decorated by the very same pipeline."""
    return get_json(base_url + "/data")


async def call_async(label: str, server: FlakyServer) -> None:
    """Await the async client once and report the answer and the server hits."""
    hits_before = server.hits
    print(f"{elapsed()} async {label}")
    answer = await stock(server.url)
    print(f"{elapsed()}   -> {answer} (server hits +{server.hits - hits_before})")


def call_sync(label: str, server: FlakyServer) -> None:
    """Call the sync client once and report the answer and the server hits."""
    hits_before = server.hits
    print(f"{elapsed()} sync  {label}")
    answer = stock_sync(server.url)
    print(f"{elapsed()}   -> {answer} (server hits +{server.hits - hits_before})")


def main() -> None:
    with FlakyServer() as fast, FlakyServer(latency=0.5) as slow:
        print("== 1. a healthy server: a 503 is retried, a 200 passes straight through")
        fast.script(503)
        asyncio.run(call_async("fast server, scripted 503 then 200", fast))
        call_sync("fast server", fast)

        print("== 2. a slow server (0.5 s) against a 0.2 s timeout per attempt")
        # asyncio.run() returns only once the to_thread worker it abandoned has
        # finished its request (the default executor is shut down cleanly).
        asyncio.run(call_async("slow server", slow))
        call_sync("slow server", slow)

        print("== 3. four failed attempts in a row: the breaker is open")
        asyncio.run(call_async("fast server", fast))
        call_sync("fast server", fast)

        stats = breaker.stats
        print(f"breaker {stats.name!r}: state={stats.state.value} "
              f"successful={stats.successful_calls} failed={stats.failed_calls} "
              f"rejected={stats.rejected_calls}")


if __name__ == "__main__":
    # buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
    # show them on stdout, between the lines this script prints.
    logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
    main()
