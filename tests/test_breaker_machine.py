"""The breaker's machine driven directly, with plain numbers for the time: no
clock, no lock, no call. Each test names a decision the runner relies on."""

from __future__ import annotations

import math
from typing import Any

import pytest

from buttress import CircuitBreakerConfig
from buttress._core.breaker_machine import (
    DECIDE,
    DISABLED,
    OBSERVED,
    REJECT,
    BreakerMachine,
    CircuitState,
    Transition,
    break_duration,
)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def machine(**options: object) -> BreakerMachine:
    options.setdefault("failure_threshold", 2)
    options.setdefault("recovery_timeout", 10.0)
    options.setdefault("success_threshold", 1)
    options.setdefault("half_open_max_calls", 1)
    return BreakerMachine(CircuitBreakerConfig(**options))  # type: ignore[arg-type]


def trip(m: BreakerMachine, now: float) -> Transition | None:
    moved = None
    for _ in range(m.config.failure_threshold or 1):
        moved = m.record_failure(m.epoch, now)
    return moved


def test_a_closed_machine_admits_without_a_change_in_its_epoch() -> None:
    m = machine()
    assert m.peek(0.0) == 0
    assert m.admit(0.0) == (0, None)
    assert m.ticket == 0


def test_consecutive_failures_trip_and_return_the_transition() -> None:
    m = machine()
    assert m.record_failure(0, 1.0) is None
    assert m.ticket == -1  # a failure streak: successes must be recorded again
    assert m.record_failure(0, 2.0) == Transition(CLOSED, OPEN)
    assert (m.state, m.reopen_at, m.trips) == (OPEN, 12.0, 1)


def test_a_success_clears_the_streak_and_gives_the_ticket_back() -> None:
    m = machine()
    m.record_failure(0, 1.0)
    assert m.record_success(0, 2.0, 0.0) is None
    assert m.consecutive_failures == 0
    assert m.ticket == 0


def test_an_open_machine_rejects_on_the_fast_path_until_its_break_ends() -> None:
    m = machine()
    trip(m, 0.0)
    assert m.peek(9.999) == REJECT
    assert m.peek(10.0) == DECIDE
    assert m.remaining(4.0) == 6.0


def test_admission_after_the_break_turns_half_open_and_takes_a_permit() -> None:
    m = machine()
    trip(m, 0.0)
    epoch, moved = m.admit(10.0)
    assert moved == Transition(OPEN, HALF_OPEN)
    assert epoch == m.epoch
    assert m.admit(10.5) == (REJECT, None)  # one permit only
    assert m.remaining(10.5) == 9.5  # until the permit is given back


def test_a_probe_success_closes_and_a_probe_failure_reopens() -> None:
    m = machine()
    trip(m, 0.0)
    epoch, _ = m.admit(10.0)
    assert m.record_success(epoch, 11.0, 0.0) == Transition(HALF_OPEN, CLOSED)
    trip(m, 20.0)
    epoch, _ = m.admit(30.0)
    assert m.record_failure(epoch, 31.0, 0.0, None) == Transition(HALF_OPEN, OPEN)
    assert m.reopen_at == 41.0


def test_an_outcome_from_an_older_epoch_reaches_only_the_statistics() -> None:
    m = machine()
    stale = m.epoch
    trip(m, 0.0)
    m.admit(10.0)
    assert m.record_failure(stale, 10.5) is None
    assert m.state is HALF_OPEN
    assert m.failed == 3


def test_a_lost_probe_gives_its_permit_back_after_a_recovery_timeout() -> None:
    m = machine()
    trip(m, 0.0)
    lost, _ = m.admit(10.0)
    assert m.admit(19.0)[0] == REJECT
    epoch, moved = m.admit(20.0)
    assert moved is None
    assert epoch == lost + 1
    assert m.record_success(lost, 21.0, 0.0) is None  # the late probe is stale
    assert m.state is HALF_OPEN


def test_the_failure_rate_rule_trips_over_the_count_window() -> None:
    m = machine(failure_threshold=None, failure_rate_threshold=0.5, minimum_calls=4,
                window_size=4)
    assert m.ticket == -1  # a window: every success is recorded
    for now, failed in enumerate([False, True, False]):
        record = m.record_failure if failed else m.record_success
        assert record(0, float(now), 0.0) is None
    assert m.record_failure(0, 3.0, 0.0) == Transition(CLOSED, OPEN)
    assert m.failure_rate(3.0) == 0.5


