"""A small FastAPI service protected by buttress.

What this shows:

* ``ResilienceMiddleware``: every response carries ``X-Resilience-Status``
  (healthy, degraded, unhealthy), and a client's ``X-Request-Timeout: 1.5``
  header becomes the request's deadline: ``remaining_time()`` inside the
  endpoint reports it, and buttress timeouts under it end by then;
* ``resilience_router()``: ``/health`` (with a dependency check),
  ``/health/resilience``, ``/metrics/resilience`` and ``/metrics``;
* ``add_resilience_exception_handlers(app)``: an open breaker answers 503 with
  ``Retry-After``, a timeout 504;
* a preset on the function that calls a dependency (``fetch_price``, async)
  and a preset straight on a sync path operation (``stock``): both keep their
  signatures, so FastAPI still reads ``item_id`` from the path.

Run the service (Ctrl-C stops it)::

    python examples/fastapi_service.py            # http://127.0.0.1:8000
    curl -i http://127.0.0.1:8000/prices/7
    curl -i -H 'X-Request-Timeout: 1.5' http://127.0.0.1:8000/stock/7
    buttress status http://127.0.0.1:8000

``python examples/fastapi_service.py --demo`` starts it on a free port, sends
it a few requests (taking the pricing dependency down half-way) and stops.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException

from buttress import RetryExhaustedError, api_resilient, database_resilient, remaining_time
from buttress.fastapi import (
    ResilienceMiddleware,
    add_resilience_exception_handlers,
    resilience_router,
)

# The pricing service is a stand-in that the demo switches off.
PRICING = {"up": True}


@api_resilient(operation_name="pricing", max_attempts=2, base_delay=0.05, max_delay=0.1,
               failure_threshold=3, recovery_timeout=30.0, timeout_seconds=2.0)
async def fetch_price(item_id: int) -> float:
    """Call the pricing service (here: pretend to)."""
    if not PRICING["up"]:
        raise ConnectionError("pricing service refused the connection")
    return round(9.99 + item_id, 2)


def pricing_ping() -> bool:
    """The /health check of the pricing dependency."""
    return PRICING["up"]


app = FastAPI(title="shop")
app.add_middleware(ResilienceMiddleware, max_timeout=30.0)
app.include_router(resilience_router(checks={"pricing": pricing_ping}))
add_resilience_exception_handlers(app)


@app.get("/prices/{item_id}")
async def price(item_id: int) -> dict[str, Any]:
    try:
        value = await fetch_price(item_id)
    except RetryExhaustedError as exc:  # the breaker's rejection is not caught: 503
        raise HTTPException(502, f"pricing failed after {exc.attempts} attempts") from exc
    return {"item_id": item_id, "price": value}


@app.get("/stock/{item_id}")
@database_resilient(operation_name="stock")
def stock(item_id: int) -> dict[str, Any]:
    left = remaining_time()  # the request's deadline, from X-Request-Timeout
    return {"item_id": item_id, "in_stock": 3, "deadline_left": left}


def _get(base: str, path: str, **headers: str) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def demo() -> None:
    """Serve on a free loopback port in a thread, call the service, stop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
        status, headers, body = _get(base, "/prices/7")
        print(f"GET /prices/7 -> {status} {body} status={headers['x-resilience-status']}")
        status, headers, body = _get(base, "/stock/7", **{"X-Request-Timeout": "1.5"})
        print(f"GET /stock/7 with X-Request-Timeout: 1.5 -> {status}, deadline seen by the "
              f"endpoint: {0 < body['deadline_left'] <= 1.5}")

        PRICING["up"] = False
        print("-- pricing goes down --")
        for _ in range(3):
            status, headers, body = _get(base, "/prices/7")
            retry_after = headers.get("retry-after")
            print(f"GET /prices/7 -> {status} retry-after={retry_after} "
                  f"status={headers['x-resilience-status']}")
        status, _, body = _get(base, "/health")
        print(f"GET /health -> {status} status={body['status']} checks={body['checks']}")
        status, _, body = _get(base, "/metrics/resilience")
        print(f"breaker states: {body['circuit_breaker_states']}")
    finally:
        server.should_exit = True
        thread.join(10.0)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--demo", action="store_true",
                        help="serve on a free port, call the service, stop")
    args = parser.parse_args()
    # buttress logs each retry and breaker change as a WARNING: show them on stdout.
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="  log: %(message)s")
    if args.demo:
        demo()
    else:
        uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
