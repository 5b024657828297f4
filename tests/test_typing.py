"""The public decorators keep the decorated function's type and the factories
type their keywords: ``mypy --strict`` checks the expectations in
``tests/typing/`` (``decorated.py``: ``assert_type`` on calls, ``.resilience``,
methods; ``factories.py``: misspelt keywords; calls that must be refused carry a
``type: ignore`` that ``--strict`` reports if it is not needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_decorated_functions_keep_their_types_under_mypy_strict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api", reason="mypy is a dev dependency (buttress[dev])")
    # This checkout's buttress, not whichever one is installed.
    monkeypatch.setenv("MYPYPATH", str(ROOT / "src"))
    stdout, stderr, status = api.run([
        "--strict", "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(tmp_path / "mypy_cache"), "--no-error-summary",
        *(str(path) for path in sorted((ROOT / "tests" / "typing").glob("*.py"))),
    ])
    assert (status, stdout, stderr) == (0, "", "")
