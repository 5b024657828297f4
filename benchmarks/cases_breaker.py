"""Cases d and e: a closed breaker's success path and an open breaker's rejection.

Every breaker trips after five consecutive failures and stays open for an hour;
the open case trips it with real failures, so each library rejects in its
ordinary open state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiobreaker
import circuitbreaker
import purgatory
import pybreaker
from purgatory.domain.model import OpenedState

import buttress
from benchmarks.functions import failing, succeeding
from benchmarks.groups import BREAKER_CLOSED, BREAKER_FORMS, BREAKER_OPEN
from benchmarks.harness import KINDS, Case, Kind

__all__ = ["FORMS", "LIBRARIES", "Library", "cases", "form_cases"]

THRESHOLD = 5
RECOVERY_SECONDS = 3600  # longer than any run: a probe would end the open state mid-run

Protect = Callable[[Callable[..., Any], str], Callable[..., Any]]


@dataclass(frozen=True, slots=True)
class Library:
    """How one library puts a breaker around a function, and what it rejects with."""

    name: str
    kinds: tuple[Kind, ...]
    protect: Protect
    rejection: type[BaseException]


def _buttress(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    breaker = buttress.CircuitBreaker(name, failure_threshold=THRESHOLD,
                                      recovery_timeout=RECOVERY_SECONDS)
    return breaker(fn)


def _pybreaker(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    breaker = pybreaker.CircuitBreaker(fail_max=THRESHOLD, reset_timeout=RECOVERY_SECONDS,
                                       name=name)
    protected: Callable[..., Any] = breaker(fn)
    return protected


def _circuitbreaker(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    breaker = circuitbreaker.CircuitBreaker(failure_threshold=THRESHOLD,
                                            recovery_timeout=RECOVERY_SECONDS, name=name)
    protected: Callable[..., Any] = breaker(fn)
    return protected


def _aiobreaker(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    breaker = aiobreaker.CircuitBreaker(fail_max=THRESHOLD,
                                        timeout_duration=timedelta(seconds=RECOVERY_SECONDS),
                                        name=name)
    protected: Callable[..., Any] = breaker(fn)
    return protected


def _purgatory_sync(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=THRESHOLD,
                                                  default_ttl=RECOVERY_SECONDS)
    protected: Callable[..., Any] = factory(name)(fn)
    return protected


def _purgatory_async(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=THRESHOLD,
                                                   default_ttl=RECOVERY_SECONDS)
    protected: Callable[..., Any] = factory(name)(fn)
    return protected


def _purgatory(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    is_async = asyncio.iscoroutinefunction(fn)
    return (_purgatory_async if is_async else _purgatory_sync)(fn, name)


LIBRARIES: tuple[Library, ...] = (
    Library("buttress", ("sync", "async"), _buttress, buttress.CircuitBreakerError),
    Library("pybreaker", ("sync",), _pybreaker, pybreaker.CircuitBreakerError),
    Library("circuitbreaker", ("sync", "async"), _circuitbreaker,
            circuitbreaker.CircuitBreakerError),
    Library("aiobreaker", ("async",), _aiobreaker, aiobreaker.CircuitBreakerError),
    Library("purgatory", ("sync", "async"), _purgatory, OpenedState),
)


def _closed(library: Library, kind: Kind) -> Callable[[], Any]:
    return library.protect(succeeding(kind), f"bench-closed-{kind}")


async def _trip_async(protected: Callable[..., Any], errors: tuple[type[BaseException], ...]
                      ) -> None:
    for _ in range(THRESHOLD):
        with contextlib.suppress(*errors):
            await protected()


def _opened(library: Library, kind: Kind) -> Callable[[], Any]:
    """A breaker tripped open by THRESHOLD failures (pybreaker already answers the
    tripping call with its rejection)."""
    protected = library.protect(failing(kind), f"bench-open-{kind}")
    errors = (ConnectionError, library.rejection)
    if kind == "async":
        asyncio.run(_trip_async(protected, errors))
        return protected
    for _ in range(THRESHOLD):
        with contextlib.suppress(*errors):
            protected()
    return protected


def cases() -> list[Case]:
    """Cases d and e for buttress and every peer that offers the kind."""
    closed = [
        Case(BREAKER_CLOSED, library.name, kind, functools.partial(_closed, library, kind))
        for kind in KINDS
        for library in LIBRARIES
        if kind in library.kinds
    ]
    opened = [
        Case(BREAKER_OPEN, library.name, kind, functools.partial(_opened, library, kind),
             expect=(library.rejection,))
        for kind in KINDS
        for library in LIBRARIES
        if kind in library.kinds
    ]
    return closed + opened


# --- every buttress call form (issue 11, item 7) ------------------------------------------


class _Refused(Exception):
    pass


def _raise_and_catch(kind: Kind) -> Callable[[], Any]:
    """The floor for a rejection: raise a plain exception and catch it."""

    def sync() -> None:
        raise _Refused

    async def run() -> None:
        raise _Refused

    return sync if kind == "sync" else run


def _breaker(opened: bool, name: str) -> buttress.CircuitBreaker:
    breaker = buttress.CircuitBreaker(name, failure_threshold=THRESHOLD,
                                      recovery_timeout=RECOVERY_SECONDS)
    if opened:
        for _ in range(THRESHOLD):
            with contextlib.suppress(ConnectionError):
                breaker.call(failing("sync"))
    return breaker


def _form(form: str, kind: Kind, opened: bool) -> Callable[[], Any]:
    breaker = _breaker(opened, f"bench-form-{form}-{kind}-{opened}")
    fn = succeeding(kind)
    if form == "decorator":
        protected: Callable[[], Any] = breaker(fn)
        return protected
    if form == "with":

        def with_block() -> int:
            with breaker:
                return fn()  # type: ignore[no-any-return]

        return with_block
    if form == "call":
        return lambda: breaker.call(fn)
    if form == "async with":

        async def async_with_block() -> int:
            async with breaker:
                return await fn()  # type: ignore[no-any-return]

        return async_with_block
    if form == "acall":

        async def acall() -> Any:
            return await breaker.acall(fn)

        return acall
    raise ValueError(form)


FORMS: dict[Kind, tuple[str, ...]] = {
    "sync": ("decorator", "with", "call"),
    "async": ("decorator", "async with", "acall"),
}


def form_cases() -> list[Case]:
    """Every buttress breaker form, closed and open, and the raise-and-catch floor."""
    out: list[Case] = []
    for kind in KINDS:
        for form in FORMS[kind]:
            out.append(Case(BREAKER_FORMS, f"closed {form}", kind,
                            functools.partial(_form, form, kind, False)))
            out.append(Case(BREAKER_FORMS, f"open {form}", kind,
                            functools.partial(_form, form, kind, True),
                            expect=(buttress.CircuitBreakerError,)))
        out.append(Case(BREAKER_FORMS, "raise and catch", kind,
                        functools.partial(_raise_and_catch, kind), expect=(_Refused,)))
    return out
