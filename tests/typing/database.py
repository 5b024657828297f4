"""Type expectations for the database client (checked by tests/test_typing.py,
never run): the seeds' plain SQL strings type-check, sessions are typed, and
run_transaction returns what the function returns."""

from __future__ import annotations

from typing import Any, assert_type

from buttress import DatabaseClient, get_database_client
from buttress.stores.database import AsyncTextSession, TextSession

client = get_database_client("sqlite://", name="typing_db", max_attempts=2)
assert_type(client, DatabaseClient)
assert_type(client.health_check(), dict[str, Any])


def read(session: TextSession, user_id: int) -> int:
    return int(session.execute("SELECT :id", {"id": user_id}).scalar_one())


def sync_usage() -> None:
    with client.session() as session:
        assert_type(session, TextSession)
        session.execute("SELECT * FROM users").fetchall()
    assert_type(client.run_transaction(read, 1, retryable=True), int)


async def async_usage() -> None:
    async with client.async_session() as session:
        assert_type(session, AsyncTextSession)
        (await session.execute("SELECT * FROM users")).fetchall()
