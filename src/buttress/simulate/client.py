"""Simulated clients: buttress's own decision code, driven in virtual time.

A :class:`ClientPolicy` says how a client protects its calls, with buttress's
real configuration objects: a :class:`~buttress.RetryConfig`, a
:class:`~buttress.CircuitBreakerConfig`, a retry budget and a per-attempt
timeout. A :class:`Client` runs calls under it the way buttress's pipeline
does (retry, then breaker, then timeout, then the call), but on an
:class:`~buttress.simulate.engine.EventLoop` instead of a thread:

* every retry decision is :meth:`buttress.retry.RetryPolicy.decide` (so the
  backoff is :mod:`buttress.backoff`'s, jitter included, from a seeded
  random source);
* every admission and outcome goes through a
  :class:`buttress._core.breaker_machine.BreakerMachine`; an open breaker's
  rejection is offered to ``decide`` as the :class:`CircuitBreakerError` a
  real call raises, which buttress does not retry;
* the budget is asked (``try_spend``) before every retry, told of every call
  (``on_request``) and of every attempt's outcome (``on_success``/``on_failure``).

A timed-out attempt is abandoned, not cancelled: its request stays at the
dependency, and its late answer is counted as wasted work.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from buttress._core import validate
from buttress._core.breaker_machine import REJECT, BreakerMachine, CircuitState
from buttress._core.clock import Clock
from buttress._core.errors import CircuitBreakerError
from buttress.breaker import CircuitBreakerConfig
from buttress.budget import RatioBudget, RetryBudget, TokenBucketBudget
from buttress.retry import Decision, Outcome, RetryConfig, RetryPolicy, RetryState
from buttress.simulate.dependency import Dependency
from buttress.simulate.engine import EventLoop
from buttress.simulate.timeline import Timeline

__all__ = ["BudgetFactory", "Client", "ClientPolicy", "DependencyError", "ratio_budget",
           "token_bucket"]

BudgetFactory = Callable[[Clock], RetryBudget]
"""Makes one client's retry budget, given the simulation's clock."""


def token_bucket(max_tokens: float = 10.0, token_ratio: float = 0.1) -> BudgetFactory:
    """A factory of :class:`~buttress.budget.TokenBucketBudget` (gRPC's retry
    throttling) for :class:`ClientPolicy`; the arguments are checked at once."""
    TokenBucketBudget(max_tokens, token_ratio)

    def make(clock: Clock) -> RetryBudget:
        return TokenBucketBudget(max_tokens, token_ratio)

    return make


def ratio_budget(ratio: float = 0.2, min_retries_per_second: float = 10.0,
                 window: float = 10.0) -> BudgetFactory:
    """A factory of :class:`~buttress.budget.RatioBudget` (Envoy's and Finagle's)
    on the simulation's clock, for :class:`ClientPolicy`."""
    RatioBudget(ratio, min_retries_per_second, window)

    def make(clock: Clock) -> RetryBudget:
        return RatioBudget(ratio, min_retries_per_second, window, clock=clock)

    return make


class DependencyError(Exception):
    """The dependency answered with an error (or refused the request)."""


_ERROR: Final = DependencyError("dependency error")
_TIMEOUT: Final = TimeoutError("attempt timed out")
_FAILED: Final = Outcome.raised(_ERROR)
_TIMED_OUT: Final = Outcome.raised(_TIMEOUT)
_RETRY: Final = Decision.RETRY


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientPolicy:
    """How a simulated client protects its calls; every part is optional.

    ``retry`` and ``breaker`` are buttress's own configs; ``budget`` makes one
    retry budget per client (a budget is per process, as a breaker is; see
    :func:`token_bucket` and :func:`ratio_budget`);
    ``timeout`` is the seconds a client waits for one attempt::

        ClientPolicy(name="retry x3", retry=RetryConfig(max_attempts=3), timeout=1.0)
    """

    name: str
    retry: RetryConfig | None = None
    breaker: CircuitBreakerConfig | None = None
    budget: BudgetFactory | None = None
    timeout: float | None = None

    def __post_init__(self) -> None:
        o = "ClientPolicy"
        validate.text(o, "name", self.name)
        validate.optional_instance(o, "retry", self.retry, RetryConfig, "a RetryConfig or None")
        validate.optional_instance(o, "breaker", self.breaker, CircuitBreakerConfig,
                                   "a CircuitBreakerConfig or None")
        validate.optional_callable(o, "budget", self.budget)
        validate.optional_number(o, "timeout", self.timeout, minimum=0.0, strict_minimum=True)

    def with_rng(self, rng: random.Random) -> ClientPolicy:
        """This policy with its retry jitter drawn from ``rng`` (for seeded runs)."""
        if self.retry is None:
            return self
        return ClientPolicy(name=self.name, retry=self.retry.replace(rng=rng),
                            breaker=self.breaker, budget=self.budget, timeout=self.timeout)


