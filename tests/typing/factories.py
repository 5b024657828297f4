"""Type expectations for the factories' keywords, checked by ``mypy --strict`` in
``tests/test_typing.py`` (never imported by pytest).

Every factory passes its keywords on to its strategy's config and types them
with that config's ``TypedDict`` (:mod:`buttress.options`): the right keywords
type-check, a misspelt keyword or a wrong type is refused (each refused call
carries a ``type: ignore`` that ``--strict`` reports if it is not needed).
"""

from __future__ import annotations

from typing import assert_type

from buttress import (
    Bulkhead,
    BulkheadConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    Retry,
    RetryConfig,
    RetryStrategy,
    Timeout,
    async_circuit_breaker,
    async_retry,
    async_retry_with_backoff,
    async_timeout,
    circuit_breaker,
    get_circuit_breaker,
    retry,
    retry_sync,
    retry_with_backoff,
    timeout,
    with_retry,
)
from buttress.decorators import retry_database_operation, retry_http_request
from buttress.options import RetryOptions

# --- retry -----------------------------------------------------------------------------------

assert_type(retry(max_attempts=3, base_delay=0.1, retry_on=(ConnectionError,)), Retry)
assert_type(retry(RetryConfig(max_attempts=2), jitter=0.0), Retry)
assert_type(Retry(max_attempts=None, deadline=5.0, strategy=RetryStrategy.FIXED_DELAY), Retry)
assert_type(with_retry(initial_delay=0.5), Retry)
assert_type(async_retry(max_attempts=2), Retry)
assert_type(retry_sync(reraise=True), Retry)
assert_type(retry_with_backoff(RetryConfig(), retry_predicate=lambda exc: True), Retry)
retry(max_attemps=3)  # type: ignore[call-overload]
retry(max_attempts="3")  # type: ignore[call-overload]
Retry(max_attemps=3)  # type: ignore[call-arg]
Retry(base_delay="fast")  # type: ignore[arg-type]
with_retry(retries=3)  # type: ignore[call-arg]
async_retry(max_attemps=3)  # type: ignore[call-arg]
retry_sync(max_attemps=3)  # type: ignore[call-arg]
retry_with_backoff(retry_predicat=lambda exc: True)  # type: ignore[call-arg]
retry_http_request(3, retry_onn=(OSError,))  # type: ignore[call-overload]
retry_database_operation(max_attempts=3, jiter=0.1)  # type: ignore[call-overload]


async def gather() -> None:
    async def fetch() -> int:
        return 1

    await async_retry_with_backoff(fetch, max_attempts=2)
    await async_retry_with_backoff(fetch, max_attemps=2)  # type: ignore[call-arg]


options: RetryOptions = {"max_attempts": 5, "base_delay": 0.2}
assert_type(Retry(**options), Retry)
wrong: RetryOptions = {"max_attemps": 5}  # type: ignore[typeddict-unknown-key]

# --- circuit breaker -------------------------------------------------------------------------

assert_type(circuit_breaker(name="db", failure_threshold=5), CircuitBreaker)
assert_type(circuit_breaker(CircuitBreakerConfig(name="db"), recovery_timeout=5.0),
            CircuitBreaker)
assert_type(get_circuit_breaker("db", failure_threshold=5), CircuitBreaker)
assert_type(CircuitBreaker("db", failure_threshold=5, mode="observe"), CircuitBreaker)
circuit_breaker(name="db", failure_treshold=5)  # type: ignore[call-arg]
circuit_breaker(name=5)  # type: ignore[arg-type]
async_circuit_breaker(name="db", recovery_timout=5.0)  # type: ignore[call-arg]
get_circuit_breaker("db", failure_treshold=5)  # type: ignore[call-arg]
CircuitBreaker("db", failure_treshold=5)  # type: ignore[call-arg]
CircuitBreaker("db", critical="yes")  # type: ignore[arg-type]

# --- timeout and bulkhead --------------------------------------------------------------------

assert_type(timeout(2.0, operation_name="q"), Timeout)
assert_type(timeout(timeout_seconds=2.0, use_signal=True), Timeout)
assert_type(Timeout(2.0, error_message="slow"), Timeout)
async_timeout(timeout_seconds=2.0)
timeout(2.0, operation="q")  # type: ignore[call-arg]
Timeout(timeout_second=2.0)  # type: ignore[call-arg]
async_timeout(2.0, use_signals=True)  # type: ignore[call-arg]
assert_type(Bulkhead(max_concurrent=4, max_queue=8, name="db"), Bulkhead)
assert_type(Bulkhead(BulkheadConfig(max_concurrent=4)), Bulkhead)
Bulkhead(max_concurent=4)  # type: ignore[call-arg]
Bulkhead(max_wait="1s")  # type: ignore[arg-type]
