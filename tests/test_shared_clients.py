"""``SharedClients``: one client per key for the ``get_*_client()`` factories,
bounded, and the same one for callers that race."""

from __future__ import annotations

import threading

import pytest

from buttress._core.shared import SharedClients


def test_the_same_key_gets_the_same_client_made_once() -> None:
    shared: SharedClients[str, object] = SharedClients(4)
    made: list[str] = []

    def make(key: str) -> object:
        made.append(key)
        return object()

    first = shared.get("a", lambda: make("a"))
    assert shared.get("a", lambda: make("a")) is first
    assert made == ["a"]


def test_only_the_most_recently_used_are_kept() -> None:
    shared: SharedClients[int, object] = SharedClients(2)
    one = shared.get(1, object)
    shared.get(2, object)
    assert shared.get(1, object) is one  # 1 is now the most recent
    shared.get(3, object)                # 2 is forgotten
    assert len(shared) == 2
    assert shared.get(1, object) is one
    assert len(shared.clear()) == 2
    assert len(shared) == 0


def test_callers_that_race_all_get_the_one_stored_first() -> None:
    shared: SharedClients[str, object] = SharedClients(4)
    barrier = threading.Barrier(8)
    got: list[object] = []

    def make() -> object:
        return object()

    def caller() -> None:
        barrier.wait(timeout=5)
        got.append(shared.get("k", make))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(got) == 8
    assert len({id(client) for client in got}) == 1


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        SharedClients(0)
