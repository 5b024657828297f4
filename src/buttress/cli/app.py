"""The ``buttress`` typer app: ``buttress demo``, ``buttress status``, ``buttress version``
and ``--version``.

Errors name the flag the user typed (``--failure-rate``), never the config
field behind it (``DemoConfig.failure_rate``): :func:`_flag_error` maps one to
the other for every option, so a new option needs no new error handling.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Final, TypeVar

import typer
from rich.console import Console

import buttress
from buttress._core.errors import ConfigurationError
from buttress.cli.demo import DemoConfig, build_config, run_demo
from buttress.cli.display import LiveProgress, print_summary
from buttress.cli.status import status

__all__ = ["app"]

app = typer.Typer(
    name="buttress",
    help="Resilience for Python services: see retry and circuit breaking at work.",
    no_args_is_help=True,
    add_completion=False,
)

_V = TypeVar("_V")
_DEFAULT: Final = DemoConfig()
_QUICK: Final = DemoConfig.quick()


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"buttress {buttress.__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", help="Print the installed buttress version and exit.",
        callback=_version_callback, is_eager=True,
    )] = False,
) -> None:
    """Resilience for Python services: see retry and circuit breaking at work."""


def _flag_error(ctx: typer.Context, exc: Exception) -> typer.BadParameter:
    """``exc`` (raised by :class:`DemoConfig` about one of its fields) as a usage
    error naming the command-line option of that field, when there is one."""
    message = str(exc)
    owner, _, field = (getattr(exc, "field", None) or "").partition(".")
    if owner != "DemoConfig" or not isinstance(exc, ConfigurationError):
        return typer.BadParameter(message, ctx=ctx)
    for param in ctx.command.params:
        if param.name == field:
            flags = " / ".join(f"'{flag}'" for flag in param.opts)
            rest = f"must be {exc.expected}, got {exc.value!r}"
            return typer.BadParameter(rest, ctx=ctx, param_hint=flags)
    return typer.BadParameter(message, ctx=ctx)


@contextmanager
def _library_logs_silenced() -> Iterator[None]:
    """Keep buttress's own log records off the terminal while the demo draws it.

    With no logging configured its WARNINGs (every retry) would go to stderr and
    tear through the progress bars; the demo reports what happened itself.
    """
    library = logging.getLogger("buttress")
    quiet = logging.NullHandler()
    library.addHandler(quiet)
    try:
        yield
    finally:
        library.removeHandler(quiet)


@app.command()
def demo(
    ctx: typer.Context,
    requests: Annotated[int, typer.Option(
        help=f"Calls the app makes per phase ({_QUICK.requests} with --quick).",
    )] = _DEFAULT.requests,
    failure_rate: Annotated[float, typer.Option(
        help="Share of calls the server fails with 503, from 0 to 1.",
    )] = _DEFAULT.failure_rate,
    seed: Annotated[int, typer.Option(
        help="Seed of the server's faults and of the retry jitter.",
    )] = _DEFAULT.seed,
    quick: Annotated[bool, typer.Option(
        "--quick", help="A small run of a few seconds (for tests and CI).",
    )] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the summary as JSON instead of progress bars and a table.",
    )] = False,
) -> None:
    """Call a flaky loopback HTTP server bare, then through buttress, and compare.

    The server fails some calls at random and has a short outage in the middle of
    each phase; buttress retries with jittered backoff behind a circuit breaker,
    and a fallback answers the calls the breaker turns away.
    """
    def typed(name: str, value: _V) -> _V | None:
        # An option left at its default takes the --quick value instead. (By name:
        # typer >= 0.20 vendors click, so the enum's home depends on the version.)
        source = ctx.get_parameter_source(name)
        return None if source is None or source.name == "DEFAULT" else value

    try:
        config = build_config(quick=quick, requests=typed("requests", requests),
                              failure_rate=typed("failure_rate", failure_rate),
                              seed=typed("seed", seed))
    except (ConfigurationError, TypeError) as exc:
        raise _flag_error(ctx, exc) from exc
    with _library_logs_silenced():
        if as_json:
            summary = run_demo(config)
            typer.echo(json.dumps(summary.as_dict(), indent=2))
            return
        console = Console()
        with LiveProgress(console) as progress:
            summary = run_demo(config, progress)
    print_summary(console, summary)


@app.command()
def version() -> None:
    """Print the installed buttress version."""
    typer.echo(f"buttress {buttress.__version__}")


app.command(name="status")(status)
