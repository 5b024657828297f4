"""Hypothesis drives a circuit breaker on a virtual clock and compares it, after
every step, with a small reference model written here from the specification
(states, streaks, recovery timeout, half-open permits and how long a probe may
hold one, the outcome window behind the failure rate), not from the library.

Clock steps are binary fractions, so every time sum is exact and the model and
the breaker must agree to the last bit.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from buttress import CircuitBreaker, CircuitBreakerError
from buttress.testing import VirtualClock


class Boom(Exception):
    """Counted as a failure."""


class NotFound(Exception):
    """Ignored: neither success nor failure."""


class Unrelated(Exception):
    """Outside failure_exceptions: the dependency answered, so a success."""


SUCCESS, FAILURE, IGNORED, UNCOUNTED = "success", "failure", "ignored", "uncounted"
CANCELLED, INTERRUPTED = "cancelled", "interrupted"

RAISED: dict[str, BaseException | None] = {
    SUCCESS: None,
    FAILURE: Boom("down"),
    IGNORED: NotFound("none"),
    UNCOUNTED: Unrelated("answered"),
    INTERRUPTED: KeyboardInterrupt(),
}

STEPS = st.sampled_from([0.25, 0.5, 1.0, 2.5, 4.75, 5.0, 10.0, 29.5, 30.0, 60.0])


@dataclass
class Model:
    """What the breaker must do, in the simplest terms."""

    failure_threshold: int
    success_threshold: int
    recovery_timeout: float
    half_open_max_calls: int
    failure_window: float | None = None
    windowed: bool = False  # a count window of outcomes gives the failure rate

    state: str = "closed"
    era: int = 0  # bumped on every state change and reset; calls from older eras are stale
    streak: int = 0  # consecutive failures while closed
    failure_times: list[float] = field(default_factory=list)  # for failure_window mode
    opened_at: float = 0.0
    held_open: bool = False
    probes: int = 0
    probe_successes: int = 0
    # Half-open: taken permits are given back once no probe moved until then.
    probe_deadline: float = 0.0
    # Outcomes (True: failed) since probing began or the breaker closed; kept
    # when it trips, so an open breaker reports the rate that tripped it.
    window: list[bool] = field(default_factory=list)
    successful: int = 0
    failed: int = 0
    ignored: int = 0
    rejected: int = 0
    trips: int = 0
    state_changes: int = 0
    last_failure: float | None = None
    transitions: list[tuple[str, str]] = field(default_factory=list)

    def _move(self, state: str) -> None:
        self.transitions.append((self.state, state))
        self.state = state
        self.state_changes += 1
        self.era += 1
        self.streak = self.probes = self.probe_successes = 0
        self.failure_times = []
        if state != "open":
            self.window = []

    def _open(self, now: float) -> None:
        self._move("open")
        self.opened_at = now
        self.trips += 1

    def remaining(self, now: float) -> float:
        """Seconds until a call would be admitted."""
        if self.state == "half_open":
            if self.probes == self.half_open_max_calls:
                return max(0.0, self.probe_deadline - now)
            return 0.0
        if self.state != "open":
            return 0.0
        if self.held_open:
            return float("inf")
        return max(0.0, self.opened_at + self.recovery_timeout - now)

    def failure_rate(self) -> float:
        if self.windowed:
            return sum(self.window) / len(self.window) if self.window else 0.0
        finished = self.successful + self.failed
        return self.failed / finished if finished else 0.0

    def failure_count(self, now: float) -> int:
        if self.failure_window is None:
            return self.streak
        recent = self.failure_times[-self.failure_threshold:]
        return sum(1 for t in recent if now - t <= self.failure_window)

    def observe(self, now: float) -> None:
        """Reading the state (or the stats) turns a breaker whose recovery timeout
        has passed half-open."""
        if self.state == "open" and self.remaining(now) == 0.0:
            self._move("half_open")
            self.probe_deadline = now + self.recovery_timeout

    def admit(self, now: float) -> int | None:
        """The era the call runs in, or None when it is rejected."""
        if self.state == "open":
            if self.remaining(now) > 0.0:
                self.rejected += 1
                return None
            self._move("half_open")
            self.probe_deadline = now + self.recovery_timeout
        if self.state == "half_open":
            if self.probes == self.half_open_max_calls:
                if now < self.probe_deadline:
                    self.rejected += 1
                    return None
                # Probes that hold their permits for a whole recovery timeout are
                # given up on: a new era, so their late outcomes are stale.
                self.era += 1
                self.probes = self.probe_successes = 0
            self.probes += 1
            self.probe_deadline = now + self.recovery_timeout
        return self.era

    def finish(self, era: int, outcome: str, now: float) -> None:
        current = era == self.era
        probing = current and self.state == "half_open"
        if outcome in (SUCCESS, UNCOUNTED):
            self.successful += 1
            if probing:
                self.probes -= 1
                self.probe_successes += 1
                self.probe_deadline = now + self.recovery_timeout
                self.window.append(False)
                if self.probe_successes == self.success_threshold:
                    self._move("closed")
            elif current:
                self.streak = 0
                self.window.append(False)
        elif outcome == FAILURE:
            self.failed += 1
            self.last_failure = now
            if probing:
                self.window.append(True)
                self._open(now)
            elif current:
                self.window.append(True)
                self.streak += 1
                self.failure_times.append(now)
                if self.failure_window is None:
                    tripped = self.streak >= self.failure_threshold
                else:
                    recent = self.failure_times[-self.failure_threshold:]
                    tripped = (len(recent) == self.failure_threshold
                               and now - recent[0] <= self.failure_window)
                if tripped:
                    self._open(now)
        else:  # ignored, cancelled, interrupted: no verdict, the permit comes back
            if outcome == IGNORED:
                self.ignored += 1
            if probing:
                self.probes -= 1

    def reset(self) -> None:
        if self.state != "closed":
            self.transitions.append((self.state, "closed"))
        transitions, era = self.transitions, self.era
        self.__init__(self.failure_threshold, self.success_threshold,  # type: ignore[misc]
                      self.recovery_timeout, self.half_open_max_calls, self.failure_window,
                      self.windowed)
        self.transitions = transitions
        self.era = era + 1  # nothing admitted before the reset is current any more

    def force_open(self, now: float) -> None:
        if self.state != "open":
            self._open(now)
        self.held_open = True

    def force_closed(self) -> None:
        if self.state != "closed":
            self._move("closed")
        self.held_open = False


class BreakerComparison(RuleBasedStateMachine):
    """Shared set-up and invariants: a breaker, its model and a virtual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock()
        self.seen: list[tuple[str, str]] = []
        self.breaker: CircuitBreaker
        self.model: Model

    def build(self, window: str, **config: Any) -> None:
        extra: dict[str, Any] = {
            "consecutive": {},
            # a count window whose rate rule can never fire: the guarded call path
            "count-window": {"failure_rate_threshold": 1.0, "window_size": 1000,
                             "minimum_calls": 1000},
            "failure-window": {"failure_window": 7.5},
        }[window]
        self.breaker = CircuitBreaker(
            name="model", clock=self.clock, failure_exceptions=(Boom,),
            ignored_exceptions=(NotFound,),
            on_state_change=lambda b, old, new: self.seen.append((old.value, new.value)),
            **config, **extra,
        )
        self.model = Model(**config, failure_window=extra.get("failure_window"),
                           windowed=window == "count-window")

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    @rule(seconds=STEPS)
    def advance_time(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.model.remaining(self.now) not in (0.0, float("inf")))
    @rule(short_by=st.sampled_from([0.0, 0.0, 0.25]))
    def wait_out_the_recovery_timeout(self, short_by: float) -> None:
        # Land exactly on the recovery deadline (or just before it), where the
        # open -> half-open boundary is decided.
        self.clock.advance(max(0.0, self.model.remaining(self.now) - short_by))

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        self.model.reset()

    # One rule for both, weighted to closing, so that a breaker held open does not
    # crowd out the states worth exploring.
    @rule(action=st.sampled_from(["open", "closed", "closed"]))
    def force(self, action: str) -> None:
        if action == "open":
            self.breaker.force_open()
            self.model.force_open(self.now)
        else:
            self.breaker.force_closed()
            self.model.force_closed()

    def call_once(self, outcome: str) -> None:
        raise NotImplementedError

    @precondition(lambda self: self.model.state == "closed")
    @rule()
    def fail_until_open(self) -> None:
        for _ in range(self.model.failure_threshold):
            self.call_once(FAILURE)
        assert self.model.state == "open"

    def expect_rejection(self, error: CircuitBreakerError) -> None:
        assert error.state.value == self.model.state
        assert error.remaining_timeout == self.model.remaining(self.now)
        assert error.name == "model"

    @invariant()
    def state_matches(self) -> None:
        model, breaker = self.model, self.breaker
        model.observe(self.now)
        assert breaker.state.value == model.state
        assert breaker.is_open == (model.state == "open" and model.remaining(self.now) > 0.0)
        assert breaker.is_closed == (model.state == "closed")

    @invariant()
    def stats_match(self) -> None:
        self.model.observe(self.now)
        model, stats = self.model, self.breaker.stats
        assert stats.successful_calls == model.successful
        assert stats.failed_calls == model.failed
        assert stats.ignored_calls == model.ignored
        assert stats.rejected_calls == model.rejected
        assert stats.total_calls == (model.successful + model.failed + model.ignored
                                     + model.rejected)
        assert stats.trips == model.trips
        assert stats.state_changes == model.state_changes
        assert stats.last_failure_time == model.last_failure
        assert stats.failure_count == model.failure_count(self.now)
        assert stats.remaining_timeout == model.remaining(self.now)
        assert stats.failure_rate == model.failure_rate()

    @invariant()
    def listeners_saw_every_transition(self) -> None:
        assert self.seen == self.model.transitions

    @invariant()
    def probes_stay_within_the_limit(self) -> None:
        assert 0 <= self.model.probes <= self.model.half_open_max_calls


