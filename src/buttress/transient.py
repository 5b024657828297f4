"""Transient-failure classifiers: is this error worth another attempt?

The common HTTP and database clients raise their own exception classes, most of
which are *not* subclasses of the builtin ``ConnectionError``/``TimeoutError``
(``httpx.ConnectError``, ``httpx.ReadTimeout``, ``requests.ConnectionError``,
``aiohttp.ServerDisconnectedError``, ``redis.ConnectionError``, ...). So
``retry_on=(ConnectionError, TimeoutError)`` makes exactly one call when httpx
cannot connect. These classifiers recognise them by name, **without importing
any of those libraries**: a class is identified by its top-level package and
its name (``("httpx", "ConnectError")``), looked up along the exception's MRO::

    import httpx
    from buttress import is_transient, retry

    @retry(max_attempts=4, base_delay=0.2, retry_condition=is_transient)
    def fetch(url: str) -> bytes:
        return httpx.get(url, timeout=5.0).raise_for_status().content

Rules, in order (the first that decides wins):

1. Only ``Exception`` subclasses; cancellation, interrupts and exits never.
2. The exception's classes, most specific first, against the name table below;
   the first class found there decides. So a subclass listed as permanent
   (``requests.exceptions.SSLError``, ``redis.AuthenticationError``) overrides
   the transient family it belongs to.
3. The builtin ``ConnectionError`` and ``TimeoutError`` (this includes
   ``OperationTimeoutError``, ``socket.timeout`` and ``asyncio.TimeoutError``),
   and a DNS lookup that failed *temporarily* (``socket.gaierror`` ``EAI_AGAIN``).
4. A wrapped cause, classified the same way: ``.reason`` (``urllib.error.URLError``,
   urllib3's ``MaxRetryError``) and ``.orig`` (SQLAlchemy's ``DBAPIError``).
5. For :func:`is_transient` and :func:`is_transient_http_error` only: an HTTP
   status (``.status_code``, ``.status``, ``.code``, ``.response.status_code``)
   of 408, 425, 429, 500, 502, 503 or 504.

Transient by name:

* httpx/httpcore: timeouts (``ConnectTimeout``, ``ReadTimeout``, ``WriteTimeout``,
  ``PoolTimeout``), network errors (``ConnectError``, ``ReadError``,
  ``WriteError``, ``CloseError``), ``RemoteProtocolError`` (the server dropped the
  connection). Not ``UnsupportedProtocol``, ``LocalProtocolError``,
  ``ProxyError``, ``DecodingError``, ``TooManyRedirects``: they repeat.
* requests: ``ConnectionError`` (also ``ConnectTimeout``, ``ProxyError``),
  ``Timeout`` (``ReadTimeout``), ``ChunkedEncodingError``; not ``SSLError``.
* urllib3: ``TimeoutError`` (``ConnectTimeoutError``, ``ReadTimeoutError``,
  ``NewConnectionError``, ``NameResolutionError``), ``ProtocolError``; not
  ``SSLError``.
* aiohttp: ``ClientConnectionError`` (``ClientConnectorError``,
  ``ServerDisconnectedError``, ``ServerTimeoutError``, ``ClientOSError``),
  ``ClientPayloadError``; not ``ClientSSLError`` (certificate and TLS errors).
* botocore: ``ConnectionError`` (``EndpointConnectionError``,
  ``ConnectTimeoutError``), ``HTTPClientError`` (``ReadTimeoutError``,
  ``ConnectionClosedError``), and ``ClientError`` with a transient status or a
  throttling code; not ``SSLError``.
* boto3's transfer wrappers, judged by the error they wrap: ``S3UploadFailedError``
  (raised while handling a ``ClientError``: its ``__context__``) and
  ``RetriesExceededError`` (its ``last_exception``), from boto3 or s3transfer.
* http.client: ``IncompleteRead``.
* Databases: ``sqlite3.OperationalError`` when the database is busy or locked
  (``SQLITE_BUSY``/``SQLITE_LOCKED``; "no such table" is not transient);
  psycopg/psycopg2 ``OperationalError`` (serialization failures, deadlocks,
  lost connections, ...) except authentication and unknown-database errors
  (SQLSTATE ``28xxx``/``3D000``); asyncpg connection errors,
  ``TransactionRollbackError``, ``TooManyConnectionsError``,
  ``CannotConnectNowError``, ``AdminShutdownError``; SQLAlchemy
  ``DisconnectionError``, pool ``TimeoutError``, and any ``DBAPIError`` whose
  connection was invalidated; redis ``ConnectionError`` (also
  ``BusyLoadingError``) and ``TimeoutError``, not ``AuthenticationError``.

Two narrower database classifiers decide what a database client may do after
an error (:mod:`buttress.stores.database` uses them):
:func:`is_database_disconnect` (the connection could not be made or is gone:
libpq-level errors without a SQLSTATE, SQLSTATE class ``08``, the server
shutting down ``57P01``/``57P02``/``57P03``, a connection SQLAlchemy
invalidated) and :func:`is_database_conflict` (serialization failure ``40001``,
deadlock ``40P01``: the server rolled the transaction back; only a replay of
the *whole* transaction can succeed). A :class:`~buttress.CommitOutcomeUnknownError`
is never transient: the commit may have gone through, and a replay could apply
it twice.

None of these functions raises: an exception whose attributes fail to read is
judged on what could be read.

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = [
    "is_database_conflict", "is_database_disconnect", "is_transient",
    "is_transient_database_error", "is_transient_http_error", "retry_after_hint",
    "retry_after_seconds",
]

TRANSIENT_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt: timeouts, "too early", rate limits and the
server errors that mean "not now" (not 501 Not Implemented or 505)."""

