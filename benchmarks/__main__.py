"""``python -m benchmarks [--quick] [--output FILE] [--cases PATTERN]``

Runs every case (or those whose id matches PATTERN, a case-insensitive regular
expression searched in ids such as ``retry-success/async/tenacity``,
``threads/buttress`` or ``memory/pybreaker``), prints the markdown report and
optionally writes it to FILE. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    cases_breaker,
    cases_memory,
    cases_overload,
    cases_pipeline,
    cases_retry,
    cases_threads,
    harness,
    machine,
    report,
)
from benchmarks.groups import MEMORY, RETRY_TWO_FAILURES, THREADS
from benchmarks.harness import KINDS, Case, Settings, case_id
from benchmarks.results import Findings, SleepCheck


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    timing: Settings
    thread_seconds: float
    thread_rounds: int

    def describe(self) -> str:
        return (f"{self.name} ({self.timing.rounds} rounds, ~{self.timing.batch_ms:g} ms "
                f"batches, seed {self.timing.seed}; threads {self.thread_seconds:g} s x "
                f"{self.thread_rounds} round{'s' if self.thread_rounds > 1 else ''})")


QUICK = Mode("quick", Settings(rounds=25, batch_ms=4), thread_seconds=0.25, thread_rounds=1)
FULL = Mode("full", Settings(rounds=100, batch_ms=10), thread_seconds=1.0, thread_rounds=3)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the markdown here")
    parser.add_argument("--cases", metavar="PATTERN", default="",
                        help="only cases whose id matches this regular expression")
    return parser.parse_args(argv)


def _progress(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


def _per_call_cases(selected: re.Pattern[str]) -> list[Case]:
    every = [*cases_retry.cases(), *cases_breaker.cases(), *cases_breaker.form_cases(),
             *cases_pipeline.cases(), *cases_overload.cases()]
    return [case for case in every if selected.search(case.id)]


def _sleep_check(selected: re.Pattern[str]) -> SleepCheck | None:
    ids = [case_id(RETRY_TWO_FAILURES, kind, "buttress") for kind in KINDS]
    if not any(selected.search(i) for i in ids):
        return None
    calls = cases_retry.check_no_sleep()
    return SleepCheck(calls, cases_retry.NO_SLEEP.sleeps)


def measure(mode: Mode, selected: re.Pattern[str]) -> Findings:
    """Run every selected case of ``mode``."""
    check = _sleep_check(selected)
    timings = harness.run(_per_call_cases(selected), mode.timing, _progress)
    thread_impls = [i for i in cases_threads.IMPLEMENTATIONS if selected.search(f"{THREADS}/{i}")]
    if thread_impls:
        _progress(f"threads: {', '.join(thread_impls)}")
    throughput = cases_threads.run(thread_impls, mode.thread_seconds, mode.thread_rounds,
                                   mode.timing.seed)
    memory_impls = [i for i in cases_memory.CREATORS if selected.search(f"{MEMORY}/{i}")]
    if memory_impls:
        _progress(f"memory: {', '.join(memory_impls)}")
    memory = cases_memory.run(memory_impls)
    if check is not None:
        # The timed buttress retries ran on the same raising clock: count them in.
        check = SleepCheck(check.calls, cases_retry.NO_SLEEP.sleeps)
    return Findings(timings, throughput, memory, check, cases_pipeline.STRATEGIES)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    mode = QUICK if args.quick else FULL
    selected = re.compile(args.cases, re.IGNORECASE)
    started = time.perf_counter()
    findings = measure(mode, selected)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = report.render(findings, machine.describe(), mode.describe(), date)
    print(text)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        _progress(f"wrote {args.output}")
    _progress(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
