"""A real HTTP server with scripted faults, on loopback, for demos and tests.

Standard library only. It listens on ``127.0.0.1`` on a free port, answers
any path with JSON, and fails the way real dependencies fail: error
statuses (optionally with ``Retry-After``), slow answers, and outages during
which every request fails. ``hits`` counts the requests that reached it.

    with FlakyServer(failure_rate=0.3, seed=7) as server:
        urllib.request.urlopen(server.url + "/data")

Per path, :meth:`FlakyServer.route` scripts exact answers, one per request:
a status, a :class:`Reply` (status, delay, ``Retry-After``, headers), or a
network fault: :data:`RESET` (the connection is reset before any answer) and
:data:`HANG` (no answer until ``hang_limit`` seconds pass or the server
stops, so a test that forgets its timeout still ends)::

    server.route("/orders", 503, Reply(429, retry_after="2"), 200)
    server.route("/stuck", HANG, then=HANG)
    server.requests("/orders")          # 3 once all three were asked, any method
    server.requests("/orders", "POST")  # by method
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

from buttress._core import forksafe

__all__ = ["HANG", "RESET", "FlakyServer", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: ``status`` after ``delay`` seconds, with a
    ``Retry-After`` header when ``retry_after`` is given (seconds or an HTTP
    date, sent as written) and any extra ``headers``. ``fault`` is ``"reset"``
    or ``"hang"`` for the network faults (see :data:`RESET`, :data:`HANG`)."""

    status: int = 200
    delay: float = 0.0
    retry_after: str | float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None


RESET: Final = Reply(fault="reset")
"""Reset the connection (TCP RST) instead of answering."""

HANG: Final = Reply(fault="hang")
"""Answer nothing until the server stops or ``hang_limit`` seconds pass."""

_Step = int | Reply


