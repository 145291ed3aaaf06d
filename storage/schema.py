"""The schema: numbered SQL migrations applied in order, one transaction each, and the job
queue's tables, under one advisory lock across processes."""

from __future__ import annotations

import importlib.resources
import logging
import re
from dataclasses import dataclass

import asyncpg

from storage.jobs import install_queue

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
                log.debug("applied migration %s", migration.name)
                applied.append(migration.name)
            if await install_queue(conn):
                applied.append("job queue")
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied
