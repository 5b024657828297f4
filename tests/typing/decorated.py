"""Type expectations for decorated functions, checked by ``mypy --strict`` in
``tests/test_typing.py`` (never imported by pytest).

Each decorator must keep the decorated function's signature: ``assert_type`` pins
what a call returns, and each ``# type: ignore[...]`` marks a call mypy must
refuse (``--strict`` reports an ignore that is not needed, so a decorator that
loses the signature fails here). Preset-protected functions also expose a typed
``.resilience``.
"""

from __future__ import annotations

from typing import assert_type

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    Fallback,
    Pipeline,
    Resilience,
    Retry,
    RetryConfig,
    Timeout,
    api_resilient,
    circuit_breaker,
    database_resilient,
    resilience_config,
    resilient,
    retry,
    timeout,
    with_fallback,
)
from buttress.config import LivePipeline
from buttress.decorators import retry_database_operation, retry_http_request
from buttress.presets import ResilientFunction

# --- retry -----------------------------------------------------------------------------------


@retry
def bare(x: int) -> str:
    return str(x)


@retry(max_attempts=3, base_delay=0.1)
def fetch(url: str, *, attempts: int = 1) -> bytes:
    return url.encode()


@retry(RetryConfig(max_attempts=2))
async def afetch(url: str) -> bytes:
    return url.encode()


assert_type(bare(1), str)
assert_type(fetch("u", attempts=2), bytes)
fetch(1)  # type: ignore[arg-type]
fetch("u", tries=2)  # type: ignore[call-arg]
assert_type(retry(max_attempts=2), Retry)


async def retry_async_expectations() -> None:
    assert_type(await afetch("u"), bytes)
    await afetch(b"u")  # type: ignore[arg-type]


# --- circuit breaker, timeout, fallback ------------------------------------------------------


@circuit_breaker(CircuitBreakerConfig(name="typing_api"))
def call_api(path: str) -> dict[str, int]:
    return {}


@CircuitBreaker("typing_breaker")
async def acall_api(path: str) -> list[str]:
    return []


@timeout(5.0)
def slow(n: int) -> float:
    return float(n)


@timeout(timeout_seconds=2.0)
async def aslow(n: int) -> float:
    return float(n)


@with_fallback(fallback_value=None)
def profile(user_id: int) -> dict[str, str] | None:
    return {}


assert_type(call_api("/x"), dict[str, int])
assert_type(slow(1), float)
assert_type(profile(1), dict[str, str] | None)
call_api(1)  # type: ignore[arg-type]
slow("1")  # type: ignore[arg-type]
profile()  # type: ignore[call-arg]
assert_type(circuit_breaker(name="typing_cb"), CircuitBreaker)
assert_type(timeout(1.0), Timeout)
assert_type(with_fallback(None), Fallback)


async def breaker_and_timeout_async_expectations() -> None:
    assert_type(await acall_api("/x"), list[str])
    assert_type(await aslow(1), float)


# --- the seeds' HTTP and database decorators -------------------------------------------------


@retry_http_request(max_attempts=3)
def charge(amount: int) -> dict[str, str]:
    return {}


@retry_http_request(max_attempts=3, circuit_breaker="typing_payments")
async def acharge(amount: int) -> dict[str, str]:
    return {}


@retry_database_operation()
def get_user(user_id: int) -> tuple[int, str]:
    return (user_id, "")


assert_type(charge(1), dict[str, str])
assert_type(get_user(1), tuple[int, str])
charge("1")  # type: ignore[arg-type]
get_user()  # type: ignore[call-arg]
assert_type(retry_http_request(), Retry)
assert_type(retry_http_request(circuit_breaker="typing_payments"), Pipeline)
assert_type(retry_database_operation(circuit_breaker="typing_db"), Pipeline)


async def seed_decorator_async_expectations() -> None:
    assert_type(await acharge(1), dict[str, str])


# --- presets: the signature and a typed .resilience ------------------------------------------


@database_resilient(operation_name="typing_user_lookup")
def lookup(user_id: int, *, fresh: bool = False) -> tuple[int, str]:
    return (user_id, "")


@api_resilient(operation_name="typing_payment_api", timeout_seconds=30.0)
async def pay(amount: int) -> str:
    return ""


@resilient(operation_type="custom", operation_name="typing_custom")
def custom(data: dict[str, int]) -> int:
    return 0


@resilience_config.protect("typing_named")
def named(key: str) -> bytes:
    return b""


assert_type(lookup(1, fresh=True), tuple[int, str])
assert_type(custom({}), int)
assert_type(named("k"), bytes)
lookup("1")  # type: ignore[arg-type]
named(b"k")  # type: ignore[arg-type]
assert_type(lookup.resilience, Resilience)
assert_type(pay.resilience.operation_name, str | None)
assert_type(lookup.resilience.retry_config, RetryConfig | None)
assert_type(named.resilience, LivePipeline)
_ = lookup.no_such_attribute  # type: ignore[attr-defined]
assert_type(lookup.__name__, str)


def takes_protected(fn: ResilientFunction[[int], str]) -> str:
    return fn.resilience.explain().__str__() + fn(1)


async def preset_async_expectations() -> None:
    assert_type(await pay(1), str)
    await pay(1, 2)  # type: ignore[call-arg]


class Repository:
    @database_resilient(operation_name="typing_repo")
    def row(self, key: int) -> str:
        return ""

    @api_resilient(operation_name="typing_repo_api")
    async def remote(self, key: int) -> bytes:
        return b""

    @retry(max_attempts=2)
    def plain(self, key: int) -> int:
        return key


repo = Repository()
assert_type(repo.row(1), str)
assert_type(repo.plain(1), int)
assert_type(repo.row.resilience, Resilience)
assert_type(Repository.row(repo, 1), str)
repo.row("1")  # type: ignore[arg-type]


async def method_async_expectations() -> None:
    assert_type(await repo.remote(1), bytes)
    assert_type(repo.remote.resilience, Resilience)


@database_resilient(operation_name="typing_by_id")
def by_id(user_id: int) -> str:
    return ""


takes_protected(by_id)
takes_protected(custom)  # type: ignore[arg-type]


# --- factories with known keywords ------------------------------------------------------------


def factory_expectations() -> None:
    from buttress import explain, resilient_context

    assert_type(resilient_context(operation_type="api", max_attempts=2), Resilience)
    resilient_context(max_attempt=2)  # type: ignore[call-arg]
    explain("database", max_attempts=5)
    explain("database", max_attempt=5)  # type: ignore[call-arg]
