"""Case f: five strategies around an async call, buttress's pipeline against the
closest composition of peers.

Standard order, outermost first: fallback → retry → circuit breaker → timeout
→ bulkhead → the call. Until buttress ships ``Bulkhead``, its side runs the
other four strategies and the report says so.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiobreaker
import tenacity

import buttress
from benchmarks.functions import ATTEMPTS, succeeding
from benchmarks.groups import PIPELINE
from benchmarks.harness import Case

__all__ = ["STRATEGIES", "cases"]

TIMEOUT_SECONDS = 2.0
MAX_CONCURRENT = 10
MAX_QUEUE = 100


def _has_bulkhead() -> bool:
    """Whether buttress has a Bulkhead and pipeline() takes ``bulkhead=``."""
    return (hasattr(buttress, "Bulkhead")
            and "bulkhead" in inspect.signature(buttress.pipeline).parameters)


STRATEGIES = 5 if _has_bulkhead() else 4


def _bulkhead_stage() -> dict[str, Any]:
    """The pipeline's ``bulkhead=`` argument, or nothing while buttress has none."""
    if STRATEGIES < 5:
        return {}
    bulkhead = getattr(buttress, "Bulkhead")  # noqa: B009 - absent until it ships
    return {"bulkhead": bulkhead(max_concurrent=MAX_CONCURRENT, max_queue=MAX_QUEUE)}


def _answer_none(exc: BaseException, *args: Any, **kwargs: Any) -> None:
    return None


def _buttress() -> Callable[[], Any]:
    protect = buttress.pipeline(
        fallback=_answer_none,
        retry=buttress.RetryConfig(max_attempts=ATTEMPTS, base_delay=0, jitter=0,
                                   retry_on=(ConnectionError,)),
        circuit_breaker=buttress.CircuitBreaker("bench-pipeline", failure_threshold=5,
                                                recovery_timeout=60),
        timeout=TIMEOUT_SECONDS,
        **_bulkhead_stage(),
    )
    protected: Callable[[], Any] = protect(succeeding("async"))
    return protected


def _peers() -> Callable[[], Any]:
    call = succeeding("async")
    # Created outside any loop: since Python 3.10 it binds to a loop only when
    # a caller has to wait, which never happens here. It has no queue limit.
    bulkhead = asyncio.Semaphore(MAX_CONCURRENT)
    breaker = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))

    retrying = tenacity.retry(stop=tenacity.stop_after_attempt(ATTEMPTS),
                              wait=tenacity.wait_none(),
                              retry=tenacity.retry_if_exception_type(ConnectionError),
                              reraise=True)

    async def limited() -> Any:
        async with asyncio.timeout(TIMEOUT_SECONDS), bulkhead:
            return await call()

    attempt: Callable[[], Any] = retrying(breaker(limited))

    async def with_fallback() -> Any:
        try:
            return await attempt()
        except Exception as exc:
            return _answer_none(exc)

    return with_fallback


def cases() -> list[Case]:
    """Case f: buttress's pipeline and the peers' composition, async."""
    return [
        Case(PIPELINE, "buttress", "async", _buttress),
        Case(PIPELINE, "tenacity + aiobreaker + asyncio", "async", _peers),
    ]
