"""What runs inside valgrind for ``python -m benchmarks.instructions``.

``python -m benchmarks.callgrind_worker [--pattern P] [--check | --calls N [N ...]]
[--warmup W] [--markers] [CASE_ID ...]`` builds each named case (or every case whose
id matches P) with the wall-clock benchmark's own code, against whichever
``buttress`` is first on ``sys.path``, and runs it through that benchmark's batch
loop (:func:`benchmarks.harness.time_batch`).

``--markers`` measures each case in a forked child (``{"pid": ...}`` in its line)
and calls :data:`MARKER` (``os.getppid``) once before the first batch,
and after every batch twice, around a ``gc.collect(0)``; under
``--dump-before=getppid`` callgrind dumps its counters there, so each batch's
instructions, and the collector's for what the batch left, land in dumps of their
own. Without it the process runs one batch, the caller reads the process's total,
and the process ends at once (``os._exit``), skipping the interpreter's teardown.
Automatic garbage collection is off in a measuring run (threshold 0).

It prints one JSON object per line on stdout: first ``{"source": <buttress's
__init__.py>}``, then ``{"case": id, "status": "ok" | "skipped" | "failed",
"detail": ...}`` per case, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
from benchmarks.harness import KINDS, Case, bare_cases, time_batch

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
    found = {case.id: case for case in bare_cases(KINDS)}
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
    """Run one batch per count; the first error, if any.

    With ``markers``: a marker before the first batch, and after each batch a
    marker, ``gc.collect(0)`` and a marker, so a batch and the collection of what
    it left (reference cycles the collector alone can free) land in dumps of their
    own. Every marker is made even after an error, so later cases' dumps stay aligned.
    """
    error = None
    gc.collect()  # the set-up's and warm-up's garbage is no batch's
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
            gc.collect(0)
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
    """The named cases; or those matching the pattern, with the bare call of each
    kind among them (every overhead is taken over it)."""
    if args.pattern is None:
        return list(args.cases)
    if args.pattern:
        pattern = re.compile(args.pattern, re.IGNORECASE)
        chosen = [case_id for case_id in found if pattern.search(case_id)]
    else:
        chosen = [case_id for case_id in found if is_default(case_id)]
    kinds = {found[case_id].kind for case_id in chosen}
    bare = [case.id for case in bare_cases(KINDS) if case.kind in kinds]
    return [*bare, *(case_id for case_id in chosen if case_id not in bare)]


def _run(case: Case, args: argparse.Namespace, loop: asyncio.AbstractEventLoop
         ) -> dict[str, Any]:
    """Set up, warm up and measure one case: its status line."""
    try:
        call = case.setup()
        time_batch(case, call, 2 if args.check else args.warmup, loop)
    except Exception as exc:
        return {"status": "skipped", "detail": f"can not run: {_error(exc)}"}
    error = None if args.check else _measure(case, call, args.calls, args.markers, loop)
    return {"status": "ok" if error is None else "failed", "detail": error}


def _in_loop(case: Case, args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    try:
        return _run(case, args, loop)
    finally:
        loop.close()


def _forked(case: Case, args: argparse.Namespace) -> None:
    """Measure ``case`` in a forked child, which prints its own line (with its pid:
    its dumps are named after it). Every case so starts from the state right after
    the imports: run one after another in one process, a case's count moved by up
    to 3% with the cases before it (shared code's specialisations, allocator state)."""
    pid = os.fork()
    if pid == 0:
        try:
            _emit(case=case.id, pid=os.getpid(), **_in_loop(case, args))
        except BaseException as exc:
            _emit(case=case.id, pid=os.getpid(), status="failed", detail=_error(exc))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import buttress

    _emit(source=buttress.__file__)
    found, problems = _load()
    if not args.check:
        # No automatic collection anywhere in a measuring run: the wall-clock
        # batches run with the collector off, and time_batch's gc.enable() between
        # batches must not start one inside a measured segment.
        gc.set_threshold(0)
    missing = "; ".join(problems) or "no such case in this source"
    for case_id in _selected(args, found):
        case = found.get(case_id)
        if case is None:
            _emit(case=case_id, status="skipped", detail=missing)
        elif args.markers:
            _forked(case, args)
        else:
            _emit(case=case_id, **_in_loop(case, args))
    if args.calls and not args.markers:
        # One batch, its process's total read: end before the interpreter's
        # teardown, whose cost grows with what the batch left behind.
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
