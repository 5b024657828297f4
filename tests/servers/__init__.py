"""Real servers for the integration tests, started on 127.0.0.1 random ports.

Outside CI a server that can not start skips its tests (with the reason); under
``CI=true`` it fails them: CI must run against the real thing.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def server_unavailable(message: str) -> NoReturn:
    """Fail under ``CI=true`` (a missing server must not pass silently), else skip."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip(message)