def test_the_slow_call_rule_trips_on_slow_successes() -> None:
    m = machine(failure_threshold=None, slow_call_duration=1.0, slow_call_rate_threshold=1.0,
                minimum_calls=2, window_size=2)
    assert m.record_success(0, 0.0, 1.5) is None
    assert m.record_success(0, 1.0, 2.0) == Transition(CLOSED, OPEN)
    assert m.slow == 2
    assert m.tripped_by is None


def test_failures_within_a_time_window_trip_and_older_ones_do_not() -> None:
    m = machine(failure_window=5.0)
    m.record_failure(0, 0.0)
    assert m.record_failure(0, 6.0) is None
    assert m.failure_count(6.0) == 1
    assert m.record_failure(0, 7.0) == Transition(CLOSED, OPEN)


def test_forced_open_holds_until_forced_closed() -> None:
    m = machine()
    assert m.force_open(0.0) == Transition(CLOSED, OPEN)
    assert m.peek(1e9) == REJECT
    assert m.remaining(5.0) == math.inf
    assert m.force_closed() == Transition(OPEN, CLOSED)
    assert m.ticket == m.epoch


def test_reset_clears_counters_and_keeps_epochs_growing() -> None:
    m = machine()
    trip(m, 0.0)
    before = m.epoch
    assert m.reset() == Transition(OPEN, CLOSED)
    assert (m.failed, m.trips, m.state) == (0, 0, CLOSED)
    assert m.epoch > before


def test_the_break_grows_on_each_trip_in_a_row_up_to_its_maximum() -> None:
    m = machine(recovery_timeout=1.0, recovery_timeout_multiplier=3.0,
                max_recovery_timeout=5.0)
    trip(m, 0.0)
    assert m.reopen_at == 1.0
    for start, length in [(1.0, 3.0), (4.0, 5.0), (9.0, 5.0)]:
        epoch, _ = m.admit(start)
        m.record_failure(epoch, start, 0.0, None)
        assert m.reopen_at == start + length


def test_closing_starts_the_break_duration_afresh() -> None:
    m = machine(recovery_timeout=1.0, recovery_timeout_multiplier=2.0)
    trip(m, 0.0)
    epoch, _ = m.admit(1.0)
    m.record_failure(epoch, 1.0)  # second trip in a row: 2 s
    assert m.reopen_at == 3.0
    epoch, _ = m.admit(3.0)
    m.record_success(epoch, 3.0, 0.0)
    assert m.state is CLOSED
    trip(m, 10.0)
    assert m.reopen_at == 11.0


def test_break_duration_never_overflows() -> None:
    assert break_duration(1.0, 10.0, None, 10_000) == math.inf
    assert break_duration(1.0, 10.0, 60.0, 10_000) == 60.0
    assert break_duration(2.0, 1.0, None, 50) == 2.0


def test_observe_mode_trips_but_lets_every_call_through_with_a_stale_epoch() -> None:
    m = machine(mode="observe")
    assert m.ticket == -1  # observed calls take the recorded path
    assert m.peek(0.0) == 0
    assert trip(m, 0.0) == Transition(CLOSED, OPEN)
    assert m.peek(1.0) == OBSERVED
    assert m.admit(1.0) == (OBSERVED, None)
    assert m.record_failure(OBSERVED, 2.0) is None  # statistics only
    assert (m.state, m.failed, m.rejected) == (OPEN, 3, 0)


def test_disabled_mode_neither_admits_through_the_machine_nor_records() -> None:
    m = machine(mode="disabled")
    assert m.peek(0.0) == DISABLED
    assert m.admit(0.0) == (DISABLED, None)
    assert m.record_failure(DISABLED, 0.0) is None
    assert m.record_success(DISABLED, 0.0, 5.0) is None
    assert (m.failed, m.slow, m.state) == (0, 0, CLOSED)


def test_switching_mode_keeps_the_state_and_the_statistics() -> None:
    m = machine()
    trip(m, 0.0)
    m.set_mode("observe")
    assert (m.state, m.failed) == (OPEN, 2)
    assert m.peek(1.0) == OBSERVED
    m.set_mode("enforce")
    assert m.peek(1.0) == REJECT
    with pytest.raises(ValueError, match="'audit'"):
        m.set_mode("audit")


# --- the machine against the plain model of test_breaker_stateful ------------------------

from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from test_breaker_stateful import (  # noqa: E402
    FAILURE,
    IGNORED,
    INTERRUPTED,
    STEPS,
    SUCCESS,
    UNCOUNTED,
    Model,
)


