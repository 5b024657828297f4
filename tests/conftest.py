"""Shared fixtures: every test starts and ends with empty buttress registries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from buttress.testing import reset_registries


@pytest.fixture(autouse=True)
def _fresh_registries() -> Iterator[None]:
    reset_registries()
    yield
    reset_registries()
