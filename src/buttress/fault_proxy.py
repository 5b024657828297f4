"""A TCP proxy on loopback that injects network faults, for tests and game days.

Standard library only. Put it between a client and a real server (PostgreSQL,
Redis, an HTTP service) and switch faults on and off while the test runs::

    with FaultProxy("127.0.0.1", redis_port) as proxy:
        client = redis.Redis(port=proxy.port)
        proxy.latency = 0.2          # every chunk is held 200 ms each way
        proxy.blackhole()            # connections stay open, nothing gets through
        proxy.reset()                # every connection is reset (RST), new ones too
        proxy.refuse()               # nothing listens: connection refused
        proxy.restore()              # back to a clean pass-through

``reset_after(pattern)`` forwards the next client chunk that contains
``pattern`` to the server, then resets the connection before any answer comes
back: the "did my COMMIT go through?" fault. Nothing here sleeps in the
caller's thread; each connection is served by two bounded pump threads that
check the current fault at least every 50 ms.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Final, Literal

__all__ = ["FaultProxy"]

Mode = Literal["pass", "blackhole", "reset", "refuse"]

_CHUNK: Final = 65536
_TICK: Final = 0.05


def _hard_close(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN, as a crashed peer or a middlebox would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: the client's socket and the server's."""

    __slots__ = ("client", "closed", "server")

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.closed = False

    def close(self, *, hard: bool) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.server):
            if hard:
                _hard_close(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``, with faults on demand.

    Args:
        target_host: Where the real server listens.
        target_port: Its port.
        listen_port: The proxy's port; ``0`` (the default) picks a free one.
        max_connections: Connections served at once; more are reset at once, so a
            runaway client can not grow threads without bound.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        listen_port: int = 0,
        max_connections: int = 128,
    ) -> None:
        if not 0 <= listen_port <= 65535:
            raise ValueError(f"listen_port must be 0..65535, got {listen_port!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
        self.target = (target_host, target_port)
        self.latency = 0.0
        self.max_connections = max_connections
        self.connections_accepted = 0
        self._mode: Mode = "pass"
        self._reset_pattern: bytes | None = None
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._port = listen_port
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None

    # --- life cycle --------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address clients connect to."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The port clients connect to (known once started)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` for clients."""
        return (self.host, self._port)

    def start(self) -> FaultProxy:
        """Listen and start forwarding; returns ``self``."""
        if self._acceptor is not None:
            raise RuntimeError("FaultProxy is already started")
        self._stopping.clear()
        self._listen()
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"buttress-fault-proxy:{self._port}", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every connection. Safe to call twice."""
        self._stopping.set()
        self._close_listener()
        self._close_links(hard=False)
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- faults --------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """The fault in force: ``pass``, ``blackhole``, ``reset`` or ``refuse``."""
        return self._mode

    @property
    def open_connections(self) -> int:
        """Connections being proxied now."""
        with self._lock:
            return len(self._links)

    def restore(self) -> None:
        """Forward everything again, listening again if :meth:`refuse` stopped it."""
        self.latency = 0.0
        self._reset_pattern = None
        self._mode = "pass"
        if self._listener is None and self._acceptor is not None:
            self._listen()

    def blackhole(self) -> None:
        """Keep connections open but let nothing through, either way (a hung peer)."""
        self._mode = "blackhole"

    def reset(self) -> None:
        """Reset every open connection, and every new one until :meth:`restore`."""
        self._mode = "reset"
        self._close_links(hard=True)

    def refuse(self) -> None:
        """Stop listening (new connections are refused) and reset the open ones."""
        self._mode = "refuse"
        self._close_listener()
        self._close_links(hard=True)

    def reset_after(self, pattern: bytes) -> None:
        """Forward the next client chunk containing ``pattern``, then reset that
        connection before the server's answer gets back (one shot)."""
        if not pattern:
            raise ValueError("reset_after needs a non-empty pattern")
        self._reset_pattern = pattern

    # --- internals -----------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(64)
        listener.settimeout(_TICK)
        self._port = listener.getsockname()[1]
        self._listener = listener

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes a thread blocked in accept() and stops listening at
            # once; close() alone would keep the port listening until it returns.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                listener.close()

    def _close_links(self, *, hard: bool) -> None:
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.close(hard=hard)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            listener = self._listener
            if listener is None:
                time.sleep(_TICK)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections_accepted += 1
            self._serve(client)

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            full = len(self._links) >= self.max_connections
        if self._mode in ("reset", "refuse") or full:
            _hard_close(client)
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            _hard_close(client)
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, server)
        with self._lock:
            self._links.add(link)
        for source, sink, upstream in ((client, server, True), (server, client, False)):
            threading.Thread(
                target=self._pump, args=(link, source, sink, upstream), daemon=True,
                name=f"buttress-fault-proxy-pump:{self._port}",
            ).start()

    def _pump(
        self, link: _Link, source: socket.socket, sink: socket.socket, upstream: bool
    ) -> None:
        try:
            while not link.closed and not self._stopping.is_set():
                try:
                    ready, _, _ = select.select([source], [], [], _TICK)
                except (OSError, ValueError):
                    break
                if not ready:
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    break
                if self._mode == "blackhole":
                    continue
                if self.latency > 0:
                    time.sleep(self.latency)
                if link.closed:
                    break
                pattern = self._reset_pattern
                if upstream and pattern is not None and pattern in data:
                    self._reset_pattern = None
                    link.closed = True  # the answer must not get back
                    sink.sendall(data)
                    self._cut(link)
                    return
                sink.sendall(data)
        except OSError:
            pass
        self._drop(link, hard=False)

    def _cut(self, link: _Link) -> None:
        # The client sees a reset; the server gets the request and then a plain
        # end of stream, so it acts on the request before it notices the loss.
        with self._lock:
            self._links.discard(link)
        _hard_close(link.client)
        with contextlib.suppress(OSError):
            link.server.close()

    def _drop(self, link: _Link, *, hard: bool) -> None:
        with self._lock:
            self._links.discard(link)
        link.close(hard=hard)
