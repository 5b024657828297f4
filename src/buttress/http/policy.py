"""What the HTTP transports decide, apart from doing it: which requests may be
sent again, which failures and statuses are worth another attempt, how long a
``Retry-After`` asks to wait, what tells a host is unwell.

Rules of this module:

* Nothing here sends, sleeps or reads a clock (but the wall clock, for an
  HTTP-date ``Retry-After``, through :func:`buttress.transient.retry_after_seconds`).
* A request whose bytes may have reached the server is sent again only when
  sending it twice is safe: an idempotent method (GET, HEAD, OPTIONS, PUT,
  DELETE; RFC 9110 §9.2.2), an ``Idempotency-Key`` header, or the caller's
  explicit opt-in (per client, or per request through the ``buttress.retry``
  request extension). A request that never left (the connection could not be
  made, no pooled connection came free) is always safe to send again.
* A request whose body can not be replayed (a generator, a file stream) is
  never sent twice after its bytes went out.
* A host is unwell when it can not be reached, times out, drops the connection
  or answers 5xx; a 4xx is the caller's problem and never opens its breaker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import httpx

from buttress._core import validate
from buttress._core.errors import ConfigurationError
from buttress.transient import is_transient, retry_after_seconds

__all__ = [
    "DEFAULT_RETRY_STATUSES", "IDEMPOTENT_METHODS", "RETRY_EXTENSION", "HttpPolicy",
]

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods that may be sent again without asking (RFC 9110 §9.2.2, without TRACE)."""

DEFAULT_RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
"""Statuses that mean "not now": rate limited, bad gateway, unavailable, gateway timeout."""

RETRY_EXTENSION: Final = "buttress.retry"
"""Request extension overriding the method rule for one request:
``client.post(url, extensions={"buttress.retry": True})`` (or False: never retry)."""

# The request never reached the server: sending it again is always safe.
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

# The host is unwell (the breaker counts these); other httpx errors (a bad URL,
# a malformed request, too many redirects) say nothing about the host.
HOST_FAILURES: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class HttpPolicy:
    """The HTTP decisions of :class:`~buttress.http.ResilientTransport`.

    * ``retry_statuses`` — statuses answered again (default 429, 502, 503, 504);
    * ``retry_methods`` — methods retried whatever happened (default the idempotent ones);
    * ``retry_non_idempotent`` — retry every method (POST, PATCH) like those: only
      when the server de-duplicates requests;
    * ``idempotency_header`` — a request carrying it is retried whatever its
      method (default ``Idempotency-Key``; None turns the rule off);
    * ``breaker_statuses`` — statuses that count as a failure of the host (default 5xx).

    Every field is validated on construction::

        policy = HttpPolicy(retry_statuses={503}, retry_non_idempotent=False)
    """

    __slots__ = ("breaker_statuses", "idempotency_header", "retry_methods",
                 "retry_non_idempotent", "retry_statuses")

    def __init__(
        self,
        *,
        retry_statuses: Iterable[int] = DEFAULT_RETRY_STATUSES,
        retry_methods: Iterable[str] = IDEMPOTENT_METHODS,
        retry_non_idempotent: bool = False,
        idempotency_header: str | None = "Idempotency-Key",
        breaker_statuses: Iterable[int] = range(500, 600),
    ) -> None:
        o = "HttpPolicy"
        self.retry_statuses = _statuses(o, "retry_statuses", retry_statuses)
        self.breaker_statuses = _statuses(o, "breaker_statuses", breaker_statuses)
        methods = _iterable(o, "retry_methods", retry_methods)
        if not all(isinstance(m, str) and m.isalpha() for m in methods):
            raise ConfigurationError(f"{o}.retry_methods", retry_methods,
                                     "HTTP method names such as 'GET'")
        self.retry_methods = frozenset(m.upper() for m in methods)
        self.retry_non_idempotent = validate.boolean(o, "retry_non_idempotent",
                                                     retry_non_idempotent)
        if idempotency_header is not None:
            validate.text(o, "idempotency_header", idempotency_header)
        self.idempotency_header = idempotency_header

    def replays(self, request: httpx.Request) -> bool:
        """Whether ``request`` may be sent again once its bytes may have reached
        the server (after a read timeout, a dropped connection, a retried status)."""
        choice = request.extensions.get(RETRY_EXTENSION)
        if choice is not None:
            allowed = bool(choice)
        elif request.method in self.retry_methods or (
                self.idempotency_header is not None
                and self.idempotency_header in request.headers):
            allowed = True
        else:
            allowed = self.retry_non_idempotent
        # A body we can not send a second time ends it (bytes, JSON, forms can).
        return allowed and isinstance(request.stream, httpx.ByteStream)

    def retries_error(self, exc: BaseException, request: httpx.Request) -> bool:
        """Whether the attempt that raised ``exc`` may be made again."""
        if request.extensions.get(RETRY_EXTENSION) is False:
            return False
        if isinstance(exc, _NEVER_SENT):
            return True  # nothing reached the server
        return isinstance(exc, httpx.TransportError) and is_transient(exc) \
            and self.replays(request)

    def retries_response(self, response: httpx.Response, request: httpx.Request) -> bool:
        """Whether ``response`` is answered by another attempt."""
        return response.status_code in self.retry_statuses and self.replays(request)

    @staticmethod
    def wait_asked(response: httpx.Response) -> float | None:
        """The ``Retry-After`` of ``response`` in seconds (None: the backoff's own)."""
        return retry_after_seconds(response.headers.get("Retry-After"))

    def host_failed(self, response: httpx.Response) -> bool:
        """Whether ``response`` counts against its host's breaker."""
        return response.status_code in self.breaker_statuses

    def __repr__(self) -> str:
        return (f"HttpPolicy(retry_statuses={sorted(self.retry_statuses)}, "
                f"retry_methods={sorted(self.retry_methods)}, "
                f"retry_non_idempotent={self.retry_non_idempotent}, "
                f"idempotency_header={self.idempotency_header!r})")


def _iterable(owner: str, name: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigurationError(f"{owner}.{name}", value, "a collection")
    return list(value)


def _statuses(owner: str, name: str, value: Any) -> frozenset[int]:
    items = _iterable(owner, name, value)
    for item in items:
        if not isinstance(item, int) or isinstance(item, bool) or not 100 <= item <= 599:
            raise ConfigurationError(f"{owner}.{name}", value,
                                     "HTTP status codes (ints in 100..599)")
    return frozenset(items)