_WRAPPED_DEPTH: Final = 3  # .reason/.orig chains are one or two deep in practice


def _read(obj: object, name: str) -> object:
    """``getattr(obj, name, None)`` that survives properties raising anything."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _sqlite_busy(exc: BaseException) -> bool:
    name = _read(exc, "sqlite_errorname")  # set by sqlite3 on errors it raises
    if isinstance(name, str):
        return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
    message = str(exc).lower()  # an OperationalError made by hand
    return "locked" in message or "busy" in message


def _postgres_retryable(exc: BaseException) -> bool:
    # SQLSTATE class 28 is "invalid authorization", 3D000 "invalid catalog name"
    # (no such database): asking again gets the same answer.
    code = _read(exc, "sqlstate") or _read(exc, "pgcode")
    return not (isinstance(code, str) and code.startswith(("28", "3D")))


def _invalidated_or_wrapped(exc: BaseException) -> bool | None:
    if _read(exc, "connection_invalidated") is True:
        return True
    return None  # judged by its .orig (rule 4)


# botocore's own retry modes treat these error codes as throttling.
_AWS_THROTTLING: Final = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
})


def _aws_transient(exc: BaseException) -> bool:
    response = _read(exc, "response")
    if not isinstance(response, Mapping):
        return False
    error = response.get("Error")
    if isinstance(error, Mapping) and error.get("Code") in _AWS_THROTTLING:
        return True
    metadata = response.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, Mapping) else None
    return status in TRANSIENT_STATUSES


def _judged_by(attribute: str) -> Callable[[BaseException], bool | None]:
    """A rule judging an exception by the one it wraps (``__context__``,
    ``last_exception``): boto3's transfer layer re-raises a ``ClientError`` or a
    socket error as its own class, keeping the original only there."""
    def judge(exc: BaseException) -> bool | None:
        inner = _read(exc, attribute)
        if isinstance(inner, BaseException) and inner is not exc:
            return _transient(inner, statuses=True, depth=_WRAPPED_DEPTH - 1)
        return None

    return judge


_Rule = bool | Callable[[BaseException], bool | None]

# (top-level package, class name) -> transient? A callable judges the instance
# (None: no verdict, go on with the rules). Keep in step with the module docstring.
_BY_NAME: Final[dict[tuple[str, str], _Rule]] = {
    # httpx re-raises httpcore's errors as its own; both are listed.
    **{(package, name): True
       for package in ("httpx", "httpcore")
       for name in ("TimeoutException", "NetworkError", "RemoteProtocolError")},
    ("requests", "ConnectionError"): True,
    ("requests", "Timeout"): True,
    ("requests", "ChunkedEncodingError"): True,
    ("requests", "SSLError"): False,
    ("urllib3", "TimeoutError"): True,
    ("urllib3", "NewConnectionError"): True,
    ("urllib3", "ProtocolError"): True,
    ("urllib3", "SSLError"): False,
    ("aiohttp", "ClientConnectionError"): True,
    ("aiohttp", "ClientPayloadError"): True,
    ("aiohttp", "ClientSSLError"): False,
    ("botocore", "ConnectionError"): True,
    ("botocore", "HTTPClientError"): True,
    ("botocore", "SSLError"): False,
    ("botocore", "ClientError"): _aws_transient,
    ("boto3", "S3UploadFailedError"): _judged_by("__context__"),
    ("boto3", "RetriesExceededError"): _judged_by("last_exception"),
    ("s3transfer", "RetriesExceededError"): _judged_by("last_exception"),
    ("http", "IncompleteRead"): True,
    ("sqlite3", "OperationalError"): _sqlite_busy,
    ("psycopg", "OperationalError"): _postgres_retryable,
    ("psycopg2", "OperationalError"): _postgres_retryable,
    ("asyncpg", "PostgresConnectionError"): True,
    ("asyncpg", "TransactionRollbackError"): True,
    ("asyncpg", "TooManyConnectionsError"): True,
    ("asyncpg", "CannotConnectNowError"): True,
    ("asyncpg", "AdminShutdownError"): True,
    ("sqlalchemy", "DisconnectionError"): True,
    ("sqlalchemy", "TimeoutError"): True,
    ("sqlalchemy", "DBAPIError"): _invalidated_or_wrapped,
    ("redis", "ConnectionError"): True,
    ("redis", "TimeoutError"): True,
    ("redis", "AuthenticationError"): False,
    ("buttress", "CommitOutcomeUnknownError"): False,
}


def _by_name(exc: BaseException) -> bool | None:
    """Rule 2: the verdict of the most specific listed class, or None."""
    for cls in type(exc).__mro__:
        module = getattr(cls, "__module__", None)
        if not isinstance(module, str) or module == "builtins":
            continue
        rule = _BY_NAME.get((module.partition(".")[0], cls.__name__))
        if rule is None:
            continue
        if isinstance(rule, bool):
            return rule
        try:
            return rule(exc)
        except Exception:
            return None
    return None


def _status(exc: BaseException) -> int | None:
    for status in (_read(exc, "status_code"), _read(exc, "status"), _read(exc, "code"),
                   _read(_read(exc, "response"), "status_code")):
        if isinstance(status, int) and not isinstance(status, bool):
            return status
    return None


def _transient(exc: BaseException, statuses: bool, depth: int = 0) -> bool:
    if not isinstance(exc, Exception):
        return False
    verdict = _by_name(exc)
    if verdict is not None:
        return verdict
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN:
        return True
    if depth < _WRAPPED_DEPTH:
        for attribute in ("reason", "orig"):
            inner = _read(exc, attribute)
            if (isinstance(inner, BaseException) and inner is not exc
                    and _transient(inner, statuses, depth + 1)):
                return True
    if statuses:
        status = _status(exc)
        return status is not None and status in TRANSIENT_STATUSES
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` looks like a transient failure worth retrying: a lost or
    refused connection, a timeout, a throttling or "try later" HTTP status, a
    busy database, in the builtin classes or those of httpx, requests, urllib3,
    aiohttp, botocore and the common database drivers (see the module
    docstring for the exact list)::

        >>> is_transient(ConnectionRefusedError(111, "Connection refused"))
        True
        >>> is_transient(ValueError("bad input"))
        False

    Use it as a retry predicate: ``@retry(retry_condition=is_transient)``.
    """
    return _transient(exc, statuses=True)