class SequentialCalls(BreakerComparison):
    """One call at a time: success, failure, ignored and uncounted exceptions,
    interrupts, time passing, resets and manual control."""

    @initialize(
        window=st.sampled_from(["consecutive", "count-window", "failure-window"]),
        failure_threshold=st.integers(1, 4),
        success_threshold=st.integers(1, 3),
        recovery_timeout=st.sampled_from([0.0, 1.0, 5.0, 30.0]),
        half_open_max_calls=st.integers(1, 3),
    )
    def create(self, window: str, **config: Any) -> None:
        self.build(window, **config)

    @rule(outcome=st.sampled_from([SUCCESS, FAILURE, IGNORED, UNCOUNTED, INTERRUPTED]),
          form=st.sampled_from(["call", "with", "decorator"]))
    def call(self, outcome: str, form: str = "call") -> None:
        ran = []
        raised = RAISED[outcome]

        def dependency() -> str:
            ran.append(True)
            if raised is not None:
                raise raised
            return "ok"

        era = self.model.admit(self.now)
        try:
            if form == "call":
                result = self.breaker.call(dependency)
            elif form == "decorator":
                result = self.breaker(dependency)()
            else:
                with self.breaker:
                    result = dependency()
        except CircuitBreakerError as error:
            assert era is None, "the model admitted a call the breaker rejected"
            assert ran == []
            self.expect_rejection(error)
            return
        except BaseException as error:
            caught: BaseException | None = error
        else:
            caught = None
            assert result == "ok"
        assert caught is raised, "the dependency's outcome must reach the caller unchanged"
        assert era is not None, "the breaker admitted a call the model rejected"
        assert ran == [True]
        self.model.finish(era, outcome, self.now)

    def call_once(self, outcome: str) -> None:
        self.call(outcome)


