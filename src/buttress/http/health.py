"""A circuit breaker that also watches its dependency's health URL.

A background probe GETs ``health_check_url`` every ``health_check_interval``
seconds. While the URL fails (no answer, or a status outside 2xx) the breaker
is held open, so calls fail fast before they time out one by one; once it
answers 2xx again the breaker is closed (only if the probe opened it: a
breaker that calls tripped recovers by its own half-open probes).

Rules of this module:

* One probe per breaker: a thread when started from sync code (:meth:`start`,
  ``with breaker``), a task of the running event loop when started from async
  code (:meth:`astart`, ``await is_healthy()``, ``async with breaker``).
* The probe waits on the breaker's clock (a ``VirtualClock`` in tests) and every
  probe request is bounded by ``probe_timeout``.
* It stops on :meth:`close` / :meth:`aclose`, at interpreter exit (an ``atexit``
  hook stops every live probe), and is absent in a forked child (threads do not
  survive a fork): the child's first use starts its own.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import weakref
from types import TracebackType
from typing import Any, Self

import httpx

from buttress._core import forksafe, validate
from buttress._core.clock import Clock
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig

__all__ = ["HealthAwareCircuitBreaker"]

_live: weakref.WeakSet[HealthAwareCircuitBreaker] = weakref.WeakSet()


class HealthAwareCircuitBreaker(CircuitBreaker):
    """A :class:`~buttress.CircuitBreaker` held open while a health URL fails::

        breaker = HealthAwareCircuitBreaker(
            "llm-service",
            health_check_url="http://llm-service:8080/health",
            health_check_interval=30.0,
        )
        if not await breaker.is_healthy():
            return local_processing(data)
        async with breaker:
            return await llm_processing(data)

    ``health_check_interval`` is seconds between probes, ``probe_timeout`` the
    limit of one probe (default: the interval, at most 5 s); ``transport`` /
    ``async_transport`` replace the probe's httpx transport. Other arguments
    are the breaker's (a :class:`~buttress.CircuitBreakerConfig` or its fields).
    """

    __slots__ = ("_async_transport", "_first", "_first_async", "_healthy", "_holding",
                 "_probe_lock", "_probes", "_stop", "_task", "_thread", "_transport",
                 "health_check_interval", "health_check_url", "probe_timeout")

    def __init__(
        self,
        name: str | CircuitBreakerConfig | None = None,
        config: CircuitBreakerConfig | None = None,
        *,
        health_check_url: str,
        health_check_interval: float = 30.0,
        probe_timeout: float | None = None,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        o = "HealthAwareCircuitBreaker"
        url = httpx.URL(validate.text(o, "health_check_url", health_check_url))
        if url.scheme not in ("http", "https") or not url.host:
            from buttress._core.errors import ConfigurationError
            raise ConfigurationError(f"{o}.health_check_url", health_check_url,
                                     "an absolute http(s) URL")
        self.health_check_url = health_check_url
        self.health_check_interval = validate.number(
            o, "health_check_interval", health_check_interval, minimum=0.0)
        if self.health_check_interval <= 0:
            from buttress._core.errors import ConfigurationError
            raise ConfigurationError(f"{o}.health_check_interval", health_check_interval,
                                     "seconds > 0")
        self.probe_timeout = (min(self.health_check_interval, 5.0) if probe_timeout is None
                              else validate.number(o, "probe_timeout", probe_timeout,
                                                   minimum=0.0))
        super().__init__(name, config, clock=clock, **options)
        self._transport = transport
        self._async_transport = async_transport
        self._probe_lock = forksafe.lock()
        self._healthy: bool | None = None  # None: not probed yet
        self._holding = False
        self._probes = 0
        self._stop = threading.Event()
        self._first = threading.Event()
        self._first_async: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        forksafe.register(self)
        _live.add(self)

    # what the probe found

    @property
    def probes(self) -> int:
        """How many probes have finished."""
        return self._probes

    @property
    def healthy(self) -> bool | None:
        """The last probe's verdict (None before the first), without waiting."""
        return self._healthy

    def _record(self, ok: bool) -> None:
        with self._probe_lock:
            self._healthy = ok
            self._probes += 1
            hold = not ok and not self._holding
            release = ok and self._holding
            self._holding = not ok
        if hold:
            self.force_open()
        elif release:
            self.force_closed()
        self._first.set()

    def _judge(self, response: httpx.Response) -> bool:
        return response.is_success

    # the sync probe (a thread)

    def start(self) -> HealthAwareCircuitBreaker:
        """Start the probe in a daemon thread (a no-op while one runs)."""
        with self._probe_lock:
            if self._running():
                return self
            self._stop = stop = threading.Event()
            self._first.clear()
            thread = threading.Thread(target=self._run_thread, args=(stop,), daemon=True,
                                      name=f"buttress-health-{self.name}")
            self._thread = thread
        thread.start()
        return self

    def _running(self) -> bool:
        thread, task = self._thread, self._task
        return (thread is not None and thread.is_alive()) or (task is not None and not task.done())

    def _run_thread(self, stop: threading.Event) -> None:
        with httpx.Client(transport=self._transport, timeout=self.probe_timeout) as client:
            while not stop.is_set():
                try:
                    ok = self._judge(client.get(self.health_check_url))
                except Exception:
                    ok = False
                if stop.is_set():
                    return
                self._record(ok)
                if self.clock.wait(stop, self.health_check_interval):
                    return

    def check_health(self, timeout: float | None = None) -> bool:
        """Sync: start the probe if needed, wait (up to ``timeout`` seconds of real
        time, default ``probe_timeout`` plus one) for its first verdict, and say
        whether the dependency is healthy and the breaker admits calls."""
        self.start()
        self._first.wait(self.probe_timeout + 1.0 if timeout is None else timeout)
        return bool(self._healthy) and not self.is_open

    # the async probe (a task)

    async def astart(self) -> HealthAwareCircuitBreaker:
        """Start the probe as a task of the running loop (a no-op while one runs)."""
        loop = asyncio.get_running_loop()
        with self._probe_lock:
            if self._running():
                return self
            self._first.clear()
            self._first_async = asyncio.Event()
            self._task = loop.create_task(self._run_task(), name=f"buttress-health-{self.name}")
        return self

    async def _run_task(self) -> None:
        async with httpx.AsyncClient(transport=self._async_transport,
                                     timeout=self.probe_timeout) as client:
            while True:
                try:
                    ok = self._judge(await client.get(self.health_check_url))
                except Exception:
                    ok = False
                self._record(ok)
                if self._first_async is not None:
                    self._first_async.set()
                await self.clock.async_sleep(self.health_check_interval) \
                    if _real(self.clock) else await _virtual_pause(self.clock,
                                                                   self.health_check_interval)

    async def is_healthy(self) -> bool:
        """Whether the dependency answers its health URL and the breaker admits
        calls. Starts the probe (a task) on first use and waits for its first
        verdict; later calls answer at once from the last probe."""
        if not self._running():
            await self.astart()
        if self._healthy is None:
            # The first probe is under way, bounded by probe_timeout.
            limit = self.probe_timeout + 1.0
            task, first = self._task, self._first_async
            if task is not None and first is not None \
                    and task.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(limit):
                        await first.wait()
            else:  # a probe thread: wait for it without blocking the loop
                await asyncio.to_thread(self._first.wait, limit)
        return bool(self._healthy) and not self.is_open

    # lifecycle

    def close(self) -> None:
        """Stop the probe (waits for a probe thread to finish, at most ``probe_timeout``)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.get_loop().call_soon_threadsafe(task.cancel)
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.probe_timeout + 1.0)

    async def aclose(self) -> None:
        """Stop the probe and wait for it to end."""
        task = self._task
        self.close()
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here, nor does its loop run.
        self._thread = None
        self._task = None
        self._stop = threading.Event()

    def __enter__(self) -> Self:
        if not self._running():
            self.start()
        return super().__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        super().__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Self:
        if not self._running():
            await self.astart()
        return await super().__aenter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await super().__aexit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        state = self.state.value
        return (f"HealthAwareCircuitBreaker({self.name!r}, state={state}, "
                f"url={self.health_check_url!r}, healthy={self._healthy})")


def _real(clock: Clock) -> bool:
    from buttress._core.clock import SystemClock
    return isinstance(clock, SystemClock)


async def _virtual_pause(clock: Clock, seconds: float) -> None:
    """Wait until ``clock`` passes ``seconds`` from now: on a virtual clock that
    is when the test moves it, not at once (``async_sleep`` would move it itself)."""
    never = asyncio.Event()
    with contextlib.suppress(TimeoutError):
        async with clock.timeout(seconds):
            await never.wait()


@atexit.register
def _stop_all() -> None:
    """At interpreter exit: stop every probe still running."""
    for breaker in list(_live):
        breaker._stop.set()
