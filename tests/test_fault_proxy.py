"""The TCP fault proxy forwards faithfully and injects each fault it promises.

A real echo server on loopback sits behind the proxy; every wait is bounded by a
socket timeout, so a broken proxy fails a test instead of hanging it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from buttress.fault_proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.server.received.append(data)  # type: ignore[attr-defined]
                self.request.sendall(data)
        except OSError:
            pass  # the proxy reset us: that is the fault under test


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.received: list[bytes] = []


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def proxy(echo: _EchoServer) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", echo.server_address[1]) as running:
        yield running


def _connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def test_a_clean_proxy_forwards_both_ways(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
    assert proxy.connections_accepted == 1


def test_a_blackholed_connection_stays_open_and_answers_nothing(proxy: FaultProxy) -> None:
    with _connect(proxy, timeout=0.3) as sock:
        proxy.blackhole()
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(16)
        proxy.restore()
        sock.settimeout(2.0)
        sock.sendall(b"back")
        assert sock.recv(16) == b"back"


def test_reset_breaks_open_connections_and_new_ones_until_restored(proxy: FaultProxy) -> None:
    sock = _connect(proxy)
    sock.sendall(b"a")
    assert sock.recv(4) == b"a"
    proxy.reset()
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        for _ in range(50):  # the RST may land after the first write
            sock.sendall(b"b")
            if sock.recv(4) == b"":
                raise ConnectionResetError("closed")
            time.sleep(0.01)
    sock.close()
    with pytest.raises((ConnectionResetError, BrokenPipeError)), _connect(proxy) as fresh:
        fresh.sendall(b"c")
        if fresh.recv(4) == b"":
            raise ConnectionResetError("closed")
    proxy.restore()
    with _connect(proxy) as again:
        again.sendall(b"d")
        assert again.recv(4) == b"d"


def test_refuse_stops_listening_and_restore_listens_on_the_same_port(proxy: FaultProxy) -> None:
    port = proxy.port
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)
    proxy.restore()
    assert proxy.port == port
    with _connect(proxy) as sock:
        sock.sendall(b"e")
        assert sock.recv(4) == b"e"


def test_latency_holds_each_chunk_for_the_configured_time(proxy: FaultProxy) -> None:
    proxy.latency = 0.1
    with _connect(proxy) as sock:
        started = time.monotonic()
        sock.sendall(b"slow")
        assert sock.recv(16) == b"slow"
        assert time.monotonic() - started >= 0.2  # held on the way there and back


def test_reset_after_delivers_the_request_but_not_the_answer(
    proxy: FaultProxy, echo: _EchoServer
) -> None:
    proxy.reset_after(b"COMMIT")
    with _connect(proxy) as sock:
        sock.sendall(b"COMMIT")
        with pytest.raises(ConnectionResetError):
            if sock.recv(16) == b"":
                raise ConnectionResetError("closed")
    deadline = time.monotonic() + 2
    while b"COMMIT" not in b"".join(echo.received) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"".join(echo.received) == b"COMMIT"
    with _connect(proxy) as sock:  # one shot: the next connection is clean
        sock.sendall(b"COMMIT")
        assert sock.recv(16) == b"COMMIT"


def test_connections_beyond_the_limit_are_reset_so_threads_stay_bounded(
    echo: _EchoServer,
) -> None:
    with FaultProxy("127.0.0.1", echo.server_address[1], max_connections=2) as proxy:
        held = [_connect(proxy) for _ in range(2)]
        for sock in held:
            sock.sendall(b"x")
            assert sock.recv(4) == b"x"
        with pytest.raises((ConnectionResetError, BrokenPipeError)), _connect(proxy) as extra:
            extra.sendall(b"y")
            if extra.recv(4) == b"":
                raise ConnectionResetError("closed")
        assert proxy.open_connections == 2
        for sock in held:
            sock.close()


def test_bad_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        FaultProxy("127.0.0.1", 1, max_connections=0)
    with pytest.raises(ValueError, match="listen_port"):
        FaultProxy("127.0.0.1", 1, listen_port=70000)
