"""HTTP calls protected by buttress (the ``http`` extra: httpx).

Two layers. The transports plug into any httpx client and protect every
request it sends: retry only what is safe to send again, honour
``Retry-After``, respect the call's deadline, one breaker per host::

    import httpx
    from buttress.http import ResilientTransport

    client = httpx.Client(transport=ResilientTransport(), timeout=5.0)

The clients are ready-made httpx clients with those transports, in the
seeds' spellings: :func:`get_http_client` (``get``/``post``/``async_get``/
``async_post``/``health_check``), :class:`ResilientHttpClient` (async), and
:class:`HealthAwareCircuitBreaker`, a breaker that a background probe of a
health URL opens while the URL fails.
"""

from __future__ import annotations

from buttress.http.client import HttpClient, ResilientHttpClient, get_http_client
from buttress.http.health import HealthAwareCircuitBreaker
from buttress.http.hosts import HostBreakers
from buttress.http.policy import (
    DEFAULT_RETRY_STATUSES,
    IDEMPOTENT_METHODS,
    RETRY_EXTENSION,
    HttpPolicy,
)
from buttress.http.transport import AsyncResilientTransport, ResilientTransport

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "RETRY_EXTENSION",
    "AsyncResilientTransport",
    "HealthAwareCircuitBreaker",
    "HostBreakers",
    "HttpClient",
    "HttpPolicy",
    "ResilientHttpClient",
    "ResilientTransport",
    "get_http_client",
]
