"""``buttress simulate`` and ``buttress demo --plot``: tables on the terminal, real PNGs."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from buttress import CircuitState
from buttress.cli import app as cli_app
from buttress.cli.app import app
from buttress.cli.demo import (
    BARE,
    PROTECTED,
    DemoConfig,
    DemoObserver,
    DemoSummary,
    Outcome,
    PhaseResult,
    Transition,
)
from buttress.cli.demo_plot import success_over_time

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> tuple[int, int]:
    """``path`` is a PNG image; return its width and height."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 300
    assert height > 200
    assert data.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_simulate_aws_jitter_prints_the_table_and_writes_its_png(tmp_path: Path) -> None:
    output = _invoke("simulate", "aws-jitter", "--clients", "5", "--clients", "10",
                     "--runs", "2", "--out", str(tmp_path))
    for heading in ("10 contending clients", "no jitter", "full jitter", "equal jitter",
                    "decorrelated jitter", "vs full"):
        assert heading in output
    assert_png(tmp_path / "aws-jitter.png")


def test_simulate_amplification_shows_four_times_the_load_for_three_retries(
    tmp_path: Path,
) -> None:
    output = _invoke("simulate", "amplification", "--duration", "5", "--out", str(tmp_path))
    row = next(line for line in output.splitlines() if "│ 3 retries  " in line)
    assert row.rstrip(" │").endswith("4.00x")
    assert_png(tmp_path / "amplification.png")


def test_simulate_storm_says_which_policies_recover_and_writes_its_png(
    tmp_path: Path,
) -> None:
    output = _invoke("simulate", "storm", "--duration", "150", "--out", str(tmp_path),
                     "--seed", "2")
    recovers = {line.split("│")[1].strip(): line.split("│")[4].strip()
                for line in output.splitlines() if line.count("│") == 9}
    assert recovers["retry + jittered backoff"] == "NO"
    assert recovers["backoff + budget"] == "yes"
    assert recovers["no retry"] == "yes"
    assert_png(tmp_path / "storm.png")


def test_simulate_no_plot_writes_nothing(tmp_path: Path) -> None:
    _invoke("simulate", "amplification", "--duration", "2", "--no-plot",
            "--out", str(tmp_path / "plots"))
    assert not (tmp_path / "plots").exists()


def test_simulate_help_lists_every_scenario() -> None:
    output = _invoke("simulate", "--help")
    for name in ("aws-jitter", "amplification", "storm", "budgets", "--out", "--seed",
                 "--duration"):
        assert name in output


def test_simulate_refuses_a_bad_duration_with_the_reason() -> None:
    result = CliRunner().invoke(app, ["simulate", "storm", "--duration", "10", "--no-plot"])
    assert result.exit_code == 2
    assert "StormScenario.duration" in result.output


def test_plots_without_matplotlib_end_in_a_hint_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(app, ["simulate", "amplification", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "buttress[plot]" in result.output


# --- buttress demo --plot --------------------------------------------------------------------


def _timeline(outcomes: list[Outcome], step: float) -> tuple[tuple[float, Outcome], ...]:
    return tuple((i * step, outcome) for i, outcome in enumerate(outcomes))


def _summary() -> DemoSummary:
    ok, down, fell = Outcome.OK, Outcome.FAILED, Outcome.FALLBACK
    bare = PhaseResult(phase=BARE, requests=90, succeeded=50, fell_back=0, failed=40,
                       attempts=90, server_hits=90, rejected=0, p50=0.01, p99=0.02,
                       wall_time=1.5, transitions=(),
                       timeline=_timeline([ok] * 30 + [down] * 30 + [ok] * 30, 1 / 60),
                       outage_start=0.5)
    protected = PhaseResult(
        phase=PROTECTED, requests=90, succeeded=60, fell_back=28, failed=2, attempts=110,
        server_hits=82, rejected=28, p50=0.01, p99=0.1, wall_time=1.6,
        transitions=(Transition(0.55, CircuitState.CLOSED, CircuitState.OPEN),
                     Transition(0.9, CircuitState.OPEN, CircuitState.HALF_OPEN),
                     Transition(0.95, CircuitState.HALF_OPEN, CircuitState.CLOSED)),
        timeline=_timeline([ok] * 30 + [down] * 2 + [fell] * 28 + [ok] * 30, 1 / 60),
        outage_start=0.5)
    return DemoSummary(DemoConfig.quick(), "http://127.0.0.1:8000", bare, protected)


def test_demo_plot_writes_a_png_after_the_summary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setattr(cli_app, "run_demo",
                        lambda config, observer=None: _summary())
    target = tmp_path / "out" / "demo.png"
    output = _invoke("demo", "--quick", "--plot", str(target))
    assert "answered with real data" in output
    assert f"plot written to {target}" in " ".join(output.split())
    assert_png(target)


def test_demo_plot_with_json_keeps_stdout_pure_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setattr(cli_app, "run_demo",
                        lambda config, observer=None: _summary())
    target = tmp_path / "demo.png"
    output = _invoke("demo", "--quick", "--json", "--plot", str(target))
    assert output.lstrip().startswith("{")
    assert output.rstrip().endswith("}")
    assert_png(target)


def test_demo_plot_without_matplotlib_refuses_before_the_demo_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    def must_not_run(config: DemoConfig, observer: DemoObserver | None = None) -> DemoSummary:
        raise AssertionError("the demo started without a way to plot it")

    monkeypatch.setattr(cli_app, "run_demo", must_not_run)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(app, ["demo", "--quick", "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "buttress[plot]" in result.output


def test_success_over_time_is_the_share_of_calls_ending_well_per_bin() -> None:
    protected = _summary().protected
    times, shares = success_over_time(protected, 0.5)
    assert times == [0.0, 0.5, 1.0]
    assert shares == [1.0, 0.0, 1.0]  # the outage's bin: 2 failures, 28 fallbacks
    _, fallbacks = success_over_time(protected, 0.5, Outcome.FALLBACK)
    assert fallbacks == [0.0, pytest.approx(28 / 30), 0.0]
