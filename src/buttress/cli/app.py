"""The ``buttress`` typer app: ``buttress demo`` and ``buttress version``."""

from __future__ import annotations

from typing import Annotated, Final

import typer
from rich.console import Console

import buttress
from buttress._core.errors import ConfigurationError
from buttress.cli.demo import DemoConfig, build_config, run_demo
from buttress.cli.display import LiveProgress, print_summary

__all__ = ["app"]

app = typer.Typer(
    name="buttress",
    help="Resilience for Python services: see retry and circuit breaking at work.",
    no_args_is_help=True,
    add_completion=False,
)

_DEFAULT: Final = DemoConfig()
_QUICK: Final = DemoConfig.quick()


@app.command()
def demo(
    requests: Annotated[int | None, typer.Option(
        help=f"Calls per phase [default: {_DEFAULT.requests}, {_QUICK.requests} with --quick]",
        show_default=False,
    )] = None,
    failure_rate: Annotated[float | None, typer.Option(
        help=f"Share of calls the server fails with 503 [default: {_DEFAULT.failure_rate:g}]",
        show_default=False,
    )] = None,
    seed: Annotated[int | None, typer.Option(
        help=f"Seed of the server's faults and the retry jitter [default: {_DEFAULT.seed}]",
        show_default=False,
    )] = None,
    quick: Annotated[bool, typer.Option(
        "--quick", help="A small run of a few seconds (for tests and CI).",
    )] = False,
) -> None:
    """Call a flaky loopback HTTP server bare, then through buttress, and compare.

    The server fails some calls at random and has a short outage in the middle of
    each phase; buttress retries with jittered backoff behind a circuit breaker.
    """
    try:
        config = build_config(quick=quick, requests=requests, failure_rate=failure_rate,
                              seed=seed)
    except (ConfigurationError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    console = Console()
    with LiveProgress(console) as progress:
        summary = run_demo(config, progress)
    print_summary(console, summary)


@app.command()
def version() -> None:
    """Print the installed buttress version."""
    typer.echo(f"buttress {buttress.__version__}")
