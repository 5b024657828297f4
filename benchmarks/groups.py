"""The case groups: a key for each, the title and note the report prints."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BARE",
    "BREAKER_CLOSED",
    "BREAKER_FORMS",
    "BREAKER_OPEN",
    "BUDGET_SUCCESS",
    "GROUPS",
    "MEMORY",
    "PIPELINE",
    "RATE_LIMIT",
    "RETRY_EXHAUSTED",
    "RETRY_SUCCESS",
    "RETRY_TWO_FAILURES",
    "THREADS",
    "Group",
]


@dataclass(frozen=True, slots=True)
class Group:
    key: str
    title: str
    note: str = ""


BARE = "bare"
RETRY_SUCCESS = "retry-success"
RETRY_TWO_FAILURES = "retry-two-failures"
RETRY_EXHAUSTED = "retry-exhausted"
BREAKER_CLOSED = "breaker-closed"
BREAKER_OPEN = "breaker-open"
BREAKER_FORMS = "breaker-forms"
PIPELINE = "pipeline"
THREADS = "threads"
MEMORY = "memory"
BUDGET_SUCCESS = "budget-success"
RATE_LIMIT = "rate-limit"

GROUPS: tuple[Group, ...] = (
    Group(RETRY_SUCCESS, "a. Success-path retry",
          "A decorated function that returns at once (3 attempts allowed)."),
    Group(RETRY_TWO_FAILURES, "b. Two failures, then success, zero delay",
          "Every library configured for zero wait. Retry logging and "
          "instrumentation hooks are off for every library (buttress's logger has a "
          "`NullHandler`, so its WARNING per retry is never built). `hand-written "
          "loop` is a plain `for`/`try` with no library."),
    Group(RETRY_EXHAUSTED, "c. Retries exhausted",
          "3 attempts, zero delay, then the last error (reraised by every library); "
          "the timing includes catching it."),
    Group(BREAKER_CLOSED, "d. Closed breaker, success path",
          "A decorated function through a closed breaker."),
    Group(BREAKER_OPEN, "e. Open breaker rejection",
          "The breaker is forced or tripped open; the timing includes raising and "
          "catching the rejection."),
    Group(BREAKER_FORMS, "e2. Every breaker call form, closed and open",
          "buttress only: a closed breaker as decorator, `with`/`async with` block, "
          "`call`/`acall`; then an open breaker's rejection per form, next to raising "
          "and catching a plain exception (`raise and catch`, no breaker)."),
    Group(PIPELINE, "f. Five-strategy async pipeline",
          "fallback → retry → circuit breaker → timeout → bulkhead around an async "
          "function that returns at once. Peers: a try/except fallback, tenacity, "
          "aiobreaker, `asyncio.timeout` and `asyncio.Semaphore`."),
    Group(THREADS, "g. Breaker-protected blocking I/O across threads",
          "Each thread calls a function doing `time.sleep(0.001)` through one shared "
          "closed breaker; calls per second and scaling against one thread."),
    Group(MEMORY, "h. Memory",
          "tracemalloc bytes still allocated after creating the breakers and keeping "
          "them in a list (the list included; names made beforehand; a warm-up "
          "creation runs first)."),
    Group(BUDGET_SUCCESS, "i. Retry budget, success path",
          "What a budget adds to a call that succeeds: `TokenBucketBudget.on_success` "
          "(one comparison while the bucket is full), `RatioBudget.on_request` + "
          "`on_success` (one counter step), next to an empty method call."),
    Group(RATE_LIMIT, "j. Uncontended rate-limiter acquire",
          "A permit that is free (rate and burst 10^9). `hand-written GCRA` is the "
          "floor: a closure doing the GCRA arithmetic under a lock (and without it); "
          "buttress is `RateLimiter.try_acquire` / `acquire_async`; limits uses its "
          "in-memory storage; pyrate-limiter `try_acquire(blocking=False)`; aiolimiter "
          "`acquire()`. Read the `buttress / peer` column as the peer's cost in "
          "buttress units; the floor's row gives buttress's cost in floor units."),
)
