"""resilient(), the five presets and resilient_context() (C5, C8; the pynomaly seed's
"Operation Types" defaults). Every wait runs on a VirtualClock."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
    OperationTimeoutError,
    Pipeline,
    Retry,
    RetryExhaustedError,
    Timeout,
    get_circuit_breaker,
    get_circuit_breaker_stats,
)
from buttress.config import configure, load_env, reset_settings, resilience_config
from buttress.presets import (
    Resilience,
    api_resilient,
    cache_resilient,
    database_resilient,
    file_resilient,
    ml_resilient,
    resilient,
    resilient_context,
)
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


PRESETS: dict[str, Callable[..., Resilience]] = {
    "database": database_resilient,
    "cache": cache_resilient,
    "api": api_resilient,
    "file": file_resilient,
    "ml": ml_resilient,
}

# The seed's "Default Settings", section by section:
# (timeout, max attempts, base delay, max delay, failure threshold, recovery timeout)
SEED_DEFAULTS = {
    "database": (30.0, 3, 0.5, 10.0, 3, 30.0),
    "cache": (5.0, 2, 0.1, 1.0, 3, 15.0),
    "api": (60.0, 5, 1.0, 30.0, 5, 60.0),
    "file": (10.0, 3, 0.2, 5.0, 3, 30.0),
    "ml": (300.0, 2, 5.0, 30.0, 2, 120.0),
}

# The waits between attempts with jitter off: base * 2**(n-1), capped at max_delay.
SCHEDULES = {
    "database": [0.5, 1.0],
    "cache": [0.1],
    "api": [1.0, 2.0, 4.0, 8.0],
    "file": [0.2, 0.4],
    "ml": [5.0],
}


# --- the defaults --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(PRESETS))
def test_every_preset_builds_the_seed_defaults_into_its_pipeline(kind: str) -> None:
    timeout, attempts, base, cap, threshold, recovery = SEED_DEFAULTS[kind]
    protect = PRESETS[kind](operation_name=f"{kind}_op")

    built = protect.pipeline
    assert isinstance(built, Pipeline)
    retry, breaker, limit = built.strategies
    assert isinstance(retry, Retry)
    assert isinstance(breaker, CircuitBreaker)
    assert isinstance(limit, Timeout)

    assert retry.config.max_attempts == attempts
    assert retry.config.base_delay == base
    assert retry.config.max_delay == cap
    assert retry.config.exponential_base == 2.0
    assert retry.config.jitter == 0.5  # "exponential backoff with jitter"
    assert retry.config.name == f"{kind}_op"
    assert breaker.config.failure_threshold == threshold
    assert breaker.config.recovery_timeout == recovery
    assert breaker.name == f"{kind}_op"
    assert limit.config.timeout_seconds == timeout
    assert limit.config.operation_name == f"{kind}_op"
    assert protect.retry_config is retry.config
    assert protect.circuit_breaker_config == breaker.config
    assert protect.timeout_config is limit.config


@pytest.mark.parametrize("kind", list(PRESETS))
def test_every_preset_value_can_be_overridden_by_keyword(kind: str) -> None:
    protect = PRESETS[kind](
        operation_name="custom", timeout_seconds=2.5, max_attempts=7, base_delay=0.25,
        max_delay=3.0, exponential_base=3.0, jitter=False, failure_threshold=9,
        recovery_timeout=4.0)
    retry, breaker, limit = protect.retry_config, protect.circuit_breaker_config, \
        protect.timeout_config
    assert retry is not None
    assert breaker is not None
    assert limit is not None
    assert (retry.max_attempts, retry.base_delay, retry.max_delay, retry.exponential_base,
            retry.jitter) == (7, 0.25, 3.0, 3.0, 0.0)
    assert (breaker.failure_threshold, breaker.recovery_timeout) == (9, 4.0)
    assert limit.timeout_seconds == 2.5


def test_resilient_without_an_operation_type_uses_the_default_section() -> None:
    protect = resilient(operation_name="plain")
    retry, breaker, limit = protect.retry_config, protect.circuit_breaker_config, \
        protect.timeout_config
    assert retry is not None
    assert breaker is not None
    assert limit is not None
    assert (limit.timeout_seconds, retry.max_attempts, retry.base_delay, retry.max_delay,
            breaker.failure_threshold, breaker.recovery_timeout) == (5.0, 3, 1.0, 60.0, 5, 60.0)
    # "custom" (the seed's example) has no section of its own: the same values.
    custom = resilient(operation_type="custom", operation_name="custom")
    assert custom.retry_config is not None
    assert custom.retry_config.max_attempts == 3


def test_custom_configuration_of_the_seed_builds_exactly_what_it_asks_for() -> None:
    protect = resilient(
        operation_type="custom", operation_name="critical_operation", timeout_seconds=15.0,
        max_attempts=5, base_delay=2.0, max_delay=30.0, exponential_base=1.5, jitter=True,
        failure_threshold=3, recovery_timeout=45.0,
        retry_exceptions=(ConnectionError, TimeoutError), enable_timeout=True,
        enable_retry=True, enable_circuit_breaker=True)
    retry = protect.retry_config
    assert retry is not None
    assert (retry.max_attempts, retry.base_delay, retry.max_delay, retry.exponential_base,
            retry.jitter) == (5, 2.0, 30.0, 1.5, 0.5)
    assert retry.exceptions == (ConnectionError, TimeoutError)
    assert retry.retry_condition is None
    assert protect.circuit_breaker_config is not None
    assert protect.circuit_breaker_config.recovery_timeout == 45.0
    assert protect.timeout_config is not None
    assert protect.timeout_config.timeout_seconds == 15.0


# --- attempts and waits on the virtual clock ---------------------------------------------------


@pytest.mark.parametrize("kind", list(PRESETS))
def test_each_preset_makes_exactly_its_attempts_with_its_exact_waits(kind: str) -> None:
    clock = VirtualClock()
    attempts = SEED_DEFAULTS[kind][1]
    flaky = ScriptedCall(*[ConnectionError("down")] * (attempts - 1), "ok")
    protected = PRESETS[kind](operation_name=f"{kind}_ok", jitter=False, clock=clock)(flaky)

    assert protected() == "ok"
    assert flaky.calls == attempts
    assert clock.sleeps == SCHEDULES[kind]


@pytest.mark.parametrize("kind", list(PRESETS))
def test_each_preset_gives_up_after_its_attempts_with_retry_exhausted(kind: str) -> None:
    clock = VirtualClock()
    attempts = SEED_DEFAULTS[kind][1]
    # A threshold above the attempts, so the breaker does not cut the retries short.
    down = ScriptedCall(ConnectionError("down"))
    protected = PRESETS[kind](operation_name=f"{kind}_down", jitter=False,
                              failure_threshold=attempts + 1, clock=clock)(down)

    with pytest.raises(RetryExhaustedError) as caught:
        protected()
    assert caught.value.attempts == attempts
    assert isinstance(caught.value.last_exception, ConnectionError)
    assert down.calls == attempts
    assert clock.sleeps == SCHEDULES[kind]


@pytest.mark.parametrize("kind", list(PRESETS))
async def test_async_presets_make_the_same_attempts_and_waits(kind: str) -> None:
    clock = VirtualClock()
    attempts = SEED_DEFAULTS[kind][1]
    flaky = AsyncScriptedCall(*[ConnectionError("down")] * (attempts - 1), "ok")
    protected = PRESETS[kind](operation_name=f"{kind}_async", jitter=False, clock=clock)(flaky)

    assert await protected() == "ok"
    assert flaky.calls == attempts
    assert clock.sleeps == SCHEDULES[kind]


def test_default_jitter_only_ever_shortens_the_waits() -> None:
    clock = VirtualClock()
    down = ScriptedCall(ConnectionError("down"))
    protected = api_resilient(operation_name="jittered", failure_threshold=10, clock=clock)(down)
    with pytest.raises(RetryExhaustedError):
        protected()
    assert len(clock.sleeps) == 4
    for wait, full in zip(clock.sleeps, SCHEDULES["api"], strict=True):
        assert full * 0.5 <= wait <= full


# --- what is retried ----------------------------------------------------------------------------


def test_errors_that_are_not_transient_pass_through_unchanged_and_are_not_retried() -> None:
    clock = VirtualClock()
    bug = ScriptedCall(ValueError("bad input"))
    protected = database_resilient(operation_name="bug", clock=clock)(bug)
    with pytest.raises(ValueError, match="bad input"):
        protected()
    assert bug.calls == 1
    assert clock.sleeps == []


def test_database_preset_retries_driver_operational_errors() -> None:
    import sqlite3

    clock = VirtualClock()
    locked = ScriptedCall(sqlite3.OperationalError("database is locked"), "row")
    protected = database_resilient(operation_name="sqlite", jitter=False, clock=clock)(locked)
    assert protected() == "row"
    assert locked.calls == 2


def test_api_preset_retries_server_errors_but_not_client_errors() -> None:
    class HTTPError(Exception):
        def __init__(self, status_code: int) -> None:
            super().__init__(status_code)
            self.status_code = status_code

    clock = VirtualClock()
    unavailable = ScriptedCall(HTTPError(503), "ok")
    assert api_resilient(operation_name="a503", clock=clock)(unavailable)() == "ok"
    assert unavailable.calls == 2

    missing = ScriptedCall(HTTPError(404))
    with pytest.raises(HTTPError):
        api_resilient(operation_name="a404", clock=clock)(missing)()
    assert missing.calls == 1


def test_retry_exceptions_retries_exactly_the_classes_given() -> None:
    clock = VirtualClock()
    flaky = ScriptedCall(KeyError("x"), KeyError("y"), "ok")
    protected = resilient(operation_name="keys", retry_exceptions=KeyError, jitter=False,
                          clock=clock)(flaky)
    assert protected() == "ok"
    assert flaky.calls == 3

    refused = ScriptedCall(ConnectionError("not in the list"))
    with pytest.raises(ConnectionError):
        resilient(operation_name="keys2", retry_exceptions=(KeyError,), clock=clock)(refused)()
    assert refused.calls == 1


# --- breaker ---------------------------------------------------------------------------------


def test_breaker_opens_after_the_threshold_and_rejects_without_calling_or_retrying() -> None:
    clock = VirtualClock()
    down = ScriptedCall(ConnectionError("down"))
    protected = database_resilient(operation_name="db", jitter=False, clock=clock)(down)

    with pytest.raises(RetryExhaustedError):
        protected()  # three attempts, three failures: the threshold
    assert down.calls == 3
    breaker = get_circuit_breaker("db")
    assert breaker.state is CircuitState.OPEN

    with pytest.raises(CircuitBreakerError) as caught:
        protected()
    assert down.calls == 3  # rejected before the call, and not retried
    assert caught.value.name == "db"
    assert caught.value.remaining_timeout == pytest.approx(30.0)

    clock.advance(30.0)  # the recovery timeout: probes are allowed again
    down._then = "back"
    assert protected() == "back"


def test_breakers_are_shared_by_operation_name_and_visible_in_the_registry() -> None:
    clock = VirtualClock()
    first = ml_resilient(operation_name="train", jitter=False, clock=clock)(
        ScriptedCall(RuntimeError("boom")))
    second = ml_resilient(operation_name="train", clock=clock)(ScriptedCall("ok"))
    assert first.resilience.circuit_breaker is second.resilience.circuit_breaker
    assert get_circuit_breaker("train") is first.resilience.circuit_breaker

    for _ in range(2):  # ml: threshold 2; RuntimeError is not retried but does count
        with pytest.raises(RuntimeError):
            first()
    with pytest.raises(CircuitBreakerError):
        second()
    stats = get_circuit_breaker_stats("train")
    assert stats is not None
    assert (stats["state"], stats["failed_calls"], stats["rejected_calls"]) == ("open", 2, 1)


def test_without_an_operation_name_each_function_gets_its_own_breaker() -> None:
    @cache_resilient()
    def one() -> int:
        return 1

    @cache_resilient()
    def two() -> int:
        return 2

    names = {one.resilience.circuit_breaker.name, two.resilience.circuit_breaker.name}
    assert names == {f"{__name__}.{one.__qualname__}", f"{__name__}.{two.__qualname__}"}
    assert (one(), two()) == (1, 2)


def test_one_operation_name_with_two_different_configs_is_an_error() -> None:
    database_resilient(operation_name="shared")
    with pytest.raises(ConfigurationError,
                       match=r"operation_name='shared'.*failure_threshold=3 \(registered\) "
                             r"vs 5 \(requested\)"):
        api_resilient(operation_name="shared")


# --- timeout ---------------------------------------------------------------------------------


def _all_sync_protections() -> dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Every way a preset protects a sync call: each preset, resilient(), and a
    resilient_context's call()."""
    ways: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
        kind: preset(operation_name=f"thread_{kind}") for kind, preset in PRESETS.items()}
    ways["resilient"] = resilient(operation_name="thread_custom")
    context = resilient_context(operation_type="database", operation_name="thread_ctx")
    ways["resilient_context"] = lambda fn: functools.partial(context.call, fn)
    return ways


