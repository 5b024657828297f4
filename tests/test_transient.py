"""The transient-failure classifiers (``buttress.transient``): the common clients'
transport errors are recognised by name, without importing those clients.

httpx, requests, aiohttp, urllib3, redis, SQLAlchemy, botocore, psycopg and
asyncpg are not installed in the project's environment, so each class is also
rebuilt here as a stand-in with the real module, name and MRO, recorded from the
real libraries (httpx 0.28, requests 2.34, aiohttp 3.14, urllib3 2.8, redis 8.1,
SQLAlchemy 2.1, botocore 1.44, psycopg 3, psycopg2, asyncpg). Where a library
is importable, ``test_each_stand_in_has_the_real_classes_mro`` checks the
recording against it and the ``real_*`` tests use the real classes.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import buttress
from buttress import OperationTimeoutError, RetryExhaustedError, retry
from buttress.decorators import retry_database_operation, retry_http_request
from buttress.presets import api_resilient, cache_resilient, database_resilient
from buttress.retry import is_transient as is_transient_from_retry
from buttress.testing import ScriptedCall, VirtualClock
from buttress.transient import (
    is_database_conflict,
    is_database_disconnect,
    is_transient,
    is_transient_database_error,
    is_transient_http_error,
)

# --- stand-ins ------------------------------------------------------------------------------

# Each real class's MRO (most specific first, without builtins) and the builtin
# exception classes in it besides Exception, as the real libraries have them.
RECORDED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("httpx.ConnectError", "httpx.NetworkError", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.ConnectTimeout", "httpx.TimeoutException", "httpx.TransportError",
     "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.ReadTimeout", "httpx.TimeoutException", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.WriteTimeout", "httpx.TimeoutException", "httpx.TransportError",
     "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.PoolTimeout", "httpx.TimeoutException", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.ReadError", "httpx.NetworkError", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.WriteError", "httpx.NetworkError", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.CloseError", "httpx.NetworkError", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.RemoteProtocolError", "httpx.ProtocolError", "httpx.TransportError",
     "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.LocalProtocolError", "httpx.ProtocolError", "httpx.TransportError",
     "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.UnsupportedProtocol", "httpx.TransportError", "httpx.RequestError",
     "httpx.HTTPError"): (),
    ("httpx.ProxyError", "httpx.TransportError", "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.DecodingError", "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.TooManyRedirects", "httpx.RequestError", "httpx.HTTPError"): (),
    ("httpx.HTTPStatusError", "httpx.HTTPError"): (),
    ("httpcore.ConnectError", "httpcore.NetworkError"): (),
    ("httpcore.ReadTimeout", "httpcore.TimeoutException"): (),
    ("requests.exceptions.ConnectionError", "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.ConnectTimeout", "requests.exceptions.ConnectionError",
     "requests.exceptions.Timeout", "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.ReadTimeout", "requests.exceptions.Timeout",
     "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.SSLError", "requests.exceptions.ConnectionError",
     "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.ProxyError", "requests.exceptions.ConnectionError",
     "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.ChunkedEncodingError",
     "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.HTTPError", "requests.exceptions.RequestException"): ("OSError",),
    ("requests.exceptions.InvalidURL", "requests.exceptions.RequestException"): ("OSError",
                                                                                  "ValueError"),
    ("urllib3.exceptions.NewConnectionError", "urllib3.exceptions.ConnectTimeoutError",
     "urllib3.exceptions.TimeoutError", "urllib3.exceptions.HTTPError"): (),
    ("urllib3.exceptions.NameResolutionError", "urllib3.exceptions.NewConnectionError",
     "urllib3.exceptions.ConnectTimeoutError", "urllib3.exceptions.TimeoutError",
     "urllib3.exceptions.HTTPError"): (),
    ("urllib3.exceptions.ReadTimeoutError", "urllib3.exceptions.TimeoutError",
     "urllib3.exceptions.RequestError", "urllib3.exceptions.PoolError",
     "urllib3.exceptions.HTTPError"): (),
    ("urllib3.exceptions.ProtocolError", "urllib3.exceptions.HTTPError"): (),
    ("urllib3.exceptions.SSLError", "urllib3.exceptions.HTTPError"): (),
    ("urllib3.exceptions.MaxRetryError", "urllib3.exceptions.RequestError",
     "urllib3.exceptions.PoolError", "urllib3.exceptions.HTTPError"): (),
    ("urllib3.exceptions.LocationParseError", "urllib3.exceptions.LocationValueError",
     "urllib3.exceptions.HTTPError"): ("ValueError",),
    ("aiohttp.client_exceptions.ClientConnectorError", "aiohttp.client_exceptions.ClientOSError",
     "aiohttp.client_exceptions.ClientConnectionError",
     "aiohttp.client_exceptions.ClientError"): ("OSError",),
    ("aiohttp.client_exceptions.ServerDisconnectedError",
     "aiohttp.client_exceptions.ServerConnectionError",
     "aiohttp.client_exceptions.ClientConnectionError",
     "aiohttp.client_exceptions.ClientError"): (),
    ("aiohttp.client_exceptions.ServerTimeoutError",
     "aiohttp.client_exceptions.ServerConnectionError",
     "aiohttp.client_exceptions.ClientConnectionError",
     "aiohttp.client_exceptions.ClientError"): ("TimeoutError", "OSError"),
    ("aiohttp.client_exceptions.ClientOSError", "aiohttp.client_exceptions.ClientConnectionError",
     "aiohttp.client_exceptions.ClientError"): ("OSError",),
    ("aiohttp.client_exceptions.ClientConnectorCertificateError",
     "aiohttp.client_exceptions.ClientSSLError", "aiohttp.client_exceptions.ClientConnectorError",
     "aiohttp.client_exceptions.ClientOSError", "aiohttp.client_exceptions.ClientConnectionError",
     "aiohttp.client_exceptions.ClientError", "ssl.SSLCertVerificationError",
     "ssl.SSLError"): ("OSError", "ValueError"),
    ("aiohttp.client_exceptions.ClientConnectorSSLError",
     "aiohttp.client_exceptions.ClientSSLError", "aiohttp.client_exceptions.ClientConnectorError",
     "aiohttp.client_exceptions.ClientOSError", "aiohttp.client_exceptions.ClientConnectionError",
     "aiohttp.client_exceptions.ClientError", "ssl.SSLError"): ("OSError",),
    ("aiohttp.client_exceptions.ClientPayloadError", "aiohttp.client_exceptions.ClientError"): (),
    ("aiohttp.client_exceptions.ClientResponseError", "aiohttp.client_exceptions.ClientError"): (),
    ("redis.exceptions.ConnectionError", "redis.exceptions.RedisError"): (),
    ("redis.exceptions.TimeoutError", "redis.exceptions.RedisError"): (),
    ("redis.exceptions.BusyLoadingError", "redis.exceptions.ConnectionError",
     "redis.exceptions.RedisError"): (),
    ("redis.exceptions.AuthenticationError", "redis.exceptions.ConnectionError",
     "redis.exceptions.RedisError"): (),
    ("redis.exceptions.ResponseError", "redis.exceptions.RedisError"): (),
    ("sqlalchemy.exc.OperationalError", "sqlalchemy.exc.DatabaseError", "sqlalchemy.exc.DBAPIError",
     "sqlalchemy.exc.StatementError", "sqlalchemy.exc.SQLAlchemyError",
     "sqlalchemy.exc.HasDescriptionCode"): (),
    ("sqlalchemy.exc.DisconnectionError", "sqlalchemy.exc.SQLAlchemyError",
     "sqlalchemy.exc.HasDescriptionCode"): (),
    ("sqlalchemy.exc.TimeoutError", "sqlalchemy.exc.SQLAlchemyError",
     "sqlalchemy.exc.HasDescriptionCode"): (),
    ("botocore.exceptions.EndpointConnectionError", "botocore.exceptions.ConnectionError",
     "botocore.exceptions.BotoCoreError"): (),
    ("botocore.exceptions.ConnectTimeoutError", "botocore.exceptions.ConnectionError",
     "botocore.exceptions.BotoCoreError", "botocore.vendored.requests.exceptions.ConnectTimeout",
     "botocore.vendored.requests.exceptions.ConnectionError",
     "botocore.vendored.requests.exceptions.Timeout",
     "botocore.vendored.requests.exceptions.RequestException"): ("OSError",),
    ("botocore.exceptions.ReadTimeoutError", "botocore.exceptions.HTTPClientError",
     "botocore.exceptions.BotoCoreError", "botocore.vendored.requests.exceptions.ReadTimeout",
     "botocore.vendored.requests.exceptions.Timeout",
     "botocore.vendored.requests.exceptions.RequestException",
     "botocore.vendored.requests.packages.urllib3.exceptions.ReadTimeoutError",
     "botocore.vendored.requests.packages.urllib3.exceptions.TimeoutError",
     "botocore.vendored.requests.packages.urllib3.exceptions.RequestError",
     "botocore.vendored.requests.packages.urllib3.exceptions.PoolError",
     "botocore.vendored.requests.packages.urllib3.exceptions.HTTPError"): ("OSError",),
    ("botocore.exceptions.ConnectionClosedError", "botocore.exceptions.HTTPClientError",
     "botocore.exceptions.BotoCoreError"): (),
    ("botocore.exceptions.SSLError", "botocore.exceptions.ConnectionError",
     "botocore.exceptions.BotoCoreError", "botocore.vendored.requests.exceptions.SSLError",
     "botocore.vendored.requests.exceptions.ConnectionError",
     "botocore.vendored.requests.exceptions.RequestException"): ("OSError",),
    ("botocore.exceptions.ClientError",): (),
    ("botocore.exceptions.NoCredentialsError", "botocore.exceptions.BotoCoreError"): (),
    ("psycopg.errors.SerializationFailure", "psycopg.OperationalError", "psycopg.DatabaseError",
     "psycopg.Error"): (),
    ("psycopg.errors.InvalidPassword", "psycopg.OperationalError", "psycopg.DatabaseError",
     "psycopg.Error"): (),
    ("psycopg.errors.UndefinedTable", "psycopg.ProgrammingError", "psycopg.DatabaseError",
     "psycopg.Error"): (),
    ("psycopg2.errors.SerializationFailure", "psycopg2.extensions.TransactionRollbackError",
     "psycopg2.OperationalError", "psycopg2.DatabaseError", "psycopg2.Error"): (),
    ("psycopg2.errors.InvalidPassword", "psycopg2.OperationalError", "psycopg2.DatabaseError",
     "psycopg2.Error"): (),
    ("asyncpg.exceptions.ConnectionDoesNotExistError", "asyncpg.exceptions.PostgresConnectionError",
     "asyncpg.exceptions._base.PostgresError", "asyncpg.exceptions._base.PostgresMessage"): (),
    ("asyncpg.exceptions.SerializationError", "asyncpg.exceptions.TransactionRollbackError",
     "asyncpg.exceptions._base.PostgresError", "asyncpg.exceptions._base.PostgresMessage"): (),
    ("asyncpg.exceptions.TooManyConnectionsError", "asyncpg.exceptions.InsufficientResourcesError",
     "asyncpg.exceptions._base.PostgresError", "asyncpg.exceptions._base.PostgresMessage"): (),
    ("asyncpg.exceptions.CannotConnectNowError", "asyncpg.exceptions.OperatorInterventionError",
     "asyncpg.exceptions._base.PostgresError", "asyncpg.exceptions._base.PostgresMessage"): (),
    ("asyncpg.exceptions.AdminShutdownError", "asyncpg.exceptions.OperatorInterventionError",
     "asyncpg.exceptions._base.PostgresError", "asyncpg.exceptions._base.PostgresMessage"): (),
    ("asyncpg.exceptions.InvalidPasswordError",
     "asyncpg.exceptions.InvalidAuthorizationSpecificationError",
     "asyncpg.exceptions._base.PostgresError", "asyncpg.exceptions._base.PostgresMessage"): (),
}
BY_NAME = {chain[0]: chain for chain in RECORDED}
_BUILT: dict[str, type[Exception]] = {}


def standin(dotted: str) -> type[Exception]:
    """A class with the recorded module, name and MRO of the real ``dotted`` class
    (one chain of single inheritance: the MRO, which is all the classifier reads)."""
    if dotted not in _BUILT:
        chain = BY_NAME[dotted]
        cls: type[Exception] | None = None
        for name in reversed(chain):
            module, _, qualname = name.rpartition(".")
            bases = ((cls,) if cls is not None else
                     tuple(getattr(builtins, b) for b in RECORDED[chain]) or (Exception,))
            cls = type(qualname, bases, {"__module__": module, "__qualname__": qualname})
        assert cls is not None
        _BUILT[dotted] = cls
    return _BUILT[dotted]


def make(dotted: str, *args: object, **attributes: Any) -> Exception:
    exc = standin(dotted)(*args)
    for name, value in attributes.items():
        setattr(exc, name, value)
    return exc


class Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def sqlite_error(sql: str) -> sqlite3.Error:
    """A real error raised by sqlite3 (with its sqlite_errorname)."""
    with closing(sqlite3.connect(":memory:")) as connection:
        try:
            connection.execute(sql)
        except sqlite3.Error as exc:
            return exc
    raise AssertionError(f"{sql!r} did not fail")


def locked_sqlite_error(tmp: Path) -> sqlite3.Error:
    """A real "database is locked": another connection holds an exclusive lock."""
    holder = sqlite3.connect(tmp / "locked.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with closing(sqlite3.connect(tmp / "locked.db", timeout=0)) as other:
            try:
                other.execute("SELECT 1 FROM sqlite_master")
            except sqlite3.OperationalError as exc:
                return exc
    finally:
        holder.close()
    raise AssertionError("the database was not locked")


# --- what is transient ------------------------------------------------------------------------

TRANSIENT = [
    "httpx.ConnectError", "httpx.ConnectTimeout", "httpx.ReadTimeout", "httpx.WriteTimeout",
    "httpx.PoolTimeout", "httpx.ReadError", "httpx.WriteError", "httpx.CloseError",
    "httpx.RemoteProtocolError", "httpcore.ConnectError", "httpcore.ReadTimeout",
    "requests.exceptions.ConnectionError", "requests.exceptions.ConnectTimeout",
    "requests.exceptions.ReadTimeout", "requests.exceptions.ProxyError",
    "requests.exceptions.ChunkedEncodingError",
    "urllib3.exceptions.NewConnectionError", "urllib3.exceptions.NameResolutionError",
    "urllib3.exceptions.ReadTimeoutError", "urllib3.exceptions.ProtocolError",
    "aiohttp.client_exceptions.ClientConnectorError",
    "aiohttp.client_exceptions.ServerDisconnectedError",
    "aiohttp.client_exceptions.ServerTimeoutError", "aiohttp.client_exceptions.ClientOSError",
    "aiohttp.client_exceptions.ClientPayloadError",
    "redis.exceptions.ConnectionError", "redis.exceptions.TimeoutError",
    "redis.exceptions.BusyLoadingError",
    "sqlalchemy.exc.DisconnectionError", "sqlalchemy.exc.TimeoutError",
    "botocore.exceptions.EndpointConnectionError", "botocore.exceptions.ConnectTimeoutError",
    "botocore.exceptions.ReadTimeoutError", "botocore.exceptions.ConnectionClosedError",
    "psycopg.errors.SerializationFailure", "psycopg2.errors.SerializationFailure",
    "asyncpg.exceptions.ConnectionDoesNotExistError", "asyncpg.exceptions.SerializationError",
    "asyncpg.exceptions.TooManyConnectionsError", "asyncpg.exceptions.CannotConnectNowError",
    "asyncpg.exceptions.AdminShutdownError",
]
PERMANENT = [
    "httpx.LocalProtocolError", "httpx.UnsupportedProtocol", "httpx.ProxyError",
    "httpx.DecodingError", "httpx.TooManyRedirects",
    "requests.exceptions.SSLError", "requests.exceptions.HTTPError",
    "requests.exceptions.InvalidURL",
    "urllib3.exceptions.SSLError", "urllib3.exceptions.LocationParseError",
    "aiohttp.client_exceptions.ClientConnectorCertificateError",
    "aiohttp.client_exceptions.ClientConnectorSSLError",
    "redis.exceptions.AuthenticationError", "redis.exceptions.ResponseError",
    "botocore.exceptions.SSLError", "botocore.exceptions.NoCredentialsError",
    "psycopg.errors.UndefinedTable", "asyncpg.exceptions.InvalidPasswordError",
]
CLASSIFIERS = [is_transient, is_transient_http_error, is_transient_database_error]


@pytest.mark.parametrize("classify", CLASSIFIERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dotted", TRANSIENT)
def test_client_transport_errors_are_transient(classify: Any, dotted: str) -> None:
    assert classify(make(dotted, "boom")) is True


@pytest.mark.parametrize("classify", CLASSIFIERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dotted", PERMANENT)
def test_client_errors_that_repeat_are_not_transient(classify: Any, dotted: str) -> None:
    assert classify(make(dotted, "boom")) is False


@pytest.mark.parametrize("classify", CLASSIFIERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(("exc", "transient"), [
    (ConnectionRefusedError(111, "Connection refused"), True),
    (ConnectionResetError(), True),
    (BrokenPipeError(), True),
    (TimeoutError(), True),
    (OperationTimeoutError(operation="fetch", timeout=1.0), True),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), True),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), False),
    (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), True),
    (urllib.error.URLError("unknown url type: ftpx"), False),
    (FileNotFoundError(2, "No such file"), False),
    (ValueError("bad input"), False),
    (KeyError("k"), False),
], ids=repr)
def test_builtin_and_stdlib_errors(classify: Any, exc: Exception, transient: bool) -> None:
    assert classify(exc) is transient


@pytest.mark.parametrize("classify", CLASSIFIERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(0), GeneratorExit(),
                                 asyncio.CancelledError()], ids=lambda e: type(e).__name__)
def test_interrupts_and_cancellation_are_never_transient(classify: Any,
                                                         exc: BaseException) -> None:
    assert classify(exc) is False


@pytest.mark.parametrize(("exc", "transient"), [
    (make("httpx.HTTPStatusError", "503", response=Response(503)), True),
    (make("httpx.HTTPStatusError", "429", response=Response(429)), True),
    (make("httpx.HTTPStatusError", "404", response=Response(404)), False),
    (make("requests.exceptions.HTTPError", "502", response=Response(502)), True),
    (make("requests.exceptions.HTTPError", "401", response=Response(401)), False),
    (make("aiohttp.client_exceptions.ClientResponseError", status=504), True),
    (make("aiohttp.client_exceptions.ClientResponseError", status=400), False),
    (urllib.error.HTTPError("http://x", 503, "Service Unavailable", {}, None), True),  # type: ignore[arg-type]
    (urllib.error.HTTPError("http://x", 501, "Not Implemented", {}, None), False),  # type: ignore[arg-type]
], ids=repr)
def test_http_statuses_are_judged_by_is_transient_but_not_for_databases(
        exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient
    assert is_transient_http_error(exc) is transient
    assert is_transient_database_error(exc) is False


def test_aws_client_errors_are_transient_when_throttled_or_unavailable() -> None:
    def client_error(code: str, status: int) -> Exception:
        return make("botocore.exceptions.ClientError", response={
            "Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}})

    assert is_transient(client_error("ThrottlingException", 400))
    assert is_transient(client_error("SlowDown", 503))
    assert is_transient(client_error("InternalError", 500))
    assert not is_transient(client_error("AccessDenied", 403))
    assert not is_transient(client_error("NoSuchKey", 404))


def test_sqlite_is_transient_only_when_busy_or_locked(tmp_path: Path) -> None:
    locked = locked_sqlite_error(tmp_path)
    assert "locked" in str(locked)
    assert is_transient_database_error(locked)
    assert is_transient(locked)
    for sql in ("SELECT * FROM no_such_table", "SELEC 1"):
        assert not is_transient_database_error(sqlite_error(sql))
    # made by hand, without the driver's error code: judged by its message
    assert is_transient_database_error(sqlite3.OperationalError("database is locked"))
    assert not is_transient_database_error(sqlite3.IntegrityError("UNIQUE constraint failed"))


def test_postgres_authentication_and_missing_databases_are_not_transient() -> None:
    assert not is_transient(make("psycopg.errors.InvalidPassword", "no", sqlstate="28P01"))
    assert not is_transient(make("psycopg2.errors.InvalidPassword", "no", pgcode="28P01"))
    assert not is_transient(make("psycopg2.errors.InvalidPassword", "no", pgcode="3D000"))
    assert is_transient(make("psycopg2.errors.SerializationFailure", "retry", pgcode="40001"))
    # a lost connection carries no SQLSTATE
    assert is_transient(make("psycopg2.errors.InvalidPassword", "server closed", pgcode=None))


def test_sqlalchemy_errors_are_judged_by_the_driver_error_they_wrap(tmp_path: Path) -> None:
    wrapped = make("sqlalchemy.exc.OperationalError", "(sqlite3.OperationalError) locked",
                   orig=locked_sqlite_error(tmp_path), connection_invalidated=False)
    assert is_transient_database_error(wrapped)
    schema = make("sqlalchemy.exc.OperationalError", "no such table",
                  orig=sqlite_error("SELECT * FROM nope"), connection_invalidated=False)
    assert not is_transient_database_error(schema)
    dropped = make("sqlalchemy.exc.OperationalError", "gone", orig=ValueError("?"),
                   connection_invalidated=True)
    assert is_transient_database_error(dropped)


def test_urllib3_max_retry_error_is_judged_by_its_reason() -> None:
    refused = make("urllib3.exceptions.NewConnectionError", "refused")
    assert is_transient(make("urllib3.exceptions.MaxRetryError", "gave up", reason=refused))
    bad_cert = make("urllib3.exceptions.SSLError", "certificate verify failed")
    assert not is_transient(make("urllib3.exceptions.MaxRetryError", "gave up", reason=bad_cert))


def test_a_subclass_in_user_code_follows_its_listed_base() -> None:
    class MyConnectError(standin("httpx.ConnectError")):  # type: ignore[misc]
        pass

    class MyCertificateError(standin("requests.exceptions.SSLError")):  # type: ignore[misc]
        pass

    assert is_transient(MyConnectError("refused"))
    assert not is_transient(MyCertificateError("expired"))


def test_a_class_of_the_same_name_in_another_package_is_not_matched() -> None:
    lookalike = type("ConnectError", (Exception,), {"__module__": "httpx_mock.errors"})
    assert not is_transient(lookalike("refused"))


def test_the_classifiers_never_raise_on_exceptions_with_broken_attributes() -> None:
    class Hostile(Exception):
        def __getattribute__(self, name: str) -> Any:
            if name in ("status_code", "status", "code", "response", "reason", "orig",
                        "sqlite_errorname", "sqlstate", "pgcode", "connection_invalidated"):
                raise RuntimeError(f"no {name} for you")
            return super().__getattribute__(name)

    broken_sqlite = type("OperationalError", (Hostile,), {"__module__": "sqlite3"})
    for classify in CLASSIFIERS:
        assert classify(Hostile()) is False
        assert classify(broken_sqlite("database is locked")) is True


def test_old_import_paths_give_the_same_classifiers() -> None:
    from buttress import decorators

    assert buttress.is_transient is is_transient
    assert is_transient_from_retry is is_transient
    assert decorators.is_transient_database_error is is_transient_database_error
    assert decorators.is_transient_http_error is is_transient_http_error
    assert "is_transient" in buttress.__all__


def test_classifying_imports_none_of_the_client_libraries() -> None:
    clients = ("httpx", "httpcore", "requests", "urllib3", "aiohttp", "redis", "sqlalchemy",
               "botocore", "psycopg", "psycopg2", "asyncpg")
    code = (
        "import sys\n"
        "from buttress import is_transient\n"
        "from buttress.transient import is_transient_database_error\n"
        "for exc in (ConnectionError(), ValueError(), OSError(), TimeoutError()):\n"
        "    is_transient(exc); is_transient_database_error(exc)\n"
        f"print(sorted(m for m in {clients!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- in use: retry, presets and the seed decorators ------------------------------------------


def test_retry_on_connection_error_alone_misses_httpx_and_is_transient_catches_it() -> None:
    clock = VirtualClock()
    refused = ScriptedCall(make("httpx.ConnectError", "refused"), "ok")
    naive = retry(max_attempts=3, retry_on=(ConnectionError, TimeoutError), clock=clock)(refused)
    with pytest.raises(standin("httpx.ConnectError")):
        naive()
    assert refused.calls == 1  # what the old README example did

    flaky = ScriptedCall(make("httpx.ReadTimeout", "slow"), make("httpx.ReadError", "reset"), "ok")
    assert retry(max_attempts=3, retry_condition=is_transient, clock=clock)(flaky)() == "ok"
    assert flaky.calls == 3


@pytest.mark.parametrize(("protect", "error"), [
    (lambda clock: api_resilient(operation_name="t_api", clock=clock),
     "httpx.ConnectError"),
    (lambda clock: api_resilient(operation_name="t_api_aio", clock=clock),
     "aiohttp.client_exceptions.ServerDisconnectedError"),
    (lambda clock: database_resilient(operation_name="t_db", clock=clock),
     "asyncpg.exceptions.ConnectionDoesNotExistError"),
    (lambda clock: cache_resilient(operation_name="t_cache", clock=clock),
     "redis.exceptions.ConnectionError"),
    (lambda clock: retry_http_request(max_attempts=2, clock=clock),
     "requests.exceptions.ReadTimeout"),
    (lambda clock: retry_database_operation(max_attempts=2, clock=clock),
     "sqlalchemy.exc.DisconnectionError"),
], ids=["api-httpx", "api-aiohttp", "database-asyncpg", "cache-redis", "retry_http_request",
        "retry_database_operation"])
def test_presets_and_seed_decorators_retry_the_clients_transport_errors(
        protect: Any, error: str) -> None:
    clock = VirtualClock()
    flaky = ScriptedCall(make(error, "blip"), "ok")
    assert protect(clock)(flaky)() == "ok"
    assert flaky.calls == 2


# --- real sockets and, where installed, the real libraries ------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_real_refused_connection_is_transient_and_retried(closed_port: int) -> None:
    clock = VirtualClock()
    attempts = 0

    @retry(max_attempts=3, retry_condition=is_transient, clock=clock)
    def fetch() -> bytes:
        nonlocal attempts
        attempts += 1
        with urllib.request.urlopen(f"http://127.0.0.1:{closed_port}/", timeout=5.0) as answer:
            return bytes(answer.read())

    with pytest.raises(RetryExhaustedError) as caught:
        fetch()
    assert attempts == 3
    assert isinstance(caught.value.last_exception, urllib.error.URLError)
    assert isinstance(caught.value.last_exception.reason, ConnectionRefusedError)


def test_a_real_httpx_connect_error_is_transient_and_retried(closed_port: int) -> None:
    httpx = pytest.importorskip("httpx")
    clock = VirtualClock()
    attempts = 0

    @retry(max_attempts=3, retry_condition=is_transient, clock=clock)
    def fetch() -> bytes:
        nonlocal attempts
        attempts += 1
        return bytes(httpx.get(f"http://127.0.0.1:{closed_port}/", timeout=5.0).content)

    with pytest.raises(RetryExhaustedError) as caught:
        fetch()
    assert attempts == 3
    assert type(caught.value.last_exception) is httpx.ConnectError
    for cls in (httpx.ConnectError, httpx.ReadTimeout, httpx.ReadError):
        assert is_transient(cls("boom"))
    assert not is_transient(httpx.UnsupportedProtocol("ftp"))


@pytest.mark.parametrize("chain", list(RECORDED), ids=lambda chain: chain[0])
def test_each_stand_in_has_the_real_classes_mro(chain: tuple[str, ...]) -> None:
    module, _, name = chain[0].rpartition(".")
    real = getattr(importlib.import_module(pytest.importorskip(module).__name__), name)
    assert tuple(f"{k.__module__}.{k.__qualname__}" for k in real.__mro__
                 if k.__module__ != "builtins") == chain
    assert {k.__name__ for k in real.__mro__ if k.__module__ == "builtins"} == {
        k.__name__ for k in standin(chain[0]).__mro__ if k.__module__ == "builtins"}


@pytest.mark.parametrize("dotted", TRANSIENT + PERMANENT)
def test_the_real_classes_get_the_stand_ins_verdict(dotted: str) -> None:
    module, _, name = dotted.rpartition(".")
    real = getattr(pytest.importorskip(module), name)
    instance = real.__new__(real)  # no library-specific constructor arguments needed
    assert is_transient(instance) is (dotted in TRANSIENT)


def test_the_docstring_examples_run() -> None:
    import doctest

    import buttress.transient

    result = doctest.testmod(buttress.transient)
    assert result.attempted >= 5
    assert result.failed == 0


# --- what a database client may do after an error ---------------------------------------


def _psycopg_error(name: str, message: str = "") -> BaseException:
    errors = pytest.importorskip("psycopg.errors")
    error: BaseException = getattr(errors, name)(message)
    return error


@pytest.mark.parametrize("name", ["AdminShutdown", "CrashShutdown", "CannotConnectNow",
                                  "ConnectionFailure", "ConnectionTimeout"])
def test_a_lost_or_refused_postgres_connection_is_a_disconnect(name: str) -> None:
    assert is_database_disconnect(_psycopg_error(name))


def test_a_libpq_error_without_a_sqlstate_is_a_disconnect() -> None:
    psycopg = pytest.importorskip("psycopg")
    lost = psycopg.OperationalError("consuming input failed: server closed the connection")
    assert is_database_disconnect(lost)
    assert not is_database_conflict(lost)


@pytest.mark.parametrize("name", ["SerializationFailure", "DeadlockDetected"])
def test_serialization_failures_and_deadlocks_are_conflicts_not_disconnects(name: str) -> None:
    error = _psycopg_error(name)
    assert is_database_conflict(error)
    assert not is_database_disconnect(error)


@pytest.mark.parametrize("name", ["UniqueViolation", "QueryCanceled", "UndefinedTable",
                                  "InvalidPassword"])
def test_answers_from_a_working_server_are_neither(name: str) -> None:
    error = _psycopg_error(name)
    assert not is_database_disconnect(error)
    assert not is_database_conflict(error)


def test_sqlalchemy_wrapped_errors_are_judged_by_the_driver_error() -> None:
    exc = pytest.importorskip("sqlalchemy.exc")
    wrapped = exc.OperationalError("COMMIT", {}, _psycopg_error("SerializationFailure"))
    assert is_database_conflict(wrapped)
    invalidated = exc.OperationalError("SELECT 1", {}, ValueError("gone"),
                                       connection_invalidated=True)
    assert is_database_disconnect(invalidated)


def test_sqlite_locks_and_builtin_resets_are_told_apart() -> None:
    assert not is_database_disconnect(sqlite3.OperationalError("database is locked"))
    assert is_database_disconnect(ConnectionResetError(104, "Connection reset by peer"))
    assert not is_database_conflict(ConnectionResetError(104, "Connection reset by peer"))


def test_a_commit_of_unknown_outcome_is_never_transient() -> None:
    lost = ConnectionResetError(104, "Connection reset by peer")
    error = buttress.CommitOutcomeUnknownError("orders_db", lost)
    error.__cause__ = lost
    for classifier in (is_transient, is_transient_database_error, is_transient_http_error,
                       is_database_disconnect, is_database_conflict):
        assert not classifier(error), classifier.__name__
    assert not isinstance(error, ConnectionError | TimeoutError)
