"""Every Python example of the README's HTTP section (``docs/readme/http.md``) runs
as it is printed, each in its own interpreter, and prints what its comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = (ROOT / "docs" / "readme" / "http.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```$", SECTION, flags=re.MULTILINE | re.DOTALL)


def _expected(block: str) -> list[str]:
    """The ``# value`` comments after print() calls: what the reader is told to expect."""
    return [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+# (.+)$", block,
                                                     flags=re.MULTILINE)]


def test_the_section_has_examples() -> None:
    assert len(BLOCKS) >= 7


@pytest.mark.wallclock
@pytest.mark.parametrize("block", BLOCKS, ids=[f"example-{i}" for i in range(len(BLOCKS))])
def test_the_example_runs_and_prints_what_it_says(block: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert len(printed) == len(_expected(block))
    for line, expected in zip(printed, _expected(block), strict=True):
        if "<" in expected:  # a placeholder such as <port>
            pattern = re.escape(expected).replace(re.escape("<port>"), r"\d+")
            assert re.fullmatch(pattern, line), (line, expected)
        else:
            assert line == expected, (line, expected)
