"""One circuit breaker per host, in a bounded registry.

A service talks to a handful of hosts; a crawler or a proxy talks to
thousands. The registry keeps the ``max_hosts`` most recently used hosts'
breakers and forgets the least recently used beyond that, so memory (and the
breaker names exporters label metrics with) stays bounded.

Breakers are named ``<prefix><host>:<port>`` (``"http:api.example.com:443"``):
no scheme, path, query or credentials, which never reach logs or metrics.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import httpx

from buttress._core import forksafe, validate
from buttress._core.clock import Clock
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.http.policy import HOST_FAILURES

__all__ = ["HostBreakers"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class HostBreakers:
    """The breakers of the hosts one client (or several) calls, created on first use.

    ``config`` is the template every host's breaker is made from (its name is
    replaced by the host's); what counts as a failure is the HTTP rule, not the
    template's: connect errors, timeouts, dropped connections and the
    ``host_failed`` statuses (5xx), never a 4xx::

        breakers = HostBreakers(CircuitBreakerConfig(failure_threshold=5), max_hosts=64)
        sync = ResilientTransport(breakers=breakers)
        concurrent = AsyncResilientTransport(breakers=breakers)  # the same breakers
    """

    __slots__ = ("_breakers", "_clock", "_config", "_host_failed", "_lock", "max_hosts",
                 "prefix")

    def __init__(
        self,
        config: CircuitBreakerConfig | None = None,
        *,
        max_hosts: int = 128,
        prefix: str = "http:",
        clock: Clock | None = None,
        host_failed: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        if config is not None and not isinstance(config, CircuitBreakerConfig):
            raise TypeError(f"HostBreakers config must be a CircuitBreakerConfig, got {config!r}")
        self.max_hosts = validate.integer("HostBreakers", "max_hosts", max_hosts, minimum=1)
        self.prefix = validate.text("HostBreakers", "prefix", prefix) if prefix else ""
        judge = host_failed if host_failed is not None else _server_error
        self._config = (config or CircuitBreakerConfig()).replace(
            failure_exceptions=HOST_FAILURES, failure_on_result=judge)
        self._clock = clock
        self._host_failed = judge
        self._lock = forksafe.lock()
        self._breakers: OrderedDict[tuple[str, str, int], CircuitBreaker] = OrderedDict()

    @property
    def config(self) -> CircuitBreakerConfig:
        """The template each host's breaker is made from."""
        return self._config

    def for_url(self, url: httpx.URL) -> CircuitBreaker:
        """The breaker of ``url``'s host (scheme, host and port), made on first use."""
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
        key = (url.scheme, url.host, port)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is not None:
                self._breakers.move_to_end(key)
                return breaker
        # Made outside the lock: a breaker's constructor takes the live registry's.
        made = CircuitBreaker(self._config.replace(name=f"{self.prefix}{url.host}:{port}"),
                              clock=self._clock)
        with self._lock:
            breaker = self._breakers.setdefault(key, made)  # a racing twin wins once
            self._breakers.move_to_end(key)
            while len(self._breakers) > self.max_hosts:
                self._breakers.popitem(last=False)
        return breaker

    def get(self, host: str, port: int | None = None, scheme: str = "http") -> CircuitBreaker:
        """The breaker of ``host`` (for code that has no URL at hand)."""
        return self.for_url(httpx.URL(scheme=scheme, host=host, port=port))

    def breakers(self) -> dict[str, CircuitBreaker]:
        """A snapshot of the breakers, by name, least recently used first."""
        with self._lock:
            return {b.name: b for b in self._breakers.values()}

    def __len__(self) -> int:
        with self._lock:
            return len(self._breakers)

    def __repr__(self) -> str:
        return f"HostBreakers({len(self)} hosts, max_hosts={self.max_hosts})"


def _server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500
