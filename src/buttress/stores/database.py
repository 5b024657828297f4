"""Resilient SQLAlchemy 2 sessions: :func:`get_database_client`.

A :class:`DatabaseClient` owns a SQLAlchemy engine (and, on demand, an async
one), a retry for *opening* connections and the circuit breaker of its
database. PostgreSQL goes through psycopg 3; any SQLAlchemy URL works (SQLite
for local runs and examples)::

    client = get_database_client("postgresql://app@db.internal/app")

    with client.session() as session:              # one transaction: commit or rollback
        rows = session.execute("SELECT id, name FROM users").fetchall()

    async with client.async_session() as session:
        rows = (await session.execute("SELECT id, name FROM users")).fetchall()

    client.run_transaction(transfer, 10, retryable=True)   # replays the whole function

Rules of this module:

* The client never sends a statement of yours twice on its own. Inside
  :meth:`~DatabaseClient.session` the only thing retried is *opening* the
  connection (checkout with pre-ping, ``BEGIN``), before any of your statements
  ran: connection refused or reset, server shutting down, connect timeout.
* A whole transaction is replayed only when you say so:
  :meth:`~DatabaseClient.run_transaction` with ``retryable=True`` runs your
  function again after a serialization failure (``40001``), a deadlock
  (``40P01``) or a connection lost *before* COMMIT (the server rolled it back).
  The decorators (:func:`~buttress.retry_database_operation`,
  :func:`~buttress.database_resilient`) around a function using a session are
  the same choice, made by decorating it.
* A connection lost *during* COMMIT raises :class:`~buttress.CommitOutcomeUnknownError`:
  the transaction may have been committed. Nothing in buttress retries it.
* The breaker counts the database's failures only (lost or refused connections,
  timeouts); an ``IntegrityError``, a serialization conflict or a bug in your
  block is the database answering, and counts as a success. While it is open,
  sessions fail at once with :class:`~buttress.CircuitBreakerError`.
* Each transaction on PostgreSQL starts with ``SET LOCAL statement_timeout``:
  the time left of the call's deadline (:func:`~buttress.remaining_time`, read
  when the session opened) or ``statement_timeout``, whichever is shorter. The
  server enforces it, so it really ends the work.
* Sync sessions run in the caller's thread; nothing here starts a thread.

Limits: the server enforces statement timeouts, so a server that hangs without
closing its connections (SIGSTOP, a frozen VM) blocks a *sync* statement already
sent until it resumes; new connections give up after ``connect_timeout``
(libpq's minimum is 2 s). An async timeout ends an async statement, after
psycopg's own attempt to cancel it on the server (up to about 10 s more when
the server is paused). Async sessions need an async driver: psycopg 3 for
PostgreSQL, ``aiosqlite`` for SQLite (not a dependency of ``buttress[sqlalchemy]``).

.. versionadded:: 0.2
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Final, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from buttress._core import validate
from buttress._core.clock import Clock
from buttress._core.context import CallContext, current_context
from buttress._core.errors import CommitOutcomeUnknownError, ConfigurationError
from buttress._core.shared import SharedClients
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.config import get_settings
from buttress.registry import get_circuit_breaker
from buttress.retry import Retry
from buttress.transient import (
    is_database_conflict,
    is_database_disconnect,
    is_transient_database_error,
)

__all__ = [
    "AsyncTextSession",
    "DatabaseClient",
    "DatabaseClientConfig",
    "DatabaseFailure",
    "TextSession",
    "get_database_client",
]

R = TypeVar("R")

logger = logging.getLogger("buttress.stores.database")

_DEFAULT_URL: Final = "sqlite://"
_URL_VARIABLES: Final = ("BUTTRESS_DATABASE_URL", "DATABASE_URL")
_CONTEXT_KEY: Final = "buttress.context"  # Session.info: the call context at open
_CACHE_LIMIT: Final = 32  # clients get_database_client keeps (the most recently used)
_LIBPQ_MIN_CONNECT_TIMEOUT: Final = 2  # libpq rounds anything lower up to 2 s


# --- what counts as the database failing ------------------------------------------


class _FailureMeta(type):
    def __instancecheck__(cls, instance: object) -> bool:
        if isinstance(instance, CommitOutcomeUnknownError):
            return True
        return (isinstance(instance, Exception) and is_transient_database_error(instance)
                and not is_database_conflict(instance))


class DatabaseFailure(Exception, metaclass=_FailureMeta):
    """Matches (``isinstance``) the errors that mean the database failed: the
    transient ones (lost, refused or timed-out connections, statement timeouts,
    a busy SQLite file) and :class:`~buttress.CommitOutcomeUnknownError`, but not
    serialization conflicts or deadlocks. The client's breaker counts these only.
    Never raised."""


def _replayable(exc: BaseException) -> bool:
    """A whole transaction may run again: the server rolled it back."""
    return is_database_conflict(exc) or is_database_disconnect(exc)


# --- configuration ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseClientConfig:
    """How a :class:`DatabaseClient` connects, retries and trips (seconds, floats).

    ``name`` names the breaker (shared by every client of that name; not
    ``"database"``, which ``resilient_context(operation_type="database")`` and
    the seeds use for breakers of their own) and, on PostgreSQL, the
    connections' ``application_name``. ``connect_timeout``
    bounds opening one connection; ``statement_timeout`` bounds each statement
    when the call has no shorter deadline (``None``: the server's setting).
    ``max_attempts``/``base_delay``/``max_delay`` drive the retry of opening a
    connection and the replay of retryable transactions; ``failure_threshold``
    and ``recovery_timeout`` the breaker; ``pool_*`` SQLAlchemy's pool.
    """

    name: str = "database_client"
    connect_timeout: float = 5.0
    statement_timeout: float | None = 30.0
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0
    jitter: bool | float = 0.5
    failure_threshold: int = 3
    recovery_timeout: float = 30.0
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 10.0

    def __post_init__(self) -> None:
        o = "DatabaseClientConfig"
        validate.text(o, "name", self.name)
        validate.number(o, "connect_timeout", self.connect_timeout, minimum=0.0,
                        strict_minimum=True)
        if self.statement_timeout is not None:
            validate.number(o, "statement_timeout", self.statement_timeout, minimum=0.0,
                            strict_minimum=True)
        validate.integer(o, "max_attempts", self.max_attempts, minimum=1)
        validate.number(o, "base_delay", self.base_delay, minimum=0.0)
        validate.number(o, "max_delay", self.max_delay, minimum=0.0)
        validate.delay_cap(o, self.base_delay, self.max_delay)
        validate.integer(o, "failure_threshold", self.failure_threshold, minimum=1)
        validate.number(o, "recovery_timeout", self.recovery_timeout, minimum=0.0)
        validate.integer(o, "pool_size", self.pool_size, minimum=1)
        validate.integer(o, "max_overflow", self.max_overflow, minimum=0)
        validate.number(o, "pool_timeout", self.pool_timeout, minimum=0.0, strict_minimum=True)


def _normalise_url(url: str | URL) -> URL:
    """PostgreSQL URLs without a driver use psycopg 3 (SQLAlchemy would pick psycopg2)."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        # The message must not echo the URL: it may hold a password.
        raise ConfigurationError("get_database_client.url", "<hidden>",
                                 "a SQLAlchemy database URL") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _async_url(url: URL) -> URL:
    if url.drivername == "sqlite":
        import importlib.util

        if importlib.util.find_spec("aiosqlite") is None:
            raise ImportError("async sessions on SQLite need the aiosqlite package: "
                              "pip install aiosqlite", name="aiosqlite")
        return url.set(drivername="sqlite+aiosqlite")
    return url  # postgresql+psycopg serves both; other drivers are the user's choice


# --- sessions ----------------------------------------------------------------------


class TextSession(Session):
    """A SQLAlchemy :class:`~sqlalchemy.orm.Session` whose ``execute`` also takes
    a plain SQL string (wrapped in :func:`sqlalchemy.text`), as the seeds write it::

        session.execute("SELECT * FROM users WHERE id = :id", {"id": 1})
    """

    def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if isinstance(statement, str):
            statement = text(statement)
        return super().execute(statement, params, **kw)


class AsyncTextSession(AsyncSession):
    """The async twin of :class:`TextSession`."""

    async def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if isinstance(statement, str):
            statement = text(statement)
        return await super().execute(statement, params, **kw)


def _describe(error: BaseException) -> str:
    """The class and first line of an error (drivers add multi-line detail)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _close_quietly(close: Callable[[], object]) -> None:
    # Only called while another error propagates: that one must win.
    try:
        close()
    except Exception:
        logger.debug("closing a failed database session failed too", exc_info=True)


async def _aclose_quietly(close: Callable[[], Awaitable[object]]) -> None:
    try:
        await close()
    except Exception:
        logger.debug("closing a failed database session failed too", exc_info=True)


class DatabaseClient:
    """A database behind a retry (for opening connections) and a breaker.

    Made by :func:`get_database_client`; see the module docstring for what is
    retried and what never is. ``engine`` and ``async_engine`` are created on
    first use; :meth:`dispose`/:meth:`adispose` close their pools.
    """

    def __init__(self, url: str | URL, config: DatabaseClientConfig | None = None, *,
                 clock: Clock | None = None, engine_options: dict[str, Any] | None = None) -> None:
        self.url = _normalise_url(url)
        self.config = config if config is not None else DatabaseClientConfig()
        self.clock = clock
        self._engine_options = dict(engine_options or {})
        self._engine: Engine | None = None
        self._async_engine: AsyncEngine | None = None
        self._lock = threading.Lock()
        cfg = self.config
        self._breaker_config = CircuitBreakerConfig(
            name=cfg.name, failure_threshold=cfg.failure_threshold,
            recovery_timeout=cfg.recovery_timeout, failure_exceptions=(DatabaseFailure,))
        self.breaker  # noqa: B018 - fail now on a clashing breaker of that name

        # Each client has its own session class, so its listener is its own.
        self._session_class: type[TextSession] = type("ClientSession", (TextSession,), {})
        event.listen(self._session_class, "after_begin", self._on_begin)
        self._sessions = sessionmaker(class_=self._session_class)
        self._async_sessions = async_sessionmaker(class_=AsyncTextSession,
                                                  sync_session_class=self._session_class)
        retry_options: dict[str, Any] = {
            "max_attempts": cfg.max_attempts, "base_delay": cfg.base_delay,
            "max_delay": cfg.max_delay, "jitter": cfg.jitter, "name": cfg.name, "clock": clock}
        opening = Retry(retry_condition=is_transient_database_error, **retry_options)
        self._open = opening(self._open_once)
        self._aopen = opening(self._aopen_once)
        self._replay = Retry(retry_condition=_replayable, **retry_options)

    def __repr__(self) -> str:
        return f"DatabaseClient({self.url.render_as_string(hide_password=True)!r}, " \
               f"name={self.config.name!r})"

    # -- engines ---------------------------------------------------------------

    def _options(self) -> dict[str, Any]:
        cfg = self.config
        options: dict[str, Any] = {"pool_pre_ping": True}
        connect_args: dict[str, Any] = {}
        if self.url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = max(_LIBPQ_MIN_CONNECT_TIMEOUT,
                                                  math.ceil(cfg.connect_timeout))
            connect_args["application_name"] = cfg.name[:63]
        elif self.url.get_backend_name() == "sqlite":
            connect_args["timeout"] = cfg.connect_timeout  # waiting on a locked file
        if self.url.get_backend_name() != "sqlite":
            options.update(pool_size=cfg.pool_size, max_overflow=cfg.max_overflow,
                           pool_timeout=cfg.pool_timeout)
        options.update(self._engine_options)
        options["connect_args"] = {**connect_args, **options.get("connect_args", {})}
        return options

    @property
    def engine(self) -> Engine:
        """The sync SQLAlchemy engine (pool pre-ping on), created on first use."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = create_engine(self.url, **self._options())
        return self._engine

    @property
    def async_engine(self) -> AsyncEngine:
        """The async engine, created on first use (needs an async driver)."""
        if self._async_engine is None:
            url = _async_url(self.url)
            with self._lock:
                if self._async_engine is None:
                    self._async_engine = create_async_engine(url, **self._options())
        return self._async_engine

    @property
    def breaker(self) -> CircuitBreaker:
        """The registered breaker named ``config.name`` (looked up on each use, so
        a registry reset gives the client a fresh one)."""
        return get_circuit_breaker(self.config.name, self._breaker_config, clock=self.clock)

    def dispose(self) -> None:
        """Close every pooled connection of the sync engine."""
        if self._engine is not None:
            self._engine.dispose()

    async def adispose(self) -> None:
        """Close every pooled connection of both engines."""
        self.dispose()
        if self._async_engine is not None:
            await self._async_engine.dispose()

    # -- the statement timeout ---------------------------------------------------

    def statement_timeout_for(self, context: CallContext | None) -> float | None:
        """Seconds each statement may take in a transaction opened under
        ``context``: the shorter of its time left and ``statement_timeout``."""
        limit = self.config.statement_timeout
        left = None if context is None else context.remaining()
        if left is not None and (limit is None or left < limit):
            limit = left
        return limit

    def _on_begin(self, session: Session, transaction: SessionTransaction,
                  connection: Connection) -> None:
        if connection.dialect.name != "postgresql":
            return
        limit = self.statement_timeout_for(session.info.get(_CONTEXT_KEY))
        if limit is not None:
            # 0 would mean "no limit" to PostgreSQL: a spent deadline is 1 ms.
            milliseconds = max(1, math.ceil(limit * 1000))
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")

    # -- sync ------------------------------------------------------------------------

    def _open_once(self, context: CallContext | None) -> TextSession:
        # Enters the breaker and leaves it entered on success: session() exits it
        # with the outcome of the whole block.
        breaker = self.breaker
        breaker.__enter__()
        session = self._sessions(bind=self.engine, info={_CONTEXT_KEY: context})
        try:
            session.connection()  # checkout (pre-ping), BEGIN, SET LOCAL
        except BaseException as exc:
            _close_quietly(session.close)
            breaker.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return session

    def _commit(self, session: Session) -> None:
        session.flush()  # a failure here is before COMMIT: an ordinary error
        try:
            session.commit()
        except Exception as exc:
            if is_database_disconnect(exc):
                raise CommitOutcomeUnknownError(self.config.name, exc) from exc
            raise

    @contextlib.contextmanager
    def session(self) -> Iterator[TextSession]:
        """A session in one transaction: committed when the block ends, rolled back
        when it raises. Opening it is retried on transient errors (nothing of
        yours ran yet); the block itself is never re-run. Raises
        :class:`~buttress.CircuitBreakerError` at once while the breaker is open,
        and :class:`~buttress.CommitOutcomeUnknownError` when the connection is
        lost during COMMIT::

            with client.session() as session:
                session.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
        """
        breaker = self.breaker
        session = self._open(current_context())
        try:
            try:
                yield session
            except BaseException:
                _close_quietly(session.rollback)
                raise
            self._commit(session)
        except BaseException as exc:
            _close_quietly(session.close)
            breaker.__exit__(type(exc), exc, exc.__traceback__)
            raise
        session.close()
        breaker.__exit__(None, None, None)

    def run_transaction(self, fn: Callable[..., R], /, *args: Any, retryable: bool = False,
                        **kwargs: Any) -> R:
        """``fn(session, *args, **kwargs)`` in one :meth:`session`, committed when it
        returns. With ``retryable=True`` the whole call runs again (with backoff,
        up to ``max_attempts``) after a serialization failure, a deadlock or a
        connection lost before COMMIT; say so only when ``fn`` does nothing but
        database work that is safe to repeat::

            def transfer(session, amount):
                session.execute("UPDATE accounts SET balance = balance - :a WHERE id = 1",
                                {"a": amount})

            client.run_transaction(transfer, 10, retryable=True)
        """
        def once() -> R:
            with self.session() as session:
                return fn(session, *args, **kwargs)

        if not retryable:
            return once()
        result: R = self._replay.call(once)
        return result

    # -- async -----------------------------------------------------------------------

    async def _aopen_once(self, context: CallContext | None) -> AsyncTextSession:
        breaker = self.breaker
        breaker.__enter__()  # no breaker timeout is configured: the sync form is exact
        session = self._async_sessions(bind=self.async_engine, info={_CONTEXT_KEY: context})
        try:
            await session.connection()
        except BaseException as exc:
            await _aclose_quietly(session.close)
            breaker.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return session

    async def _acommit(self, session: AsyncSession) -> None:
        await session.flush()
        try:
            await session.commit()
        except Exception as exc:
            if is_database_disconnect(exc):
                raise CommitOutcomeUnknownError(self.config.name, exc) from exc
            raise

    @contextlib.asynccontextmanager
    async def async_session(self) -> AsyncIterator[AsyncTextSession]:
        """The async twin of :meth:`session` (needs an async driver)::

            async with client.async_session() as session:
                rows = (await session.execute("SELECT * FROM users")).fetchall()
        """
        breaker = self.breaker
        session = await self._aopen(current_context())
        try:
            try:
                yield session
            except BaseException:
                await _aclose_quietly(session.rollback)
                raise
            await self._acommit(session)
        except BaseException as exc:
            await _aclose_quietly(session.close)
            breaker.__exit__(type(exc), exc, exc.__traceback__)
            raise
        await session.close()
        breaker.__exit__(None, None, None)

    async def arun_transaction(self, fn: Callable[..., Awaitable[R]], /, *args: Any,
                               retryable: bool = False, **kwargs: Any) -> R:
        """The async twin of :meth:`run_transaction`: ``await fn(session, ...)``."""
        async def once() -> R:
            async with self.async_session() as session:
                return await fn(session, *args, **kwargs)

        if not retryable:
            return await once()
        result: R = await self._replay.acall(once)
        return result

    # -- health ------------------------------------------------------------------------

    def _health(self, started: float, error: BaseException | str | None) -> dict[str, Any]:
        state = self.breaker.state.value
        report: dict[str, Any] = {
            "status": "healthy" if error is None and state == "closed" else
                      "degraded" if error is None else "unhealthy",
            "backend": self.url.get_backend_name(),
            "circuit_breaker": state,
            "latency_ms": round((perf_counter() - started) * 1000.0, 3),
        }
        if error is not None:
            report["error"] = error if isinstance(error, str) else _describe(error)
        return report

    def health_check(self) -> dict[str, Any]:
        """Ask the database ``SELECT 1`` (no retry, outside the breaker) and report::

            {"status": "healthy", "backend": "postgresql", "circuit_breaker": "closed",
             "latency_ms": 0.8}

        ``status`` is ``"healthy"``, ``"degraded"`` (it answered, but the breaker
        is not closed yet) or ``"unhealthy"`` (with ``"error"``; while the
        breaker is open the database is not asked). Never raises.
        """
        started = perf_counter()
        if self.breaker.is_open:
            return self._health(started, "circuit breaker open")
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except Exception as exc:
            return self._health(started, exc)
        return self._health(started, None)

    async def ahealth_check(self) -> dict[str, Any]:
        """The async twin of :meth:`health_check`, on the async engine."""
        started = perf_counter()
        if self.breaker.is_open:
            return self._health(started, "circuit breaker open")
        try:
            async with self.async_engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        except Exception as exc:
            return self._health(started, exc)
        return self._health(started, None)


# --- the factory -----------------------------------------------------------------------

_clients: SharedClients[tuple[str, DatabaseClientConfig], DatabaseClient] = \
    SharedClients(_CACHE_LIMIT)

_SETTINGS_FIELDS: Final = {"max_attempts": "max_attempts", "base_delay": "base_delay",
                           "max_delay": "max_delay", "jitter": "jitter",
                           "failure_threshold": "failure_threshold",
                           "recovery_timeout": "recovery_timeout",
                           "statement_timeout": "timeout_seconds"}


def get_database_client(url: str | URL | None = None, *, clock: Clock | None = None,
                        engine_options: dict[str, Any] | None = None,
                        **options: Any) -> DatabaseClient:
    """The resilient client of the database at ``url`` (a SQLAlchemy URL;
    ``postgresql://`` uses psycopg 3). Without ``url``: ``$BUTTRESS_DATABASE_URL``,
    then ``$DATABASE_URL``, then an in-memory SQLite database::

        client = get_database_client("postgresql://app@db.internal/app", name="app_db")
        with client.session() as session:
            session.execute("SELECT 1")

    ``options`` are :class:`DatabaseClientConfig` fields; those not given come
    from the ``database`` settings (:func:`~buttress.configure`, ``*_DATABASE_*``
    environment variables): attempts, delays, breaker threshold and recovery,
    and ``timeout_seconds`` as the statement timeout. The same URL and options
    give the same client (and pool); ``DatabaseClient(...)`` makes a new one.
    ``engine_options`` go to ``create_engine`` as they are.
    """
    if url is None:
        url = next((os.environ[v] for v in _URL_VARIABLES if os.environ.get(v)), _DEFAULT_URL)
    settings = get_settings().database
    for field, setting in _SETTINGS_FIELDS.items():
        options.setdefault(field, getattr(settings, setting))
    try:
        config = DatabaseClientConfig(**options)
    except TypeError as exc:
        raise TypeError(f"get_database_client() got an unexpected keyword argument: {exc}") \
            from None
    normalised = _normalise_url(url)
    if clock is not None or engine_options:
        return DatabaseClient(normalised, config, clock=clock, engine_options=engine_options)
    key = (normalised.render_as_string(hide_password=False), config)
    return _clients.get(key, lambda: DatabaseClient(normalised, config))