@pytest.mark.parametrize("way", list(_all_sync_protections()))
def test_a_sync_preset_runs_the_call_in_the_callers_thread_so_sqlite_works(way: str) -> None:
    # sqlite3 refuses a connection used from another thread ("SQLite objects created in
    # a thread can only be used in that same thread"): the call must stay here.
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO users VALUES (1, 'Ann')")
    seen: list[int] = []

    def get_user(user_id: int) -> list[tuple[Any, ...]]:
        seen.append(threading.get_ident())
        return connection.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchall()

    protected = _all_sync_protections()[way](get_user)
    try:
        assert protected(1) == [(1, "Ann")]
    finally:
        connection.close()
    assert seen == [threading.get_ident()]


def test_a_sync_call_past_its_timeout_runs_to_its_end_in_the_callers_thread() -> None:
    clock = VirtualClock()
    seen: list[int] = []

    def slow() -> str:
        seen.append(threading.get_ident())
        clock.sleep(10.0)  # cache: 5 s timeout, not enforced on a sync call
        return "late"

    protected = cache_resilient(operation_name="slow_sync", clock=clock)(slow)
    assert protected() == "late"
    assert seen == [threading.get_ident()]
    assert clock.sleeps == [10.0]  # no retry, no wait
    assert protected.resilience.timeout_config is not None  # still there for async calls


