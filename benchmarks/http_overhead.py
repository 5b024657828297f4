"""Per-request overhead of the resilient httpx transports against plain httpx.

    python -m benchmarks.http_overhead

Both clients send to an ``httpx.MockTransport`` answering 200 at once, so the
difference is buttress's own work per request (host breaker lookup, the
retry's outcome judgement, the breaker's bookkeeping), not the network's.
Prints microseconds per request, best of several rounds, sync and async.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from buttress.http import AsyncResilientTransport, ResilientTransport

ROUNDS = 7
REQUESTS = 2_000
URL = "http://api.test/users"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"{}")


def _best_pair(plain: Callable[[], float], ours: Callable[[], float]) -> tuple[float, float]:
    """Best of ``ROUNDS``, the two interleaved so that load on the machine hits both."""
    runs = [(plain(), ours()) for _ in range(ROUNDS)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _sync(client: httpx.Client) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS):
        client.get(URL)
    return (time.perf_counter() - started) / REQUESTS * 1e6


async def _async(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    for _ in range(REQUESTS):
        await client.get(URL)
    return (time.perf_counter() - started) / REQUESTS * 1e6


def main() -> None:
    logging.getLogger("buttress").addHandler(logging.NullHandler())
    mock = httpx.MockTransport(_ok)
    with httpx.Client(transport=mock) as plain, \
            httpx.Client(transport=ResilientTransport(mock)) as resilient:
        base, ours = _best_pair(lambda: _sync(plain), lambda: _sync(resilient))
    print(f"sync : httpx {base:7.1f} us  resilient {ours:7.1f} us  "
          f"overhead {ours - base:5.1f} us ({ours / base:.2f}x)")

    async def measure() -> tuple[float, float]:
        async with httpx.AsyncClient(transport=mock) as plain, \
                httpx.AsyncClient(transport=AsyncResilientTransport(mock)) as resilient:
            runs = [(await _async(plain), await _async(resilient)) for _ in range(ROUNDS)]
        return min(r[0] for r in runs), min(r[1] for r in runs)

    base, ours = asyncio.run(measure())
    print(f"async: httpx {base:7.1f} us  resilient {ours:7.1f} us  "
          f"overhead {ours - base:5.1f} us ({ours / base:.2f}x)")


if __name__ == "__main__":
    main()
