"""How ``buttress demo`` looks: rich progress bars while it runs, a table at the end.

Without a terminal (CI, output piped) rich prints plain text: no colours, no
redraws, each progress bar once in its final state.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Final

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from buttress.breaker import CircuitState
from buttress.cli.demo import (
    BARE,
    BASE_DELAY,
    FAILURE_THRESHOLD,
    MAX_ATTEMPTS,
    MAX_DELAY,
    PROTECTED,
    DemoConfig,
    DemoObserver,
    DemoSummary,
    PhaseResult,
    PhaseTally,
)

__all__ = ["LiveProgress", "p99_footnote", "print_summary", "summary_table"]

_STATE_STYLE: Final = {
    CircuitState.CLOSED: "green",
    CircuitState.HALF_OPEN: "yellow",
    CircuitState.OPEN: "bold red",
}


def _counts(tally: PhaseTally) -> str:
    """The live counters shown next to a phase's bar (rich markup)."""
    text = (f"[green]ok {tally.succeeded}[/]  [cyan]fallback {tally.fell_back}[/]  "
            f"[red]failed {tally.failed}[/]")
    state = tally.breaker_state
    if state is not None:
        text += f"  breaker [{_STATE_STYLE[state]}]{state.value}[/]"
    return text


class LiveProgress(DemoObserver):
    """Shows a running demo: what the server does, then one progress bar per phase::

        with LiveProgress(console) as progress:
            summary = run_demo(config, progress)
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def server_started(self, url: str, config: DemoConfig) -> None:
        """Say what the flaky dependency does, what traffic it gets, and the policy."""
        self._console.print(
            f"Flaky dependency at {url} (seed {config.seed}):\n"
            f"  {config.failure_rate:.0%} of calls answer 503, every answer takes "
            f"{config.latency * 1000:g}ms;\n"
            f"  a {config.outage:g}s outage (every call fails) starts a third of the way "
            "into each phase.\n"
            f"Each phase sends {config.requests} x GET /data at {config.rate:g}/s: first bare, "
            "then through buttress\n"
            f"  (retry: {MAX_ATTEMPTS} attempts, jittered exponential backoff from "
            f"{BASE_DELAY * 1000:g}ms;\n"
            f"  breaker: opens after {FAILURE_THRESHOLD} failures in a row, probes after "
            f"{config.recovery_timeout:g}s;\n"
            "  fallback: answers the calls the breaker rejects).",
            highlight=False,
        )

    def phase_started(self, tally: PhaseTally) -> None:
        """Add the phase's progress bar."""
        self._tasks[tally.phase] = self._progress.add_task(
            tally.phase, total=tally.total, counts=_counts(tally)
        )

    def call_finished(self, tally: PhaseTally) -> None:
        """Advance the phase's progress bar."""
        self._progress.update(self._tasks[tally.phase], completed=tally.done,
                              counts=_counts(tally))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


_ROWS: Final[tuple[tuple[str, Callable[[PhaseResult], str]], ...]] = (
    ("calls made by the app", lambda r: str(r.requests)),
    ("answered with real data", lambda r: f"{r.success_rate:.1%} ({r.succeeded})"),
    ("answered by the fallback", lambda r: str(r.fell_back)),
    ("errors the app saw", lambda r: str(r.failed)),
    ("attempts, with retries", lambda r: str(r.attempts)),
    ("  sent to the server", lambda r: str(r.sent)),
    ("  turned away by breaker", lambda r: str(r.rejected)),
    ("latency p50 per call", lambda r: _ms(r.p50)),
    ("latency p99 per call (*)", lambda r: _ms(r.p99)),
    ("wall time", lambda r: f"{r.wall_time:.2f} s"),
)

BARE_HEADING: Final = f"{BARE}\n(no protection)"
PROTECTED_HEADING: Final = f"{PROTECTED}\n(retry, breaker, fallback)"


def summary_table(summary: DemoSummary) -> Table:
    """Both phases side by side, one row per measure, the p99 footnote under it."""
    config = summary.config
    table = Table(
        title=(f"{config.requests} x GET /data per phase, {config.failure_rate:.0%} 503s "
               f"+ {config.outage:g}s outage (seed {config.seed})"),
        title_justify="left",
        caption=p99_footnote(summary),
        caption_justify="left",
    )
    table.add_column("")
    table.add_column(BARE_HEADING, justify="right")
    table.add_column(PROTECTED_HEADING, justify="right", style="bold")
    for label, cell in _ROWS:
        table.add_row(label, cell(summary.bare), cell(summary.protected))
    return table


def p99_footnote(summary: DemoSummary) -> str:
    """Why the slowest calls differ between the phases (the table's footnote)."""
    return (
        "(*) Per app call, retries included. A bare call that fails returns at once, "
        "with an error; through buttress it waits out a backoff "
        f"({BASE_DELAY * 1000:g}-{MAX_DELAY * 1000:g} ms) and tries again, so the slowest "
        "calls take longer and are answered. Calls the breaker turns away take microseconds."
    )


def _transitions(result: PhaseResult) -> str:
    """The breaker's path through its states as one chain (rich markup)."""
    if not result.transitions:
        return "Breaker: stayed closed."
    # state@time keeps each step in one piece when rich wraps the line.
    steps = [result.transitions[0].old.value]
    steps += [f"[{_STATE_STYLE[t.new]}]{t.new.value}[/]@{t.at:.2f}s" for t in result.transitions]
    return f"Breaker ({result.phase} phase): " + " -> ".join(steps)


def _verdict(summary: DemoSummary) -> str:
    bare, protected = summary.bare, summary.protected
    text = (f"buttress answered {protected.success_rate:.0%} of calls with real data "
            f"(bare: {bare.success_rate:.0%}).")
    if protected.rejected:
        text += (f" Its breaker kept {protected.rejected} calls off the failing server, "
                 "and the fallback answered them.")
    return text + f" Server at {summary.server_url} stopped."


def print_summary(console: Console, summary: DemoSummary) -> None:
    """Print the table, the breaker's transitions and a one-line verdict."""
    console.print()
    console.print(summary_table(summary))
    console.print(_transitions(summary.protected), highlight=False)
    console.print()
    console.print(_verdict(summary), highlight=False)