def test_a_sync_call_sees_its_timeout_as_its_deadline_for_the_driver_to_enforce() -> None:
    from buttress import remaining_time

    clock = VirtualClock()
    left: list[float | None] = []

    def query() -> None:
        left.append(remaining_time())
        clock.sleep(1.5)
        left.append(remaining_time())

    database_resilient(operation_name="deadline_sync", timeout_seconds=4.0, clock=clock)(query)()
    assert left == [4.0, 2.5]
    assert remaining_time() is None  # nothing leaks past the call


def test_timeout_in_thread_limits_a_sync_call_from_a_worker_thread_and_retries() -> None:
    clock = VirtualClock()
    seen: list[int] = []

    def slow() -> str:
        seen.append(threading.get_ident())
        clock.sleep(10.0)  # cache: 5 s timeout
        return "late"

    protected = cache_resilient(operation_name="slow", jitter=False, failure_threshold=5,
                                timeout_in_thread=True, clock=clock)(slow)
    with pytest.raises(RetryExhaustedError) as caught:
        protected()
    assert len(seen) == 2
    assert threading.get_ident() not in seen
    assert isinstance(caught.value.last_exception, OperationTimeoutError)
    assert "'slow' timed out after 5.0s" in str(caught.value.last_exception)


def test_the_pipeline_shows_which_calls_its_timeout_limits() -> None:
    default = database_resilient(operation_name="shown_default").pipeline
    threaded = database_resilient(operation_name="shown_thread", timeout_in_thread=True).pipeline
    assert default is not None
    assert threaded is not None
    assert repr(default.strategies[-1]) == "Timeout(30.0s, async calls only)"
    assert repr(threaded.strategies[-1]) == "Timeout(30.0s)"


