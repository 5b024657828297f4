"""The factories' keywords (:mod:`buttress.options`) are their configs' keywords:
the ``TypedDict`` that types ``**options`` can not drift from the constructor
it feeds, and a misspelt keyword fails at run time naming it, for every factory."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, ForwardRef

import pytest

import buttress
from buttress import (
    BulkheadConfig,
    CircuitBreakerConfig,
    RetryConfig,
    TimeoutConfig,
)
from buttress.decorators import retry_database_operation, retry_http_request
from buttress.options import (
    BulkheadOptions,
    CircuitBreakerOptions,
    RetryOptions,
    TimeoutOptions,
    _BreakerTuning,
    _RetryTuning,
)


def keywords_of(config: type) -> dict[str, str]:
    """The constructor's keywords with their annotations, as written."""
    return {name: str(parameter.annotation)
            for name, parameter in inspect.signature(config).parameters.items()}


def items_of(options: Any) -> dict[str, str]:
    """The ``TypedDict``'s keys with their annotations, as written."""
    return {name: hint.__forward_arg__ if isinstance(hint, ForwardRef) else str(hint)
            for name, hint in options.__annotations__.items()}


@pytest.mark.parametrize(("options", "config"), [
    (RetryOptions, RetryConfig),
    (CircuitBreakerOptions, CircuitBreakerConfig),
    (TimeoutOptions, TimeoutConfig),
    (BulkheadOptions, BulkheadConfig),
], ids=["retry", "breaker", "timeout", "bulkhead"])
def test_each_factory_options_type_holds_exactly_its_configs_keywords_and_types(
        options: Any, config: type) -> None:
    assert items_of(options) == keywords_of(config)
    assert options.__required_keys__ == frozenset()


def test_the_partial_option_types_leave_out_only_what_their_factories_take_themselves() -> None:
    retry_keys = set(items_of(RetryOptions)) - set(items_of(_RetryTuning))
    assert retry_keys == {"max_attempts", "base_delay", "max_delay"}
    assert set(items_of(CircuitBreakerOptions)) - set(items_of(_BreakerTuning)) == {"name"}


async def _noop() -> None:
    return None


MISSPELT: dict[str, tuple[Callable[..., Any], str]] = {
    "retry": (buttress.retry, "max_attemps"),
    "Retry": (buttress.Retry, "max_attemps"),
    "with_retry": (buttress.with_retry, "base_dealy"),
    "async_retry": (buttress.async_retry, "max_attemps"),
    "retry_sync": (buttress.retry_sync, "max_attemps"),
    "retry_with_backoff": (buttress.retry_with_backoff, "retry_predicat"),
    "async_retry_with_backoff": (
        lambda **kw: asyncio.run(buttress.async_retry_with_backoff(_noop, **kw)), "max_attemps"),
    "retry_http_request": (retry_http_request, "retry_onn"),
    "retry_database_operation": (retry_database_operation, "jiter"),
    "circuit_breaker": (lambda **kw: buttress.circuit_breaker(name="typo-1", **kw),
                        "failure_treshold"),
    "async_circuit_breaker": (lambda **kw: buttress.async_circuit_breaker(name="typo-2", **kw),
                              "recovery_timout"),
    "get_circuit_breaker": (lambda **kw: buttress.get_circuit_breaker("typo-3", **kw),
                            "failure_treshold"),
    "CircuitBreaker": (lambda **kw: buttress.CircuitBreaker("typo-4", **kw), "failure_treshold"),
    "timeout": (lambda **kw: buttress.timeout(1.0, **kw), "operation"),
    "async_timeout": (lambda **kw: buttress.async_timeout(1.0, **kw), "use_signals"),
    "Timeout": (lambda **kw: buttress.Timeout(1.0, **kw), "timeout_second"),
    "Bulkhead": (buttress.Bulkhead, "max_concurent"),
}


@pytest.mark.parametrize("factory", sorted(MISSPELT))
def test_a_misspelt_keyword_is_a_type_error_naming_it(factory: str) -> None:
    make, keyword = MISSPELT[factory]
    with pytest.raises(TypeError, match=f"'{keyword}'"):
        make(**{keyword: 1})


@pytest.mark.parametrize(("make", "keyword"), [
    (lambda: buttress.Retry(RetryConfig(), max_attemps=3), "max_attemps"),
    (lambda: buttress.CircuitBreaker(CircuitBreakerConfig(), failure_treshold=3),
     "failure_treshold"),
    (lambda: buttress.circuit_breaker(CircuitBreakerConfig(name="typo-5"), failure_treshold=3),
     "failure_treshold"),
    (lambda: buttress.Timeout(TimeoutConfig(1.0), operation="q"), "operation"),
    (lambda: buttress.Bulkhead(BulkheadConfig(), max_concurent=3), "max_concurent"),
], ids=["Retry", "CircuitBreaker", "circuit_breaker", "Timeout", "Bulkhead"])
def test_a_misspelt_keyword_next_to_a_config_is_named_too(
        make: Callable[[], Any], keyword: str) -> None:
    with pytest.raises(TypeError, match=f"'{keyword}'"):
        make()
