"""``buttress demo``: the demo logic against a real loopback server, and the command.

Only the ``wallclock`` tests run the demo (one quick in-process run shared by
the module, one quick run of the real command); the rest need no time at all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import buttress
from buttress import CircuitState, ConfigurationError
from buttress.cli import HINT, main
from buttress.cli import app as cli_app
from buttress.cli.app import app
from buttress.cli.demo import (
    BARE,
    PROTECTED,
    DemoConfig,
    DemoObserver,
    DemoSummary,
    PhaseResult,
    PhaseTally,
    Transition,
    build_config,
    percentile,
    run_demo,
)
from buttress.cli.display import summary_table

ROOT = Path(__file__).resolve().parents[2]


class RecordingObserver(DemoObserver):
    """Remembers what the demo reported, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []
        self.successes: list[tuple[str, int]] = []

    def server_started(self, url: str, config: DemoConfig) -> None:
        self.events.append(("server_started", url, config.requests))

    def phase_started(self, tally: PhaseTally) -> None:
        self.events.append(("phase_started", tally.phase, tally.done))

    def call_finished(self, tally: PhaseTally) -> None:
        self.events.append(("call_finished", tally.phase, tally.done))
        self.successes.append((tally.phase, tally.succeeded))


@pytest.fixture(scope="module")
def observed_run() -> tuple[DemoSummary, RecordingObserver]:
    observer = RecordingObserver()
    return run_demo(DemoConfig.quick(), observer), observer


@pytest.fixture(scope="module")
def summary(observed_run: tuple[DemoSummary, RecordingObserver]) -> DemoSummary:
    return observed_run[0]


# --- the demo logic, against the real flaky server ----------------------------------------


@pytest.mark.wallclock
def test_buttress_answers_more_calls_with_real_data_than_the_bare_client(
    summary: DemoSummary,
) -> None:
    assert summary.protected.success_rate > summary.bare.success_rate
    assert summary.protected.failed < summary.bare.failed


@pytest.mark.wallclock
def test_every_call_of_each_phase_is_accounted_for(summary: DemoSummary) -> None:
    for result in (summary.bare, summary.protected):
        assert result.requests == summary.config.requests
        assert result.succeeded + result.fell_back + result.failed == result.requests


@pytest.mark.wallclock
def test_server_hits_are_the_calls_the_breaker_let_through(summary: DemoSummary) -> None:
    bare, protected = summary.bare, summary.protected
    assert bare.server_hits == bare.sent == bare.attempts == bare.requests
    assert protected.server_hits == protected.sent == protected.attempts - protected.rejected
    # Retries make more attempts than the app made calls.
    assert protected.attempts > protected.requests


@pytest.mark.wallclock
def test_breaker_rejects_calls_during_the_scripted_outage_and_recovers(
    summary: DemoSummary,
) -> None:
    protected = summary.protected
    assert protected.rejected > 0
    assert protected.fell_back == protected.rejected
    path = [(t.old, t.new) for t in protected.transitions]
    assert path[0] == (CircuitState.CLOSED, CircuitState.OPEN)
    assert (CircuitState.OPEN, CircuitState.HALF_OPEN) in path
    assert (CircuitState.HALF_OPEN, CircuitState.CLOSED) in path
    assert [t.at for t in protected.transitions] == sorted(t.at for t in protected.transitions)


@pytest.mark.wallclock
def test_bare_phase_has_no_breaker(summary: DemoSummary) -> None:
    assert summary.bare.rejected == 0
    assert summary.bare.fell_back == 0
    assert summary.bare.transitions == ()


@pytest.mark.wallclock
def test_latency_and_wall_time_are_measured(summary: DemoSummary) -> None:
    for result in (summary.bare, summary.protected):
        assert 0.0 < result.p50 <= result.p99
        assert result.wall_time >= summary.config.requests / summary.config.rate * 0.9
    # Server latency is 10 ms: no bare call can answer faster.
    assert summary.bare.p50 >= summary.config.latency


@pytest.mark.wallclock
def test_server_is_stopped_after_the_demo(summary: DemoSummary) -> None:
    assert summary.server_url == f"http://127.0.0.1:{summary.server_port}"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", summary.server_port), timeout=1.0).close()


