"""Counting instructions per call under valgrind's callgrind.

A *source* is a ``src`` directory holding a ``buttress`` package. Every case runs in
a worker process (:mod:`benchmarks.callgrind_worker`) that imports the benchmark's
case code from this checkout and ``buttress`` from the source. Instructions per call
are the difference between two batches of N1 and N2 calls divided by N2 - N1, which
cancels start-up, imports, set-up and a batch's own constant cost.

Two ways to get the two batches' counts:

- *dumps* (the default): one valgrind process per chunk of cases forks a child per
  case, which runs the case's batches back to back (every case starts from the same
  state); ``--dump-before=getppid`` dumps the counters at the marker calls the child
  makes around every batch and around the ``gc.collect(0)`` after it, so each has a
  dump of its own and start-up (about a billion instructions, 50 s under callgrind)
  is paid once per chunk, not twice per case;
- *isolated*: two valgrind processes per case, one batch each, and the
  ``Collected`` total of each (``--callgrind-out-file=/dev/null``).

Both leave automatic garbage collection off, as the wall-clock batches do, so the
two agree; only *dumps* also gives what the collector then takes per call.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.callgrind_worker import MARKER

__all__ = [
    "ROOT",
    "Counts",
    "Measured",
    "Runner",
    "Source",
    "ValgrindMissing",
    "baseline_source",
    "collected",
    "dump_totals",
    "per_call",
    "require_valgrind",
    "split",
]

ROOT = Path(__file__).resolve().parents[1]
MARKERS_PER_CASE = 5  # before the first batch; after each of the two, around gc.collect(0)


class ValgrindMissing(RuntimeError):
    """valgrind is not on PATH."""


def require_valgrind() -> str:
    """valgrind's path, or :class:`ValgrindMissing` saying how to get it."""
    path = shutil.which("valgrind")
    if path is None:
        raise ValgrindMissing(
            "valgrind is not installed (or not on PATH): instruction counts need "
            "`valgrind --tool=callgrind`. Install it (Debian/Ubuntu: apt-get install "
            "valgrind) and run again.")
    return path


@dataclass(frozen=True, slots=True)
class Counts:
    """Calls per batch: ``warmup`` unmeasured, then ``n1`` and ``n2``."""

    warmup: int
    n1: int
    n2: int

    def __post_init__(self) -> None:
        if not 0 <= self.n1 < self.n2 or self.warmup < 0:
            raise ValueError(f"need 0 <= N1 < N2 and warmup >= 0, got {self}")


@dataclass(frozen=True, slots=True)
class Source:
    """A ``src`` directory to measure, and how the report names it."""

    label: str
    src: Path
    description: str


@dataclass
class Measured:
    """Instructions per call by case id; what ``gc.collect(0)`` took per call to
    free what the calls left (dumps only); why the other cases have none."""

    per_call: dict[str, float] = field(default_factory=dict)
    collector: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def update(self, other: Measured) -> None:
        self.per_call.update(other.per_call)
        self.collector.update(other.collector)
        self.skipped.update(other.skipped)


# --- pure helpers ----------------------------------------------------------------------

_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)
_COLLECTED = re.compile(r"==\d+== Collected : (\d+)")


def dump_totals(text: str) -> int:
    """The instruction total of one callgrind dump file's text."""
    match = _TOTALS.search(text)
    if match is None:
        raise ValueError("no 'totals:' line in the callgrind dump")
    return int(match.group(1))


def collected(stderr: str) -> int:
    """The ``Collected`` total callgrind prints on exit."""
    match = _COLLECTED.search(stderr)
    if match is None:
        raise ValueError(f"no 'Collected' line in valgrind's output:\n{stderr[-2000:]}")
    return int(match.group(1))


def per_call(first: int, second: int, counts: Counts) -> float:
    """Instructions per call from the totals of an N1-call and an N2-call batch."""
    return (second - first) / (counts.n2 - counts.n1)


def split(items: Sequence[str], chunks: int) -> list[list[str]]:
    """``items`` dealt round-robin into at most ``chunks`` non-empty lists."""
    step = max(1, chunks)
    dealt: list[list[str]] = [list(items[i::step]) for i in range(step)]
    return [chunk for chunk in dealt if chunk]


# --- sources ---------------------------------------------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe_src(src: Path) -> str:
    """``src`` with its checkout's commit (and ``+ changes`` when it differs)."""
    done = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h %cI"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return str(src)
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{src} (commit {done.stdout.strip()}{' + uncommitted changes' if dirty else ''})"


@contextmanager
def baseline_source(commit: str, parent: Path) -> Iterator[Source]:
    """A ``git worktree add`` of ``commit`` under ``parent``, removed afterwards."""
    full = _git("rev-parse", "--verify", f"{commit}^{{commit}}")
    subject = _git("log", "-1", "--format=%h %cI %s", full)
    path = parent / "baseline"
    _git("worktree", "add", "--detach", "--quiet", str(path), full)
    try:
        yield Source("baseline", path / "src", f"commit {subject}")
    finally:
        _git("worktree", "remove", "--force", str(path))


# --- running ---------------------------------------------------------------------------