def _as_reply(step: _Step) -> Reply:
    if isinstance(step, Reply):
        return step
    if isinstance(step, int) and not isinstance(step, bool) and 100 <= step <= 599:
        return Reply(step)
    raise ValueError(f"FlakyServer.route step must be a status (100..599) or a Reply, "
                     f"got {step!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK
    # add ~40 ms to every kept-alive answer.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        flaky = self.server.flaky
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.partition("?")[0]
        scripted = flaky._next_scripted(self.command, path)
        if scripted is None and path.startswith("/health"):
            self._reply(200, {"status": "healthy"})
            return
        if scripted is not None:
            self._play(scripted)
            return
        status, delay, retry_after = flaky._next_outcome()
        if delay > 0:
            time.sleep(delay)
        if status >= 400:
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            self._reply(status, {"error": "injected fault", "status": status}, headers)
        else:
            self._reply(200, {"ok": True, "path": self.path})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _play(self, reply: Reply) -> None:
        if reply.fault == "reset":
            # SO_LINGER 0: close() sends RST, not FIN; the client sees a reset.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if reply.fault == "hang":
            self.server.flaky._stopping.wait(self.server.flaky.hang_limit)
            self.close_connection = True
            return
        if reply.delay > 0:
            self.server.flaky._stopping.wait(reply.delay)
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            ra = reply.retry_after
            headers["Retry-After"] = ra if isinstance(ra, str) else f"{ra:g}"
        body: dict[str, Any] = (
            {"ok": True, "path": self.path} if reply.status < 400
            else {"error": "injected fault", "status": reply.status})
        self._reply(reply.status, body, headers)

    def _reply(self, status: int, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests and the demo report what matters themselves


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    flaky: FlakyServer


class FlakyServer:
    """A loopback HTTP server that fails on purpose.

    * ``failure_rate`` — share of requests answered with ``failure_status``;
    * ``latency`` — seconds every answer waits (``slow_rate`` of requests wait
      ``slow_latency`` instead);
    * ``retry_after`` — if set, failures carry a ``Retry-After`` header;
    * ``script(...)`` — exact statuses for the next requests, before the random rule;
    * ``outage(seconds)`` — every request fails for the next ``seconds``;
    * ``route(path, ...)`` — exact answers and network faults for one path;
      ``requests(path, method)`` counts the requests that reached a path;
    * ``hang_limit`` — the longest a :data:`HANG` (and any scripted delay) lasts.
    """

    def __init__(
        self,
        *,
        failure_rate: float = 0.0,
        failure_status: int = 503,
        latency: float = 0.0,
        slow_rate: float = 0.0,
        slow_latency: float = 0.0,
        retry_after: float | None = None,
        seed: int | None = None,
        host: str = "127.0.0.1",
        hang_limit: float = 30.0,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"FlakyServer.failure_rate must be in 0..1, got {failure_rate!r}")
        self.failure_rate = failure_rate
        self.failure_status = failure_status
        self.latency = latency
        self.slow_rate = slow_rate
        self.slow_latency = slow_latency
        self.retry_after = retry_after
        self.host = host
        self.hang_limit = hang_limit
        self.hits = 0
        self._routes: dict[str, tuple[deque[Reply], Reply | None]] = {}
        self._counts: Counter[tuple[str, str]] = Counter()
        self._stopping = threading.Event()
        self._rng = random.Random(seed)
        self._lock = forksafe.lock()
        self._script: deque[int] = deque()
        self._outage_until = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # control

    def script(self, *statuses: int) -> None:
        """Answer the next requests with exactly these statuses, in order."""
        with self._lock:
            self._script.extend(statuses)

    def route(self, path: str, *steps: _Step, then: _Step | None = None) -> None:
        """Answer the next requests to ``path`` (any method, query ignored) with
        ``steps`` in order (statuses, :class:`Reply`, :data:`RESET`, :data:`HANG`);
        afterwards with ``then`` for ever, or, when ``then`` is None, as any
        other path. Replaces the path's earlier script."""
        replies = deque(_as_reply(step) for step in steps)
        with self._lock:
            self._routes[path] = (replies, None if then is None else _as_reply(then))

    def requests(self, path: str, method: str | None = None) -> int:
        """How many requests to ``path`` (with ``method``, or any) reached the server."""
        with self._lock:
            if method is not None:
                return self._counts[(method.upper(), path)]
            return sum(n for (_, p), n in self._counts.items() if p == path)

    def _next_scripted(self, method: str, path: str) -> Reply | None:
        with self._lock:
            self._counts[(method, path)] += 1
            if len(self._counts) > 10_000:  # bounded: a scan of random paths
                self._counts = Counter(dict(self._counts.most_common(1_000)))
            route = self._routes.get(path)
            if route is None:
                return None
            replies, then = route
            if replies:
                self.hits += 1
                return replies.popleft()
            if then is not None:
                self.hits += 1
            return then

    def outage(self, seconds: float) -> None:
        """Fail every request for the next ``seconds`` of real time."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def _next_outcome(self) -> tuple[int, float, float | None]:
        with self._lock:
            self.hits += 1
            rng = self._rng
            delay = self.slow_latency if rng.random() < self.slow_rate else self.latency
            if self._script:
                status = self._script.popleft()
            elif time.monotonic() < self._outage_until or rng.random() < self.failure_rate:
                status = self.failure_status
            else:
                status = 200
        return status, delay, self.retry_after

    # lifecycle

    @property
    def port(self) -> int:
        """The port the server listens on (started servers only)."""
        if self._server is None:
            raise RuntimeError("FlakyServer is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> FlakyServer:
        """Bind a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("FlakyServer already started")
        server = _Server((self.host, 0), _Handler)
        server.flaky = self
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="buttress-flaky-server", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket.

        ``shutdown()`` only notices the request at the serve loop's next poll;
        a wake-up connection makes that happen at once instead of up to 50 ms later.
        """
        server, thread = self._server, self._thread
        if server is None:
            return
        address = (self.host, self.port)
        self._stopping.set()  # hung and delayed answers end now
        stopper = threading.Thread(target=server.shutdown, name="buttress-flaky-server-stop")
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.05):
                pass
            stopper.join(0.002)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)
        self._server = self._thread = None

    def __enter__(self) -> FlakyServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
