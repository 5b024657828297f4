"""Logging: the ``buttress`` logger, one WARNING per retry, structured extras,
and never a credential or a query string."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from buttress import CircuitBreaker, Retry, RetryExhaustedError, Timeout, with_fallback
from buttress._core.strategy import redact
from buttress.testing import ScriptedCall, VirtualClock

SECRET_URL = "https://alice:hunter2@api.example.com/v1/users?token=abc123&sig=xyz"


def buttress_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "buttress"]


def test_each_retry_logs_one_warning_with_structured_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    call = ScriptedCall(ConnectionError("reset"), ConnectionError("reset"), "ok")
    retry = Retry(max_attempts=3, base_delay=0.5, jitter=0, name="users", clock=clock)
    with caplog.at_level(logging.DEBUG, logger="buttress"):
        assert retry.call(call) == "ok"
    records = buttress_records(caplog)
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert [r.__dict__["attempt"] for r in records] == [1, 2]
    assert [r.__dict__["delay"] for r in records] == [0.5, 1.0]
    assert {r.__dict__["operation"] for r in records} == {"users"}
    assert {r.__dict__["outcome"] for r in records} == {"retry"}
    assert "ConnectionError: reset" in records[0].getMessage()


def test_giving_up_logs_once_more(caplog: pytest.LogCaptureFixture) -> None:
    retry = Retry(max_attempts=2, base_delay=0, jitter=0, name="users", clock=VirtualClock())
    with caplog.at_level(logging.WARNING, logger="buttress"), \
            pytest.raises(RetryExhaustedError):
        retry.call(ScriptedCall(ConnectionError("down")))
    outcomes = [r.__dict__["outcome"] for r in buttress_records(caplog)]
    assert outcomes == ["retry", "gave_up"]


def test_credentials_and_query_strings_never_reach_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    failure = ConnectionError(f"GET {SECRET_URL} failed")
    retry = Retry(max_attempts=2, base_delay=0, jitter=0, clock=clock)
    fallback = with_fallback(fallback_value=None)
    with caplog.at_level(logging.DEBUG, logger="buttress"):
        fallback(retry(ScriptedCall(failure)))()
    text = "\n".join(r.getMessage() for r in buttress_records(caplog))
    assert "api.example.com/v1/users" in text
    for secret in ("alice", "hunter2", "abc123", "xyz", "token="):
        assert secret not in text


def test_breaker_opening_logs_a_warning_and_closing_logs_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker("payments", failure_threshold=1, recovery_timeout=5,
                             success_threshold=1, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="buttress"):
        with pytest.raises(ConnectionError):
            breaker.call(ScriptedCall(ConnectionError("x")))
        clock.advance(5)
        breaker.call(lambda: "ok")
    records = buttress_records(caplog)
    assert [(r.levelno, r.__dict__["new_state"]) for r in records] == [
        (logging.WARNING, "open"), (logging.INFO, "half_open"), (logging.INFO, "closed"),
    ]
    assert {r.__dict__["breaker"] for r in records} == {"payments"}


async def test_a_timeout_logs_a_warning_naming_the_operation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    from buttress import OperationTimeoutError

    clock = VirtualClock()

    async def hang() -> None:
        await asyncio.Event().wait()

    limited = Timeout(2.0, operation_name="report", clock=clock).wrap_async(hang)
    with caplog.at_level(logging.WARNING, logger="buttress"):
        task = asyncio.create_task(limited())
        await asyncio.sleep(0)
        clock.advance(2.0)
        with pytest.raises(OperationTimeoutError):
            await task
    [record] = buttress_records(caplog)
    assert record.__dict__["operation"] == "report"
    assert record.__dict__["timeout"] == 2.0


def test_nothing_is_logged_on_the_success_path(caplog: pytest.LogCaptureFixture) -> None:
    retry = Retry(max_attempts=3)
    breaker = CircuitBreaker("quiet")
    with caplog.at_level(logging.DEBUG, logger="buttress"):
        for _ in range(10):
            retry.call(breaker.wrap(lambda: 1))
    assert buttress_records(caplog) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no urls here", "no urls here"),
        ("postgresql://app:pw@db:5432/main", "postgresql://***@db:5432/main"),
        ("see http://host/path?a=1&b=2 now", "see http://host/path?*** now"),
        ("http://host/path#frag", "http://host/path?***"),
        ("redis://:secret@cache:6379/0", "redis://***@cache:6379/0"),
    ],
)
def test_redact_masks_userinfo_and_queries(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_no_record_is_built_when_no_handler_would_receive_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from buttress._core.strategy import logger

    built: list[str] = []
    real = logger.makeRecord

    def counting(*args: object, **kwargs: object) -> logging.LogRecord:
        built.append(str(args[4]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(logger, "makeRecord", counting)
    # The application silenced buttress: a NullHandler and nothing above it.
    monkeypatch.setattr(logger, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(logger, "propagate", False)
    retry = Retry(max_attempts=3, base_delay=0, jitter=0, clock=VirtualClock())
    assert retry.call(ScriptedCall(ConnectionError("x"), "ok")) == "ok"
    assert built == []
    monkeypatch.setattr(logger, "propagate", True)  # pytest's capture handler is on root
    assert retry.call(ScriptedCall(ConnectionError("x"), "ok")) == "ok"
    assert len(built) == 1


def test_with_no_handler_anywhere_warnings_are_built_for_the_last_resort_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from buttress._core.strategy import logger, should_log

    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", False)  # as if root had no handler either
    assert should_log(logging.WARNING)
    assert not should_log(logging.INFO)  # lastResort shows WARNING and above only
    monkeypatch.setattr(logging, "lastResort", None)
    assert not should_log(logging.WARNING)


class _Collect(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


_SETUPS = {
    "a NullHandler, nothing above": ([logging.NullHandler()], True, [], None),
    "a NullHandler, a handler on root": ([logging.NullHandler()], True, [_Collect()], None),
    "a NullHandler, root's handler at ERROR": (
        [logging.NullHandler()], True, [_Collect(logging.ERROR)], None),
    "its own handler at ERROR, not propagating": ([_Collect(logging.ERROR)], False, [], None),
    "no handler anywhere": ([], True, [], None),
    "the logger at ERROR": ([_Collect()], True, [], logging.ERROR),
    "the logger at DEBUG": ([logging.NullHandler()], True, [_Collect(logging.INFO)],
                            logging.DEBUG),
}


@pytest.mark.parametrize("setup", list(_SETUPS))
@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR])
def test_should_log_answers_as_is_enabled_for_and_the_handler_walk_do(
    monkeypatch: pytest.MonkeyPatch, setup: str, level: int,
) -> None:
    from buttress._core.logs import logger, reaches_handler, should_log

    handlers, propagate, root_handlers, logger_level = _SETUPS[setup]
    monkeypatch.setattr(logger, "handlers", handlers)
    monkeypatch.setattr(logger, "propagate", propagate)
    monkeypatch.setattr(logging.root, "handlers", root_handlers)
    previous = logger.level
    try:
        logger.setLevel(logger_level if logger_level is not None else logging.NOTSET)
        expected = logger.isEnabledFor(level) and reaches_handler(level)
        assert should_log(level) is expected
        assert should_log(level) is expected  # from isEnabledFor's cache, this time
        logger.disabled = True
        assert should_log(level) is False
    finally:
        logger.disabled = False
        logger.setLevel(previous)


def test_should_log_sees_a_level_change_and_logging_disable_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from buttress._core.logs import logger, should_log

    monkeypatch.setattr(logger, "handlers", [_Collect()])
    previous = logger.level
    try:
        assert should_log(logging.WARNING)
        logger.setLevel(logging.ERROR)
        assert not should_log(logging.WARNING)
        logger.setLevel(logging.NOTSET)
        assert should_log(logging.WARNING)
        logging.disable(logging.WARNING)
        assert not should_log(logging.WARNING)
    finally:
        logging.disable(logging.NOTSET)
        logger.setLevel(previous)


def test_a_handler_added_between_two_retries_of_one_call_gets_the_second_retrys_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from buttress._core.logs import logger

    collect = _Collect()
    monkeypatch.setattr(logger, "handlers", [logging.NullHandler()])
    monkeypatch.setattr(logger, "propagate", False)
    calls = 0

    def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            logger.addHandler(collect)  # the application configures logging meanwhile
        if calls < 3:
            raise ConnectionError("reset")
        return "ok"

    retry = Retry(max_attempts=3, base_delay=0, jitter=0, name="users", clock=VirtualClock())
    assert retry(flaky)() == "ok"
    assert collect.messages == [
        "users: attempt 2 failed (ConnectionError: reset); retrying in 0.000s"]


# --- what a service sees, in a fresh interpreter ---------------------------------------------

ROOT = Path(__file__).resolve().parent.parent

# The shape of uvicorn's default LOGGING_CONFIG (uvicorn/config.py): handlers on
# uvicorn's own loggers, which do not propagate; the root logger is left alone.
UVICORN_LOGGING = """
import logging.config, sys
logging.config.dictConfig({
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"default": {"format": "%(levelname)s: %(message)s"}},
    "handlers": {
        "default": {"class": "logging.StreamHandler", "formatter": "default",
                    "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "default",
                   "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
})
logging.getLogger("uvicorn.error").info("Application startup complete.")
"""

# A request handler's dependency fails once, then the breaker opens and closes.
SERVICE_CALLS = """
from buttress import CircuitBreaker, Retry
from buttress.testing import ScriptedCall, VirtualClock
clock = VirtualClock()
retry = Retry(max_attempts=2, base_delay=0.5, jitter=0, name="inventory", clock=clock)
retry.call(ScriptedCall(ConnectionError("reset by peer"), "ok"))
breaker = CircuitBreaker("payments", failure_threshold=1, recovery_timeout=5,
                         success_threshold=1, clock=clock)
try:
    breaker.call(ScriptedCall(ConnectionError("down")))
except ConnectionError:
    pass
clock.advance(5)
breaker.call(lambda: "ok")
"""


def _run_service(*setup: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-c", "\n".join((*setup, SERVICE_CALLS))],
        capture_output=True, text=True, timeout=30, env=env, check=False,
    )


def test_under_uvicorns_logging_config_retries_and_an_opened_breaker_reach_stderr() -> None:
    result = _run_service(UVICORN_LOGGING)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "INFO: Application startup complete."
    assert any("inventory" in line and "ConnectionError: reset by peer" in line
               for line in lines)
    assert any("payments" in line and line.endswith("open") for line in lines)
    # INFO records (half-open, closed) need a configuration that asks for them.
    assert len(lines) == 3
    assert "half_open" not in result.stderr


def test_the_documented_basic_config_line_shows_every_buttress_record() -> None:
    result = _run_service(
        UVICORN_LOGGING,
        'logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")',
    )
    assert result.returncode == 0, result.stderr
    buttress_lines = [line for line in result.stderr.splitlines()
                      if line.startswith("buttress ")]
    assert [line.split()[1] for line in buttress_lines] == [
        "WARNING", "WARNING", "INFO", "INFO",  # retry, opened, half-open, closed
    ]


def test_a_null_handler_on_the_buttress_logger_silences_it() -> None:
    result = _run_service(
        "import logging",
        'logging.getLogger("buttress").addHandler(logging.NullHandler())',
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
