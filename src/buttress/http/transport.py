"""httpx transports that retry what is safe to retry and break per host.

Each request runs through one pipeline, built once per transport: a retry
(outermost) around the breaker of the request's host around the wrapped
transport. The retry judges outcomes: an exception or a response. A retried
status (429, 502, 503, 504) is a *result*: its body is read and the response
closed (its connection goes back to the pool), the next attempt waits for
``Retry-After`` or the backoff, and when the attempts run out the last
response is returned as it is, never raised. See :mod:`buttress.http.policy`
for what is retried.

Time: a ``Retry-After`` is capped at the retry's ``max_delay``; no wait
starts that would end past the call's deadline (:func:`buttress.deadline`, an
enclosing :class:`~buttress.Timeout`), and each attempt's httpx timeouts are
cut to what is left of it, so the request itself can not overrun it either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import httpx

from buttress._core.clock import Clock
from buttress._core.context import remaining_time
from buttress._core.errors import DeadlineExceededError, RetryExhaustedError
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.http.hosts import HostBreakers
from buttress.http.policy import HttpPolicy
from buttress.retry import Retry, RetryCall, RetryConfig

__all__ = ["AsyncResilientTransport", "ResilientTransport"]

# Error bodies are read before the response is dropped, so that its connection
# can be reused; larger ones are not worth reading: the connection is closed.
_DRAIN_LIMIT: Final = 1 << 20
_TIMEOUT_KEYS: Final = ("connect", "read", "write", "pool")

DEFAULT_RETRY: Final = RetryConfig(max_attempts=3, base_delay=0.5, max_delay=30.0,
                                   strategy="full_jitter", name="http")


class _Core:
    """What both transports share: the policy, the breakers and the retry config."""

    __slots__ = ("breakers", "clock", "policy", "retry_config")

    def __init__(self, retry: RetryConfig | None, circuit_breaker: CircuitBreakerConfig | None,
                 breakers: HostBreakers | None, policy: HttpPolicy | None,
                 clock: Clock | None, max_hosts: int, options: dict[str, Any]) -> None:
        if policy is None:
            policy = HttpPolicy(**options)
        elif options:
            raise TypeError(f"pass either policy= or its options, not both: {sorted(options)}")
        if retry is not None and not isinstance(retry, RetryConfig):
            raise TypeError(f"retry must be a RetryConfig, got {retry!r}")
        self.policy = policy
        self.clock = clock
        if breakers is None:
            breakers = HostBreakers(circuit_breaker, max_hosts=max_hosts, clock=clock,
                                    host_failed=policy.host_failed)
        elif circuit_breaker is not None:
            raise TypeError("pass either breakers= or circuit_breaker=, not both")
        self.breakers = breakers
        base = DEFAULT_RETRY if retry is None else retry
        judge = policy

        def retry_error(exc: Exception, call: RetryCall) -> bool:
            return judge.retries_error(exc, call.args[0])

        def retry_response(response: httpx.Response, call: RetryCall) -> bool:
            return judge.retries_response(response, call.args[0])

        # The HTTP rules replace whatever the given config says about *what*
        # to retry; its attempts, backoff, deadline, callbacks and name stay.
        self.retry_config = base.replace(
            exceptions=(httpx.TransportError,), non_retryable_exceptions=(),
            retry_condition=retry_error, retry_on_result=retry_response,
            retry_after_result=policy.wait_asked, retry_after=None, dispose=_close,
            reraise=True, name=base.name or "http")

    def retry(self) -> Retry:
        return Retry(self.retry_config, clock=self.clock)


def _close(response: httpx.Response) -> None:
    # Sync and async responses alike: the async attempt has closed its own
    # already (and close() refuses an async stream, even a closed one).
    if not response.is_closed:
        response.close()


def _with_deadline(request: httpx.Request, timeouts: Any) -> None:
    """Cut this attempt's httpx timeouts to what is left of the call's deadline."""
    left = remaining_time()
    if left is None:
        return
    if left <= 0.0:
        raise DeadlineExceededError(
            f"{request.method} {request.url.host}: the call's deadline ran out before "
            f"the attempt started", operation=f"http {request.method}", timeout=0.0)
    given = timeouts if isinstance(timeouts, dict) else {}
    cut = {}
    for key in _TIMEOUT_KEYS:
        value = given.get(key)
        cut[key] = left if value is None or value > left else value
    request.extensions = {**request.extensions, "timeout": cut}


def _last_response(error: RetryExhaustedError) -> httpx.Response:
    """When attempts run out on a retried status, the call returns that response."""
    result = error.last_result
    if error.last_exception is None and isinstance(result, httpx.Response):
        return result
    raise error


def _plain(breaker: CircuitBreaker) -> bool:
    """Whether the breaker adds nothing around the call (no ``timeout=``/``fallback=``)."""
    config = breaker.config
    return config.timeout is None and config.fallback is None


def _drains(response: httpx.Response) -> bool:
    length = response.headers.get("Content-Length")
    return length is None or (length.isdigit() and int(length) <= _DRAIN_LIMIT)


class ResilientTransport(httpx.BaseTransport):
    """A sync httpx transport that retries safely and breaks per host::

        import httpx
        from buttress.http import ResilientTransport

        client = httpx.Client(transport=ResilientTransport(), timeout=5.0)
        client.get("https://api.example.com/users")   # 3 attempts on 502/503/504/429

    ``transport`` is the transport to wrap (default: a new ``httpx.HTTPTransport``);
    ``retry`` the attempts and backoff (default 3 attempts, full jitter from
    0.5 s, ``max_delay`` 30 s, which also caps ``Retry-After``);
    ``circuit_breaker`` the template of each host's breaker (default 5
    consecutive failures, 30 s open), kept for ``max_hosts`` hosts, or
    ``breakers`` to share a :class:`HostBreakers` between transports; ``policy``
    (or its options: ``retry_statuses``, ``retry_methods``,
    ``retry_non_idempotent``, ``idempotency_header``, ``breaker_statuses``)
    decides what is retried (:class:`~buttress.http.HttpPolicy`). ``clock``
    measures and waits (a :class:`~buttress.testing.VirtualClock` in tests).

    A request to a host whose breaker is open raises
    :class:`~buttress.CircuitBreakerError` without being sent. Exceptions are
    httpx's own: the last attempt's error propagates when attempts run out.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        retry: RetryConfig | None = None,
        circuit_breaker: CircuitBreakerConfig | None = None,
        breakers: HostBreakers | None = None,
        policy: HttpPolicy | None = None,
        max_hosts: int = 128,
        clock: Clock | None = None,
        **options: Any,
    ) -> None:
        self._core = core = _Core(retry, circuit_breaker, breakers, policy, clock,
                                  max_hosts, options)
        self._inner = httpx.HTTPTransport() if transport is None else transport
        self._send: Callable[[httpx.Request, CircuitBreaker, Any], httpx.Response] = \
            core.retry().wrap(self._attempt)

    @property
    def breakers(self) -> HostBreakers:
        """The per-host breakers (``transport.breakers.get("api.example.com")``)."""
        return self._core.breakers

    @property
    def policy(self) -> HttpPolicy:
        """What is retried."""
        return self._core.policy

    def breaker_for(self, url: httpx.URL | str) -> CircuitBreaker:
        """The breaker of ``url``'s host."""
        return self._core.breakers.for_url(httpx.URL(url))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        breaker = self._core.breakers.for_url(request.url)
        try:
            return self._send(request, breaker, request.extensions.get("timeout"))
        except RetryExhaustedError as error:
            return _last_response(error)

    def _attempt(self, request: httpx.Request, breaker: CircuitBreaker,
                 timeouts: Any) -> httpx.Response:
        _with_deadline(request, timeouts)
        response: httpx.Response = (
            # breaker.call() minus its per-call "is this async?" check (a tenth of
            # the transport's own cost), unless it has a timeout or fallback to add.
            breaker._call_guarded(self._inner.handle_request, (request,), {})
            if _plain(breaker) else breaker.call(self._inner.handle_request, request))
        if self._core.policy.retries_response(response, request):
            # It may be retried away: read it now, so the connection is reused.
            try:
                if _drains(response):
                    response.read()
            finally:
                response.close()
        return response

    def close(self) -> None:
        self._inner.close()

    def __repr__(self) -> str:
        return f"ResilientTransport({self._inner!r}, {self._core.policy!r})"


class AsyncResilientTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`ResilientTransport`, for ``httpx.AsyncClient``::

        client = httpx.AsyncClient(transport=AsyncResilientTransport(), timeout=5.0)
        await client.get("https://api.example.com/users")
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        retry: RetryConfig | None = None,
        circuit_breaker: CircuitBreakerConfig | None = None,
        breakers: HostBreakers | None = None,
        policy: HttpPolicy | None = None,
        max_hosts: int = 128,
        clock: Clock | None = None,
        **options: Any,
    ) -> None:
        self._core = core = _Core(retry, circuit_breaker, breakers, policy, clock,
                                  max_hosts, options)
        self._inner = httpx.AsyncHTTPTransport() if transport is None else transport
        self._send = core.retry().wrap_async(self._attempt)

    @property
    def breakers(self) -> HostBreakers:
        """The per-host breakers."""
        return self._core.breakers

    @property
    def policy(self) -> HttpPolicy:
        """What is retried."""
        return self._core.policy

    def breaker_for(self, url: httpx.URL | str) -> CircuitBreaker:
        """The breaker of ``url``'s host."""
        return self._core.breakers.for_url(httpx.URL(url))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        breaker = self._core.breakers.for_url(request.url)
        try:
            response: httpx.Response = await self._send(
                request, breaker, request.extensions.get("timeout"))
        except RetryExhaustedError as error:
            return _last_response(error)
        return response

    async def _attempt(self, request: httpx.Request, breaker: CircuitBreaker,
                       timeouts: Any) -> httpx.Response:
        _with_deadline(request, timeouts)
        response: httpx.Response = await (
            breaker._acall_guarded(self._inner.handle_async_request, (request,), {})
            if _plain(breaker) else breaker.acall(self._inner.handle_async_request, request))
        if self._core.policy.retries_response(response, request):
            # The dispose hook is sync and can not close an async stream:
            # read and close it here (the last one is returned read).
            try:
                if _drains(response):
                    await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __repr__(self) -> str:
        return f"AsyncResilientTransport({self._inner!r}, {self._core.policy!r})"
