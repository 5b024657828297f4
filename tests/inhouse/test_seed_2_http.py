"""Seed S2 — ``huleedu_service_libs.resilience`` (``seeds/002_f93dcf436fbb084c.txt``):
the HTTP examples (``HealthAwareCircuitBreaker``, ``ResilientHttpClient``).

Each test is one example with its import line changed to ``from buttress import
...``, the URLs pointed at the loopback ``FlakyServer``, and ``clock=clock`` (a
``VirtualClock``) added where the example waits (the probe interval, backoff).
The reader's own code (``_local_processing``, ``_llm_processing``) is a minimal
stand-in.

Ported:

* Health-Aware Operations — Dependency Health Checks (``HealthAwareCircuitBreaker``,
  ``await is_healthy()``, ``async with``)
* Integration Patterns — Service Client with Resilience (``ResilientHttpClient``
  with ``CircuitBreakerConfig``, ``RetryConfig(initial_delay=...)``, ``timeout``)
"""

from __future__ import annotations

import time

import httpx

from buttress import CircuitBreakerConfig, RetryConfig
from buttress.flaky_server import FlakyServer
from buttress.testing import VirtualClock


class _Logger:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str, **fields: object) -> None:
        self.warnings.append(message)


async def test_dependency_health_checks(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import HealthAwareCircuitBreaker

    logger = _Logger()

    class ServiceManager:
        def __init__(self):
            self.llm_breaker = HealthAwareCircuitBreaker(
                "llm-service",
                health_check_url=f"{server.url}/health",
                health_check_interval=30.0,
                clock=clock,
            )

        async def process_with_llm(self, data: dict) -> dict:
            if not await self.llm_breaker.is_healthy():
                logger.warning("LLM service unhealthy, using local processing")
                return await self._local_processing(data)

            async with self.llm_breaker:
                return await self._llm_processing(data)

        async def _local_processing(self, data: dict) -> dict:  # stand-in
            return {"by": "local", **data}

        async def _llm_processing(self, data: dict) -> dict:  # stand-in: a real call
            async with httpx.AsyncClient() as client:
                response = await client.post(f"{server.url}/llm", json=data)
                return {"by": "llm", "status": response.status_code, **data}

    server.route("/health", 503, then=503)
    manager = ServiceManager()
    try:
        assert await manager.process_with_llm({"essay": 1}) == {"by": "local", "essay": 1}
        assert logger.warnings == ["LLM service unhealthy, using local processing"]

        server.route("/health", 200, then=200)
        clock.advance(30.0)  # the next probe finds the service back
        give_up = time.monotonic() + 5.0
        while manager.llm_breaker.probes < 2 and time.monotonic() < give_up:
            await _pause()
        result = await manager.process_with_llm({"essay": 2})
        assert result == {"by": "llm", "status": 200, "essay": 2}
        assert server.requests("/llm") == 1
    finally:
        await manager.llm_breaker.aclose()


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.002)


async def test_service_client_with_resilience(server: FlakyServer, clock: VirtualClock) -> None:
    from buttress import ResilientHttpClient

    class ExternalServiceClient:
        def __init__(self):
            self.client = ResilientHttpClient(
                base_url=server.url,
                circuit_breaker_config=CircuitBreakerConfig(
                    failure_threshold=5,
                    recovery_timeout=60
                ),
                retry_config=RetryConfig(
                    max_attempts=3,
                    initial_delay=1.0
                ),
                timeout=30.0,
                clock=clock,
            )

        async def get_data(self, resource_id: str) -> dict:
            # Automatically retries, respects circuit breaker, times out
            response = await self.client.get(f"/data/{resource_id}")
            return response.json()

    server.route("/data/42", 502, 503, 200)
    service = ExternalServiceClient()
    try:
        assert await service.get_data("42") == {"ok": True, "path": "/data/42"}
    finally:
        await service.client.aclose()
    assert server.requests("/data/42") == 3
    assert len(clock.sleeps) == 2
