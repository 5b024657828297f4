"""Opt-in exception handlers: buttress's errors as the HTTP answers they mean.

=======================================  ======  ==========================================
raised by a path operation               status  body (JSON) and headers
=======================================  ======  ==========================================
:class:`~buttress.CircuitBreakerError`   503     ``detail``, ``breaker``, ``state``,
                                                 ``retry_after``; ``Retry-After`` header
:class:`~buttress.OperationTimeoutError` 504     ``detail``, ``operation``, ``timeout``
(:class:`~buttress.DeadlineExceededError`
included)
:class:`~buttress.RetryExhaustedError`   as its  the same, when the last attempt failed
                                         last    with one of the two above; any other
                                         error   last error is left to the app (500)
=======================================  ======  ==========================================

``Retry-After`` is the whole number of seconds until the breaker lets a probe
call through (rounded up, at least 1; left out for a breaker forced open,
which has no end in sight): a client that honours it comes back
when the dependency may have recovered, not while the breaker still rejects.
Names in the body are masked as in logs and health reports.
"""

from __future__ import annotations

import math

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buttress._core.errors import CircuitBreakerError, OperationTimeoutError, RetryExhaustedError
from buttress._core.logs import redact

__all__ = ["add_resilience_exception_handlers", "retry_after_seconds"]


def retry_after_seconds(error: CircuitBreakerError) -> int | None:
    """The ``Retry-After`` value for a rejection: the seconds until the breaker
    lets a probe through, rounded up, at least 1; None when no time is known (a
    breaker forced open stays open until someone closes it)::

        >>> from buttress import CircuitBreakerError, CircuitState
        >>> retry_after_seconds(CircuitBreakerError("db", CircuitState.OPEN, 19.2))
        20
        >>> retry_after_seconds(CircuitBreakerError("db", CircuitState.HALF_OPEN, 0.0))
        1
        >>> retry_after_seconds(CircuitBreakerError("db", CircuitState.OPEN, float("inf"))) is None
        True
    """
    remaining = error.remaining_timeout
    if math.isnan(remaining) or math.isinf(remaining):
        return None
    return max(1, math.ceil(remaining))


def _breaker_open(error: CircuitBreakerError) -> Response:
    seconds = retry_after_seconds(error)
    return JSONResponse(
        {"detail": "Service temporarily unavailable: a dependency is failing and its "
                   "circuit breaker is rejecting calls.",
         "breaker": redact(error.name), "state": error.state.value, "retry_after": seconds},
        status_code=503,
        headers=None if seconds is None else {"Retry-After": str(seconds)},
    )


def _timed_out(error: OperationTimeoutError) -> Response:
    operation = None if error.operation is None else redact(error.operation)
    return JSONResponse(
        {"detail": "Gateway timeout: a dependency did not answer in time.",
         "operation": operation, "timeout": error.timeout},
        status_code=504,
    )


async def _on_breaker_open(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CircuitBreakerError)
    return _breaker_open(exc)


async def _on_timeout(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OperationTimeoutError)
    return _timed_out(exc)


async def _on_retry_exhausted(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RetryExhaustedError)
    last = exc.last_exception
    if isinstance(last, CircuitBreakerError):
        return _breaker_open(last)
    if isinstance(last, OperationTimeoutError):
        return _timed_out(last)
    # Any other failure stays the app's: re-raised, Starlette answers 500 and logs it.
    raise exc


def add_resilience_exception_handlers(app: Starlette) -> None:
    """Answer open breakers with 503 (and ``Retry-After``) and timeouts with 504,
    instead of a 500::

        app = FastAPI()
        add_resilience_exception_handlers(app)

    Opt-in, because an app may already map these errors its own way (to a
    fallback answer, say). Handlers added later for the same classes replace
    these. Works on any Starlette app, FastAPI's included.
    """
    app.add_exception_handler(CircuitBreakerError, _on_breaker_open)
    app.add_exception_handler(OperationTimeoutError, _on_timeout)
    app.add_exception_handler(RetryExhaustedError, _on_retry_exhausted)
