"""``buttress demo --plot FILE.png``: the demo's two phases over time.

One panel per phase with the share of calls answered with real data (and,
for buttress, by the fallback) in time bins, the phase's outage shaded; a
last panel with the buttress phase's breaker state, from its transitions.
matplotlib is imported only here, when a plot is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from buttress.breaker import CircuitState
from buttress.cli.demo import DemoSummary, Outcome, PhaseResult
from buttress.simulate.plots import new_figure, save

__all__ = ["BINS", "plot_demo", "success_over_time"]

BINS: Final = 30
_LEVEL: Final = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


def success_over_time(phase: PhaseResult, width: float,
                      outcome: Outcome = Outcome.OK) -> tuple[list[float], list[float]]:
    """Bin starts (seconds into the phase) and the share of the calls ending in each
    bin of ``width`` seconds that ended with ``outcome`` (bins without calls left
    out)::

        success_over_time(summary.protected, 0.25)
    """
    totals: dict[int, list[int]] = {}
    for at, ended in phase.timeline:
        counts = totals.setdefault(int(at / width), [0, 0])
        counts[0] += 1
        counts[1] += ended is outcome
    bins = sorted(totals)
    return [b * width for b in bins], [totals[b][1] / totals[b][0] for b in bins]


def _breaker_steps(phase: PhaseResult, end: float) -> tuple[list[float], list[int]]:
    times, levels = [0.0], [0]
    for transition in phase.transitions:
        times.append(transition.at)
        levels.append(_LEVEL[transition.new])
    times.append(end)
    levels.append(levels[-1])
    return times, levels


def _shade_outage(ax: Any, phase: PhaseResult, duration: float) -> None:
    if phase.outage_start is not None and duration > 0.0:
        ax.axvspan(phase.outage_start, phase.outage_start + duration, color="grey",
                   alpha=0.18, label="outage")


def plot_demo(summary: DemoSummary, path: str | Path) -> Path:
    """Draw ``summary`` (a finished :func:`~buttress.cli.demo.run_demo`) to a PNG."""
    figure, axes = new_figure(3, size=(10.0, 7.0), sharex=True,
                              gridspec_kw={"height_ratios": [2, 2, 1]})
    bare_ax, protected_ax, state = axes[0][0], axes[1][0], axes[2][0]
    bare, protected = summary.bare, summary.protected
    config = summary.config
    end = max(bare.wall_time, protected.wall_time)
    width = max(end / BINS, 1e-3)
    for ax, phase, title in ((bare_ax, bare, "no protection"),
                             (protected_ax, protected, "buttress: retry, breaker, fallback")):
        times, shares = success_over_time(phase, width)
        ax.step(times, shares, where="post", label="real data", linewidth=2)
        _shade_outage(ax, phase, config.outage)
        ax.set(ylabel="share of calls", ylim=(-0.03, 1.03),
               title=f"{title}: {phase.success_rate:.0%} answered with real data")
        ax.grid(alpha=0.3)
    times, shares = success_over_time(protected, width, Outcome.FALLBACK)
    protected_ax.step(times, shares, where="post", label="fallback", linestyle=":",
                      linewidth=2)
    bare_ax.legend(loc="lower left", fontsize="small")
    protected_ax.legend(loc="lower left", fontsize="small")
    times, levels = _breaker_steps(protected, end)
    state.step(times, levels, where="post", color="tab:red", linewidth=2)
    _shade_outage(state, protected, config.outage)
    state.set(yticks=[0, 1, 2], yticklabels=["closed", "half-open", "open"],
              ylim=(-0.3, 2.3), xlabel="seconds into the phase", ylabel="breaker")
    state.grid(alpha=0.3)
    figure.suptitle(f"buttress demo: {config.requests} calls per phase, "
                    f"{config.failure_rate:.0%} random 503s, {config.outage:g} s outage")
    return save(figure, path)
