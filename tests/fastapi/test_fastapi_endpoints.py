"""Presets, pipelines and strategy decorators on FastAPI path operations, sync
and async: the signature FastAPI reads is the endpoint's own (path, query and
body parameters, Depends, Request), and the protection works per request."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from buttress import (
    CircuitBreakerConfig,
    Retry,
    RetryConfig,
    api_resilient,
    cache_resilient,
    database_resilient,
    pipeline,
    resilient,
)
from buttress.fastapi import add_resilience_exception_handlers
from buttress.testing import VirtualClock


class Order(BaseModel):
    """A body model, annotated as a string (this module uses postponed
    annotations): FastAPI must resolve it in this module, not buttress's."""

    sku: str
    quantity: int


def tenant(request: Request) -> str:
    return request.headers.get("X-Tenant", "none")


def _decorators(clock: VirtualClock) -> dict[str, Callable[[Any], Any]]:
    """Every way to protect a function, each retrying transient errors up to 3
    attempts on the virtual clock (waits take no real time)."""
    return {
        "database_resilient": database_resilient(
            operation_name="orders_db", retry_exceptions=ConnectionError, clock=clock),
        "api_resilient": api_resilient(
            operation_name="orders_api", max_attempts=3, retry_exceptions=ConnectionError,
            clock=clock),
        "resilient": resilient(operation_name="orders", max_attempts=3,
                               retry_exceptions=ConnectionError, clock=clock),
        "pipeline": pipeline(
            retry=RetryConfig(max_attempts=3, base_delay=0.5, exceptions=(ConnectionError,)),
            circuit_breaker=CircuitBreakerConfig(name="orders_pipeline", failure_threshold=10),
            clock=clock),
        "Retry": Retry(RetryConfig(max_attempts=3, base_delay=0.5,
                                   exceptions=(ConnectionError,)), clock=clock),
    }


KINDS = ["database_resilient", "api_resilient", "resilient", "pipeline", "Retry"]


def _flaky(failures: int) -> Callable[[], int]:
    """A dependency that fails ``failures`` times, then answers; returns the call count."""
    calls = [0]

    def call() -> int:
        calls[0] += 1
        if calls[0] <= failures:
            raise ConnectionError("connection reset by peer")
        return calls[0]

    return call


@pytest.mark.parametrize("kind", KINDS)
def test_a_protected_async_path_operation_keeps_its_parameters_and_retries(
        clock: VirtualClock, kind: str) -> None:
    dependency = _flaky(failures=2)
    app = FastAPI()

    @app.post("/orders/{shop_id}")
    @_decorators(clock)[kind]
    async def create_order(shop_id: int, order: Order, dry_run: bool = False,
                           who: str = Depends(tenant)) -> dict[str, Any]:
        return {"shop": shop_id, "sku": order.sku, "quantity": order.quantity,
                "dry_run": dry_run, "tenant": who, "calls": dependency()}

    response = TestClient(app).post("/orders/7?dry_run=true", headers={"X-Tenant": "acme"},
                                    json={"sku": "A-1", "quantity": 2})
    assert response.status_code == 200
    assert response.json() == {"shop": 7, "sku": "A-1", "quantity": 2, "dry_run": True,
                               "tenant": "acme", "calls": 3}
    assert clock.now > 0  # the retry waited, on the virtual clock


@pytest.mark.parametrize("kind", KINDS)
def test_a_protected_sync_path_operation_keeps_its_parameters_and_retries(
        clock: VirtualClock, kind: str) -> None:
    dependency = _flaky(failures=2)
    app = FastAPI()

    @app.get("/stock/{sku}")
    @_decorators(clock)[kind]
    def stock(sku: str, request: Request, warehouse: str = "main") -> dict[str, Any]:
        return {"sku": sku, "warehouse": warehouse, "path": request.url.path,
                "calls": dependency()}

    response = TestClient(app).get("/stock/A-1?warehouse=east")
    assert response.json() == {"sku": "A-1", "warehouse": "east", "path": "/stock/A-1",
                               "calls": 3}


@pytest.mark.parametrize("kind", KINDS)
def test_the_decorated_endpoint_shows_fastapi_the_original_signature(
        clock: VirtualClock, kind: str) -> None:
    async def original(item_id: int, q: str | None = None,
                       who: str = Depends(tenant)) -> dict[str, Any]:
        return {}

    decorated = _decorators(clock)[kind](original)
    assert inspect.signature(decorated) == inspect.signature(original)
    assert inspect.iscoroutinefunction(decorated)
    assert decorated.__wrapped__ is original
    assert decorated.__name__ == "original"

    app = FastAPI()
    app.get("/items/{item_id}")(decorated)
    parameters = app.openapi()["paths"]["/items/{item_id}"]["get"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [("item_id", "path"), ("q", "query")]


def test_request_validation_still_answers_422_before_any_protection(
        clock: VirtualClock) -> None:
    calls = []
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cache_resilient(operation_name="items", clock=clock)
    async def item(item_id: int) -> int:
        calls.append(item_id)
        return item_id

    client = TestClient(app)
    assert client.get("/items/abc").status_code == 422
    assert client.get("/items/5").json() == 5
    assert calls == [5]


def test_an_endpoint_whose_dependency_stays_down_opens_its_breaker_and_answers_503(
        clock: VirtualClock) -> None:
    reached = []
    app = FastAPI()
    add_resilience_exception_handlers(app)

    @app.get("/quote")
    @api_resilient(operation_name="quotes", max_attempts=1, failure_threshold=2,
                   recovery_timeout=60.0, retry_exceptions=ConnectionError, clock=clock)
    async def quote() -> None:
        reached.append(1)
        raise ConnectionError("refused")

    client = TestClient(app, raise_server_exceptions=False)
    assert [client.get("/quote").status_code for _ in range(2)] == [500, 500]
    response = client.get("/quote")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "60")
    assert len(reached) == 2
