"""Shared fixtures: every test starts and ends with empty buttress registries,
through the ``buttress_reset`` fixture that buttress's pytest plugin ships."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_registries(buttress_reset: None) -> None:
    """Apply the shipped reset fixture to every test."""
