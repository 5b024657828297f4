"""Timeouts (C3): async via the (virtual) asyncio timeout, sync via a worker thread or SIGALRM."""

from __future__ import annotations

import asyncio
import contextvars
import math
import signal
import threading
import time
from typing import Any

import pytest

from buttress import (
    ButtressError,
    ConfigurationError,
    OperationTimeoutError,
    Timeout,
    TimeoutConfig,
    async_timeout,
    timeout,
    timeout_operation,
)
from buttress.testing import VirtualClock


class _Gate:
    """Holds a worker thread until the test lets it go (so nothing waits in real time)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def hold(self) -> None:
        assert self.event.wait(5.0), "the test never released the worker"

    def release(self) -> None:
        self.event.set()


# --- the error ---------------------------------------------------------------------------


def test_timeout_error_is_a_builtin_timeout_error_and_a_buttress_error() -> None:
    error = OperationTimeoutError(operation="fetch", timeout=2.5)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, ButtressError)
    assert error.operation == "fetch"
    assert error.timeout == 2.5
    assert str(error) == "operation 'fetch' timed out after 2.5s"


def test_timeout_error_without_operation_still_names_the_limit() -> None:
    assert str(OperationTimeoutError(timeout=3.0)) == "operation timed out after 3.0s"


# --- async: timeout_operation -------------------------------------------------------------


async def test_timeout_operation_cancels_the_body_and_names_operation_and_limit() -> None:
    clock = VirtualClock()
    cleaned_up: list[bool] = []
    after_sleep: list[bool] = []

    async def body() -> None:
        async with timeout_operation(1.5, operation="load-report", clock=clock):
            try:
                await clock.async_sleep(10.0)
                after_sleep.append(True)
            finally:
                cleaned_up.append(True)

    with pytest.raises(OperationTimeoutError) as caught:
        await body()
    error = caught.value
    assert isinstance(error, TimeoutError)
    assert error.operation == "load-report"
    assert error.timeout == 1.5
    assert "load-report" in str(error)
    assert "1.5" in str(error)
    assert isinstance(error.__cause__, TimeoutError)
    assert cleaned_up == [True]
    assert after_sleep == []


async def test_timeout_operation_lets_a_fast_body_finish() -> None:
    clock = VirtualClock()
    async with timeout_operation(2.0, clock=clock) as limit:
        await clock.async_sleep(1.0)
        await clock.async_sleep(0.9)
    assert isinstance(limit, Timeout)
    assert clock.sleeps == [1.0, 0.9]
    clock.advance(10.0)  # the deadline is gone: advancing past it cancels nothing


async def test_timeout_operation_without_a_name_still_gives_the_limit() -> None:
    clock = VirtualClock()
    with pytest.raises(OperationTimeoutError) as caught:
        async with timeout_operation(0.5, clock=clock):
            await clock.async_sleep(1.0)
    assert caught.value.operation is None
    assert caught.value.timeout == 0.5
    assert "0.5" in str(caught.value)


async def test_timeout_operation_passes_the_bodys_own_timeout_error_through() -> None:
    clock = VirtualClock()
    own = TimeoutError("the server said so")
    with pytest.raises(TimeoutError) as caught:
        async with timeout_operation(5.0, clock=clock):
            raise own
    assert caught.value is own
    assert not isinstance(caught.value, OperationTimeoutError)


async def test_timeout_operation_passes_other_errors_through() -> None:
    clock = VirtualClock()
    with pytest.raises(KeyError):
        async with timeout_operation(5.0, clock=clock):
            raise KeyError("x")


async def test_one_timeout_object_can_guard_nested_and_concurrent_bodies() -> None:
    clock = VirtualClock()
    limit = timeout_operation(1.0, clock=clock)

    async def body(wait: float) -> str:
        async with limit:
            await clock.async_sleep(wait)
        return "done"

    results = await asyncio.gather(body(0.1), body(0.2))
    assert list(results) == ["done", "done"]
    with pytest.raises(OperationTimeoutError):
        async with limit, limit:
            await clock.async_sleep(5.0)


async def test_outer_cancel_during_timeout_operation_is_a_cancellation_not_a_timeout() -> None:
    clock = VirtualClock()
    entered = asyncio.Event()
    cleaned_up: list[bool] = []

    async def body() -> None:
        async with timeout_operation(10.0, clock=clock):
            entered.set()
            try:
                await asyncio.Event().wait()
            finally:
                cleaned_up.append(True)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert cleaned_up == [True]


# --- async: decorators ------------------------------------------------------------------


async def test_async_timeout_decorator_with_options() -> None:
    clock = VirtualClock()
    cleaned_up: list[bool] = []

    @async_timeout(timeout_seconds=1.0, clock=clock)
    async def fetch_report(report_id: int) -> str:
        try:
            await clock.async_sleep(3.0)
            return f"report {report_id}"
        finally:
            cleaned_up.append(True)

    with pytest.raises(OperationTimeoutError) as caught:
        await fetch_report(7)
    assert caught.value.timeout == 1.0
    assert "fetch_report" in (caught.value.operation or "")
    assert "fetch_report" in str(caught.value)
    assert cleaned_up == [True]


async def test_async_timeout_decorator_returns_the_result_in_time() -> None:
    clock = VirtualClock()

    @async_timeout(timeout_seconds=1.0, clock=clock)
    async def quick(x: int, *, y: int) -> int:
        await clock.async_sleep(0.5)
        return x + y

    assert await quick(1, y=2) == 3
    assert quick.__name__ == "quick"


async def test_async_timeout_decorator_with_a_config_object() -> None:
    clock = VirtualClock()
    config = TimeoutConfig(timeout_seconds=2.0, operation_name="ml-inference")

    @async_timeout(config, clock=clock)
    async def predict() -> None:
        await clock.async_sleep(2.5)

    with pytest.raises(OperationTimeoutError) as caught:
        await predict()
    assert caught.value.operation == "ml-inference"
    assert caught.value.timeout == 2.0
    assert str(caught.value) == "operation 'ml-inference' timed out after 2.0s"


async def test_timeout_decorator_on_an_async_function_cancels_it() -> None:
    clock = VirtualClock()
    cleaned_up: list[bool] = []

    @timeout(timeout_seconds=0.5, clock=clock)
    async def slow() -> None:
        try:
            await clock.async_sleep(1.0)
        finally:
            cleaned_up.append(True)

    with pytest.raises(OperationTimeoutError):
        await slow()
    assert cleaned_up == [True]


async def test_timeout_decorator_passes_the_functions_own_timeout_error_through() -> None:
    clock = VirtualClock()
    own = TimeoutError("upstream timed out")

    @timeout(5.0, clock=clock)
    async def call_upstream() -> None:
        raise own

    with pytest.raises(TimeoutError) as caught:
        await call_upstream()
    assert caught.value is own


async def test_outer_cancel_of_a_decorated_call_is_a_cancellation_not_a_timeout() -> None:
    clock = VirtualClock()
    entered = asyncio.Event()

    @async_timeout(timeout_seconds=10.0, clock=clock)
    async def wait_forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(wait_forever())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_outer_cancel_on_the_real_clock_is_a_cancellation_not_a_timeout() -> None:
    # asyncio.timeout on the system clock; the cancel comes long before the limit.
    entered = asyncio.Event()

    @async_timeout(timeout_seconds=60.0)
    async def wait_forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(wait_forever())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_own_timeout_error_passes_through_on_the_real_clock() -> None:
    own = TimeoutError("mine")

    @async_timeout(timeout_seconds=60.0)
    async def fails() -> None:
        raise own

    with pytest.raises(TimeoutError) as caught:
        await fails()
    assert caught.value is own


def test_async_timeout_refuses_a_sync_function() -> None:
    decorate = async_timeout(timeout_seconds=1.0)

    def plain() -> None: ...

    with pytest.raises(TypeError, match=r"async_timeout needs a coroutine function.*timeout\(\)"):
        decorate(plain)


# --- exception_class / error_message / operation_name ------------------------------------


class QuotaTimeout(Exception):
    pass


class MyTimeout(OperationTimeoutError):
    pass


async def test_exception_class_replaces_the_error() -> None:
    clock = VirtualClock()

    @async_timeout(TimeoutConfig(1.0, exception_class=QuotaTimeout, operation_name="quota"),
                   clock=clock)
    async def check_quota() -> None:
        await clock.async_sleep(2.0)

    with pytest.raises(QuotaTimeout) as caught:
        await check_quota()
    assert str(caught.value) == "operation 'quota' timed out after 1.0s"
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_error_message_replaces_the_message() -> None:
    clock = VirtualClock()
    config = TimeoutConfig(1.0, exception_class=QuotaTimeout, error_message="quota check slow")

    @async_timeout(config, clock=clock)
    async def check_quota() -> None:
        await clock.async_sleep(2.0)

    with pytest.raises(QuotaTimeout, match=r"^quota check slow$"):
        await check_quota()


async def test_error_message_with_the_default_class_keeps_the_attributes() -> None:
    clock = VirtualClock()
    config = TimeoutConfig(1.0, error_message="too slow", operation_name="op")

    @async_timeout(config, clock=clock)
    async def op() -> None:
        await clock.async_sleep(2.0)

    with pytest.raises(OperationTimeoutError, match=r"^too slow$") as caught:
        await op()
    assert caught.value.operation == "op"
    assert caught.value.timeout == 1.0


async def test_a_subclass_of_operation_timeout_error_gets_the_attributes() -> None:
    clock = VirtualClock()

    @async_timeout(TimeoutConfig(1.0, exception_class=MyTimeout, operation_name="sub"),
                   clock=clock)
    async def op() -> None:
        await clock.async_sleep(2.0)

    with pytest.raises(MyTimeout) as caught:
        await op()
    assert caught.value.operation == "sub"
    assert caught.value.timeout == 1.0


async def test_exception_class_applies_to_the_context_manager_too() -> None:
    clock = VirtualClock()
    limit = Timeout(TimeoutConfig(1.0, exception_class=QuotaTimeout, error_message="cm"),
                    clock=clock)
    with pytest.raises(QuotaTimeout, match=r"^cm$"):
        async with limit:
            await clock.async_sleep(2.0)


def test_exception_class_applies_to_sync_calls() -> None:
    clock = VirtualClock()
    gate = _Gate()

    @timeout(TimeoutConfig(1.0, exception_class=QuotaTimeout, operation_name="sync-quota"),
             clock=clock)
    def check() -> None:
        clock.sleep(2.0)
        gate.hold()

    try:
        with pytest.raises(QuotaTimeout, match=r"'sync-quota' timed out after 1\.0s"):
            check()
    finally:
        gate.release()


# --- sync: worker-thread timeout ------------------------------------------------------------


def test_sync_timeout_stops_waiting_when_the_worker_passes_the_deadline() -> None:
    clock = VirtualClock()
    gate = _Gate()
    finished: list[bool] = []

    @timeout(timeout_seconds=2.0, clock=clock)
    def generate_report() -> str:
        clock.sleep(5.0)
        gate.hold()  # still busy when the caller gives up
        finished.append(True)
        return "late"

    try:
        with pytest.raises(OperationTimeoutError) as caught:
            generate_report()
        assert caught.value.timeout == 2.0
        assert "generate_report" in str(caught.value)
        assert finished == []  # the caller did not wait for the worker
    finally:
        gate.release()


def test_sync_timeout_is_decided_in_virtual_time_even_if_the_worker_is_quick() -> None:
    # The worker overruns in virtual time and returns at once in real time: that is
    # still a timeout, every time.
    for _ in range(30):
        clock = VirtualClock()

        @timeout(timeout_seconds=1.0, clock=clock)
        def overrun(clock: VirtualClock = clock) -> str:
            clock.sleep(3.0)
            return "late"

        with pytest.raises(OperationTimeoutError):
            overrun()


def test_sync_timeout_returns_the_result_in_time() -> None:
    clock = VirtualClock()

    @timeout(timeout_seconds=2.0, clock=clock)
    def add(x: int, y: int = 0) -> int:
        clock.sleep(1.0)
        clock.sleep(0.5)
        return x + y

    assert add(2, y=3) == 5
    assert clock.sleeps == [1.0, 0.5]
    assert add.__name__ == "add"


def test_sync_timeout_with_a_positional_limit() -> None:
    clock = VirtualClock()

    @timeout(0.25, clock=clock)
    def slow() -> None:
        clock.sleep(1.0)

    with pytest.raises(OperationTimeoutError) as caught:
        slow()
    assert caught.value.timeout == 0.25


def test_sync_timeout_passes_the_worker_exception_to_the_caller() -> None:
    clock = VirtualClock()
    boom = ValueError("bad row 17")

    @timeout(timeout_seconds=5.0, clock=clock)
    def parse() -> None:
        raise boom

    with pytest.raises(ValueError, match="bad row 17") as caught:
        parse()
    assert caught.value is boom


def test_sync_timeout_passes_the_functions_own_timeout_error_through() -> None:
    clock = VirtualClock()
    own = TimeoutError("socket timed out")

    @timeout(timeout_seconds=5.0, clock=clock)
    def read() -> None:
        raise own

    with pytest.raises(TimeoutError) as caught:
        read()
    assert caught.value is own


def test_sync_timeout_passes_base_exceptions_from_the_worker_through() -> None:
    clock = VirtualClock()

    @timeout(timeout_seconds=5.0, clock=clock)
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_contextvars_carry_into_the_worker_thread() -> None:
    clock = VirtualClock()
    seen: list[tuple[str, str]] = []

    @timeout(timeout_seconds=5.0, clock=clock)
    def handler() -> str:
        seen.append((request_id.get(), threading.current_thread().name))
        request_id.set("changed-in-worker")
        return request_id.get()

    token = request_id.set("req-42")
    try:
        assert handler() == "changed-in-worker"
        assert request_id.get() == "req-42"  # the worker ran in a copy
    finally:
        request_id.reset(token)
    assert seen[0][0] == "req-42"
    assert seen[0][1] != threading.current_thread().name
    assert seen[0][1].startswith("buttress-timeout-")


def test_sync_timeout_works_off_the_main_thread() -> None:
    clock = VirtualClock()
    outcome: list[Any] = []

    @timeout(timeout_seconds=1.0, clock=clock)
    def slow() -> None:
        clock.sleep(2.0)

    def caller() -> None:
        try:
            slow()
        except OperationTimeoutError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join(5.0)
    assert len(outcome) == 1
    assert isinstance(outcome[0], OperationTimeoutError)


def test_timeout_call_runs_a_function_once_under_the_limit() -> None:
    clock = VirtualClock()
    limit = Timeout(1.0, clock=clock)
    assert limit.call(lambda a, b: a * b, 6, 7) == 42


async def test_timeout_acall_awaits_a_coroutine_function_under_the_limit() -> None:
    clock = VirtualClock()
    limit = Timeout(1.0, clock=clock)

    async def slow() -> None:
        await clock.async_sleep(2.0)

    async def quick(x: int) -> int:
        return x

    assert await limit.acall(quick, 3) == 3
    with pytest.raises(OperationTimeoutError):
        await limit.acall(slow)


# --- sync: SIGALRM ------------------------------------------------------------------------


def test_signal_timeout_off_the_main_thread_raises_a_clear_runtime_error() -> None:
    @timeout(TimeoutConfig(1.0, use_signal=True))
    def work() -> str:
        return "never"

    outcome: list[BaseException] = []

    def in_thread() -> None:
        try:
            work()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(5.0)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert "main thread" in str(outcome[0])
    assert "use_signal=True" in str(outcome[0])


def test_signal_timeout_without_sigalrm_raises_a_clear_runtime_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(signal, "SIGALRM", raising=False)

    @timeout(TimeoutConfig(1.0, use_signal=True))
    def work() -> str:
        return "never"

    with pytest.raises(RuntimeError, match=r"needs SIGALRM.*thread-based timeout"):
        work()


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM")
def test_signal_timeout_success_restores_the_previous_handler_and_timer() -> None:
    before = signal.getsignal(signal.SIGALRM)

    @timeout(TimeoutConfig(5.0, use_signal=True))
    def quick(x: int) -> int:
        return x * 2

    assert quick(21) == 42
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.wallclock
@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM")
def test_signal_timeout_interrupts_sync_code_in_the_main_thread() -> None:
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGALRM)
    cleaned_up: list[bool] = []

    @timeout(TimeoutConfig(0.05, use_signal=True, operation_name="crunch"))
    def crunch() -> None:
        try:
            time.sleep(1.0)  # interrupted by the alarm after 0.05 s
        finally:
            cleaned_up.append(True)

    start = time.monotonic()
    with pytest.raises(OperationTimeoutError) as caught:
        crunch()
    elapsed = time.monotonic() - start
    assert 0.04 <= elapsed < 0.2
    assert caught.value.operation == "crunch"
    assert caught.value.timeout == 0.05
    assert cleaned_up == [True]
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# --- real clock -------------------------------------------------------------------------


@pytest.mark.wallclock
async def test_async_timeout_on_the_real_clock_cancels_the_work() -> None:
    cleaned_up: list[bool] = []

    async def body() -> None:
        async with timeout_operation(0.05, operation="real"):
            try:
                await asyncio.Event().wait()
            finally:
                cleaned_up.append(True)

    start = time.monotonic()
    with pytest.raises(OperationTimeoutError) as caught:
        await body()
    elapsed = time.monotonic() - start
    assert 0.04 <= elapsed < 0.2
    assert caught.value.operation == "real"
    assert cleaned_up == [True]


@pytest.mark.wallclock
def test_thread_timeout_on_the_real_clock_stops_waiting() -> None:
    gate = _Gate()

    @timeout(timeout_seconds=0.05)
    def stuck() -> None:
        gate.hold()

    start = time.monotonic()
    try:
        with pytest.raises(OperationTimeoutError):
            stuck()
        elapsed = time.monotonic() - start
    finally:
        gate.release()
    assert 0.04 <= elapsed < 0.2


# --- construction and validation ------------------------------------------------------------


def test_timeout_accepts_a_number_options_or_a_config() -> None:
    assert Timeout(2.0).config == TimeoutConfig(timeout_seconds=2.0)
    assert timeout(timeout_seconds=3).config.timeout_seconds == 3
    config = TimeoutConfig(4.0, operation_name="x")
    assert timeout(config).config is config
    assert repr(Timeout(2.0)) == "Timeout(2.0s)"


def test_timeout_without_a_limit_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="timeout_seconds"):
        timeout()


def test_timeout_given_twice_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="timeout given twice"):
        Timeout(1.0, timeout_seconds=2.0)


def test_config_plus_options_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="either a TimeoutConfig or options"):
        Timeout(TimeoutConfig(1.0), operation_name="x")


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"timeout_seconds": 0}, ConfigurationError, "timeout_seconds must be > 0, got 0"),
        ({"timeout_seconds": -1.5}, ConfigurationError, "timeout_seconds must be > 0, got -1.5"),
        ({"timeout_seconds": math.nan}, ConfigurationError, "timeout_seconds"),
        ({"timeout_seconds": math.inf}, ConfigurationError,
         "timeout_seconds must be finite, got inf"),
        ({"timeout_seconds": 1e300}, ConfigurationError, "timeout_seconds must be <="),
        ({"timeout_seconds": "5"}, TypeError, "timeout_seconds must be a number, got '5'"),
        ({"timeout_seconds": True}, TypeError, "timeout_seconds must be a number, got True"),
        ({"timeout_seconds": None}, TypeError, "timeout_seconds must be a number, got None"),
        ({"timeout_seconds": 1, "exception_class": ValueError("x")}, TypeError,
         "exception_class must be an exception class, got ValueError('x')"),
        ({"timeout_seconds": 1, "exception_class": int}, TypeError,
         "exception_class must be an exception class, got <class 'int'>"),
        ({"timeout_seconds": 1, "error_message": 42}, TypeError,
         "error_message must be a str, got 42"),
        ({"timeout_seconds": 1, "operation_name": ""}, ConfigurationError,
         "operation_name must be a non-empty string, got ''"),
        ({"timeout_seconds": 1, "operation_name": 7}, TypeError,
         "operation_name must be a str, got 7"),
        ({"timeout_seconds": 1, "use_signal": "yes"}, TypeError,
         "use_signal must be a bool, got 'yes'"),
    ],
)
def test_config_validation_names_the_field_and_the_value(
    kwargs: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        TimeoutConfig(**kwargs)
    assert caught.type is error or issubclass(caught.type, error)
    assert "TimeoutConfig." in str(caught.value)
    assert text in str(caught.value)


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        TimeoutConfig(timeout_seconds=-1)


def test_config_is_frozen() -> None:
    config = TimeoutConfig(1.0)
    with pytest.raises(AttributeError):
        config.timeout_seconds = 2.0  # type: ignore[misc]


def test_timeout_decorator_rejects_a_bad_limit_at_decoration_time() -> None:
    with pytest.raises(ConfigurationError, match="timeout_seconds"):
        timeout(timeout_seconds=-1)
    with pytest.raises(ConfigurationError, match="timeout_seconds"):
        timeout_operation(0)
