"""Every buttress exception survives pickle, copy and a trip through a process pool.

The classes are found by walking the package, so an exception class added
later fails ``test_every_exception_class_in_buttress_has_a_sample`` until it
gets a sample here, and is then checked by every other test.
"""

from __future__ import annotations

import concurrent.futures
import copy
import importlib
import multiprocessing
import pickle
import pkgutil
from collections.abc import Callable
from typing import Any

import pytest

import buttress
from buttress import (
    BulkheadFullError,
    ButtressError,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
    DeadlineExceededError,
    OperationTimeoutError,
    RetryExhaustedError,
)
from buttress._core.errors import CommitOutcomeUnknownError, ConfigurationTypeError
from buttress.cli.demo import DependencyError
from buttress.cli.status import StatusError
from buttress.observe.health import _CheckFailed
from buttress.stores._local import WrongTypeError
from buttress.stores.database import DatabaseFailure
from buttress.stores.redis_client import NotWrittenBack
from buttress.timeout import TimeoutPoolExhaustedError


class Rejected(ButtressError):
    """A user's own subclass with a constructor unlike its message."""

    def __init__(self, code: int, *, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"rejected {code}: {reason}")


# Factories, not instances: each test gets fresh errors. Several per class
# where the attributes take different shapes.
SAMPLES: dict[str, Callable[[], BaseException]] = {
    "ButtressError": lambda: ButtressError("something broke"),
    "ConfigurationError": lambda: ConfigurationError("RetryConfig.max_attempts must be >= 1, "
                                                     "got 0"),
    "ConfigurationError-fields": lambda: ConfigurationError("RetryConfig.max_attempts", 0,
                                                            ">= 1"),
    "ConfigurationError-reworded": lambda: ConfigurationError(
        "database.max_delay", 0.5, ">= base_delay (1)").reworded("a.toml:3: database.max_delay"),
    "ConfigurationTypeError": lambda: ConfigurationTypeError("RetryConfig.max_attempts", "3",
                                                             "an int"),
    "RetryExhaustedError": lambda: RetryExhaustedError(3, ConnectionError("refused"),
                                                       operation="fetch"),
    "RetryExhaustedError-result": lambda: RetryExhaustedError(2, None, {"status": 503}),
    "CircuitBreakerError": lambda: CircuitBreakerError("payments", CircuitState.OPEN, 12.5),
    "OperationTimeoutError": lambda: OperationTimeoutError(operation="query", timeout=2.0),
    "OperationTimeoutError-message": lambda: OperationTimeoutError("custom message"),
    "DeadlineExceededError": lambda: DeadlineExceededError(operation="query", timeout=0.5,
                                                           limit=2.0),
    "BulkheadFullError": lambda: BulkheadFullError("db", 4, 10, waited=True),
    "TimeoutPoolExhaustedError": lambda: TimeoutPoolExhaustedError(64, operation="query"),
    "DependencyError": lambda: DependencyError(503),
    "_CheckFailed": lambda: _CheckFailed("check returned False"),
    "Rejected": lambda: Rejected(429, reason="slow down"),
    "CommitOutcomeUnknownError": lambda: CommitOutcomeUnknownError(
        "orders_db", ConnectionResetError(104, "Connection reset by peer")),
    "DatabaseFailure": lambda: DatabaseFailure("a marker class; never raised"),
    "WrongTypeError": lambda: WrongTypeError(b"user:1"),
    "NotWrittenBack": lambda: NotWrittenBack("another call is writing back"),
    "StatusError": lambda: StatusError("could not reach http://127.0.0.1:1: refused"),
}


