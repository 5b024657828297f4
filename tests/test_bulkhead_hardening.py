"""The sync bulkhead never loses a permit and never makes one.

Interrupted waiters (a signal handler's exception, Ctrl-C), stray releases and
waits too long for ``threading`` are the cases covered here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from buttress import (
    Bulkhead,
    BulkheadConfig,
    BulkheadFullError,
    ConfigurationError,
    OperationTimeoutError,
    Timeout,
    TimeoutConfig,
)
from buttress.testing import VirtualClock


class Interrupted(Exception):
    """What a SIGALRM handler raises in the waiting thread."""


class WaitHook(VirtualClock):
    """A clock whose ``wait`` runs ``during`` instead of waiting: the test
    decides what happens while a caller sits in the queue."""

    def __init__(self) -> None:
        super().__init__()
        self.during: Callable[[threading.Event], bool] = lambda event: False

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return self.during(event)


def full_bulkhead(clock: WaitHook) -> Bulkhead:
    """A bulkhead of one permit, taken, with room for one waiter."""
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1, clock=clock)
    bulkhead.acquire()
    return bulkhead


def raise_(exc: BaseException) -> Callable[[threading.Event], bool]:
    def during(event: threading.Event) -> bool:
        raise exc

    return during


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), Interrupted("SIGALRM")])
def test_a_waiter_interrupted_in_the_queue_leaves_it(interrupt: BaseException) -> None:
    clock = WaitHook()
    bulkhead = full_bulkhead(clock)
    clock.during = raise_(interrupt)
    with pytest.raises(type(interrupt)):
        bulkhead.acquire()
    assert bulkhead.queued == 0


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), Interrupted("SIGALRM")])
def test_the_permit_freed_after_an_interrupted_wait_goes_to_the_next_caller(
        interrupt: BaseException) -> None:
    clock = WaitHook()
    bulkhead = full_bulkhead(clock)
    clock.during = raise_(interrupt)
    with pytest.raises(type(interrupt)):
        bulkhead.acquire()
    bulkhead.release()
    assert bulkhead.active == 0
    bulkhead.acquire()  # at once: the permit was not handed to the interrupted waiter
    assert bulkhead.active == 1


def test_a_waiter_interrupted_just_after_being_handed_a_permit_gives_it_back() -> None:
    clock = WaitHook()
    bulkhead = full_bulkhead(clock)

    def handed_then_interrupted(event: threading.Event) -> bool:
        bulkhead.release()  # the holder leaves: its permit passes to this waiter
        assert event.is_set()
        raise KeyboardInterrupt

    clock.during = handed_then_interrupted
    with pytest.raises(KeyboardInterrupt):
        bulkhead.acquire()
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


def test_a_real_sigalrm_timeout_while_queued_leaks_no_permit() -> None:
    # max_wait bounds the test should the alarm never come.
    bulkhead = Bulkhead(max_concurrent=1, max_queue=1, max_wait=5.0)
    calls: list[str] = []
    limited = Timeout(TimeoutConfig(timeout_seconds=0.05, use_signal=True))(
        bulkhead(lambda: calls.append("ran")))
    bulkhead.acquire()
    with pytest.raises(OperationTimeoutError):
        limited()
    bulkhead.release()
    assert (bulkhead.active, bulkhead.queued) == (0, 0)
    bulkhead(lambda: calls.append("next"))()
    assert calls == ["next"]


def test_a_release_without_an_acquire_raises() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    with pytest.raises(ValueError, match="no permit taken"):
        bulkhead.release()
    assert bulkhead.active == 0


def test_a_second_release_of_one_permit_raises() -> None:
    bulkhead = Bulkhead(max_concurrent=2)
    bulkhead.acquire()
    bulkhead.release()
    with pytest.raises(ValueError, match="no permit taken"):
        bulkhead.release()
    for _ in range(2):
        bulkhead.acquire()
    assert bulkhead.active == 2  # still two permits, not three


def test_a_stray_release_does_not_let_a_call_past_a_full_bulkhead() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=0)
    with pytest.raises(ValueError):
        bulkhead.release()
    bulkhead.acquire()
    with pytest.raises(BulkheadFullError):
        bulkhead.acquire()


@pytest.mark.parametrize("max_wait", [threading.TIMEOUT_MAX * 2, 1e300])
def test_a_max_wait_longer_than_threading_can_wait_is_refused_by_name(max_wait: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        BulkheadConfig(max_wait=max_wait)
    assert "BulkheadConfig.max_wait" in str(info.value)
    assert repr(max_wait) in str(info.value)


def test_a_bulkhead_built_from_options_refuses_the_same_max_wait() -> None:
    with pytest.raises(ConfigurationError, match="max_wait"):
        Bulkhead(max_concurrent=1, max_wait=threading.TIMEOUT_MAX * 2)


def test_the_longest_wait_threading_allows_is_accepted() -> None:
    assert BulkheadConfig(max_wait=threading.TIMEOUT_MAX).max_wait == threading.TIMEOUT_MAX
