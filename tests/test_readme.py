"""Every Python example in README.md runs as it is printed.

Each ```python block runs in its own interpreter, as a reader pasting it into
a file would run it; a block that defines ``test_*`` functions (the testing
section) has them called too. A README example that stops working fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)

CALL_TESTS = """

for _name, _fn in list(globals().items()):
    if _name.startswith("test_") and callable(_fn):
        _fn()
        print(f"{_name}: passed")
"""


def _label(block: str) -> str:
    """The block's first meaningful line, as the test id."""
    for line in block.splitlines():
        if line.strip() and not line.startswith(("import ", "from ")):
            return line.strip()[:40]
    return block.splitlines()[0][:40]


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 10


@pytest.mark.wallclock
@pytest.mark.parametrize("block", BLOCKS, ids=[_label(block) for block in BLOCKS])
def test_readme_example_runs(block: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block + CALL_TESTS, encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BUTTRESS_")},
           "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"{block}\n--- stdout ---\n{result.stdout}\n" \
                                   f"--- stderr ---\n{result.stderr}"
    if "def test_" in block:
        assert ": passed" in result.stdout