async def test_an_async_call_past_its_timeout_is_cancelled_and_retried() -> None:
    clock = VirtualClock()
    cancelled = 0

    async def slow() -> str:
        nonlocal cancelled
        try:
            await clock.async_sleep(400.0)  # ml: 300 s timeout
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return "late"

    protected = ml_resilient(operation_name="slow_ml", jitter=False, failure_threshold=5,
                             clock=clock)(slow)
    with pytest.raises(RetryExhaustedError) as caught:
        await protected()
    assert isinstance(caught.value.last_exception, OperationTimeoutError)
    assert caught.value.attempts == 2


# --- switches --------------------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "kind"), [("enable_retry", Retry),
                                            ("enable_circuit_breaker", CircuitBreaker),
                                            ("enable_timeout", Timeout)])
def test_enable_flags_leave_their_strategy_out(flag: str, kind: type) -> None:
    protect = api_resilient(operation_name="flags", **{flag: False})
    assert protect.pipeline is not None
    assert len(protect.pipeline.strategies) == 2
    assert not any(isinstance(s, kind) for s in protect.pipeline.strategies)


def test_the_global_switch_makes_decorated_functions_pass_through_decided_at_call_time() -> None:
    clock = VirtualClock()
    flaky = ScriptedCall(ConnectionError("1"), ConnectionError("2"), "ok")
    protected = database_resilient(operation_name="switch", jitter=False, clock=clock)(flaky)

    configure(resilience_enabled=False)
    with pytest.raises(ConnectionError, match="1"):
        protected()  # no retry, no breaker, no timeout
    assert flaky.calls == 1
    assert protected.resilience.pipeline is None

    configure(resilience_enabled=None)  # back to the default (enabled)
    assert protected() == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [0.5]


