"""Retry budgets: a cap on retries shared by every caller of a dependency.

Retries multiply load exactly when a dependency is weakest: at 100 % failure,
three retries per call send four times the offered load. A budget caps the
retries of many policies and clients together, so that they add a bounded
fraction to the load however badly the dependency fails.

Two budgets, one protocol (:class:`RetryBudget`):

* :class:`TokenBucketBudget`, gRPC's retry throttling: the bucket starts full
  at ``max_tokens``; each failure takes 1 token, each success gives back
  ``token_ratio``; a retry (or hedge) may go only while the tokens are above
  ``max_tokens / 2``. With ``token_ratio=0.1`` a healthy dependency that starts
  failing gets at most ``max_tokens / 2`` retries, then about one retry per ten
  successes.
* :class:`RatioBudget`, Envoy's and Finagle's: retries may be at most
  ``ratio`` of the first attempts sent over a sliding ``window`` (seconds), plus
  ``min_retries_per_second`` so that a quiet client can still retry.

How a caller drives a budget (:class:`~buttress.Retry` does it for you)::

    budget.on_request()          # a first attempt is sent
    ... the attempt fails ...
    budget.on_failure()
    if budget.try_spend():       # may a retry go now? (counted when it may)
        ... retry ...
    ... an attempt succeeds ...
    budget.on_success()

Invariants:

* Memory is bounded: a token count, or a fixed ring of ``slots`` buckets.
* Thread-safe: changes happen under a lock, but the success path takes none.
  The token bucket's ``on_success`` is one comparison while the bucket is full
  (the steady state of a healthy dependency); the ratio budget's
  ``on_request`` is one C-level counter increment (``itertools.count``, atomic
  under the GIL) and its ``on_success`` does nothing. Requests counted on that
  path are moved into the window's buckets on the next slow-path call; when
  the clock moved on meanwhile they are spread evenly over the time since the
  previous slow-path call (they are not time-stamped one by one).
* Policies never read the clock: only the ratio budget does, on the slow path.
"""

from __future__ import annotations

import itertools
from typing import Protocol, runtime_checkable

from buttress._core import forksafe, validate
from buttress._core.clock import SYSTEM_CLOCK, Clock
from buttress._core.errors import ConfigurationError
from buttress._core.window import Window

__all__ = ["RatioBudget", "RetryBudget", "TokenBucketBudget"]

_REQUESTS, _RETRIES = 0, 1  # the ratio budget's two counts


@runtime_checkable
class RetryBudget(Protocol):
    """What every retry budget does; share one object between the policies and
    clients that call one dependency.

    .. versionadded:: 0.3
    """

    def on_request(self) -> None:
        """A first attempt was sent (a ratio budget counts it)."""
        ...

    def try_spend(self) -> bool:
        """May a retry (or a hedged attempt) go now? A ratio budget records the
        retry when it answers True."""
        ...

    def on_success(self) -> None:
        """An attempt succeeded."""
        ...

    def on_failure(self) -> None:
        """An attempt failed (with a retryable failure)."""
        ...