class _Call:
    """One logical call in flight: its retry state and its current attempt."""

    __slots__ = ("attempt", "epoch", "sent_at", "state", "waiting")

    def __init__(self, now: float) -> None:
        self.state = RetryState(now)
        self.attempt = 0        # the attempt whose answer is awaited (1-based)
        self.waiting = False    # whether that answer still counts
        self.epoch = 0          # the breaker epoch the attempt was admitted in
        self.sent_at = now


class Client:
    """One client process: its own breaker and budget, sharing a dependency."""

    __slots__ = ("_budget", "_dependency", "_loop", "_rejection", "_retry", "_timeline",
                 "_timeout", "breaker", "policy")

    def __init__(self, policy: ClientPolicy, loop: EventLoop, dependency: Dependency,
                 timeline: Timeline) -> None:
        self.policy = policy
        self._loop = loop
        self._dependency = dependency
        self._timeline = timeline
        self._retry = None if policy.retry is None else RetryPolicy(policy.retry)
        self.breaker = None if policy.breaker is None else BreakerMachine(policy.breaker)
        # A budget in the RetryConfig itself (one object shared by every client)
        # is honoured as well: decide() is pure, so the client drives it.
        shared: RetryBudget | None = getattr(policy.retry, "budget", None)
        self._budget = shared if policy.budget is None else policy.budget(loop)
        self._timeout = policy.timeout
        name = policy.breaker.name if policy.breaker is not None else "simulated"
        self._rejection = Outcome.raised(
            CircuitBreakerError(name, CircuitState.OPEN, 0.0))

    @property
    def breaker_state(self) -> CircuitState:
        """The breaker's state (closed without a breaker); an open breaker whose
        break is over counts as open until a call finds it so."""
        return CircuitState.CLOSED if self.breaker is None else self.breaker.state

    def call(self) -> None:
        """Start a logical call now."""
        now = self._loop.now
        self._timeline.add("offered", now)
        if self._budget is not None:
            self._budget.on_request()
        self._attempt(_Call(now))

    def _attempt(self, call: _Call) -> None:
        now = self._loop.now
        call.attempt += 1
        if call.attempt > 1:
            call.state.attempts = call.attempt
        machine = self.breaker
        if machine is not None:
            epoch, _ = machine.admit(now)
            if epoch == REJECT:
                self._timeline.add("rejected", now)
                self._settle(call, self._rejection)
                return
            call.epoch = epoch
        timeline = self._timeline
        timeline.add("sent", now)
        if call.attempt > 1:
            timeline.add("retries", now)
        call.waiting = True
        call.sent_at = now
        attempt = call.attempt
        self._dependency.submit(lambda ok: self._answered(call, attempt, ok))
        if self._timeout is not None:
            self._loop.after(self._timeout, self._timed_out, call, attempt)

    def _answered(self, call: _Call, attempt: int, ok: bool) -> None:
        if not call.waiting or call.attempt != attempt:
            self._timeline.add("late", self._loop.now)
            return
        call.waiting = False
        self._outcome(call, None if ok else _FAILED)

    def _timed_out(self, call: _Call, attempt: int) -> None:
        if call.waiting and call.attempt == attempt:
            call.waiting = False
            self._timeline.add("timeouts", self._loop.now)
            self._outcome(call, _TIMED_OUT)

    def _outcome(self, call: _Call, failure: Outcome | None) -> None:
        """An attempt that reached the dependency ended: tell the breaker and the
        budget, then finish or ask the retry policy."""
        now = self._loop.now
        machine, budget = self.breaker, self._budget
        if failure is None:
            if machine is not None:
                machine.record_success(call.epoch, now, now - call.sent_at)
            if budget is not None:
                budget.on_success()
            self._timeline.add("succeeded", now)
            return
        if machine is not None:
            machine.record_failure(call.epoch, now, now - call.sent_at, failure.exception)
        if budget is not None:
            budget.on_failure()
        self._settle(call, failure)

    def _settle(self, call: _Call, failure: Outcome) -> None:
        """A failed attempt: retry after the policy's wait, if the budget allows."""
        now = self._loop.now
        policy = self._retry
        if policy is not None:
            decision = policy.decide(call.state, failure, now)
            if decision.kind is _RETRY:
                budget = self._budget
                if budget is None or budget.try_spend():
                    call.state.previous_delay = decision.delay
                    self._loop.after(decision.delay, self._attempt, call)
                    return
                self._timeline.add("denied", now)
        self._timeline.add("failed", now)
