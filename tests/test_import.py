"""``import buttress`` is dependency-free, complete and typed."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib import metadata, resources
from pathlib import Path

import buttress

OPTIONAL = ("typer", "rich", "httpx", "pytest", "hypothesis", "_pytest")


def test_import_buttress_loads_no_third_party_module() -> None:
    code = (
        "import json, sys\n"
        "import buttress\n"
        f"print(json.dumps(sorted(m for m in {OPTIONAL!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_import_buttress_loads_only_the_standard_library() -> None:
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import buttress\n"
        "new = {m.partition('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(new - set(sys.stdlib_module_names) - {'buttress'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_every_name_in_all_resolves() -> None:
    missing = [name for name in buttress.__all__ if not hasattr(buttress, name)]
    assert missing == []
    assert len(set(buttress.__all__)) == len(buttress.__all__)


def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from buttress import *", namespace)
    assert set(buttress.__all__) <= set(namespace)


def test_core_names_are_exported() -> None:
    for name in ("retry", "CircuitBreaker", "timeout", "with_fallback", "pipeline",
                 "OperationTimeoutError", "TimeoutConfig", "timeout_operation",
                 "async_timeout", "Pipeline", "Fallback"):
        assert name in buttress.__all__


def test_buttress_ships_py_typed() -> None:
    marker = resources.files("buttress").joinpath("py.typed")
    assert marker.is_file()


def test_the_built_wheel_contains_py_typed(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("buttress-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "buttress/py.typed" in names
    assert "buttress/__init__.py" in names


def test_version_matches_the_distribution() -> None:
    assert buttress.__version__ == metadata.version("buttress")
