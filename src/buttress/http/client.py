"""Ready-made resilient HTTP clients, in the seeds' spellings.

* :func:`get_http_client` / :class:`HttpClient` — sync ``get``/``post``/...,
  async ``async_get``/``async_post``/..., and ``health_check(path)``, with the
  ``api`` preset's defaults (5 attempts, 1 s base delay, 30 s cap, 60 s
  timeout, breakers tripping after 5 failures and open 60 s).
* :class:`ResilientHttpClient` — async ``get``/``post``/... from a breaker
  config, a retry config and a timeout.

Both are thin: an ``httpx.Client`` and/or ``httpx.AsyncClient`` whose
transports are :class:`~buttress.http.ResilientTransport` and its async twin,
sharing one set of per-host breakers, so a host that fails for sync callers is
open for async ones too. Methods return ``httpx.Response`` (a retried status
that persisted is returned, not raised: call ``raise_for_status()``).

An async client belongs to the event loop it first ran on; used from another
loop (another ``asyncio.run``), :class:`HttpClient` makes a new one there.
"""

from __future__ import annotations

import asyncio
import os
import time
from types import TracebackType
from typing import Any, Final

import httpx

from buttress._core import forksafe
from buttress._core.clock import Clock
from buttress._core.errors import CircuitBreakerError
from buttress._core.logs import redact
from buttress._core.shared import SharedClients
from buttress.breaker import CircuitBreakerConfig
from buttress.http.hosts import HostBreakers
from buttress.http.policy import HttpPolicy
from buttress.http.transport import AsyncResilientTransport, ResilientTransport
from buttress.retry import RetryConfig

__all__ = ["HttpClient", "ResilientHttpClient", "get_http_client"]

# The ``api`` preset of the pynomaly seed.
API_RETRY: Final = RetryConfig(max_attempts=5, base_delay=1.0, max_delay=30.0,
                               strategy="full_jitter", name="http")
API_BREAKER: Final = CircuitBreakerConfig(failure_threshold=5, recovery_timeout=60.0)
API_TIMEOUT: Final = 60.0


class _Clients:
    """The httpx clients behind one resilient client: sync made on first use,
    async made per event loop."""

    def __init__(self, base_url: str, timeout: float | httpx.Timeout | None,
                 retry: RetryConfig, breakers: HostBreakers, policy: HttpPolicy,
                 clock: Clock | None, client_options: dict[str, Any]) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry = retry
        self.breakers = breakers
        self.policy = policy
        self.clock = clock
        self.options = client_options
        self.lock = forksafe.lock()
        self.sync: httpx.Client | None = None
        self.async_: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def sync_client(self) -> httpx.Client:
        client = self.sync
        if client is None:
            with self.lock:
                if self.sync is None:
                    transport = ResilientTransport(
                        self.options.get("transport"), retry=self.retry,
                        breakers=self.breakers, policy=self.policy, clock=self.clock)
                    self.sync = httpx.Client(
                        base_url=self.base_url, timeout=self.timeout, transport=transport,
                        **_without(self.options, "transport", "async_transport"))
                client = self.sync
        return client

    def async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        held = self.async_
        if held is not None and held[0] is loop:
            return held[1]
        transport = AsyncResilientTransport(
            self.options.get("async_transport"), retry=self.retry, breakers=self.breakers,
            policy=self.policy, clock=self.clock)
        client = httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, transport=transport,
            **_without(self.options, "transport", "async_transport"))
        # The previous loop's client is dropped: its connections belong to that loop.
        self.async_ = (loop, client)
        return client

    def close(self) -> None:
        with self.lock:
            client, self.sync = self.sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        held, self.async_ = self.async_, None
        if held is not None and held[0] is asyncio.get_running_loop():
            await held[1].aclose()


def _without(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in names}


def _target(client: httpx.Client | httpx.AsyncClient, path: str,
            breakers: HostBreakers) -> tuple[str, str | None]:
    """The URL a health check asks, and its host breaker's state (None: no host,
    as with ``get_http_client()`` given no ``base_url`` and a relative path)."""
    url = client.build_request("GET", path).url
    if not url.host:
        return str(url), None
    return str(url), breakers.for_url(url).state.value


def _state(breakers: HostBreakers, url: str) -> str:
    return breakers.for_url(httpx.URL(url)).state.value


def _no_host(url: str) -> ValueError:
    return ValueError(f"{url!r} names no host: give the client a base_url or an absolute URL")


