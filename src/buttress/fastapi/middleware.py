"""An ASGI middleware: the resilience verdict on every response, and the
request's deadline from a header.

* ``X-Resilience-Status`` (``status_header``) on every HTTP response:
  "healthy", "degraded" or "unhealthy", as
  :func:`~buttress.observe.get_resilience_health` decides (a critical breaker
  open: unhealthy; another breaker open or half-open: degraded), read when the
  response starts, so it reflects what the request itself did to the breakers.
  It reads every live breaker's state (:func:`~buttress.observe.overall_health`),
  so its cost grows with the number of breakers; ``status_header=None`` turns
  it off.
* ``X-Request-Timeout`` (``timeout_header``): the seconds the client will
  wait, a decimal number (``2.5``). The request runs in a
  :func:`~buttress.deadline` block of that length, so every protected call
  under it sees it: ``remaining_time()`` reports it, a timeout inside ends by
  then (raising :class:`~buttress.DeadlineExceededError` when the deadline is
  what ran out) and a retry never starts a wait past it. A value that is not a
  finite number >= 0 is answered with 400 and never reaches the app.

Invariants: the middleware is pure ASGI (no ``BaseHTTPMiddleware``): the app
runs in the request's own task, under the deadline's context; non-HTTP scopes
(lifespan, websockets) pass through untouched; nothing is set in the context
when there is no deadline.
"""

from __future__ import annotations

import math
import re
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from buttress._core import validate
from buttress._core.clock import Clock
from buttress._core.context import deadline
from buttress._core.errors import ConfigurationError
from buttress.observe.health import overall_health

__all__ = ["STATUS_HEADER", "TIMEOUT_HEADER", "ResilienceMiddleware"]

STATUS_HEADER: Final = "X-Resilience-Status"
"""The response header carrying the resilience verdict."""
TIMEOUT_HEADER: Final = "X-Request-Timeout"
"""The request header a client sends its deadline in (seconds, a decimal number)."""

_OWNER: Final = "ResilienceMiddleware"


_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_name(field: str, value: object) -> str | None:
    """``value`` checked as an HTTP header name (RFC 9110 token), or None."""
    if value is None:
        return None
    name = validate.text(_OWNER, field, value)
    if not _TOKEN.fullmatch(name):
        raise ConfigurationError(f"{_OWNER}.{field}", value, "an HTTP header name (a token)")
    return name


def _parse_seconds(raw: bytes) -> float | None:
    """The header's seconds, or None when it is not a finite number >= 0."""
    try:
        seconds = float(raw.decode("latin-1").strip())
    except ValueError:
        return None
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return None
    return seconds


class ResilienceMiddleware:
    """Adds ``X-Resilience-Status`` to every response and runs each request
    under the deadline its ``X-Request-Timeout`` header gives::

        app.add_middleware(ResilienceMiddleware)

        app.add_middleware(ResilienceMiddleware, default_timeout=10.0, max_timeout=30.0)

    ``status_header`` and ``timeout_header`` rename the headers (``None`` turns
    that half off). ``default_timeout`` (seconds) is the deadline of requests
    that send no header (default: none); ``max_timeout`` caps what a client may
    ask for. ``clock`` measures the deadlines: give the clock your strategies use
    (a :class:`~buttress.testing.VirtualClock` in tests).

    A deadline informs, timeouts enforce: the endpoint is not interrupted when
    the deadline passes, but the buttress timeouts under it end by then.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        status_header: str | None = STATUS_HEADER,
        timeout_header: str | None = TIMEOUT_HEADER,
        default_timeout: float | None = None,
        max_timeout: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.app = app
        self.status_header = _header_name("status_header", status_header)
        self.timeout_header = _header_name("timeout_header", timeout_header)
        self.default_timeout = validate.optional_number(_OWNER, "default_timeout",
                                                        default_timeout, minimum=0.0)
        self.max_timeout = validate.optional_number(_OWNER, "max_timeout", max_timeout,
                                                    minimum=0.0)
        if self.default_timeout is not None and self.max_timeout is not None \
                and self.default_timeout > self.max_timeout:
            raise ConfigurationError(f"{_OWNER}.default_timeout", default_timeout,
                                              f"<= max_timeout ({max_timeout!r})")
        self.clock = clock
        self._timeout_key = None if self.timeout_header is None \
            else self.timeout_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.status_header is not None:
            send = self._stamping(send, self.status_header)
        seconds = self.default_timeout
        raw = self._requested_timeout(scope)
        if raw is not None:
            seconds = _parse_seconds(raw)
            if seconds is None:
                await self._refuse(raw, scope, receive, send)
                return
            if self.max_timeout is not None:
                seconds = min(seconds, self.max_timeout)
        if seconds is None:
            await self.app(scope, receive, send)
            return
        with deadline(seconds, clock=self.clock):
            await self.app(scope, receive, send)

    def _requested_timeout(self, scope: Scope) -> bytes | None:
        key = self._timeout_key
        if key is None:
            return None
        for name, value in scope["headers"]:
            if name == key:
                return value  # type: ignore[no-any-return]
        return None

    @staticmethod
    def _stamping(send: Send, header: str) -> Send:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[header] = overall_health()
            await send(message)

        return stamped

    async def _refuse(self, raw: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        text = raw.decode("latin-1")[:64]
        response = JSONResponse(
            {"detail": f"{self.timeout_header} must be a number of seconds >= 0 "
                       f"(a decimal such as 2.5), got {text!r}"},
            status_code=400,
        )
        await response(scope, receive, send)

    def __repr__(self) -> str:
        return (f"ResilienceMiddleware(status_header={self.status_header!r}, "
                f"timeout_header={self.timeout_header!r}, "
                f"default_timeout={self.default_timeout!r}, max_timeout={self.max_timeout!r})")
