"""``python -m benchmarks.instructions [--baseline COMMIT] [--output FILE] [--src DIR]``

Instructions per call under valgrind's callgrind for every buttress form the
wall-clock benchmark times (cases a-c, e2 and f, with the bare calls and the
hand-written loop as floors), and their overhead over the bare call. Unlike
wall-clock times these counts are deterministic and comparable across machines
and commits. With ``--baseline`` the same cases also run against that commit's
``src`` (a temporary ``git worktree add``), the report gives the ratio, and issue
11's targets become instruction budgets. Prints the markdown report; progress goes
to stderr. Needs valgrind.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.callgrind import (
    ROOT,
    Counts,
    Runner,
    Source,
    ValgrindMissing,
    baseline_source,
    describe_src,
    require_valgrind,
)
from benchmarks.instructions_report import Report, render

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="COMMIT",
                        help="also measure this commit's src and compare")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="also write the markdown here")
    parser.add_argument("--src", type=Path, default=ROOT / "src", metavar="DIR",
                        help="the src directory to measure (default: this checkout's)")
    parser.add_argument("--cases", metavar="PATTERN", default="",
                        help="only cases whose id matches this regular expression "
                             "(default: buttress and the floors)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls first")
    parser.add_argument("--n1", type=int, default=500,
                        help="calls in the first batch (over 256: every loop index is a new int)")
    parser.add_argument("--n2", type=int, default=1500, help="calls in the second batch")
    parser.add_argument("--jobs", type=int, default=2,
                        help="valgrind processes at a time (default 2)")
    parser.add_argument("--isolated", action="store_true",
                        help="one valgrind process per batch (slow: for checking)")
    return parser.parse_args(argv)


def _progress(message: str) -> None:
    print(f"[instructions] {message}", file=sys.stderr, flush=True)


def _valgrind_version(valgrind: str) -> str:
    done = subprocess.run([valgrind, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "valgrind"


def _fail(message: str) -> int:
    print(f"python -m benchmarks.instructions: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        valgrind = require_valgrind()
        counts = Counts(args.warmup, args.n1, args.n2)
    except (ValgrindMissing, ValueError) as exc:
        return _fail(str(exc))
    src = args.src.resolve()
    if not (src / "buttress" / "__init__.py").is_file():
        return _fail(f"{src} holds no buttress package")
    started = time.perf_counter()
    current = Source("current", src, describe_src(src))
    with tempfile.TemporaryDirectory(prefix="buttress-instructions-") as scratch, \
            ExitStack() as stack:
        runner = Runner(valgrind, Path(scratch), counts, max(1, args.jobs), _progress)
        _progress(f"checking the cases natively against {src}")
        selected, unrunnable = runner.check(src, args.cases)
        if not selected:
            return _fail(f"no case matches {args.cases!r}: {unrunnable}")
        plan = [(current, selected)]
        baseline = None
        if args.baseline:
            baseline = stack.enter_context(baseline_source(args.baseline, Path(scratch)))
            _progress(f"baseline: {baseline.description}")
            old, old_unrunnable = runner.check(baseline.src, selected)
            plan.append((baseline, old))
        measured = runner.measure(plan, args.isolated)
    measured[current.label].skipped.update(unrunnable)
    if baseline is not None:
        measured[baseline.label].skipped.update(old_unrunnable)
    report = Report(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), counts=counts,
        isolated=args.isolated,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        valgrind=_valgrind_version(valgrind), current=current, measured=measured,
        baseline=baseline, seconds=time.perf_counter() - started, order=selected)
    text = render(report)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        _progress(f"wrote {args.output}")
    _progress(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