@pytest.mark.wallclock
def test_observer_hears_the_server_then_every_call_of_each_phase(
    observed_run: tuple[DemoSummary, RecordingObserver],
) -> None:
    summary, observer = observed_run
    n = summary.config.requests
    expected = [("server_started", summary.server_url, n)]
    for phase in (BARE, PROTECTED):
        expected.append(("phase_started", phase, 0))
        expected += [("call_finished", phase, done) for done in range(1, n + 1)]
    assert observer.events == expected


@pytest.mark.wallclock
def test_the_summary_as_json_keeps_every_count_of_the_run(summary: DemoSummary) -> None:
    data = json.loads(json.dumps(summary.as_dict()))
    assert data["config"] == dataclasses.asdict(summary.config)
    protected = data["phases"][PROTECTED]
    assert protected["attempts"] == protected["sent"] + protected["rejected_by_breaker"]
    assert protected["rejected_by_breaker"] == summary.protected.rejected > 0
    assert protected["succeeded"] + protected["fell_back"] + protected["failed"] == (
        summary.config.requests)
    assert len(protected["breaker_transitions"]) == len(summary.protected.transitions)


@pytest.mark.wallclock
def test_an_outage_longer_than_a_phase_does_not_spill_into_the_next_phase() -> None:
    # 6 calls in 0.06 s; the outage starts at the third call and lasts 0.3 s.
    config = DemoConfig(requests=6, failure_rate=0.0, rate=100.0, outage=0.3)
    observer = RecordingObserver()
    run_demo(config, observer)
    assert observer.successes[:2] == [(BARE, 1), (BARE, 2)]
    assert observer.successes[6:8] == [(PROTECTED, 1), (PROTECTED, 2)]


# --- the command ---------------------------------------------------------------------------


@pytest.mark.wallclock
def test_demo_command_prints_the_summary_as_plain_text_without_a_tty() -> None:
    env = {**os.environ, "CI": "true", "TERM": "dumb", "PYTHONPATH": str(ROOT / "src")}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [sys.executable, "-m", "buttress", "demo", "--quick"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )
    assert done.returncode == 0, done.stderr
    for heading in ("no protection", "retry, breaker, fallback", "answered with real data",
                    "attempts, with retries", "sent to the server", "turned away by breaker",
                    "latency p50", "latency p99", "wall time", "Breaker"):
        assert heading in done.stdout
    assert "\x1b[" not in done.stdout
    # Every retry is a buttress WARNING; none of them may tear through the output.
    assert done.stderr == ""


def test_help_lists_the_demo_and_version_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output
    assert "version" in result.output


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output == f"buttress {buttress.__version__}\n"


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["--failure-rate", "1.5"], "--failure-rate"), (["--failure-rate", "nan"], "--failure-rate"),
     (["--requests", "0"], "--requests"), (["--quick", "--requests", "-3"], "--requests"),
     (["--seed", "-1"], "--seed")],
)
def test_a_bad_option_is_refused_under_its_flag_name_before_anything_starts(
    args: list[str], flag: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_app, "run_demo", _must_not_run)
    result = CliRunner().invoke(app, ["demo", *args])
    assert result.exit_code == 2
    assert f"Invalid value for '{flag}'" in result.output
    assert "DemoConfig" not in result.output


def test_version_option_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"buttress {buttress.__version__}\n"


def test_python_dash_m_buttress_runs_the_command() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "buttress", "--version"], capture_output=True,
                          text=True, timeout=30, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"buttress {buttress.__version__}\n"


def test_demo_help_shows_every_default_and_what_quick_changes() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for default in ("[default: 300]", "[default: 0.3]", "[default: 7]",
                    f"({DemoConfig.quick().requests} with --quick)"):
        assert default in text
    for flag in ("--requests", "--failure-rate", "--seed", "--quick", "--json"):
        assert flag in text


