"""FastAPI (and Starlette) integration: resilience status on every response,
per-request deadlines, health and metrics routes, and error responses for
open breakers and timeouts. Install with ``pip install buttress[fastapi]``::

    from fastapi import FastAPI
    from buttress import api_resilient
    from buttress.fastapi import (
        ResilienceMiddleware, add_resilience_exception_handlers, resilience_router)

    app = FastAPI()
    app.add_middleware(ResilienceMiddleware)        # X-Resilience-Status, X-Request-Timeout
    app.include_router(resilience_router())         # /health, /health/resilience, /metrics...
    add_resilience_exception_handlers(app)          # open breaker: 503, timeout: 504

    @app.get("/users/{user_id}")
    @api_resilient(operation_name="users_api")
    async def get_user(user_id: int) -> dict: ...

The presets, pipelines and strategy decorators keep the endpoint's signature
(``functools.wraps``: ``inspect.signature`` follows ``__wrapped__``), so path,
query and body parameters and ``Depends`` work on a decorated path operation,
sync or async. Put ``@app.get(...)`` above the buttress decorator.

This package imports FastAPI and Starlette; ``import buttress`` never does.
"""

from __future__ import annotations

try:
    import fastapi as _fastapi  # noqa: F401 - only to name the extra when it is missing
except ModuleNotFoundError as exc:
    raise ModuleNotFoundError(
        "buttress.fastapi needs FastAPI: pip install 'buttress[fastapi]'", name=exc.name,
    ) from exc

from buttress.fastapi.errors import add_resilience_exception_handlers, retry_after_seconds
from buttress.fastapi.middleware import (
    STATUS_HEADER,
    TIMEOUT_HEADER,
    ResilienceMiddleware,
)
from buttress.fastapi.routes import resilience_metrics_document, resilience_router

__all__ = [
    "STATUS_HEADER",
    "TIMEOUT_HEADER",
    "ResilienceMiddleware",
    "add_resilience_exception_handlers",
    "resilience_metrics_document",
    "resilience_router",
    "retry_after_seconds",
]