class TokenBucketBudget:
    """gRPC's retry throttling: a bucket of ``max_tokens`` (it starts full);
    a failure costs 1, a success earns ``token_ratio``; retries go only while
    the tokens are above ``max_tokens / 2``::

        >>> budget = TokenBucketBudget(max_tokens=4, token_ratio=0.5)
        >>> budget.on_failure(); budget.try_spend()   # 3 > 2
        True
        >>> budget.on_failure(); budget.try_spend()   # 2 is not > 2
        False
        >>> budget.on_success(); budget.tokens
        2.5

    ``max_tokens`` is in (0, 1000] and ``token_ratio`` in (0, 1], as gRPC
    requires; tokens are kept to three decimals as gRPC does, so a long run of
    small earnings adds up exactly.

    .. versionadded:: 0.3
    """

    __slots__ = ("__weakref__", "_earning", "_full", "_lock", "_threshold", "_tokens",
                 "max_tokens", "token_ratio")

    def __init__(self, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        o = "TokenBucketBudget"
        #: The bucket's size and starting tokens.
        self.max_tokens = validate.number(o, "max_tokens", max_tokens, minimum=0.0,
                                          strict_minimum=True, maximum=1000.0)
        #: Tokens a success earns back.
        self.token_ratio = validate.number(o, "token_ratio", token_ratio, minimum=0.0,
                                           strict_minimum=True, maximum=1.0)
        # Thousandths of a token, as integers: 0.1 earned ten times is exactly 1.
        self._tokens = self._full = round(self.max_tokens * 1000)
        self._threshold = self._tokens / 2
        self._earning = round(self.token_ratio * 1000)
        self._lock = forksafe.lock()

    @property
    def tokens(self) -> float:
        """Tokens in the bucket now."""
        return self._tokens / 1000

    def on_request(self) -> None:
        """Nothing to count: the bucket only follows outcomes."""

    def on_success(self) -> None:
        """Earn ``token_ratio`` back, up to ``max_tokens``."""
        if self._tokens < self._full:  # full: no lock, one comparison
            with self._lock:
                self._tokens = min(self._full, self._tokens + self._earning)

    def on_failure(self) -> None:
        """Take one token (never below zero)."""
        with self._lock:
            self._tokens = max(0, self._tokens - 1000)

    def refill(self) -> None:
        """Fill the bucket again (between tests, or after an incident)."""
        with self._lock:
            self._tokens = self._full

    def try_spend(self) -> bool:
        """True while the tokens are above ``max_tokens / 2`` (nothing is taken:
        the failure that led here already paid)."""
        return self._tokens > self._threshold

    def __repr__(self) -> str:
        return (f"TokenBucketBudget(max_tokens={self.max_tokens:g}, "
                f"token_ratio={self.token_ratio:g}, tokens={self.tokens:g})")


class RatioBudget:
    """Retries at most ``ratio`` of the first attempts sent over the last
    ``window`` seconds, plus ``min_retries_per_second`` (times the window) so a
    quiet client may still retry, as Finagle's and Envoy's budgets do::

        >>> from buttress.testing import VirtualClock
        >>> clock = VirtualClock()
        >>> budget = RatioBudget(ratio=0.2, min_retries_per_second=0, window=10, clock=clock)
        >>> for _ in range(10):
        ...     budget.on_request()
        >>> [budget.try_spend() for _ in range(3)]    # 20 % of 10 requests
        [True, True, False]
        >>> clock.advance(10.0)                       # the window has moved on
        >>> budget.try_spend()
        False

    The window is a ring of ``slots`` buckets (``window / slots`` seconds each);
    a bucket is dropped whole as it leaves the window.

    .. versionadded:: 0.3
    """

    __slots__ = ("__weakref__", "_counted", "_lock", "_pending", "_window", "clock",
                 "min_retries_per_second", "ratio", "slots", "window")

    def __init__(self, ratio: float = 0.2, min_retries_per_second: float = 10.0,
                 window: float = 10.0, *, slots: int = 10, clock: Clock | None = None) -> None:
        o = "RatioBudget"
        #: The share of first attempts that may be retried (0.2: one in five).
        self.ratio = validate.number(o, "ratio", ratio, minimum=0.0, maximum=1000.0)
        #: Retries per second allowed whatever the traffic.
        self.min_retries_per_second = validate.number(
            o, "min_retries_per_second", min_retries_per_second, minimum=0.0)
        #: The sliding window, seconds.
        self.window = validate.number(o, "window", window, minimum=0.0, strict_minimum=True)
        #: Buckets the window is cut into.
        self.slots = validate.integer(o, "slots", slots, minimum=1)
        if self.slots > 3600:
            raise ConfigurationError(f"{o}.slots", slots, "<= 3600")
        self.clock = SYSTEM_CLOCK if clock is None else clock
        self._lock = forksafe.lock()
        self._window = Window(self.window, self.slots, 2, self.clock.monotonic())
        self._pending = itertools.count()
        # First attempts already moved into the buckets, plus the values the
        # slow path itself drew from the counter to read it.
        self._counted = 0

    def on_request(self) -> None:
        """Count a first attempt: one C-level counter step, no lock (see the
        module's invariants)."""
        next(self._pending)

    def on_success(self) -> None:
        """Nothing to do: the budget follows requests and retries."""

    def on_failure(self) -> None:
        """Nothing to do: a failure only matters if it is retried (:meth:`try_spend`)."""

    def _advance_locked(self) -> int:
        """Move the window to now and the counted first attempts into it; return
        the index of the current bucket. Called with the lock held."""
        index, steps = self._window.advance(self.clock.monotonic())
        drawn = next(self._pending)  # one more than the requests counted so far
        fresh = drawn - self._counted
        self._counted = drawn + 1
        if fresh:
            # Counted since the last slow-path call, ``steps`` buckets ago.
            self._window.spread(_REQUESTS, index, fresh, steps)
        return index

    def try_spend(self) -> bool:
        """True (and the retry counted) when the retries in the window stay within
        ``ratio`` of its first attempts plus the per-second minimum."""
        with self._lock:
            current = self._advance_locked()
            allowed = (self.ratio * self._window.total(_REQUESTS)
                       + self.min_retries_per_second * self.window)
            if self._window.total(_RETRIES) + 1 <= allowed + 1e-9:
                self._window.add(_RETRIES, current)
                return True
            return False

    @property
    def requests(self) -> float:
        """First attempts counted in the window now."""
        with self._lock:
            self._advance_locked()
            return self._window.total(_REQUESTS)

    @property
    def retries(self) -> int:
        """Retries counted in the window now."""
        with self._lock:
            self._advance_locked()
            return int(self._window.total(_RETRIES))

    def __repr__(self) -> str:
        return (f"RatioBudget(ratio={self.ratio:g}, min_retries_per_second="
                f"{self.min_retries_per_second:g}, window={self.window:g})")
