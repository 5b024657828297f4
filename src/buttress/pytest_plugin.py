"""pytest fixtures shipped with buttress (registered through the ``pytest11`` entry point).

* ``virtual_clock`` — a fresh :class:`buttress.testing.VirtualClock`.
* ``buttress_reset`` — clears every buttress registry before and after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from buttress.testing import VirtualClock, reset_registries


@pytest.fixture
def virtual_clock() -> VirtualClock:
    """A virtual clock starting at 0.0."""
    return VirtualClock()


@pytest.fixture
def buttress_reset() -> Iterator[None]:
    """Reset all buttress registries around the test."""
    reset_registries()
    yield
    reset_registries()
