"""Cases i and j: a retry budget on the success path, and an uncontended
rate-limiter acquire against a minimal hand-written GCRA and the peers.

Every limiter is set far above the rate the loop reaches (10^9 per second,
a burst of 10^9), so every acquire succeeds: this times the bookkeeping of a
granted permit, not waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import aiolimiter
import limits
import limits.aio.storage
import limits.aio.strategies
import pyrate_limiter

from benchmarks.groups import BUDGET_SUCCESS, RATE_LIMIT
from benchmarks.harness import Case
from buttress.budget import RatioBudget, TokenBucketBudget
from buttress.ratelimit import RateLimiter

__all__ = ["cases"]

HUGE = 10**9


# --- i. budgets --------------------------------------------------------------------------


def _token_bucket() -> Callable[[], Any]:
    return TokenBucketBudget(max_tokens=100, token_ratio=0.1).on_success


def _ratio() -> Callable[[], Any]:
    budget = RatioBudget(ratio=0.2)
    on_request, on_success = budget.on_request, budget.on_success

    def success_path() -> None:
        on_request()
        on_success()

    return success_path


class _Empty:
    def method(self) -> None:
        return None


def _empty_method() -> Callable[[], Any]:
    return _Empty().method


# --- j. rate limiters --------------------------------------------------------------------


def _gcra_by_hand(locked: bool) -> Callable[[], bool]:
    """The floor: GCRA in a closure, the clock read once, nothing else."""
    interval, tau = 1.0 / HUGE, HUGE / HUGE
    state = [time.monotonic()]
    monotonic = time.monotonic
    lock = threading.Lock()

    def acquire() -> bool:
        now = monotonic()
        tat = state[0] if state[0] > now else now
        if tat + interval - tau > now:
            return False
        state[0] = tat + interval
        return True

    def acquire_locked() -> bool:
        with lock:
            now = monotonic()
            tat = state[0] if state[0] > now else now
            if tat + interval - tau > now:
                return False
            state[0] = tat + interval
            return True

    return acquire_locked if locked else acquire


def _buttress(algorithm: str) -> Callable[[], Any]:
    return RateLimiter(rate=HUGE, burst=HUGE, algorithm=algorithm).try_acquire


def _buttress_async() -> Callable[[], Any]:
    return RateLimiter(rate=HUGE, burst=HUGE).acquire_async


def _gcra_by_hand_async() -> Callable[[], Any]:
    acquire = _gcra_by_hand(True)

    async def acquire_async() -> bool:
        return acquire()

    return acquire_async


def _limits(strategy: str) -> Callable[[], Any]:
    storage = limits.storage.MemoryStorage()
    limiter = getattr(limits.strategies, strategy)(storage)
    item = limits.parse(f"{HUGE}/second")
    hit = limiter.hit

    def acquire() -> bool:
        return hit(item, "bench")  # type: ignore[no-any-return]

    return acquire


def _pyrate() -> Callable[[], Any]:
    limiter = pyrate_limiter.Limiter(pyrate_limiter.Rate(HUGE, pyrate_limiter.Duration.SECOND))
    try_acquire = limiter.try_acquire

    def acquire() -> Any:
        return try_acquire("bench", blocking=False)

    return acquire


def _aiolimiter() -> Callable[[], Any]:
    limiter = aiolimiter.AsyncLimiter(HUGE, 1)
    return limiter.acquire


def cases() -> list[Case]:
    """Cases i and j."""
    return [
        Case(BUDGET_SUCCESS, "buttress", "sync", _token_bucket),
        Case(BUDGET_SUCCESS, "buttress ratio budget", "sync", _ratio),
        Case(BUDGET_SUCCESS, "empty method call", "sync", _empty_method),
        Case(RATE_LIMIT, "buttress", "sync", lambda: _buttress("gcra")),
        Case(RATE_LIMIT, "buttress token bucket", "sync", lambda: _buttress("token_bucket")),
        Case(RATE_LIMIT, "hand-written GCRA", "sync", lambda: _gcra_by_hand(True)),
        Case(RATE_LIMIT, "hand-written GCRA, no lock", "sync", lambda: _gcra_by_hand(False)),
        Case(RATE_LIMIT, "limits fixed window", "sync",
             lambda: _limits("FixedWindowRateLimiter")),
        Case(RATE_LIMIT, "limits moving window", "sync",
             lambda: _limits("MovingWindowRateLimiter")),
        Case(RATE_LIMIT, "pyrate-limiter", "sync", _pyrate),
        Case(RATE_LIMIT, "buttress", "async", _buttress_async),
        Case(RATE_LIMIT, "hand-written GCRA", "async", _gcra_by_hand_async),
        Case(RATE_LIMIT, "aiolimiter", "async", _aiolimiter),
    ]