def _exception_classes_in_buttress() -> set[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for module_info in pkgutil.walk_packages(buttress.__path__, "buttress."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__.startswith("buttress")):
                found.add(value)
    return found


def _same(original: object, copied: object) -> bool:
    if isinstance(original, BaseException):
        return (type(copied) is type(original) and str(copied) == str(original)
                and _same(original.args, copied.args)
                and _same(vars(original), vars(copied)))
    if isinstance(original, dict):
        return (isinstance(copied, dict) and original.keys() == copied.keys()
                and all(_same(original[key], copied[key]) for key in original))
    if isinstance(original, tuple):
        return (isinstance(copied, tuple) and len(original) == len(copied)
                and all(_same(a, b) for a, b in zip(original, copied, strict=True)))
    return original == copied


def test_every_exception_class_in_buttress_has_a_sample() -> None:
    sampled = {type(make()) for make in SAMPLES.values()}
    missing = {cls.__qualname__ for cls in _exception_classes_in_buttress()} - {
        cls.__qualname__ for cls in sampled}
    assert missing == set()


def test_every_exception_buttress_exports_is_sampled() -> None:
    exported = {value for name in buttress.__all__
                if isinstance(value := getattr(buttress, name), type)
                and issubclass(value, BaseException)}
    assert exported <= {type(make()) for make in SAMPLES.values()}


@pytest.mark.parametrize("sample", SAMPLES)
# Protocols 0-2 map Python 3 names to Python 2 ones (ConnectionError becomes
# OSError) for any exception, ours or not: not a round trip to expect there.
@pytest.mark.parametrize("protocol", range(3, pickle.HIGHEST_PROTOCOL + 1))
def test_an_error_round_trips_through_pickle_with_its_attributes(sample: str,
                                                                  protocol: int) -> None:
    error = SAMPLES[sample]()
    assert _same(error, pickle.loads(pickle.dumps(error, protocol)))


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy])
def test_an_error_copies_with_its_attributes(sample: str,
                                             duplicate: Callable[[Any], Any]) -> None:
    error = SAMPLES[sample]()
    assert _same(error, duplicate(error))


def test_a_retry_error_keeps_the_last_failure_across_pickle() -> None:
    error = pickle.loads(pickle.dumps(RetryExhaustedError(3, ConnectionError("refused"))))
    assert error.attempts == 3
    assert type(error.last_exception) is ConnectionError
    assert error.last_exception.args == ("refused",)


def test_a_circuit_breaker_error_keeps_its_state_and_delay_across_pickle() -> None:
    error = pickle.loads(pickle.dumps(CircuitBreakerError("payments", CircuitState.OPEN, 12.5)))
    assert (error.name, error.state, error.retry_after) == ("payments", CircuitState.OPEN, 12.5)


def test_a_users_subclass_with_its_own_constructor_round_trips() -> None:
    error = pickle.loads(pickle.dumps(Rejected(429, reason="slow down")))
    assert (type(error), error.code, error.reason) == (Rejected, 429, "slow down")


def test_notes_added_to_an_error_survive_pickle() -> None:
    error = BulkheadFullError("db", 4, 10)
    error.add_note("while charging order 17")
    assert pickle.loads(pickle.dumps(error)).__notes__ == ["while charging order 17"]


def _raise(sample: str) -> None:
    raise SAMPLES[sample]()


def test_every_error_raised_in_a_process_pool_worker_reaches_the_caller() -> None:
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for sample in SAMPLES:
            future = pool.submit(_raise, sample)
            with pytest.raises(BaseException) as caught:
                future.result(timeout=20)
            assert _same(SAMPLES[sample](), caught.value), sample


def test_every_error_raised_in_a_multiprocessing_pool_reaches_get() -> None:
    context = multiprocessing.get_context("fork")
    with context.Pool(processes=1) as pool:
        for sample in SAMPLES:
            pending = pool.apply_async(_raise, (sample,))
            # Before the fix get() waited forever: the result thread died unpickling.
            with pytest.raises(BaseException) as caught:
                pending.get(timeout=20)
            assert not isinstance(caught.value, multiprocessing.TimeoutError), sample
            assert _same(SAMPLES[sample](), caught.value), sample
