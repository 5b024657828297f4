"""What peers' users expect of a breaker (issue 11, item 8), on a virtual clock:
results counted as failures, observe and disabled modes, a break that grows on
repeated trips."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from buttress import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerError,
    CircuitState,
    ConfigurationError,
)
from buttress.testing import VirtualClock


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def server_error(response: Response) -> bool:
    return response.status_code >= 500


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom


CallForm = Callable[[CircuitBreaker, Callable[[], Any]], Any]


def via_decorator(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    return breaker(fn)()


def via_call(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    return breaker.call(fn)


def via_acall(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return fn()

    return asyncio.run(breaker.acall(run))


def via_async_decorator(breaker: CircuitBreaker, fn: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return fn()

    return asyncio.run(breaker(run)())


FORMS = [via_decorator, via_call, via_acall, via_async_decorator]


@pytest.fixture(params=FORMS, ids=lambda form: form.__name__)
def form(request: pytest.FixtureRequest) -> CallForm:
    return request.param  # type: ignore[no-any-return]


def make(clock: VirtualClock | None = None, **options: Any) -> CircuitBreaker:
    options.setdefault("failure_threshold", 2)
    options.setdefault("recovery_timeout", 10.0)
    options.setdefault("success_threshold", 1)
    return CircuitBreaker(clock=VirtualClock() if clock is None else clock, **options)


# --- a returned value can count as a failure ------------------------------------------


def test_a_result_the_predicate_rejects_counts_as_a_failure_and_is_still_returned(
        form: CallForm) -> None:
    breaker = make(failure_on_result=server_error)
    response = form(breaker, lambda: Response(503))
    assert response.status_code == 503
    assert breaker.stats.failed_calls == 1
    form(breaker, lambda: Response(502))
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitBreakerError):
        form(breaker, lambda: Response(200))


def test_a_result_the_predicate_accepts_is_a_success(form: CallForm) -> None:
    breaker = make(failure_on_result=server_error)
    form(breaker, lambda: Response(503))
    form(breaker, lambda: Response(200))
    form(breaker, lambda: Response(503))
    assert breaker.state is CircuitState.CLOSED
    assert breaker.stats.successful_calls == 1


def test_a_rejected_result_fails_the_half_open_probe() -> None:
    clock = VirtualClock()
    breaker = make(clock, failure_on_result=server_error)
    for _ in range(2):
        breaker.call(lambda: Response(500))
    clock.advance(10.0)
    breaker.call(lambda: Response(500))
    assert breaker.state is CircuitState.OPEN
    assert breaker.stats.trips == 2


def test_a_predicate_that_raises_propagates_and_frees_the_probe_permit() -> None:
    clock = VirtualClock()
    breaker = make(clock, half_open_max_calls=1,
                   failure_on_result=lambda r: r["missing"])  # KeyError on every result
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(boom)
    clock.advance(10.0)
    with pytest.raises(KeyError):
        breaker.call(dict)
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(KeyError):  # the permit came back: a second probe runs
        breaker.call(dict)


# --- observe and disabled modes ----------------------------------------------------------


def test_an_observing_breaker_trips_and_reports_but_never_rejects(form: CallForm) -> None:
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = make(mode="observe",
                   on_state_change=lambda _, old, new: changes.append((old, new)))
    for _ in range(2):
        with pytest.raises(Boom):
            form(breaker, boom)
    assert breaker.state is CircuitState.OPEN
    assert form(breaker, lambda: "ran") == "ran"
    assert changes == [(CircuitState.CLOSED, CircuitState.OPEN)]
    stats = breaker.stats
    assert (stats.failed_calls, stats.successful_calls, stats.rejected_calls) == (2, 1, 0)


def test_an_observing_breaker_recovers_through_its_probes() -> None:
    clock = VirtualClock()
    breaker = make(clock, mode="observe")
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(boom)
    clock.advance(10.0)
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED


def test_a_disabled_breaker_neither_records_nor_rejects(form: CallForm) -> None:
    breaker = make(mode="disabled")
    for _ in range(5):
        with pytest.raises(Boom):
            form(breaker, boom)
    assert form(breaker, lambda: "ran") == "ran"
    stats = breaker.stats
    assert stats.state is CircuitState.CLOSED
    assert (stats.total_calls, stats.failed_calls, stats.successful_calls) == (0, 0, 0)


def test_the_mode_switches_at_run_time_keeping_state_and_statistics() -> None:
    breaker = make()
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(boom)
    with pytest.raises(CircuitBreakerError):
        breaker.call(lambda: None)
    breaker.mode = "observe"
    assert breaker.call(lambda: "through") == "through"
    breaker.mode = "disabled"
    assert breaker.call(lambda: "through") == "through"
    breaker.mode = "enforce"
    with pytest.raises(CircuitBreakerError):
        breaker.call(lambda: None)
    assert breaker.stats.failed_calls == 2


def test_a_with_block_of_a_disabled_breaker_runs_and_leaves_no_mark() -> None:
    breaker = make(mode="disabled")
    for _ in range(3):
        with pytest.raises(Boom), breaker:
            boom()
    with breaker:
        pass
    assert breaker.stats.total_calls == 0


def test_an_unknown_mode_is_refused_naming_it() -> None:
    breaker = make()
    with pytest.raises(ConfigurationError, match="'audit'"):
        breaker.mode = "audit"
    with pytest.raises(ConfigurationError, match=r"CircuitBreakerConfig\.mode.*'audit'"):
        CircuitBreakerConfig(mode="audit")


# --- a break that grows on repeated trips ----------------------------------------------


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        with pytest.raises((Boom, CircuitBreakerError)):
            breaker.call(boom)


def reopen_after_probe(breaker: CircuitBreaker) -> None:
    with pytest.raises(Boom):
        breaker.call(boom)


def breaks(clock: VirtualClock, breaker: CircuitBreaker, trips: int) -> Iterator[float]:
    trip(breaker)
    for _ in range(trips):
        remaining = breaker.stats.remaining_timeout
        yield remaining
        clock.advance(remaining)
        reopen_after_probe(breaker)


def test_each_trip_in_a_row_lengthens_the_break_up_to_the_maximum() -> None:
    clock = VirtualClock()
    breaker = make(clock, recovery_timeout=5.0, recovery_timeout_multiplier=2.0,
                   max_recovery_timeout=30.0)
    assert list(breaks(clock, breaker, 5)) == [5.0, 10.0, 20.0, 30.0, 30.0]


def test_the_break_starts_afresh_once_the_breaker_closes() -> None:
    clock = VirtualClock()
    breaker = make(clock, recovery_timeout=5.0, recovery_timeout_multiplier=3.0)
    assert list(breaks(clock, breaker, 2)) == [5.0, 15.0]
    clock.advance(breaker.stats.remaining_timeout)
    breaker.call(lambda: None)
    assert breaker.state is CircuitState.CLOSED
    trip(breaker)
    assert breaker.stats.remaining_timeout == 5.0


@pytest.mark.parametrize(("options", "field", "value"), [
    ({"recovery_timeout_multiplier": 0.5}, "recovery_timeout_multiplier", "0.5"),
    ({"max_recovery_timeout": 1.0, "recovery_timeout": 5.0}, "max_recovery_timeout", "1.0"),
    ({"max_recovery_timeout": -1.0}, "max_recovery_timeout", "-1.0"),
])
def test_break_growth_settings_are_validated_naming_field_and_value(
        options: dict[str, Any], field: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"CircuitBreakerConfig\.{field}.*{value}"):
        CircuitBreakerConfig(**options)


def test_failure_on_result_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"CircuitBreakerConfig\.failure_on_result"):
        CircuitBreakerConfig(failure_on_result=500)  # type: ignore[arg-type]


def test_the_new_breaker_fields_round_trip_through_a_file_and_callables_are_refused(
        tmp_path: Path) -> None:
    from buttress.config import ResilienceConfig

    config = CircuitBreakerConfig(name="files", critical=True, mode="observe",
                                  recovery_timeout=5.0, recovery_timeout_multiplier=2.0,
                                  max_recovery_timeout=60.0)
    for suffix in (".json", ".toml"):
        saved = ResilienceConfig()
        saved.update_config("files", config)
        path = tmp_path / f"saved{suffix}"
        saved.save_to_file(path)
        loaded = ResilienceConfig()
        loaded.load_from_file(path)
        assert loaded.circuit_breaker_configs["files"] == config
    judged = ResilienceConfig()
    judged.update_config("judged", CircuitBreakerConfig(name="judged", failure_on_result=bool))
    with pytest.raises(ConfigurationError, match="failure_on_result"):
        judged.save_to_file(tmp_path / "judged.json")


def _depth() -> int:
    import sys

    frame, depth = sys._getframe(1), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_a_decorated_breaker_puts_one_frame_around_the_call_when_nobody_listens() -> None:
    # The per-call operation report is decided inside the breaker's own wrapper:
    # an unheard call pays an attribute read, not a second wrapper frame.
    breaker = CircuitBreaker("one-frame", clock=VirtualClock())
    inside: list[int] = []

    @breaker
    def call() -> None:
        inside.append(_depth())

    outside = _depth()
    call()
    assert inside == [outside + 2]  # the breaker's wrapper, then the function