def _health(url: str, started: float, response: httpx.Response | None,
            error: BaseException | None, breaker: str) -> dict[str, Any]:
    """The health document: ``status`` is "healthy" for a 2xx answer, else "unhealthy"."""
    elapsed = round(time.perf_counter() - started, 6)
    url = redact(url)  # health documents get shown: no credentials, no query
    if response is not None:
        healthy = response.is_success
        return {"status": "healthy" if healthy else "unhealthy", "url": url,
                "status_code": response.status_code, "response_time": elapsed,
                "circuit_breaker": breaker}
    return {"status": "unhealthy", "url": url, "status_code": None, "response_time": elapsed,
            "circuit_breaker": breaker, "error": f"{type(error).__name__}: {error}"}


class HttpClient:
    """A resilient HTTP client with sync and async methods (the pynomaly seed's)::

        client = get_http_client(base_url="https://api.example.com")
        response = client.get("/users")
        created = await client.async_post("/users", json={"name": "John"})
        client.health_check("/health")["status"]   # "healthy" or "unhealthy"

    Keyword options: ``timeout`` (seconds or ``httpx.Timeout``), ``retry``
    (:class:`~buttress.RetryConfig`), ``circuit_breaker``
    (:class:`~buttress.CircuitBreakerConfig`, the per-host template),
    ``max_hosts``, ``clock``, the :class:`~buttress.http.HttpPolicy` options
    (``retry_statuses``, ``retry_non_idempotent``, ...), and any
    ``httpx.Client`` option (``headers``, ``auth``, ``transport`` and
    ``async_transport`` to wrap).
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        timeout: float | httpx.Timeout | None = API_TIMEOUT,
        retry: RetryConfig | None = None,
        circuit_breaker: CircuitBreakerConfig | None = None,
        max_hosts: int = 128,
        clock: Clock | None = None,
        policy: HttpPolicy | None = None,
        **options: Any,
    ) -> None:
        policy_keys = {"retry_statuses", "retry_methods", "retry_non_idempotent",
                       "idempotency_header", "breaker_statuses"}
        policy_options = {k: options.pop(k) for k in list(options) if k in policy_keys}
        if policy is None:
            policy = HttpPolicy(**policy_options)
        elif policy_options:
            raise TypeError(f"pass either policy= or its options: {sorted(policy_options)}")
        breakers = HostBreakers(circuit_breaker or API_BREAKER, max_hosts=max_hosts,
                                clock=clock, host_failed=policy.host_failed)
        self._clients = _Clients(base_url, timeout, retry or API_RETRY, breakers, policy,
                                 clock, options)

    @property
    def base_url(self) -> str:
        """The URL relative paths are joined to."""
        return self._clients.base_url

    @property
    def breakers(self) -> HostBreakers:
        """The per-host breakers, shared by the sync and async methods."""
        return self._clients.breakers

    @property
    def client(self) -> httpx.Client:
        """The underlying sync ``httpx.Client`` (made on first use)."""
        return self._clients.sync_client()

    # sync

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request (``httpx.Client.request`` arguments) through the protections."""
        return self._clients.sync_client().request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET ``url`` (relative to ``base_url``)."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST ``url``; sent once unless it carries an ``Idempotency-Key`` (connect
        errors aside: those requests never left)."""
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        """PUT ``url``."""
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        """PATCH ``url`` (not idempotent: sent once, like POST)."""
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        """DELETE ``url``."""
        return self.request("DELETE", url, **kwargs)

    def health_check(self, path: str = "/health", *, timeout: float = 5.0) -> dict[str, Any]:
        """GET ``path`` once (no retry) and report: ``status`` ("healthy" for a 2xx),
        ``status_code``, ``response_time`` (seconds), ``url``, ``circuit_breaker``
        (the host breaker's state), and ``error`` when there was no answer.
        Never raises for a failing dependency."""
        client = self._clients.sync_client()
        started = time.perf_counter()
        url, state = _target(client, path, self.breakers)
        if state is None:
            return _health(url, started, None, _no_host(url), "unknown")
        try:
            response = client.get(path, timeout=timeout, extensions={"buttress.retry": False})
        except (httpx.HTTPError, CircuitBreakerError) as exc:
            return _health(url, started, None, exc, _state(self.breakers, url))
        return _health(url, started, response, None, _state(self.breakers, url))

    # async

    async def async_request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The async twin of :meth:`request`."""
        return await self._clients.async_client().request(method, url, **kwargs)

    async def async_get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET ``url``, async."""
        return await self.async_request("GET", url, **kwargs)

    async def async_post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST ``url``, async."""
        return await self.async_request("POST", url, **kwargs)

    async def async_put(self, url: str, **kwargs: Any) -> httpx.Response:
        """PUT ``url``, async."""
        return await self.async_request("PUT", url, **kwargs)

    async def async_patch(self, url: str, **kwargs: Any) -> httpx.Response:
        """PATCH ``url``, async."""
        return await self.async_request("PATCH", url, **kwargs)

    async def async_delete(self, url: str, **kwargs: Any) -> httpx.Response:
        """DELETE ``url``, async."""
        return await self.async_request("DELETE", url, **kwargs)

    async def async_health_check(self, path: str = "/health", *,
                                 timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The async twin of :meth:`health_check`."""
        client = self._clients.async_client()
        started = time.perf_counter()
        url, state = _target(client, path, self.breakers)
        if state is None:
            return _health(url, started, None, _no_host(url), "unknown")
        try:
            response = await client.get(path, timeout=timeout,
                                        extensions={"buttress.retry": False})
        except (httpx.HTTPError, CircuitBreakerError) as exc:
            return _health(url, started, None, exc, _state(self.breakers, url))
        return _health(url, started, response, None, _state(self.breakers, url))

    # lifecycle

    def close(self) -> None:
        """Close the sync client's connections."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async client's connections (and the sync client's)."""
        await self._clients.aclose()
        self._clients.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"HttpClient(base_url={self.base_url!r})"


_shared: SharedClients[str, HttpClient] = SharedClients(32)


def get_http_client(base_url: str | None = None, **options: Any) -> HttpClient:
    """A resilient HTTP client for ``base_url`` (see :class:`HttpClient`)::

        client = get_http_client(base_url="https://api.example.com")
        response = client.get("/users")

    Without ``base_url``, the ``BUTTRESS_HTTP_BASE_URL`` environment variable
    gives it (so ``get_http_client().health_check("/health")`` asks the service
    the deployment names), else relative paths have no host.

    Without options, the client is shared: every call for the same ``base_url``
    returns the same one (so calling it per request opens no new connection
    pools); the 32 most recently used are kept. With options, a new client.
    """
    if base_url is None:
        base_url = os.environ.get("BUTTRESS_HTTP_BASE_URL", "")
    if options:
        return HttpClient(base_url, **options)
    shared_url = base_url
    return _shared.get(shared_url, lambda: HttpClient(shared_url))


def _forget_shared() -> None:
    """Drop the shared clients (tests; :func:`buttress.reset_resilience_state`)."""
    for client in _shared.clear():
        client.close()


class ResilientHttpClient:
    """An async resilient HTTP client (the huleedu seed's)::

        client = ResilientHttpClient(
            base_url="https://api.external.com",
            circuit_breaker_config=CircuitBreakerConfig(failure_threshold=5,
                                                        recovery_timeout=60),
            retry_config=RetryConfig(max_attempts=3, initial_delay=1.0),
            timeout=30.0,
        )
        response = await client.get("/data/42")

    Retries what is safe (idempotent methods, connect errors, 429/502/503/504
    with ``Retry-After``), one breaker per host from ``circuit_breaker_config``,
    ``timeout`` seconds per attempt (never past the call's deadline).
    ``clock`` and the :class:`~buttress.http.HttpPolicy` options as for
    :class:`HttpClient`; other keywords go to ``httpx.AsyncClient``.
    """

    def __init__(
        self,
        base_url: str = "",
        circuit_breaker_config: CircuitBreakerConfig | None = None,
        retry_config: RetryConfig | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        **options: Any,
    ) -> None:
        self._http = HttpClient(base_url, timeout=timeout, retry=retry_config,
                                circuit_breaker=circuit_breaker_config, **options)

    @property
    def base_url(self) -> str:
        """The URL relative paths are joined to."""
        return self._http.base_url

    @property
    def breakers(self) -> HostBreakers:
        """The per-host breakers."""
        return self._http.breakers

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send a request (``httpx.AsyncClient.request`` arguments)."""
        return await self._http.async_request(method, url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """GET ``url``."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST ``url`` (sent once unless it carries an ``Idempotency-Key``)."""
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        """PUT ``url``."""
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        """PATCH ``url``."""
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        """DELETE ``url``."""
        return await self.request("DELETE", url, **kwargs)

    async def health_check(self, path: str = "/health", *,
                           timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """GET ``path`` once and report (see :meth:`HttpClient.health_check`)."""
        return await self._http.async_health_check(path, timeout=timeout)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> ResilientHttpClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ResilientHttpClient(base_url={self.base_url!r})"
