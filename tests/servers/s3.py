"""A real S3 API (moto's server) on a random loopback port, and an HTTP shim in
front of it that answers scripted S3 errors (503 ``SlowDown``, 500, 403, ...)
before forwarding, for fault tests. moto comes from pip (``moto[server]``).
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MotoS3:
    """moto's threaded server on 127.0.0.1 (any free port)."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        self._server.stop()


_ERROR_BODY = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
               "<Message>scripted by the test shim</Message><RequestId>shim</RequestId></Error>")


class S3Shim:
    """Forwards HTTP to ``target_port``; each scripted fault answers one request
    instead (``shim.fail(503, "SlowDown", times=2)``). ``requests`` counts every
    request that reached the shim, ``forwarded`` those that reached moto."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.faults: deque[tuple[int, str]] = deque()
        self.requests = 0
        self.forwarded = 0
        self.lock = threading.Lock()
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                with shim.lock:
                    shim.requests += 1
                    fault = shim.faults.popleft() if shim.faults else None
                    if fault is None:
                        shim.forwarded += 1
                if fault is not None:
                    status, code = fault
                    payload = b"" if self.command == "HEAD" else \
                        _ERROR_BODY.format(code=code).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "expect", "connection")}
                headers["Content-Length"] = str(len(body))
                upstream = http.client.HTTPConnection("127.0.0.1", shim.target_port, timeout=10)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for key, value in response.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection",
                                               "content-length"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, status: int, code: str, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` and S3 error ``code``."""
        with self.lock:
            self.faults.extend([(status, code)] * times)

    def clear(self) -> None:
        """Drop scripted faults and zero the counters."""
        with self.lock:
            self.faults.clear()
            self.requests = self.forwarded = 0

    def start(self) -> S3Shim:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
