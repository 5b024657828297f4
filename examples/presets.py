"""The operation presets: ``database_resilient``, ``api_resilient`` and friends.

What this shows:

* ``@database_resilient(...)`` on a sync function and ``@api_resilient(...)`` on an
  async one: retry, circuit breaker and timeout with the values of their
  operation type (database: 3 attempts, 0.5 s base delay, breaker opens after 3
  failures, 30 s timeout; api: 5 attempts, 1 s base delay, 60 s timeout, ...).
  The timeout cancels async calls; a sync call stays in the caller's thread (its
  connection keeps working) and is limited only with ``timeout_in_thread=True``;
* a keyword overriding one default (``max_attempts=3`` on the api preset) while
  every other value keeps following the settings;
* the effective values of a decorated function: ``fn.resilience.retry_config``
  and ``fn.resilience.explain()``, which also says where each value came from;
* only transient failures being retried (a connection error, an HTTP 503), a
  404 passing through at once, and the breaker opening when the database stays
  down, so the next call fails fast without touching it;
* the global switch ``configure(resilience_enabled=False)``: every decorated
  function passes straight through from its next call, until the switch is
  cleared again (``BUTTRESS_RESILIENCE_ENABLED=false`` plus ``load_env()`` does
  the same from the environment);
* ``resilient_context(...)`` protecting several calls in a block, with
  ``ctx.call`` (sync) and ``await ctx.acall`` (async).

The dependencies are ``ScriptedCall`` stand-ins that fail on cue, and every wait
happens on a ``VirtualClock``, so the script takes milliseconds and prints the
same lines every time::

    .venv/bin/python examples/presets.py
"""

from __future__ import annotations

import asyncio
import logging
import sys

from buttress import (
    CircuitBreakerError,
    RetryExhaustedError,
    api_resilient,
    configure,
    database_resilient,
    resilient_context,
)
from buttress.testing import AsyncScriptedCall, ScriptedCall, VirtualClock

# Every retry wait and breaker timeout of this script runs on this clock: the
# waits it records are exact, and none of them really happens.
clock = VirtualClock()


