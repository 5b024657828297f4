"""PNG plots of the simulations (and of ``buttress demo``), with matplotlib.

matplotlib is imported when a plot is drawn, never before, so the simulator
runs without it; a missing matplotlib raises an :class:`ImportError` naming
the extra to install (``buttress[plot]``). Plots are drawn with matplotlib's
object API on their own :class:`~matplotlib.figure.Figure`: no pyplot, no
global state, no backend switch in the caller's process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from buttress.simulate.amplification import AmplificationResult
    from buttress.simulate.aws import JitterResult
    from buttress.simulate.storm import StormResult

__all__ = ["HINT", "new_figure", "plot_amplification", "plot_aws_jitter", "plot_storm",
           "save"]

HINT: Final = "plots need matplotlib: pip install 'buttress[plot]'"
_DPI: Final = 110


def new_figure(rows: int, cols: int = 1, *, size: tuple[float, float] = (9.0, 5.0),
               **options: Any) -> tuple[Any, Any]:
    """A matplotlib figure and its axes (``subplots`` arguments in ``options``)."""
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError as exc:
        raise ImportError(HINT, name=exc.name) from exc
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.subplots(rows, cols, squeeze=False, **options)


def save(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` as a PNG to ``path`` (its folder is created); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=_DPI)
    return target


def plot_aws_jitter(result: JitterResult, path: str | Path) -> Path:
    """Work (writes sent) and completion time against the number of contending
    clients, one line per backoff, as in the article's two figures."""
    figure, axes = new_figure(1, 2, size=(11.0, 4.5))
    work, time = axes[0]
    clients = result.clients
    for strategy in result.strategies:
        points = [result.at(strategy, n) for n in clients]
        # buttress's own defaults ("jitter 0.1 (RetryConfig)") dashed, the article's solid.
        style = {"marker": "o", "label": strategy, "linestyle": "--" if "(" in strategy else "-"}
        work.plot(clients, [p.calls for p in points], **style)
        time.plot(clients, [p.time * 1000 for p in points], **style)
    work.set(title="Work: writes sent", xlabel="contending clients", ylabel="calls")
    time.set(title="Completion time", xlabel="contending clients", ylabel="ms",
             yscale="log")
    work.legend()
    for ax in (work, time):
        ax.grid(alpha=0.3)
    figure.suptitle("Exponential backoff and jitter (base 5 ms, cap 2 s), "
                    f"means of {result.runs} runs")
    return save(figure, path)


def plot_amplification(result: AmplificationResult, path: str | Path) -> Path:
    """Attempts reaching the dependency per call, one bar per policy."""
    figure, axes = new_figure(1, size=(9.0, 4.0))
    ax = axes[0][0]
    names = [run.policy for run in result.runs]
    values = [run.amplification for run in result.runs]
    bars = ax.barh(names, values, color="tab:red")
    ax.bar_label(bars, labels=[f"{v:.2f}x" for v in values], padding=3)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.invert_yaxis()
    ax.set(xlabel="attempts reaching the dependency per call",
           title="Retry amplification at 100% failure", xlim=(0, max(values) * 1.15))
    return save(figure, path)


def plot_storm(result: StormResult, path: str | Path) -> Path:
    """Goodput over time for every policy, and the dependency's queue."""
    figure, axes = new_figure(2, size=(11.0, 7.5), sharex=True,
                              gridspec_kw={"height_ratios": [3, 2]})
    goodput, queue = axes[0][0], axes[1][0]
    sc = result.scenario
    styles = _styles(len(result.runs))
    for run, style in zip(result.runs, styles, strict=True):
        t = run.timeline
        goodput.plot(t.times(), t.rate("succeeded"), label=run.policy, **style)
        queue.plot(t.times(), t.counts["queue"], label=run.policy, **style)
    for ax in (goodput, queue):
        ax.axvspan(sc.spike_start, sc.spike_start + sc.spike_duration, color="orange",
                   alpha=0.15, label="_spike")
        ax.grid(alpha=0.3)
    goodput.set(ylabel="goodput (calls/s)",
                title=f"Retry storm: x{sc.spike_multiplier:g} load for "
                      f"{sc.spike_duration:g} s (shaded), {sc.settings.timeout_seconds:g} s "
                      "timeout")
    goodput.legend(loc="upper right", fontsize="small")
    queue.set(xlabel="time (s)", ylabel="requests queued at the dependency")
    return save(figure, path)


def _styles(count: int) -> Sequence[dict[str, Any]]:
    dashes = ("-", "--", "-.", ":")
    return [{"linestyle": dashes[i % len(dashes)], "linewidth": 1.8} for i in range(count)]
