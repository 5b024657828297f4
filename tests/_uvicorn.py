"""A real uvicorn server for tests: ``with serving(app) as url:`` serves an ASGI
app on 127.0.0.1, a free port, in a thread, and stops it (waiting for the
thread) at the end of the block.

Under ``CI=true`` a server that can not start fails the test; elsewhere the
test is skipped with the reason.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT = 10.0


def _cannot_start(reason: str) -> None:
    # Under CI a server that can not start is a failure, never a silent skip.
    if os.environ.get("CI") == "true":
        pytest.fail(f"uvicorn test server did not start: {reason}")
    pytest.skip(f"uvicorn test server did not start: {reason}")


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1, a free port, in a thread; yield
    its base URL; stop the server (and wait for its thread) afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
    except OSError as exc:
        sock.close()
        _cannot_start(f"can not bind a loopback port: {exc}")
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        limit = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                _cannot_start("the server thread ended")
            if time.monotonic() > limit:
                _cannot_start(f"not started after {START_TIMEOUT}s")
            thread.join(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
    assert not thread.is_alive(), "the uvicorn thread did not stop"
