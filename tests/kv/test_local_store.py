"""The Redis fallback alone: a bounded LRU with TTLs on a virtual clock, and the
journal of writes Redis has not seen (pure policy, no server)."""

from __future__ import annotations

import pytest

from buttress.stores._local import LocalStore, Replay, WrongTypeError
from buttress.testing import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def test_a_value_expires_after_its_ttl_on_the_injected_clock(clock: VirtualClock) -> None:
    store = LocalStore(8, clock)
    store.set(b"k", b"v", 10.0, pending=False)
    clock.advance(9.999)
    assert store.get(b"k") == b"v"
    clock.advance(0.001)
    assert store.get(b"k") is None
    assert len(store) == 0  # an expired, already written value is forgotten


def test_the_least_recently_used_key_is_evicted_beyond_maxsize(clock: VirtualClock) -> None:
    store = LocalStore(2, clock)
    store.set(b"a", b"1", None, pending=False)
    store.set(b"b", b"2", None, pending=False)
    assert store.get(b"a") == b"1"  # a is now the most recently used
    store.set(b"c", b"3", None, pending=False)
    assert (store.get(b"a"), store.get(b"b"), store.get(b"c")) == (b"1", None, b"3")
    assert store.dropped == 0  # b was only a mirror: nothing lost


def test_evicting_a_journaled_write_drops_it_and_counts_it(clock: VirtualClock) -> None:
    store = LocalStore(2, clock)
    store.set(b"a", b"1", None, pending=True)
    store.set(b"b", b"2", None, pending=True)
    store.set(b"c", b"3", None, pending=True)
    assert store.dropped == 1
    assert store.pending == 2
    assert [r.key for r in store.take_pending() or []] == [b"b", b"c"]


def test_the_journal_replays_each_keys_latest_state_once(clock: VirtualClock) -> None:
    store = LocalStore(8, clock)
    store.set(b"s", b"1", None, pending=True)
    store.set(b"s", b"2", 30.0, pending=True)
    store.delete((b"gone",), pending=True)
    store.hset(b"h", {b"f": b"v"}, pending=True)
    store.delete((b"fresh",), pending=True)
    store.hset(b"fresh", {b"x": b"1"}, pending=True)
    clock.advance(10.0)
    assert store.take_pending() == [
        Replay("set", b"s", b"2", 20_000),
        Replay("delete", b"gone", None, None),
        Replay("merge", b"h", {b"f": b"v"}, None),  # Redis's other fields stay
        Replay("hash", b"fresh", {b"x": b"1"}, None),  # deleted first: exactly these
    ]


def test_a_journaled_value_that_expired_replays_as_a_delete(clock: VirtualClock) -> None:
    store = LocalStore(8, clock)
    store.set(b"k", b"v", 1.0, pending=True)
    clock.advance(2.0)
    assert store.get(b"k") is None
    assert store.take_pending() == [Replay("delete", b"k", None, None)]


def test_a_failed_flush_puts_the_writes_back_and_a_second_flush_waits(
        clock: VirtualClock) -> None:
    store = LocalStore(8, clock)
    store.set(b"k", b"v", None, pending=True)
    replays = store.take_pending()
    assert replays is not None
    assert store.take_pending() is None  # one flush at a time
    assert store.pending == 1  # still owed to Redis while the flush runs
    store.finish_flush(replays)
    assert store.pending == 1
    assert store.take_pending() == [Replay("set", b"k", b"v", None)]
    store.finish_flush([])
    assert store.pending == 0


def test_a_hash_command_on_a_string_is_a_type_error(clock: VirtualClock) -> None:
    store = LocalStore(8, clock)
    store.set(b"k", b"v", None, pending=False)
    with pytest.raises(WrongTypeError):
        store.hget(b"k", b"f")
    with pytest.raises(WrongTypeError):
        store.hset(b"k", {b"f": b"v"}, pending=True)
    store.hset(b"h", {b"f": b"v"}, pending=False)
    with pytest.raises(WrongTypeError):
        store.get(b"h")


def test_hset_counts_only_new_fields(clock: VirtualClock) -> None:
    store = LocalStore(8, clock)
    assert store.hset(b"h", {b"a": b"1", b"b": b"2"}, pending=True) == 2
    assert store.hset(b"h", {b"a": b"9", b"c": b"3"}, pending=True) == 1
    assert store.hget(b"h", b"a") == b"9"
