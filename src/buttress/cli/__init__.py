"""The ``buttress`` command line (needs the ``cli`` extra: ``pip install 'buttress[cli]'``).

This module imports nothing optional, so a missing extra ends in a one-line
hint instead of a traceback.
"""

from __future__ import annotations

import sys
from typing import Final

__all__ = ["main"]

_EXTRA_MODULES: Final = frozenset({"typer", "rich", "click"})
HINT: Final = "buttress: the command line needs typer and rich: pip install 'buttress[cli]'"


def main() -> None:
    """Run the ``buttress`` command (the console script's entry point)::

        $ buttress demo --quick

    Exits with status 2 and a hint on stderr when the ``cli`` extra is missing.
    """
    try:
        from buttress.cli.app import app
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _EXTRA_MODULES:
            raise
        print(HINT, file=sys.stderr)
        raise SystemExit(2) from None
    app(prog_name="buttress")
