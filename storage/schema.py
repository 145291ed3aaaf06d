"""The schema: numbered SQL migrations applied in order, one transaction each, and the job
queue's tables, under one advisory lock across processes; and the check that a serving
process knows the schema it finds."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import re
import time
from dataclasses import dataclass

import asyncpg

from storage.db import MIGRATION_COMMAND_TIMEOUT_S, Conn, keeps_session_state
from storage.errors import SchemaError
from storage.jobs import install_queue

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any number fits: migrations are serialised across processes by this advisory lock.
_MIGRATION_LOCK = 0x7E1E_3ED0
#: How long ``migrate`` waits for another process's migration before it gives up.
LOCK_WAIT_S = 60.0
#: How long one migration waits for a table lock held by live traffic before it fails
#: (and the step is tried again later) rather than stall every query queued behind it.
STATEMENT_LOCK_TIMEOUT = "30s"


@dataclass(frozen=True, kw_only=True)
class Migration:
    """One numbered SQL file of ``storage/migrations``."""

    version: int
    name: str
    sql: str

    @property
    def after_commit(self) -> list[str]:
        """The statements its ``-- after commit:`` lines name, run once it has committed,
        outside its transaction (a ``vacuum`` cannot run inside one)."""
        return _AFTER_COMMIT.findall(self.sql)


_AFTER_COMMIT = re.compile(r"^-- after commit: (.+)$", re.MULTILINE)


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


async def _take_lock(conn: Conn, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while not await conn.fetchval("select pg_try_advisory_lock($1)", _MIGRATION_LOCK):
        if time.monotonic() >= deadline:
            raise SchemaError(
                f"another process has been changing the database schema for over {wait_s:.0f} s "
                "(it holds the migration lock); run `telemed migrate` again once it has finished"
            )
        await asyncio.sleep(0.5)


async def migrate(pool: asyncpg.Pool, *, lock_wait_s: float = LOCK_WAIT_S) -> list[str]:
    """Apply the migrations that have not run yet, one transaction each.

    Returns the names of the migrations applied by this call (empty when up to date).

    Raises
    ------
    SchemaError
        Another process held the migration lock for ``lock_wait_s``, or a migration waited
        too long for a table lock.
    """
    applied: list[str] = []
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        await _take_lock(conn, lock_wait_s)
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
                    await conn.execute(f"set local lock_timeout = '{STATEMENT_LOCK_TIMEOUT}'")
                    await conn.execute("set local statement_timeout = 0")
                    try:
                        await conn.execute(migration.sql, timeout=MIGRATION_COMMAND_TIMEOUT_S)
                    except asyncpg.LockNotAvailableError:
                        raise SchemaError(
                            f"migration {migration.name} waited over {STATEMENT_LOCK_TIMEOUT} for "
                            "a table in use; nothing of it was applied: run `telemed migrate` again"
                        ) from None
                    await conn.execute(
                        "insert into schema_migration (version, name) values ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                if migration.after_commit:
                    await conn.execute("set statement_timeout = 0")  # reset on release
                for statement in migration.after_commit:
                    await conn.execute(statement, timeout=MIGRATION_COMMAND_TIMEOUT_S)
                log.debug("applied migration %s", migration.name)
                applied.append(migration.name)
            if await install_queue(conn):
                applied.append("job queue")
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def check_schema(pool: asyncpg.Pool) -> None:
    """Refuse to serve on a schema this release does not know.

    Raises
    ------
    SchemaError
        The database has migrations this release does not ship (a newer release migrated
        it), or lacks some it ships (``telemed migrate`` has not run).
    """
    known = {m.version: m.name for m in load_migrations()}
    try:
        rows = await pool.fetch("select version, name from schema_migration")
    except asyncpg.UndefinedTableError:
        rows = []
    applied = {r["version"]: r["name"] for r in rows}
    newer = sorted(set(applied) - set(known))
    if newer:
        raise SchemaError(
            f"the database has migration {applied[newer[-1]]}, newer than this release knows "
            f"(its last is {known[max(known)]}): run the release that migrated it, or a later one"
        )
    missing = sorted(set(known) - set(applied))
    if missing:
        raise SchemaError(
            f"the database lacks {len(missing)} migration(s) of this release, from "
            f"{known[missing[0]]}: run `telemed migrate` first"
        )