async def test_the_global_switch_also_applies_to_async_functions_and_contexts() -> None:
    flaky = AsyncScriptedCall(ConnectionError("1"), "ok")
    protected = api_resilient(operation_name="aswitch", clock=VirtualClock())(flaky)
    configure(resilience_enabled=False)
    with pytest.raises(ConnectionError):
        await protected()
    async with resilient_context(operation_type="api") as ctx:
        with pytest.raises(ConnectionError):
            await ctx.acall(AsyncScriptedCall(ConnectionError("x"), "ok"))


def test_circuit_breaker_enabled_false_leaves_every_breaker_out() -> None:
    protected = database_resilient(operation_name="nobreaker")(lambda: 1)
    assert protected.resilience.circuit_breaker is not None
    configure(circuit_breaker_enabled=False)
    assert protected.resilience.circuit_breaker is None
    assert protected.resilience.pipeline is not None
    retry, limit = protected.resilience.pipeline.strategies
    assert isinstance(retry, Retry)
    assert isinstance(limit, Timeout)
    assert protected() == 1


def test_settings_changes_reach_already_decorated_functions_but_not_their_arguments() -> None:
    clock = VirtualClock()
    follows = database_resilient(operation_name="follows", clock=clock)(lambda: 1)
    pinned = database_resilient(operation_name="pinned", max_attempts=2, clock=clock)(lambda: 1)

    load_env(prefix="PYNOMALY_", environ={"PYNOMALY_DATABASE_MAX_ATTEMPTS": "6",
                                          "PYNOMALY_DATABASE_FAILURE_THRESHOLD": "4"})
    assert follows() == 1
    assert follows.resilience.retry_config.max_attempts == 6
    assert pinned.resilience.retry_config.max_attempts == 2  # code beats the environment
    # The breaker this module made for the old threshold was replaced in the registry.
    assert get_circuit_breaker("follows").config.failure_threshold == 4