class HTTPStatusError(Exception):
    """What an HTTP client raises for an error status (``.status``, as urllib's)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


# Stand-ins for the real dependencies: each plays its outcomes in order, raising
# the exceptions and returning the rest, and counts the calls it gets.
users_table = ScriptedCall(ConnectionError("server closed the connection"),
                           {"id": 1, "name": "Ada"})
payments_api = AsyncScriptedCall(HTTPStatusError(503), HTTPStatusError(503),
                                 {"payment": "p-17", "status": "paid"})


# jitter=0 makes the waits exact (the presets' own default jitter shortens each
# wait by a random amount, up to half of it).
@database_resilient(operation_name="get_user", jitter=0, clock=clock)
def get_user(user_id: int) -> dict[str, object]:
    """A database read: retried on connection errors and driver OperationalErrors."""
    row: dict[str, object] = users_table("SELECT * FROM users WHERE id = ?", user_id)
    return row


# max_attempts=3 overrides the api preset's 5; everything else stays the preset's.
@api_resilient(operation_name="payment_api", max_attempts=3, jitter=0, clock=clock)
async def charge(amount: int) -> dict[str, object]:
    """An external API call: retried on transport errors and 408/425/429/5xx."""
    body: dict[str, object] = await payments_api("/charge", amount=amount)
    return body


def waits_since(mark: int) -> list[float]:
    """The waits the virtual clock recorded since ``mark``."""
    return clock.sleeps[mark:]


def show_effective_values() -> None:
    print("== effective values ==")
    resilience = get_user.resilience  # what the current settings built for get_user
    print(f"get_user: max_attempts={resilience.retry_config.max_attempts} "
          f"base_delay={resilience.retry_config.base_delay} "
          f"timeout={resilience.timeout_config.timeout_seconds}s "
          f"failure_threshold={resilience.circuit_breaker_config.failure_threshold}")
    print("charge.resilience.explain():")
    for setting in charge.resilience.explain().values():
        print(f"  {setting}")


def sync_database_call() -> None:
    print("== database_resilient (sync) ==")
    mark = len(clock.sleeps)
    user = get_user(1)
    print(f"get_user(1) -> {user} after {users_table.calls} calls, "
          f"waits {waits_since(mark)}")


async def async_api_call() -> None:
    print("== api_resilient (async) ==")
    mark = len(clock.sleeps)
    receipt = await charge(1200)
    print(f"charge(1200) -> {receipt} after {payments_api.calls} calls "
          f"(503, 503, 200), waits {waits_since(mark)}")

    # A 404 will not get better by asking again: raised at once, not retried.
    payments_api_404 = AsyncScriptedCall(HTTPStatusError(404))
    lookup = api_resilient(operation_name="payment_lookup", clock=clock)(payments_api_404)
    try:
        await lookup("/payments/p-99")
    except HTTPStatusError as exc:
        print(f"lookup -> {exc} passed through after {payments_api_404.calls} call")


def database_outage() -> None:
    print("== the database stays down ==")
    down = ScriptedCall(ConnectionError("connection refused"))
    report = database_resilient(operation_name="nightly_report", jitter=0, clock=clock)(down)
    mark = len(clock.sleeps)
    try:
        report()
    except RetryExhaustedError as exc:
        print(f"RetryExhaustedError: attempts={exc.attempts}, waits {waits_since(mark)}, "
              f"last_exception={exc.last_exception!r}")
    # Three failures opened the breaker: the next call is refused without a try.
    try:
        report()
    except CircuitBreakerError as exc:
        print(f"CircuitBreakerError: breaker {exc.name!r} is {exc.state.value}, "
              f"retry in {exc.remaining_timeout:.0f}s; database calls still {down.calls}")


def global_switch() -> None:
    print("== the global switch ==")
    flaky = ScriptedCall(ConnectionError("server closed the connection"),
                         ConnectionError("server closed the connection"), "row")
    lookup = database_resilient(operation_name="switch_demo", jitter=0, clock=clock)(flaky)

    configure(resilience_enabled=False)  # read by every decorated function per call
    print(f"resilience off: lookup.resilience.pipeline = {lookup.resilience.pipeline}")
    try:
        lookup()
    except ConnectionError as exc:
        print(f"resilience off: ConnectionError({exc}) raised at once, "
              f"calls={flaky.calls}")

    configure(resilience_enabled=None)  # None clears the value set in code
    mark = len(clock.sleeps)
    print(f"resilience on again: lookup() -> {lookup()!r}, calls={flaky.calls}, "
          f"waits {waits_since(mark)}")


def sync_context() -> None:
    print("== resilient_context (sync) ==")
    get_users = ScriptedCall(ConnectionError("server closed the connection"),
                             [{"id": 1}, {"id": 2}])
    update_user_status = ScriptedCall(None)
    with resilient_context(operation_type="database", operation_name="bulk_operations",
                           max_attempts=2, jitter=0, clock=clock) as ctx:
        users = ctx.call(get_users)
        for user in users:
            ctx.call(update_user_status, user_id=user["id"], status="active")
    print(f"ctx.call: {len(users)} users after {get_users.calls} calls of get_users; "
          f"{update_user_status.calls} updates")


async def async_context() -> None:
    print("== resilient_context (async) ==")
    fetch_user_data = AsyncScriptedCall(TimeoutError("read timed out"), {"id": 1, "plan": "pro"})
    async with resilient_context(operation_type="api", jitter=0, clock=clock) as ctx:
        data = await ctx.acall(fetch_user_data, user_id=1)
    print(f"ctx.acall: {data} after {fetch_user_data.calls} calls")


def main() -> None:
    show_effective_values()
    sync_database_call()
    asyncio.run(async_api_call())
    database_outage()
    global_switch()
    sync_context()
    asyncio.run(async_context())


if __name__ == "__main__":
    # buttress logs retries, give-ups, opened breakers and timeouts as WARNINGs;
    # show them on stdout, between the lines this script prints.
    logging.basicConfig(format="    log: %(message)s", stream=sys.stdout)
    main()
