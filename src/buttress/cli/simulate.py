"""``buttress simulate``: the simulations of :mod:`buttress.simulate`, as tables and PNGs.

``buttress simulate`` runs every scenario; ``buttress simulate storm`` one of
them. Tables go to the terminal (rich); plots to ``--out`` (``simulation/``
by default), one PNG per scenario, unless ``--no-plot``.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from buttress._core.errors import ConfigurationError
from buttress.simulate import (
    StormScenario,
    compare_budgets,
    run_amplification,
    run_aws_jitter,
    run_storm,
)
from buttress.simulate.plots import HINT, plot_amplification, plot_aws_jitter, plot_storm

__all__ = ["Scenario", "render_table", "simulate"]

TableParts = tuple[str, list[str], list[list[str]]]


class Scenario(StrEnum):
    """What ``buttress simulate`` can run."""

    ALL = "all"
    AWS_JITTER = "aws-jitter"
    AMPLIFICATION = "amplification"
    STORM = "storm"
    BUDGETS = "budgets"


_ORDER: Final = (Scenario.AWS_JITTER, Scenario.AMPLIFICATION, Scenario.STORM,
                 Scenario.BUDGETS)


def render_table(parts: TableParts) -> Table:
    """A rich table from a scenario's ``table()``: title, headers, rows."""
    title, headers, rows = parts
    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _run(scenario: Scenario, *, seed: int, duration: float | None, runs: int,
         clients: list[int]) -> tuple[TableParts, Callable[[Path], Path] | None]:
    """Run one scenario; return its table and how to plot it (None: no plot)."""
    if scenario is Scenario.AWS_JITTER:
        jitter = run_aws_jitter(clients, runs=runs, seed=seed)
        return jitter.table(), lambda out: plot_aws_jitter(jitter, out / "aws-jitter.png")
    if scenario is Scenario.AMPLIFICATION:
        amp = run_amplification(seed=seed, duration=60.0 if duration is None else duration)
        return amp.table(), lambda out: plot_amplification(amp, out / "amplification.png")
    storm_scenario = StormScenario() if duration is None else StormScenario(duration=duration)
    if scenario is Scenario.STORM:
        storm = run_storm(storm_scenario, seed=seed)
        return storm.table(), lambda out: plot_storm(storm, out / "storm.png")
    return compare_budgets(scenario=storm_scenario, seed=seed).table(), None


def simulate(
    scenario: Annotated[Scenario, typer.Argument(
        help="The simulation to run (all of them by default).",
        case_sensitive=False)] = Scenario.ALL,
    out: Annotated[Path, typer.Option(
        help="Folder for the PNG plots.", file_okay=False)] = Path("simulation"),
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 1,
    duration: Annotated[float | None, typer.Option(
        help="Virtual seconds of traffic for amplification (60), storm and budgets "
             "(600).")] = None,
    runs: Annotated[int, typer.Option(
        help="aws-jitter: runs per strategy and number of clients.")] = 20,
    clients: Annotated[list[int] | None, typer.Option(
        "--clients", help="aws-jitter: numbers of contending clients "
                          "(repeat the option; 10 25 50 100 by default).")] = None,
    plot: Annotated[bool, typer.Option(
        "--plot/--no-plot", help="Write the PNG plots (needs matplotlib).")] = True,
) -> None:
    """Run retry policies against a modelled dependency in virtual time.

    aws-jitter: contending clients with no jitter, full, equal and decorrelated
    jitter (AWS Architecture Blog, 2015). amplification: the load retries send to
    a dependency that fails every call, with and without budgets and a breaker.
    storm: a load spike that retries turn into a lasting outage, and what ends it.
    budgets: the retry budgets compared for the presets.
    """
    if plot and importlib.util.find_spec("matplotlib") is None:
        raise typer.BadParameter(HINT, param_hint="'--plot'")
    console = Console()
    chosen = _ORDER if scenario is Scenario.ALL else (scenario,)
    options: dict[str, Any] = {"seed": seed, "duration": duration, "runs": runs,
                               "clients": clients or [10, 25, 50, 100]}
    for item in chosen:
        started = time.process_time()
        try:
            parts, draw = _run(item, **options)
        except ConfigurationError as exc:
            raise typer.BadParameter(str(exc)) from exc
        console.print(render_table(parts))
        cpu = time.process_time() - started
        note = f"{item.value}: {cpu:.1f} s of CPU"
        if plot and draw is not None:
            note += f", plot written to {draw(out)}"
        console.print(note, highlight=False)
        console.print()
