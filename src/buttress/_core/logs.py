"""The ``buttress`` logger and the masking every name and message goes through.

Below every other module of buttress: the events module and every strategy
log and mask through these names, and this module imports nothing of buttress.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Final

__all__ = ["call_hook", "describe", "logger", "reaches_handler", "redact", "should_log"]

logger = logging.getLogger("buttress")
# No NullHandler here, on purpose: when the application configured no handler
# at all for these records (a script, or uvicorn, which configures only its own
# loggers), WARNINGs (a retry scheduled, a call given up, a breaker opened, a
# timeout) reach logging.lastResort and show on stderr, as stamina's do. An
# application silences them with logging.getLogger("buttress").addHandler(
# logging.NullHandler()), or routes them with any logging configuration.

# scheme://user:password@host -> scheme://***@host (greedy up to the last "@" of
# the authority, so a password holding "@" is masked whole); ?query and #fragment
# -> ?*** ; password=..., token=... and the like outside URLs -> key=***.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s?#]*@")
_QUERY = re.compile(r"(?P<path>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#]*)[?#][^\s'\"]*")
_SECRET_PAIR = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"auth|authorization|credentials?)\s*[=:]\s*)"
    r"(?P<value>(?:(?:bearer|basic|token)\s+)?[^\s&,;'\"]+)",
    re.IGNORECASE)
_DESCRIBE_LIMIT = 200
# A message longer than this is masked only on its first part (then cut anyway).
_MASK_WINDOW = 10_000


def redact(text: str) -> str:
    """``text`` with secrets masked: URL credentials and query strings, and
    ``password=``/``token=``-style pairs, so that logs, events, metric labels and
    health reports never carry a password, token or signed-URL secret. The one
    masking function of buttress: every name and message that leaves the process
    goes through it::

        >>> redact("GET https://bob:s3cret@api.example.com/v1?token=abc failed")
        'GET https://***@api.example.com/v1?*** failed'
        >>> redact("postgresql://user:secret@host/db?token=abc")
        'postgresql://***@host/db?***'
        >>> redact("login failed: password=hunter2")
        'login failed: password=***'
    """
    if "://" in text:
        text = _QUERY.sub(r"\g<path>?***", _USERINFO.sub(r"\g<scheme>***@", text))
    if "=" in text or ":" in text:
        text = _SECRET_PAIR.sub(r"\g<key>***", text)
    return text


def describe(exc: BaseException) -> str:
    """A short, masked description of an exception for logs: its type and its
    message, masked *before* being cut at 200 characters (cutting first could
    split a URL before its "@" and leave the password unmasked)."""
    message = str(exc)
    if not message:
        return type(exc).__name__
    message = redact(message[:_MASK_WINDOW])
    if len(message) > _DESCRIBE_LIMIT:
        message = message[:_DESCRIBE_LIMIT] + "..."
    return f"{type(exc).__name__}: {message}"


class _MaskFilter(logging.Filter):
    """Masks every record of the ``buttress`` logger: its message, its arguments
    and its string ``extra`` fields (names of breakers and operations), whatever
    code path logged it."""

    _EXTRAS = ("operation", "breaker", "name")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's error path
            return True
        record.msg = redact(message)
        record.args = None
        for key in self._EXTRAS:
            value = record.__dict__.get(key)
            if isinstance(value, str):
                record.__dict__[key] = redact(value)
        return True


logger.addFilter(_MaskFilter())

_NullHandler: Final = logging.NullHandler
# Whether the logger keeps isEnabledFor()'s answers by level in ``_cache`` (a
# private dict of logging's, which every level change clears), as CPython's has
# since 3.7; should_log() reads it there, without the call.
_CACHED: Final = isinstance(getattr(logger, "_cache", None), dict)




def should_log(level: int) -> bool:
    """Whether a record at ``level`` would reach a real handler.

    ``logger.isEnabledFor`` alone says yes whenever the level allows it, and a
    log record costs about 10 µs to build; when nobody would read it, it is not
    built. This mirrors :meth:`logging.Logger.callHandlers`: a handler on the
    way up to the root whose level lets the record through receives it; when
    no handler at all is found there (not even a ``NullHandler``), the record
    goes to :data:`logging.lastResort` (stderr, WARNING and above).

    One frame, as a retry asks it once per retry: ``isEnabledFor`` is read from
    the logger's own cache (``Logger._cache``, cleared by logging on every level
    change) and the buttress logger's handlers before the loop over its
    parents: about 2,500 instructions where ``isEnabledFor`` and
    :func:`reaches_handler` took 3,650 on CPython 3.11.
    """
    if logger.disabled:
        return False
    enabled = logger._cache.get(level) if _CACHED else None  # type: ignore[attr-defined]
    if enabled is None:  # not asked since the last level change
        enabled = logger.isEnabledFor(level)
    if not enabled:
        return False
    # reaches_handler(level), with the first logger's loop apart: each loop's
    # attribute reads then see one class (Logger, then RootLogger) and stay fast.
    found = False
    for handler in logger.handlers:
        found = True
        if level >= handler.level and not isinstance(handler, _NullHandler):
            return True
    if logger.propagate:
        current = logger.parent
        while current is not None:
            for handler in current.handlers:
                found = True
                if level >= handler.level and not isinstance(handler, _NullHandler):
                    return True
            if not current.propagate:
                break
            current = current.parent
    if found:
        return False
    last_resort = logging.lastResort
    return last_resort is not None and level >= last_resort.level


def reaches_handler(level: int) -> bool:
    """Whether a record at ``level``, once the logger is enabled for it, would
    reach a real handler: :func:`should_log` after ``logger.isEnabledFor``.
    """
    found = False
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            found = True
            if level >= handler.level and not isinstance(handler, logging.NullHandler):
                return True
        if not current.propagate:
            break
        current = current.parent
    last_resort = logging.lastResort
    return not found and last_resort is not None and level >= last_resort.level


def call_hook(hook: Callable[..., object], *args: object) -> None:
    """Run a user callback; a callback that raises is logged, never propagated,
    so observing a call can not break it."""
    try:
        hook(*args)
    except Exception:
        logger.exception("buttress: callback %r raised; the protected call is unaffected", hook)
