"""The markdown report: header, one table per case group, targets, checks."""

from __future__ import annotations

from benchmarks.groups import GROUPS, MEMORY, PIPELINE, THREADS, Group
from benchmarks.harness import KINDS, Kind, Timings, bare_id, case_id
from benchmarks.results import Findings
from benchmarks.targets import Target, evaluate

__all__ = ["render"]

BUTTRESS = "buttress"

METHOD = (
    "Method: every round times each case and a bare-call baseline (a plain function; "
    "for async, a bare coroutine awaited) back to back in a seeded shuffled order; a "
    "timing is one batch of N calls in a tight loop (N calibrated per case), garbage "
    "collector off, async batches inside one event loop created per round. µs/call is "
    "the median over rounds; overhead and the buttress/peer ratios are taken inside "
    "each round and their median reported. Ratios below 1 favour buttress."
)


def _us(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def _ratio(value: float, better: str, worse: str) -> str:
    if value <= 1:
        return f"{value:.3g} ({1 / max(value, 1e-9):.1f}x {better})"
    return f"{value:.3g} ({value:.1f}x {worse})"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --- per-call groups -------------------------------------------------------------------


def _row(timings: Timings, group: str, kind: Kind, case: str) -> list[str]:
    impl = case.rsplit("/", 1)[1]
    per_call = _us(timings.per_call_us(case))
    if case == bare_id(kind):
        return [impl, per_call, "—", "—", "—"]
    row = [impl, per_call, _us(timings.overhead_us(case))]
    ours = case_id(group, kind, BUTTRESS)
    if impl == BUTTRESS or not timings.has(ours):
        return [*row, "—", "—"]
    return [*row, _ratio(timings.ratio(ours, case), "faster", "slower"),
            _ratio(timings.overhead_ratio(ours, case), "less", "more")]


def _kind_table(timings: Timings, group: str, kind: Kind) -> list[str]:
    prefix = case_id(group, kind, "")
    cases = [c for c in timings.per_call_ns if c.startswith(prefix)]
    failed = {c: error for c, error in timings.errors.items() if c.startswith(prefix)}
    if not cases and not failed:
        return []
    rows = [_row(timings, group, kind, c) for c in [bare_id(kind), *cases]]
    rows += [[c.rsplit("/", 1)[1], f"error: {error}", "", "", ""] for c, error in failed.items()]
    header = [f"{kind} implementation", "µs/call", "overhead over bare (µs)",
              "buttress / peer, time", "buttress / peer, overhead"]
    return [*_table(header, ["---", "--:", "--:", "--:", "--:"], rows), ""]


def _per_call_section(findings: Findings, group: Group) -> list[str]:
    tables = [line for kind in KINDS for line in _kind_table(findings.timings, group.key, kind)]
    if not tables:
        return []
    notes = [group.note]
    if group.key == PIPELINE and findings.pipeline_strategies < 5:
        notes.append(f"**Bulkhead missing:** buttress's pipeline runs "
                     f"{findings.pipeline_strategies} strategies (no `buttress.Bulkhead` "
                     f"yet); the peers' composition runs all five.")
    return [f"## {group.title}", "", *(f"{note}\n" for note in notes), *tables]


# --- threads and memory ------------------------------------------------------------------


def _threads_section(findings: Findings, group: Group) -> list[str]:
    if not findings.throughput:
        return []
    counts = sorted({t.threads for t in findings.throughput})
    rates = {(t.impl, t.threads): t.calls_per_second for t in findings.throughput}
    impls = list(dict.fromkeys(t.impl for t in findings.throughput))
    rows = [
        [impl, *(f"{rates[impl, n]:,.0f}/s ({rates[impl, n] / rates[impl, counts[0]]:.1f}x)"
                 for n in counts)]
        for impl in impls
    ]
    header = ["implementation", *(f"{n} thread{'s' if n > 1 else ''}" for n in counts)]
    table = _table(header, ["---", *("--:" for _ in counts)], rows)
    return [f"## {group.title}", "", group.note, "", *table, ""]


def _memory_section(findings: Findings, group: Group) -> list[str]:
    if not findings.memory:
        return []
    counts = sorted({f.breakers for f in findings.memory})
    sizes = {(f.impl, f.breakers): f.bytes for f in findings.memory}
    impls = list(dict.fromkeys(f.impl for f in findings.memory))
    most = counts[-1]
    rows = [[impl, *(f"{sizes[impl, n]:,}" for n in counts), f"{sizes[impl, most] / most:,.0f}"]
            for impl in impls]
    header = ["implementation", *(f"{n:,} breaker{'s' if n > 1 else ''} (bytes)" for n in counts),
              f"per breaker, of {most:,} (bytes)"]
    table = _table(header, ["---", *("--:" for _ in counts), "--:"], rows)
    return [f"## {group.title}", "", group.note, "", *table, ""]


# --- targets, checks, header ---------------------------------------------------------------


def _targets_section(targets: list[Target]) -> list[str]:
    rows = [[t.name, t.goal, t.measured, t.result] for t in targets]
    return ["## Targets", "", *_table(["target", "goal", "measured", "result"],
                                      ["---", "---", "---", "---"], rows), ""]


def _checks_section(findings: Findings) -> list[str]:
    check = findings.sleep_check
    if check is None:
        return []
    verdict = "pass" if check.sleeps == 0 else "FAIL"
    return ["## Checks", "",
            f"- Zero-delay retries make no sleep call: {verdict} — {check.sleeps} sleep calls "
            f"in {check.calls:,} two-failure calls (half sync, half async) and every timed "
            f"buttress retry call, on a clock whose `sleep` and `async_sleep` raise.", ""]


def _header(machine: dict[str, str], mode: str, date: str) -> list[str]:
    return ["# buttress benchmarks", "", f"- Date: {date}", f"- Mode: {mode}",
            *(f"- {label}: {value}" for label, value in machine.items()), "", METHOD, ""]


def render(findings: Findings, machine: dict[str, str], mode: str, date: str) -> str:
    """The whole report as markdown."""
    sections = {THREADS: _threads_section, MEMORY: _memory_section}
    lines = _header(machine, mode, date)
    for group in GROUPS:
        lines += sections.get(group.key, _per_call_section)(findings, group)
    lines += _targets_section(evaluate(findings))
    lines += _checks_section(findings)
    return "\n".join(lines).rstrip("\n") + "\n"