@dataclass
class Held:
    """A call entered with ``__enter__`` and not yet exited, in its own context."""

    context: contextvars.Context
    era: int


class OverlappingCalls(BreakerComparison):
    """Calls held open between ``__enter__`` and ``__exit__`` and finished in any
    order, so that half-open permits, stale outcomes and cancellation are exercised."""

    @initialize(
        window=st.sampled_from(["consecutive", "count-window"]),
        failure_threshold=st.integers(1, 3),
        success_threshold=st.integers(1, 3),
        recovery_timeout=st.sampled_from([0.0, 1.0, 5.0]),
        half_open_max_calls=st.integers(1, 3),
    )
    def create(self, window: str, **config: Any) -> None:
        self.held: list[Held] = []
        self.build(window, **config)

    @rule(count=st.integers(1, 4))
    def begin(self, count: int) -> None:
        for _ in range(count):
            self.begin_one()

    def begin_one(self) -> None:
        # Each held call gets its own context, so they can end in any order.
        context = contextvars.copy_context()
        era = self.model.admit(self.now)
        try:
            context.run(self.breaker.__enter__)
        except CircuitBreakerError as error:
            assert era is None, "the model admitted a call the breaker rejected"
            self.expect_rejection(error)
            return
        assert era is not None, "the breaker admitted a call the model rejected"
        self.held.append(Held(context, era))

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 100),
          outcome=st.sampled_from([SUCCESS, FAILURE, IGNORED, UNCOUNTED, CANCELLED,
                                   INTERRUPTED]))
    def finish(self, pick: int, outcome: str) -> None:
        call = self.held.pop(pick % len(self.held))
        raised = RAISED.get(outcome)
        if outcome == CANCELLED:
            raised = asyncio.CancelledError()
        exc_type = None if raised is None else type(raised)
        call.context.run(self.breaker.__exit__, exc_type, raised, None)
        self.model.finish(call.era, outcome, self.now)

    @rule(outcome=st.sampled_from([SUCCESS, FAILURE]))
    def quick_call(self, outcome: str) -> None:
        era = self.model.admit(self.now)
        raised = RAISED[outcome]

        def dependency() -> None:
            if raised is not None:
                raise raised

        try:
            self.breaker.call(dependency)
        except CircuitBreakerError as error:
            assert era is None
            self.expect_rejection(error)
            return
        except Boom:
            pass
        assert era is not None
        self.model.finish(era, outcome, self.now)

    def call_once(self, outcome: str) -> None:
        self.quick_call(outcome)

    @invariant()
    def held_probes_never_exceed_the_permits(self) -> None:
        if self.model.state == "half_open":
            current = [c for c in self.held if c.era == self.model.era]
            assert len(current) == self.model.probes


SETTINGS = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestSequentialCalls = SequentialCalls.TestCase
TestSequentialCalls.settings = SETTINGS

TestOverlappingCalls = OverlappingCalls.TestCase
TestOverlappingCalls.settings = SETTINGS


def test_the_model_trips_and_recovers_like_the_specification_says() -> None:
    # Guards the model itself: a hand-worked history.
    model = Model(failure_threshold=2, success_threshold=1, recovery_timeout=5.0,
                  half_open_max_calls=1)
    for _ in range(2):
        era = model.admit(0.0)
        assert era is not None
        model.finish(era, FAILURE, 0.0)
    assert model.state == "open"
    assert model.admit(4.75) is None
    assert model.remaining(4.75) == 0.25
    era = model.admit(5.0)
    assert (model.state, era) == ("half_open", 2)
    assert model.admit(5.0) is None
    model.finish(era, SUCCESS, 5.0)
    assert model.state == "closed"
    assert model.transitions == [("closed", "open"), ("open", "half_open"),
                                 ("half_open", "closed")]