def test_quick_sets_only_the_options_left_at_their_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs: list[DemoConfig] = []

    def fake_run(config: DemoConfig, observer: DemoObserver | None = None) -> DemoSummary:
        configs.append(config)
        return _canned_summary(config)

    monkeypatch.setattr(cli_app, "run_demo", fake_run)
    for args in (["--quick", "--seed", "3"], ["--quick", "--requests", "300"], []):
        assert CliRunner().invoke(app, ["demo", "--json", *args]).exit_code == 0
    quick = DemoConfig.quick()
    assert configs == [dataclasses.replace(quick, seed=3),
                       dataclasses.replace(quick, requests=300), DemoConfig()]


def test_demo_json_prints_the_summary_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = _canned_summary(DemoConfig.quick())
    monkeypatch.setattr(cli_app, "run_demo", lambda config, observer=None: summary)
    result = CliRunner().invoke(app, ["demo", "--quick", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data == json.loads(json.dumps(summary.as_dict()))
    protected = data["phases"][PROTECTED]
    assert (protected["attempts"], protected["sent"], protected["rejected_by_breaker"]) == (
        118, 92, 26)
    assert protected["breaker_transitions"] == [
        {"at_seconds": 1.1, "from": "closed", "to": "open"}]
    assert data["phases"][BARE]["success_rate"] == pytest.approx(37 / 90)


def test_table_tells_calls_sent_from_calls_turned_away_and_explains_p99() -> None:
    console = Console(record=True, width=100, color_system=None)
    console.print(summary_table(_canned_summary(DemoConfig.quick())))
    text = console.export_text()
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:4]]
            for line in text.splitlines() if line.count("│") == 4}
    assert rows["attempts, with retries"] == ["90", "118"]
    assert rows["sent to the server"] == ["90", "92"]
    assert rows["turned away by breaker"] == ["0", "26"]
    assert rows["latency p99 per call (*)"] == ["20.0 ms", "100.0 ms"]
    assert "no protection" in text
    footnote = " ".join(text[text.index("(*) "):].split())
    assert "retries included" in footnote
    assert "backoff" in footnote


def _must_not_run(config: DemoConfig, observer: DemoObserver | None = None) -> DemoSummary:
    raise AssertionError("the demo started despite a bad option")


def _canned_summary(config: DemoConfig) -> DemoSummary:
    """A finished run with known numbers, for tests of the command and the table."""
    bare = PhaseResult(phase=BARE, requests=90, succeeded=37, fell_back=0, failed=53,
                       attempts=90, server_hits=90, rejected=0, p50=0.0145, p99=0.020,
                       wall_time=1.66, transitions=())
    protected = PhaseResult(
        phase=PROTECTED, requests=90, succeeded=62, fell_back=26, failed=2, attempts=118,
        server_hits=92, rejected=26, p50=0.012, p99=0.100, wall_time=2.36,
        transitions=(Transition(1.1, CircuitState.CLOSED, CircuitState.OPEN),),
    )
    return DemoSummary(config, "http://127.0.0.1:8000", bare, protected)


def test_main_without_the_cli_extra_prints_a_hint_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "typer", None)  # makes `import typer` fail
    monkeypatch.delitem(sys.modules, "buttress.cli.app")
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == HINT + "\n"
    assert "pip install 'buttress[cli]'" in HINT


# --- pure pieces ---------------------------------------------------------------------------


def test_percentile_takes_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.99) == 3.0


def test_percentile_of_no_values_is_zero() -> None:
    assert percentile([], 0.5) == 0.0


def test_build_config_changes_only_the_options_given() -> None:
    assert build_config() == DemoConfig()
    assert build_config(quick=True) == DemoConfig.quick()
    config = build_config(quick=True, seed=3, failure_rate=0.5)
    assert (config.seed, config.failure_rate) == (3, 0.5)
    assert config.requests == DemoConfig.quick().requests


def test_quick_config_scripts_its_outage_a_third_of_the_way_in() -> None:
    config = DemoConfig.quick()
    assert config.outage > 0.0
    assert config.outage_at == config.requests // 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests", 0), ("failure_rate", 1.5), ("rate", 0.0), ("outage", -1.0),
     ("latency", -0.1), ("recovery_timeout", -1.0), ("seed", -1)],
)
def test_demo_config_names_the_bad_field_and_value(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=rf"DemoConfig\.{field} must be .*{value!r}"):
        DemoConfig(**{field: value})  # type: ignore[arg-type]
