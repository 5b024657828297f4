"""The listener hub: inheritance from parents, kind filters, removal, cycles."""

from __future__ import annotations

import logging
from dataclasses import FrozenInstanceError, dataclass

import pytest

import buttress
from buttress.events import (
    GLOBAL,
    AttemptStarted,
    Event,
    GaveUp,
    Listeners,
    Succeeded,
    register_kind,
)


def started(n: int = 1) -> AttemptStarted:
    return AttemptStarted("retry", "op", n)


def test_a_hub_without_listeners_is_inactive_and_offers_nobody() -> None:
    hub = Listeners(GLOBAL)
    assert not hub.active
    assert hub.of(AttemptStarted) == ()


def test_kind_filters_deliver_only_the_kinds_asked_for() -> None:
    hub = Listeners()
    everything: list[Event] = []
    only_success: list[Event] = []
    hub.add(everything.append)
    hub.add(only_success.append, Succeeded)
    hub.emit(started())
    hub.emit(Succeeded("retry", "op", 1, 0.5))
    assert everything == [started(), Succeeded("retry", "op", 1, 0.5)]
    assert only_success == [Succeeded("retry", "op", 1, 0.5)]


def test_parent_listeners_hear_children_and_changes_reach_existing_children() -> None:
    parent = Listeners()
    child = Listeners(parent)
    heard: list[Event] = []
    assert not child.active
    parent.add(heard.append)
    assert child.active
    child.emit(started())
    assert heard == [started()]
    parent.remove(heard.append)
    assert not child.active
    assert child.of(AttemptStarted) == ()


def test_a_listener_reached_twice_through_two_parents_hears_each_event_once() -> None:
    root = Listeners()
    left, right = Listeners(root), Listeners(root)
    child = Listeners(left, right)
    heard: list[Event] = []
    root.add(heard.append)
    child.emit(started())
    assert heard == [started()]


def test_global_listeners_hear_every_strategy() -> None:
    heard: list[Event] = []
    buttress.add_listener(heard.append, GaveUp)
    try:
        retry = buttress.Retry(max_attempts=1)
        with pytest.raises(buttress.RetryExhaustedError):
            retry.call(_raise_value_error)
    finally:
        buttress.remove_listener(heard.append)
    assert len(heard) == 1
    assert isinstance(heard[0], GaveUp)
    assert heard[0].reason == "exhausted"
    assert not retry.events.active


def _raise_value_error() -> None:
    raise ValueError("boom")


def test_hubs_refuse_cycles_and_bad_listeners() -> None:
    a = Listeners()
    b = Listeners(a)
    with pytest.raises(ValueError, match="own parent"):
        a.attach(b)
    with pytest.raises(ValueError, match="own parent"):
        a.attach(a)
    with pytest.raises(TypeError, match="callable"):
        a.add("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Event subclasses"):
        a.add(print, int)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a listener"):
        a.remove(print)


def test_a_raising_listener_is_logged_and_the_next_one_still_hears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Listeners()
    heard: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    hub.add(broken)
    hub.add(heard.append)
    with caplog.at_level(logging.ERROR, logger="buttress"):
        hub.emit(started())
    assert heard == [started()]
    assert "listener bug" in caplog.text


def test_events_are_immutable() -> None:
    event = started()
    with pytest.raises(FrozenInstanceError):
        event.attempt = 2  # type: ignore[misc]


def test_clear_removes_own_listeners_but_keeps_inherited_ones() -> None:
    parent = Listeners()
    child = Listeners(parent)
    own: list[Event] = []
    inherited: list[Event] = []
    child.add(own.append)
    parent.add(inherited.append)
    child.clear()
    child.emit(started())
    assert own == []
    assert inherited == [started()]
    assert child.listeners == []


def test_new_event_kinds_can_be_registered_and_delivered() -> None:
    @register_kind
    @dataclass(frozen=True, slots=True)
    class Hedged(Event):
        delay: float

    hub = Listeners()
    heard: list[Event] = []
    hub.add(heard.append, Hedged)
    hub.emit(Hedged("hedge", "op", 0.2))
    hub.emit(started())
    assert heard == [Hedged("hedge", "op", 0.2)]


async def test_a_cancelled_retried_call_reports_giving_up_as_cancelled() -> None:
    import asyncio

    failures: list[object] = []
    retry = buttress.Retry(max_attempts=3, name="slow", on_failure=lambda *a: failures.append(a))
    heard: list[GaveUp] = []
    retry.events.add(heard.append, GaveUp)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(retry.acall(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [event] = heard
    assert event.reason == "cancelled"
    assert event.attempts == 1
    assert isinstance(event.exception, asyncio.CancelledError)
    assert failures == []  # on_failure is for failures, and cancellation is not one


def test_pipeline_stages_report_under_the_functions_name() -> None:
    heard: list[Event] = []
    protect = buttress.pipeline(retry=buttress.RetryConfig(max_attempts=1),
                                fallback_value=None)
    protect.events.add(heard.append)

    def lookup() -> None:
        raise KeyError("k")

    protect(lookup)()
    assert {event.name for event in heard} == {f"{__name__}.{lookup.__qualname__}"}


def test_a_detached_pipeline_stops_hearing_a_strategy_that_lives_on() -> None:
    breaker = buttress.CircuitBreaker("shared", failure_threshold=1)
    old, new = buttress.pipeline(breaker), buttress.pipeline(breaker)
    heard_old: list[Event] = []
    heard_new: list[Event] = []
    old.events.add(heard_old.append)
    new.events.add(heard_new.append)
    old.detach()
    breaker.force_open()
    assert heard_old == []
    assert [type(e).__name__ for e in heard_new] == ["StateChanged"]
    assert breaker.events.parents == (GLOBAL, new.events)


def test_reloading_settings_does_not_grow_a_shared_breakers_parents() -> None:
    from buttress.testing import VirtualClock

    @buttress.database_resilient(operation_name="orders", clock=VirtualClock())
    def load() -> str:
        return "ok"

    for attempts in (2, 3, 4, 5):
        buttress.configure(default_max_attempts=attempts)
        assert load() == "ok"
    breaker = buttress.get_circuit_breaker("orders")
    assert len(breaker.events.parents) <= 2