def test_a_breaker_created_by_other_code_is_never_replaced() -> None:
    get_circuit_breaker("theirs", failure_threshold=3, recovery_timeout=30.0)
    protected = database_resilient(operation_name="theirs")(lambda: 1)  # same config: shared
    assert protected.resilience.circuit_breaker is get_circuit_breaker("theirs")
    configure(database_failure_threshold=4)
    with pytest.raises(ConfigurationError, match="'theirs' already exists with a different"):
        protected()


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"max_attempts": 0}, "resilient.max_attempts must be >= 1, got 0"),
    ({"base_delay": -0.5}, "resilient.base_delay must be >= 0, got -0.5"),
    ({"timeout_seconds": 0}, "resilient.timeout_seconds must be > 0, got 0"),
    ({"failure_threshold": 0}, "resilient.failure_threshold must be >= 1, got 0"),
    ({"jitter": 1.5}, "resilient.jitter must be <= 1, got 1.5"),
    ({"exponential_base": 0.5}, "resilient.exponential_base must be >= 1, got 0.5"),
    ({"recovery_timeout": -1}, "resilient.recovery_timeout must be >= 0, got -1"),
    ({"max_attempts": "3"}, "resilient.max_attempts must be an int, got '3'"),
    ({"retry_exceptions": (KeyboardInterrupt,)}, "resilient.retry_exceptions must be"),
    ({"retry_exceptions": "ConnectionError"}, "resilient.retry_exceptions must be exception"),
    ({"operation_name": ""}, "resilient.operation_name must be a non-empty string"),
    ({"enable_retry": "yes"}, "resilient.enable_retry must be a bool, got 'yes'"),
    ({"timeout_in_thread": 1}, "resilient.timeout_in_thread must be a bool, got 1"),
])
def test_bad_arguments_raise_a_configuration_error_naming_them(
        options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        database_resilient(**options)
    assert message in str(caught.value)


def test_a_base_delay_above_the_max_delay_names_both_values_and_their_sources() -> None:
    with pytest.raises(ConfigurationError) as caught:
        database_resilient(operation_name="slowstart", base_delay=20.0)
    assert str(caught.value) == (
        "resilient(operation_type='database', operation_name='slowstart'): "
        "database.max_delay = 10.0 (built-in default) must be >= "
        "database.base_delay = 20.0 (code: argument)")


def test_presets_refuse_an_operation_type_and_unknown_keywords() -> None:
    with pytest.raises(TypeError, match="sets operation_type itself"):
        database_resilient(operation_type="api")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'max_attempt'"):
        resilient(max_attempt=3)  # type: ignore[call-arg]


# --- the decorated function ----------------------------------------------------------------------


def test_decorated_functions_keep_their_name_doc_and_expose_their_resilience() -> None:
    @api_resilient(operation_name="documented")
    def documented(x: int) -> int:
        """Doubles."""
        return x * 2

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doubles."
    assert isinstance(documented.resilience, Resilience)
    assert documented(2) == 4
    assert asyncio.iscoroutinefunction(api_resilient(operation_name="c")(AsyncScriptedCall(1)))


def test_resilience_explain_names_each_value_and_its_source() -> None:
    configure(api_timeout=12.0)
    protect = api_resilient(operation_name="explained", max_attempts=2)
    report = protect.explain()
    assert report["api.timeout_seconds"].where == "code: configure()"
    assert report["api.max_attempts"].where == "code: argument"
    assert report["api.base_delay"].where == "built-in default"
    assert "api.max_attempts = 2  (code: argument)" in str(report)


# --- resilient_context ------------------------------------------------------------------------


def test_resilient_context_calls_share_one_pipeline_with_the_given_values() -> None:
    clock = VirtualClock()
    get_users = ScriptedCall(ConnectionError("x"), ["ann"])
    update = ScriptedCall(True)
    with resilient_context(operation_type="database", operation_name="bulk_operations",
                           timeout_seconds=30.0, max_attempts=2, jitter=False,
                           clock=clock) as ctx:
        assert ctx.call(get_users) == ["ann"]
        assert ctx.call(update, user_id=1, status="active") is True
    assert update.arguments == [((), {"user_id": 1, "status": "active"})]
    assert clock.sleeps == [0.5]
    assert ctx.retry_config is not None
    assert ctx.retry_config.max_attempts == 2
    assert get_circuit_breaker("bulk_operations") is ctx.circuit_breaker


async def test_async_resilient_context_awaits_calls_under_the_pipeline() -> None:
    clock = VirtualClock()
    fetch = AsyncScriptedCall(ConnectionError("x"), {"id": 1})
    async with resilient_context(operation_type="api", operation_name="bulk_api_calls",
                                 jitter=False, clock=clock) as ctx:
        assert await ctx.acall(fetch, user_id=1) == {"id": 1}
        # a plain callable returning an awaitable is awaited too
        assert await ctx.acall(lambda: fetch(user_id=2)) == {"id": 1}
    assert fetch.calls == 3
    assert clock.sleeps == [1.0]


def test_an_unnamed_context_uses_the_breaker_named_after_its_operation_type() -> None:
    ctx = resilient_context(operation_type="cache")
    assert ctx.circuit_breaker is get_circuit_breaker("cache")


async def test_ctx_call_refuses_a_coroutine_function() -> None:
    ctx = resilient_context(operation_type="api")
    with pytest.raises(TypeError, match=r"use `await ctx\.acall"):
        ctx.call(AsyncScriptedCall(1))


def test_an_error_inside_the_with_block_propagates() -> None:
    with pytest.raises(KeyError), resilient_context(operation_type="file"):
        raise KeyError("x")


def test_resilience_repr_names_type_and_operation() -> None:
    assert repr(resilient_context(operation_type="ml", operation_name="m")) == \
        "Resilience('ml', 'm')"
    assert resilience_config.generation >= 1


def test_listeners_on_the_resilience_hub_survive_a_settings_change() -> None:
    from buttress._core.events import RetryScheduled

    clock = VirtualClock()
    flaky = ScriptedCall(ConnectionError("1"), "ok", ConnectionError("2"), "ok")
    protected = cache_resilient(operation_name="heard", jitter=False, clock=clock)(flaky)
    heard: list[RetryScheduled] = []
    protected.resilience.events.add(heard.append, RetryScheduled)

    assert protected() == "ok"
    configure(cache_base_delay=0.3)  # a new generation: the pipeline is rebuilt
    assert protected() == "ok"
    assert [event.delay for event in heard] == [0.1, 0.3]
