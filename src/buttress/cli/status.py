"""``buttress status URL``: the circuit breakers of a running app, as a table.

It reads the app's ``/health/resilience`` document (what
``buttress.fastapi.resilience_router`` serves, :func:`~buttress.observe.get_resilience_health`'s
output) with the standard library's HTTP client, so it works against any
service that serves that document, whatever its framework.

Exit codes (the last poll decides under ``--watch``):

* 0: healthy or degraded (with ``--strict``: healthy only);
* 1: unhealthy (a critical breaker is open), or degraded with ``--strict``;
* 2: a usage error (a bad option);
* 3: the app could not be read (refused, timed out, not a health document).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any, Final

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["HEALTH_PATH", "StatusError", "fetch_health", "health_table", "health_url", "status"]

HEALTH_PATH: Final = "/health/resilience"

EXIT_UNHEALTHY: Final = 1
EXIT_UNREACHABLE: Final = 3

_STATE_STYLE: Final = {"closed": "green", "half_open": "yellow", "open": "bold red"}
_VERDICT_STYLE: Final = {"healthy": "bold green", "degraded": "bold yellow",
                         "unhealthy": "bold red"}


class StatusError(Exception):
    """The health document could not be read; the message says why, for the user."""


def health_url(url: str) -> str:
    """The URL of the health document: ``url`` itself when it ends in
    ``/health/resilience``, else that path appended (so a base URL, with or
    without a prefix the router is mounted at, works)::

        >>> health_url("http://127.0.0.1:8000")
        'http://127.0.0.1:8000/health/resilience'
        >>> health_url("http://svc/ops/")
        'http://svc/ops/health/resilience'
        >>> health_url("http://svc/ops/health/resilience")
        'http://svc/ops/health/resilience'
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StatusError(f"{url!r} is not an http:// or https:// URL")
    path = parts.path.rstrip("/")
    if not path.endswith(HEALTH_PATH):
        path += HEALTH_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def fetch_health(url: str, timeout: float) -> dict[str, Any]:
    """GET the health document at ``url`` (a full URL, see :func:`health_url`)
    within ``timeout`` seconds; :class:`StatusError` when that fails."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(4_000_000)
    except urllib.error.HTTPError as exc:
        exc.close()
        hint = ("; is buttress.fastapi.resilience_router() included there?"
                if exc.code == 404 else "")
        raise StatusError(f"{url} answered {exc.code} {exc.reason}{hint}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusError(f"could not reach {url}: {reason}") from exc
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise StatusError(f"{url} did not answer JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("overall_health"), str) \
            or not isinstance(document.get("circuit_breakers"), dict):
        raise StatusError(f"{url} did not answer a resilience health document "
                          "(no overall_health and circuit_breakers)")
    return document


def _rate(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def _retry_in(breaker: dict[str, Any]) -> str:
    remaining = breaker.get("remaining_timeout")
    if breaker.get("state") != "open" or not isinstance(remaining, int | float):
        return ""
    return "forced" if remaining == float("inf") else f"{remaining:.1f} s"


def health_table(document: dict[str, Any], url: str) -> Table:
    """The document as a table: one row per breaker (state, failure rate,
    calls, failures, rejections, time until it probes again)."""
    verdict = str(document.get("overall_health"))
    breakers: dict[str, dict[str, Any]] = document.get("circuit_breakers") or {}
    title = Text.assemble((url, "bold"), ": ", (verdict, _VERDICT_STYLE.get(verdict, "")),
                          f" ({len(breakers)} breakers)")
    table = Table(title=title, title_justify="left")
    table.add_column("breaker")
    table.add_column("state")
    table.add_column("critical", justify="center")
    table.add_column("failure rate", justify="right")
    table.add_column("calls", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("probe in", justify="right")
    for name, breaker in breakers.items():
        state = str(breaker.get("state"))
        table.add_row(
            name, Text(state, _STATE_STYLE.get(state, "")),
            "yes" if breaker.get("critical") else "",
            _rate(breaker.get("failure_rate")), str(breaker.get("total_calls", "-")),
            str(breaker.get("failed_calls", "-")), str(breaker.get("rejected_calls", "-")),
            _retry_in(breaker),
        )
    return table


def _exit_code(document: dict[str, Any], strict: bool) -> int:
    verdict = document.get("overall_health")
    if verdict == "unhealthy" or (strict and verdict != "healthy"):
        return EXIT_UNHEALTHY
    return 0


def status(
    url: Annotated[str, typer.Argument(
        help="The app's base URL (http://host:port, plus any prefix the router is "
             "mounted at) or the full URL of its /health/resilience document.",
        show_default=False,
    )],
    watch: Annotated[bool, typer.Option(
        "--watch", help="Poll again every --interval seconds (Ctrl-C stops).",
    )] = False,
    interval: Annotated[float, typer.Option(
        min=0.01, help="Seconds between polls with --watch.",
    )] = 2.0,
    count: Annotated[int, typer.Option(
        min=0, help="Polls to make with --watch (0: until interrupted).",
    )] = 0,
    timeout: Annotated[float, typer.Option(
        min=0.01, help="Seconds to wait for each answer.",
    )] = 5.0,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the raw document (one JSON line per poll with --watch).",
    )] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 1 when degraded too, not only when unhealthy.",
    )] = False,
) -> None:
    """Show a running app's circuit breakers: state, failure rate and calls.

    Reads URL/health/resilience (served by buttress.fastapi.resilience_router).
    Exit code: 0 healthy or degraded, 1 unhealthy (or degraded with --strict),
    3 when the app can not be read.
    """
    console = Console()
    errors = Console(stderr=True)
    try:
        target = health_url(url)
    except StatusError as exc:
        raise typer.BadParameter(str(exc), param_hint="'URL'") from exc
    polls = (count or None) if watch else 1
    code = 0
    live: Live | None = None
    if watch and not as_json and console.is_terminal:
        live = Live(console=console, auto_refresh=False)
        live.start()
    try:
        made = 0
        while polls is None or made < polls:
            if made:
                time.sleep(interval)
            made += 1
            try:
                document = fetch_health(target, timeout)
            except StatusError as exc:
                code = EXIT_UNREACHABLE
                if live is not None:
                    live.update(Text(f"error: {exc}", "bold red"), refresh=True)
                else:
                    errors.print(f"error: {exc}", style="bold red", highlight=False, soft_wrap=True)
                continue
            code = _exit_code(document, strict)
            if as_json:
                typer.echo(json.dumps(document, indent=None if watch else 2))
            elif live is not None:
                stamp = Text(time.strftime("%H:%M:%S") + f"  poll {made}", "dim")
                live.update(Group(health_table(document, target), stamp), refresh=True)
            else:
                console.print(health_table(document, target))
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
    raise typer.Exit(code)
