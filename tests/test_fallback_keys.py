"""CachedFallback answers a failed call only with a value cached for the same
call: keys built from positional and keyword arguments never collide, and the
cache stays bounded whatever arguments arrive."""

from __future__ import annotations

from typing import Any

import pytest

from buttress import CachedFallback
from buttress.testing import VirtualClock


class Down(Exception):
    """The dependency failed."""


def cached(**options: Any) -> tuple[Any, dict[str, bool]]:
    """A cached-fallback function that succeeds while ``switch["up"]``."""
    switch = {"up": True}

    @CachedFallback(clock=VirtualClock(), **options)
    def lookup(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        if not switch["up"]:
            raise Down("down")
        return (args, kwargs)

    return lookup, switch


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (((1,), {"a": 2}), (((1,), (("a", 2),)), {})),
        ((((1,), (("a", 2),)), {}), ((1,), {"a": 2})),
        (((), {"a": 1}), ((("a", 1),), {})),
        (((1, 2), {}), (((1, 2),), {})),
        (((1,), {"b": 2}), ((1,), {"c": 2})),
    ],
    ids=["kwargs-then-lookalike-tuple", "lookalike-tuple-then-kwargs", "kwarg-vs-pair",
         "args-vs-one-tuple", "different-keyword"],
)
def test_calls_that_differ_never_get_each_others_cached_value(
    first: tuple[tuple[Any, ...], dict[str, Any]], second: tuple[tuple[Any, ...], dict[str, Any]]
) -> None:
    lookup, switch = cached()
    args, kwargs = first
    lookup(*args, **kwargs)
    switch["up"] = False
    other_args, other_kwargs = second
    with pytest.raises(Down):
        lookup(*other_args, **other_kwargs)
    assert lookup(*args, **kwargs) == (args, kwargs)  # the cached call is still answered


def test_keyword_order_does_not_matter() -> None:
    lookup, switch = cached()
    lookup(1, a=1, b=2)
    switch["up"] = False
    assert lookup(1, b=2, a=1) == ((1,), {"a": 1, "b": 2})


def test_the_cache_holds_at_most_maxsize_entries_whatever_the_arguments() -> None:
    strategy = CachedFallback(maxsize=64, clock=VirtualClock())
    up = True

    @strategy
    def lookup(key: int, *, blob: str) -> str:
        if not up:
            raise Down("down")
        return blob

    for key in range(10_000):
        lookup(key, blob=f"value {key}")
    assert len(strategy._cache) == 64
    up = False
    # The 64 most recent calls are answered; anything older was evicted.
    for key in (9_999, 10_000 - 64):
        assert lookup(key, blob=f"value {key}") == f"value {key}"
    with pytest.raises(Down):
        lookup(10_000 - 65, blob=f"value {10_000 - 65}")


def test_unhashable_arguments_are_never_stored() -> None:
    strategy = CachedFallback(clock=VirtualClock())

    @strategy
    def lookup(filters: dict[str, int]) -> int:
        return len(filters)

    for n in range(100):
        assert lookup({"n": n}) == 1
    assert len(strategy._cache) == 0