class MachineAgainstModel(RuleBasedStateMachine):
    """Calls overlap freely: each admitted call is held with both its epoch (the
    machine's) and its era (the model's) until a rule finishes it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.held: list[tuple[int, int]] = []
        self.seen: list[tuple[str, str]] = []
        self.m: BreakerMachine
        self.model: Model

    @initialize(
        window=st.sampled_from(["consecutive", "count-window", "failure-window"]),
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        half_open_max_calls=st.integers(1, 3),
        recovery_timeout=st.sampled_from([5.0, 30.0]),
    )
    def create(self, window: str, **config: Any) -> None:
        extra: dict[str, Any] = {
            "consecutive": {},
            "count-window": {"failure_rate_threshold": 1.0, "window_size": 1000,
                             "minimum_calls": 1000},
            "failure-window": {"failure_window": 7.5},
        }[window]
        self.m = BreakerMachine(CircuitBreakerConfig(**config, **extra))
        self.model = Model(**config, failure_window=extra.get("failure_window"),
                           windowed=window == "count-window")

    def note(self, moved: Transition | None) -> None:
        if moved is not None:
            self.seen.append((moved.old.value, moved.new.value))

    @rule(seconds=STEPS)
    def advance_time(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def admit(self) -> None:
        epoch, moved = self.m.admit(self.now)
        self.note(moved)
        era = self.model.admit(self.now)
        assert (epoch == REJECT) == (era is None)
        if era is not None:
            self.held.append((epoch, era))

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 100),
          outcome=st.sampled_from([SUCCESS, FAILURE, IGNORED, UNCOUNTED, INTERRUPTED]))
    def finish(self, pick: int, outcome: str) -> None:
        epoch, era = self.held.pop(pick % len(self.held))
        if outcome in (SUCCESS, UNCOUNTED):
            self.note(self.m.record_success(epoch, self.now, 0.0))
        elif outcome == FAILURE:
            self.note(self.m.record_failure(epoch, self.now, 0.0, None))
        else:
            self.m.release(epoch, ignored=outcome == IGNORED)
        self.model.finish(era, outcome, self.now)

    @rule()
    def reset(self) -> None:
        self.note(self.m.reset())
        self.model.reset()

    @rule(action=st.sampled_from(["open", "closed", "closed"]))
    def force(self, action: str) -> None:
        if action == "open":
            self.note(self.m.force_open(self.now))
            self.model.force_open(self.now)
        else:
            self.note(self.m.force_closed())
            self.model.force_closed()

    @invariant()
    def decisions_match(self) -> None:
        m, model = self.m, self.model
        assert m.state.value == model.state
        assert m.remaining(self.now) == model.remaining(self.now)
        assert m.failed == model.failed
        assert m.ignored == model.ignored
        assert m.rejected == model.rejected
        assert m.trips == model.trips
        assert m.state_changes == model.state_changes
        assert m.failure_count(self.now) == model.failure_count(self.now)
        if model.windowed:
            assert m.failure_rate(self.now) == model.failure_rate()
        assert self.seen == model.transitions
        assert (m.ticket >= 0) == (model.state == "closed" and not model.streak
                                   and not model.windowed)
        assert (self.now < m.open_until) == (model.state == "open"
                                             and model.remaining(self.now) > 0.0)


MachineAgainstModel.TestCase.settings = settings(max_examples=150, stateful_step_count=40,
                                                 deadline=None)
test_the_machine_decides_as_the_model = MachineAgainstModel.TestCase


# --- the store seam -------------------------------------------------------------------------


def test_a_custom_store_receives_every_change_the_runner_makes() -> None:
    from buttress import CircuitBreaker, CircuitBreakerError
    from buttress._core.breaker_store import MemoryStore
    from buttress.testing import VirtualClock

    changes: list[str] = []

    class CountingStore(MemoryStore):
        __slots__ = ()

        def admit(self, now: float) -> int:
            changes.append("admit")
            return super().admit(now)

        def record_failure(self, epoch: int, now: float, duration: float,
                           cause: BaseException | None) -> None:
            changes.append("failure")
            super().record_failure(epoch, now, duration, cause)

    seen: list[tuple[CircuitState, CircuitState]] = []
    clock = VirtualClock()
    breaker = CircuitBreaker("seam", failure_threshold=1, recovery_timeout=5.0,
                             success_threshold=1, clock=clock, store=CountingStore,
                             on_state_change=lambda _, old, new: seen.append((old, new)))
    assert breaker.call(lambda: 1) == 1  # the ticket admits: no store call
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    with pytest.raises(CircuitBreakerError):  # open: decided by gate.open_until
        breaker.call(lambda: 1)
    assert changes == ["failure"]
    clock.advance(5.0)
    assert breaker.call(lambda: 2) == 2  # the probe needs the store's decision
    assert changes == ["failure", "admit"]
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    assert breaker.stats.rejected_calls == 1
