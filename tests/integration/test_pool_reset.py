"""A pooled connection is given back as it is, unless it took session state: then in full."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage.db import close_pool, create_pool, keeps_session_state


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection: each acquire gets the one given back before."""
    one = await create_pool(database_url, min_size=1, max_size=1)
    yield one
    await close_pool(one)


_ADVISORY_HELD = (
    "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
)


async def test_a_connection_that_took_session_state_is_reset_when_given_back(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        await conn.execute("select pg_advisory_lock(4242)")
        await conn.execute("listen telemed_test")
        pid = conn.get_server_pid()
    async with pool.acquire() as conn:
        assert conn.get_server_pid() == pid  # the same connection, reset
        assert await conn.fetchval(_ADVISORY_HELD) == 0
        assert await conn.fetchval("select count(*) from pg_listening_channels()") == 0


async def test_a_plain_connection_is_given_back_without_a_reset_but_never_in_a_transaction(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        # Session state nobody announced stays: proof that no reset ran.
        await conn.execute("select pg_advisory_lock(4343)")
        await conn.execute("begin")
        await conn.execute("create temp table left_open (x int)")
    async with pool.acquire() as conn:
        assert await conn.fetchval(_ADVISORY_HELD) == 1
        # The transaction left open was rolled back all the same.
        assert not await conn.fetchval("select to_regclass('pg_temp.left_open') is not null")
        await conn.execute("select pg_advisory_unlock(4343)")