def is_transient_http_error(exc: BaseException) -> bool:
    """Transient for HTTP calls; the same rules as :func:`is_transient` (kept
    under this name for the seeds' ``retry_http_request``)::

        >>> class Unavailable(Exception):
        ...     status_code = 503
        >>> is_transient_http_error(Unavailable())
        True
    """
    return _transient(exc, statuses=True)


def is_transient_database_error(exc: BaseException) -> bool:
    """Transient for database calls: :func:`is_transient` without the HTTP
    status rule (a driver error's ``.code`` is not an HTTP status)::

        >>> import sqlite3
        >>> is_transient_database_error(sqlite3.OperationalError("database is locked"))
        True
        >>> is_transient_database_error(sqlite3.OperationalError("no such table: users"))
        False
    """
    return _transient(exc, statuses=False)


def retry_after_seconds(value: object, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header value asks for, in seconds (never
    negative), or None when it is missing or unreadable. Both forms of RFC 9110
    are read: delay-seconds (``"120"``) and an HTTP date (``"Wed, 21 Oct 2026
    07:28:00 GMT"``), the latter against ``now`` (Unix time; default: the wall
    clock). Capping is the caller's job (a retry caps hints at ``max_delay``)::

        >>> retry_after_seconds("2.5")
        2.5
        >>> retry_after_seconds("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0)
        60.0
        >>> retry_after_seconds("soon") is None
        True
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one is read as such
        return None
    wall = time.time() if now is None else now
    return max(0.0, when.timestamp() - wall)


def retry_after_hint(exc: BaseException) -> float | None:
    """The ``Retry-After`` of the response an exception carries (``.response``
    with ``.headers``, as ``httpx.HTTPStatusError`` and ``requests.HTTPError``
    have), in seconds, or None. ``retry_http_request`` uses it as its
    ``retry_after`` hook, so a 429 or 503 raised by ``raise_for_status()`` waits
    as long as the server asked (capped at ``max_delay``). An exception's own
    ``retry_after`` attribute (seconds), when it has one, comes first."""
    own = _read(exc, "retry_after")
    if isinstance(own, int | float) and not isinstance(own, bool):
        return float(own) if own >= 0 else None
    headers = _read(_read(exc, "response"), "headers")
    if headers is None:
        return None
    try:
        value = headers.get("Retry-After")  # type: ignore[attr-defined]
    except Exception:
        return None
    return retry_after_seconds(value)
# SQLSTATEs: class 08 is "connection exception"; 57P01 admin shutdown (also what
# pg_terminate_backend sends), 57P02 crash shutdown, 57P03 cannot connect now.
_SHUTDOWN_STATES: Final = frozenset({"57P01", "57P02", "57P03"})
# 40001 serialization_failure, 40P01 deadlock_detected.
_CONFLICT_STATES: Final = frozenset({"40001", "40P01"})
# Driver classes whose instances without a SQLSTATE come from the client
# library itself: refused, reset, timed out or closed connections.
_DRIVER_CONNECTION_ERRORS: Final = frozenset({
    ("psycopg", "OperationalError"), ("psycopg2", "OperationalError"),
    ("asyncpg", "PostgresConnectionError"), ("asyncpg", "ConnectionDoesNotExistError"),
    ("sqlalchemy", "DisconnectionError"),
})


def _wrapped(exc: BaseException) -> list[BaseException]:
    """``exc`` and the driver errors it wraps (``.orig``), outermost first."""
    chain = [exc]
    while len(chain) <= _WRAPPED_DEPTH:
        inner = _read(chain[-1], "orig")
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _sqlstate(exc: BaseException) -> str | None:
    code = _read(exc, "sqlstate") or _read(exc, "pgcode")
    return code if isinstance(code, str) and code else None


def _named(exc: BaseException, names: frozenset[tuple[str, str]]) -> bool:
    for cls in type(exc).__mro__:
        module = getattr(cls, "__module__", None)
        if isinstance(module, str) and (module.partition(".")[0], cls.__name__) in names:
            return True
    return False


def is_database_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the database connection could not be made or was
    lost (refused, reset, timed out while connecting, closed by the server, the
    server shutting down), as opposed to an answer from a working server::

        >>> is_database_disconnect(ConnectionResetError(104, "Connection reset by peer"))
        True
        >>> import sqlite3
        >>> is_database_disconnect(sqlite3.OperationalError("database is locked"))
        False

    Work on a lost connection was rolled back by the server *unless* the loss
    happened during COMMIT: then nobody knows (see
    :class:`~buttress.CommitOutcomeUnknownError`).

    .. versionadded:: 0.2
    """
    if not isinstance(exc, Exception):
        return False
    for error in _wrapped(exc):
        if _read(error, "connection_invalidated") is True:
            return True
        code = _sqlstate(error)
        if code is not None:
            return code.startswith("08") or code in _SHUTDOWN_STATES
        if _named(error, _DRIVER_CONNECTION_ERRORS):
            return True
        if isinstance(error, ConnectionError):
            return True
    return False


def is_database_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a serialization failure (SQLSTATE ``40001``) or a
    deadlock (``40P01``): the server rolled the whole transaction back, and
    running the whole transaction again may succeed (a single statement again
    can not)::

        >>> class SerializationFailure(Exception):
        ...     sqlstate = "40001"
        >>> is_database_conflict(SerializationFailure())
        True

    .. versionadded:: 0.2
    """
    if not isinstance(exc, Exception):
        return False
    return any(_sqlstate(error) in _CONFLICT_STATES for error in _wrapped(exc))
