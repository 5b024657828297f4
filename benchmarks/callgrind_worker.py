"""What runs inside valgrind for ``python -m benchmarks.instructions``.

``python -m benchmarks.callgrind_worker [--pattern P] [--check | --calls N [N ...]]
[--warmup W] [--markers] [CASE_ID ...]`` builds each named case (or every case whose
id matches P) with the wall-clock benchmark's own code, against whichever
``buttress`` is first on ``sys.path``, and runs it through that benchmark's batch
loop (:func:`benchmarks.harness.time_batch`).

``--markers`` calls :data:`MARKER` (``os.getppid``) once before the first batch and
once after every batch; under ``--dump-before=getppid`` callgrind dumps its counters
there, so each batch's instructions land in a dump of their own. Without it the
process runs one batch and the caller reads the process's total.

It prints one JSON object per line on stdout: first ``{"source": <buttress's
__init__.py>}``, then ``{"case": id, "status": "ok" | "skipped" | "failed",
"detail": ...}`` per case, in order. A skipped case emitted no marker; a failed one
emitted all of its markers (its dumps are discarded).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.groups import (
    BARE,
    BREAKER_FORMS,
    PIPELINE,
    RETRY_EXHAUSTED,
    RETRY_SUCCESS,
    RETRY_TWO_FAILURES,
)
from benchmarks.harness import Case, bare_cases, time_batch

__all__ = ["DEFAULT_IMPLS", "MARKER", "is_default", "main"]

# The C function callgrind dumps before (``--dump-before``). Nothing else in a
# run calls it; the caller checks the number of dumps.
MARKER = "getppid"

# The case modules of the wall-clock benchmark, and the function listing each one's
# per-call cases. Imported lazily: an old source may fail to import one of them.
_SOURCES: tuple[tuple[str, str], ...] = (
    ("benchmarks.cases_retry", "cases"),
    ("benchmarks.cases_breaker", "form_cases"),
    ("benchmarks.cases_pipeline", "cases"),
)

# Without a pattern: buttress and the floors of every group issue 11 item 7 names.
DEFAULT_IMPLS: dict[str, tuple[str, ...] | None] = {
    BARE: None,
    RETRY_SUCCESS: ("buttress", "buttress + metrics listener"),
    RETRY_TWO_FAILURES: ("buttress", "hand-written loop"),
    RETRY_EXHAUSTED: ("buttress", "hand-written loop"),
    BREAKER_FORMS: None,
    PIPELINE: ("buttress",),
}


def is_default(case_id: str) -> bool:
    """Whether a case id belongs to the default selection (None: every impl)."""
    group, _, impl = case_id.split("/", 2)
    if group not in DEFAULT_IMPLS:
        return False
    impls = DEFAULT_IMPLS[group]
    return impls is None or impl in impls


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _load() -> tuple[dict[str, Case], list[str]]:
    """Every per-call case by id, and one line per case module that failed to load."""
    found = {case.id: case for case in bare_cases(("sync", "async"))}
    problems = []
    for module_name, function in _SOURCES:
        try:
            listing: Callable[[], list[Case]] = getattr(importlib.import_module(module_name),
                                                        function)
            found.update((case.id, case) for case in listing())
        except Exception as exc:
            problems.append(f"{module_name} does not load against this source: {_error(exc)}")
    return found, problems


def _marker() -> None:
    os.getppid()


def _measure(case: Case, call: Callable[[], Any], calls: list[int], markers: bool,
             loop: asyncio.AbstractEventLoop) -> str | None:
    """Run one batch per count, markers around them; the first error, if any. Every
    marker is emitted even after an error, so later cases' dumps stay aligned."""
    error = None
    if markers:
        _marker()
    for n in calls:
        if error is None:
            try:
                time_batch(case, call, n, loop)
            except Exception as exc:
                error = _error(exc)
        if markers:
            _marker()
    return error


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind_worker",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", metavar="CASE_ID")
    parser.add_argument("--pattern", default=None,
                        help="every case whose id matches this regex ('' = the default set)")
    parser.add_argument("--check", action="store_true",
                        help="build each case and call it twice, no batches")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--calls", type=int, nargs="+", default=[])
    parser.add_argument("--markers", action="store_true")
    return parser.parse_args(argv)


def _selected(args: argparse.Namespace, found: dict[str, Case]) -> list[str]:
    if args.pattern is None:
        return list(args.cases)
    if not args.pattern:
        return [case_id for case_id in found if is_default(case_id)]
    pattern = re.compile(args.pattern, re.IGNORECASE)
    return [case_id for case_id in found if pattern.search(case_id)]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import buttress

    _emit(source=buttress.__file__)
    found, problems = _load()
    missing = "; ".join(problems) or "no such case in this source"
    loop = asyncio.new_event_loop()
    try:
        for case_id in _selected(args, found):
            case = found.get(case_id)
            if case is None:
                _emit(case=case_id, status="skipped", detail=missing)
                continue
            try:
                call = case.setup()
                time_batch(case, call, 2 if args.check else args.warmup, loop)
            except Exception as exc:
                _emit(case=case_id, status="skipped", detail=f"can not run: {_error(exc)}")
                continue
            error = None if args.check else _measure(case, call, args.calls, args.markers, loop)
            _emit(case=case_id, status="ok" if error is None else "failed", detail=error)
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