class Runner:
    """Runs workers natively and under callgrind, ``jobs`` at a time."""

    def __init__(self, valgrind: str, scratch: Path, counts: Counts, jobs: int,
                 progress: Callable[[str], None] = lambda _: None) -> None:
        self.valgrind = valgrind
        self.scratch = scratch
        self.counts = counts
        self.jobs = jobs
        self.progress = progress

    def _env(self, src: Path) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(src), str(ROOT)])
        env["PYTHONHASHSEED"] = "0"  # the same dict and set orders in every run
        # Bytecode compiled once by the native check run, kept in our own scratch
        # directory: no worker compiles under callgrind, no source tree is written.
        env["PYTHONPYCACHEPREFIX"] = str(self.scratch / "pycache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def _worker(self, src: Path, args: list[str], prefix: list[str] | None = None
                ) -> tuple[list[dict[str, object]], str]:
        command = [*(prefix or []), sys.executable, "-m", "benchmarks.callgrind_worker", *args]
        done = subprocess.run(command, cwd=self.scratch, env=self._env(src),
                              capture_output=True, text=True, check=False)
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"worker failed ({done.returncode}): {' '.join(command)}\n"
                               f"{done.stderr[-3000:]}")
        self._check_source(src, lines[0])
        return lines[1:], done.stderr

    @staticmethod
    def _check_source(src: Path, header: dict[str, object]) -> None:
        imported = Path(str(header.get("source"))).resolve()
        if not imported.is_relative_to(src.resolve()):
            raise RuntimeError(f"the worker imported buttress from {imported}, not from {src}")

    def check(self, src: Path, selection: list[str] | str) -> tuple[list[str], dict[str, str]]:
        """Natively build and call each case once (it also compiles the bytecode):
        the case ids that run, and why the others do not."""
        args = ["--pattern", selection] if isinstance(selection, str) else list(selection)
        lines, _ = self._worker(src, [*args, "--check"])
        runnable = [str(line["case"]) for line in lines if line["status"] == "ok"]
        skipped = {str(line["case"]): str(line["detail"]) for line in lines
                   if line["status"] != "ok"}
        return runnable, skipped

    def _dumps_chunk(self, src: Path, cases: list[str]) -> Measured:
        out = Path(tempfile.mkdtemp(prefix="dumps-", dir=self.scratch))
        # %p: each forked child writes its own dumps, cg.<pid>.1, cg.<pid>.2, ...
        prefix = [self.valgrind, "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
                  f"--dump-before={MARKER}", "--dump-line=no"]
        c = self.counts
        lines, _ = self._worker(src, [*cases, "--warmup", str(c.warmup), "--calls", str(c.n1),
                                      str(c.n2), "--markers"], prefix)
        totals = {}
        for line in lines:
            if "pid" in line:
                dumps = sorted(out.glob(f"cg.{line['pid']}.*"), key=lambda p: int(p.suffix[1:]))
                totals[str(line["case"])] = [dump_totals(p.read_text()) for p in dumps]
        shutil.rmtree(out, ignore_errors=True)
        return self.assign(cases, lines, totals)

    def assign(self, cases: list[str], lines: list[dict[str, object]],
               totals: dict[str, list[int]]) -> Measured:
        """Per-call counts from each case's dumps, five per case: the first closes
        the set-up and warm-up; then the N1 batch, its collection, the N2 batch and
        its collection."""
        measured = Measured()
        reported = {str(line["case"]): line for line in lines}
        for case in cases:
            line = reported.get(case)
            if line is None:
                measured.skipped[case] = "no result: the worker's process for it died"
            elif line["status"] == "skipped":
                measured.skipped[case] = str(line["detail"])
            elif line["status"] == "failed":
                measured.skipped[case] = f"failed under callgrind: {line['detail']}"
            else:
                dumps = totals.get(case, [])
                if len(dumps) != MARKERS_PER_CASE:
                    raise RuntimeError(f"{case}: expected {MARKERS_PER_CASE} callgrind dumps, "
                                       f"found {len(dumps)}: something else called {MARKER}()")
                _, first, first_gc, second, second_gc = dumps
                measured.per_call[case] = per_call(first, second, self.counts)
                measured.collector[case] = per_call(first_gc, second_gc, self.counts)
        return measured

    def _isolated_case(self, src: Path, case: str) -> Measured:
        prefix = [self.valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        totals = []
        for n in (self.counts.n1, self.counts.n2):
            lines, stderr = self._worker(src, [case, "--warmup", str(self.counts.warmup),
                                               "--calls", str(n)], prefix)
            if lines[0]["status"] != "ok":
                return Measured(skipped={case: f"failed under callgrind: {lines[0]['detail']}"})
            totals.append(collected(stderr))
        return Measured(per_call={case: per_call(totals[0], totals[1], self.counts)})

    def _task(self, source: Source, chunk: list[str], isolated: bool) -> Measured:
        self.progress(f"{source.label}: {len(chunk)} case{'s' if len(chunk) > 1 else ''} "
                      f"under callgrind{' (isolated)' if isolated else ''}")
        if isolated:
            return self._isolated_case(source.src, chunk[0])
        return self._dumps_chunk(source.src, chunk)

    def measure(self, plan: list[tuple[Source, list[str]]], isolated: bool
                ) -> dict[str, Measured]:
        """Instructions per call for each source's cases, by source label. Without
        ``isolated``, each source's cases are dealt into ``jobs // sources`` chunks
        (at least one), a valgrind process each."""
        chunks = max(1, self.jobs // max(1, len(plan)))
        tasks = [(source, chunk) for source, cases in plan
                 for chunk in ([[c] for c in cases] if isolated else split(cases, chunks))]
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(self._task, source, chunk, isolated)
                       for source, chunk in tasks]
            results = [future.result() for future in futures]
        merged = {source.label: Measured() for source, _ in plan}
        for (source, _), result in zip(tasks, results, strict=True):
            merged[source.label].update(result)
        return merged
