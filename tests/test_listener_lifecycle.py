"""Short-lived pipelines and contexts on a long-lived (registry) breaker.

A pipeline attaches its listener hub to the hubs of the strategies it holds.
A breaker from the registry outlives every pipeline built around it, one per
request say; those pipelines must leave it as they found it: constant memory,
constant work per request. Work is counted (hubs refreshed and parent links
read), never timed.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import buttress
from buttress.events import GLOBAL, Event, Listeners, StateChanged
from buttress.testing import VirtualClock

SHARED = "shared-dependency"
CLOCK = VirtualClock()  # one clock: the registry refuses a breaker on another


class Counter:
    """A listener that counts events without keeping them (so it holds no memory)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: Event) -> None:
        self.count += 1


@pytest.fixture
def everybody_listens() -> Iterator[Counter]:
    """A global listener, as an installed metrics exporter is: every hub is active."""
    counter = buttress.add_listener(Counter())
    yield counter
    buttress.remove_listener(counter)


@pytest.fixture
def hub_work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts hub work: one per hub recomputed, plus one per parent link it has."""
    visits = [0]
    original = Listeners._refresh

    def counting(self: Listeners, *args: Any) -> None:
        visits[0] += 1 + len(self._parents)
        original(self, *args)

    monkeypatch.setattr(Listeners, "_refresh", counting)
    return visits


def ok() -> str:
    return "ok"


async def ok_async() -> str:
    return "ok"


def per_request_work(requests: int, request: Callable[[], object],
                     visits: list[int]) -> list[int]:
    """The hub work each of ``requests`` calls of ``request`` did."""
    work = []
    for _ in range(requests):
        before = visits[0]
        request()
        work.append(visits[0] - before)
    return work


def traced_growth(requests: int, request: Callable[[], object]) -> float:
    """KB still allocated after ``requests`` calls of ``request`` (after warming up)."""
    for _ in range(200):
        request()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(requests):
            request()
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / 1024
    finally:
        tracemalloc.stop()


# Every way a user builds a pipeline around a shared breaker and drops it.

def built_by_pipeline_function() -> object:
    return buttress.pipeline(circuit_breaker=SHARED,
                             retry=buttress.RetryConfig(max_attempts=2)).call(ok)


def built_by_pipeline_class_as_decorator() -> object:
    protect = buttress.Pipeline(buttress.get_circuit_breaker(SHARED),
                                buttress.Retry(max_attempts=2))
    return protect(ok)()


def built_with_its_own_listener() -> object:
    protect = buttress.pipeline(circuit_breaker=SHARED)
    protect.events.add(Counter())  # a per-request exporter, say
    return protect.call(ok)


def built_by_resilient_context() -> object:
    with buttress.resilient_context(operation_name=SHARED, enable_timeout=False,
                                    clock=CLOCK) as context:
        return context.call(ok)


BUILDERS = [built_by_pipeline_function, built_by_pipeline_class_as_decorator,
            built_with_its_own_listener, built_by_resilient_context]


@pytest.mark.parametrize("request_", BUILDERS, ids=lambda f: f.__name__)
def test_per_request_pipelines_do_constant_work_on_a_shared_breaker(
    request_: Callable[[], object], everybody_listens: Counter, hub_work: list[int]
) -> None:
    work = per_request_work(2_000, request_, hub_work)
    assert max(work[-100:]) <= max(work[:100])
    breaker = buttress.get_circuit_breaker(SHARED)
    assert breaker.events.active  # the global listener reaches it: refreshes did work
    assert breaker.events.parents == (GLOBAL,)
    assert len(breaker.events._parents) == 1  # no dead links kept either


def test_ten_thousand_short_lived_pipelines_cost_a_shared_breaker_no_memory(
    everybody_listens: Counter,
) -> None:
    breaker = buttress.get_circuit_breaker(SHARED)

    def request() -> object:
        return buttress.Pipeline(breaker).call(ok)

    growth_kb = traced_growth(10_000, request)
    # Before hubs held parents weakly: about 1 KB per pipeline (10 MB here).
    assert growth_kb < 64, f"{growth_kb:.1f} KB still allocated after 10,000 pipelines"
    assert breaker.events.parents == (GLOBAL,)


def test_ten_thousand_resilient_contexts_leave_their_breaker_as_they_found_it(
    everybody_listens: Counter, hub_work: list[int]
) -> None:
    clock = VirtualClock()

    async def request() -> object:
        async with buttress.resilient_context(operation_name=SHARED, clock=clock) as context:
            return await context.acall(ok_async)

    def run(coroutine: Callable[[], Awaitable[object]]) -> object:
        try:
            coroutine().send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("the call suspended on a virtual clock")

    work = per_request_work(10_000, lambda: run(request), hub_work)
    assert max(work[-100:]) <= max(work[:100])
    assert buttress.get_circuit_breaker(SHARED).events.parents == (GLOBAL,)


def test_a_live_pipelines_listeners_hear_its_shared_breaker_until_it_is_dropped() -> None:
    breaker = buttress.get_circuit_breaker(SHARED)
    heard: list[Event] = []
    protect = buttress.pipeline(circuit_breaker=SHARED)
    protect.events.add(heard.append, StateChanged)
    breaker.force_open()
    assert len(heard) == 1
    del protect
    gc.collect()
    breaker.force_closed()
    assert len(heard) == 1
    assert breaker.events.parents == (GLOBAL,)


def test_a_protected_function_keeps_its_pipelines_listeners_hearing() -> None:
    heard: list[Event] = []

    def make_client() -> Callable[[], str]:
        protect = buttress.pipeline(circuit_breaker=SHARED)
        protect.events.add(heard.append)  # e.g. PrometheusMetrics().attach(protect)
        return protect(ok)

    fetch = make_client()
    gc.collect()
    breaker = buttress.get_circuit_breaker(SHARED)
    breaker.force_open()
    with pytest.raises(buttress.CircuitBreakerError):
        fetch()
    assert [type(event).__name__ for event in heard] == [
        "StateChanged", "CallStarted", "CallRejected", "CallFinished"]
    del fetch
    gc.collect()
    assert breaker.events.parents == (GLOBAL,)


async def test_an_async_protected_function_keeps_its_pipelines_listeners_hearing() -> None:
    heard: list[Event] = []
    protect = buttress.pipeline(circuit_breaker=SHARED)
    protect.events.add(heard.append)
    fetch = protect(ok_async)
    del protect
    gc.collect()
    buttress.get_circuit_breaker(SHARED).force_open()
    assert [type(event).__name__ for event in heard] == ["StateChanged"]
    assert fetch is not None


def test_a_pipeline_dropped_while_the_hubs_change_is_pruned_without_deadlock() -> None:
    breaker = buttress.get_circuit_breaker(SHARED)
    doomed = [buttress.pipeline(circuit_breaker=SHARED)]

    class DropsThePipelineWhenCompared(Counter):
        # remove() compares listeners while holding the hubs' lock: the pipeline
        # dies there, and its hub's weakref callback runs in this very thread.
        def __ne__(self, other: object) -> bool:
            doomed.clear()
            return self is not other

        __hash__ = Counter.__hash__

    listener = buttress.add_listener(DropsThePipelineWhenCompared())
    finished = threading.Event()

    def remove() -> None:
        buttress.remove_listener(listener)
        finished.set()

    worker = threading.Thread(target=remove, daemon=True)
    worker.start()
    assert finished.wait(timeout=10), "removing a listener deadlocked"
    assert doomed == []
    assert len(breaker.events._parents) == 1  # pruned when the lock was released
    assert breaker.events.parents == (GLOBAL,)


def test_hubs_stay_consistent_while_threads_build_pipelines_and_change_listeners() -> None:
    breaker = buttress.get_circuit_breaker(SHARED)
    start = threading.Barrier(9)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(300):
                built_with_its_own_listener()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def churn_global_listeners() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(300):
                counter = buttress.add_listener(Counter(), StateChanged)
                buttress.remove_listener(counter)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(8)]
    threads.append(threading.Thread(target=churn_global_listeners))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    gc.collect()
    assert breaker.events.parents == (GLOBAL,)
    assert not breaker.events.active
    stays = buttress.add_listener(Counter(), StateChanged)
    try:
        assert breaker.events.of(StateChanged) == (stays,)
    finally:
        buttress.remove_listener(stays)
