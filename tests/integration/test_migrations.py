from __future__ import annotations

import asyncpg

from storage.schema import load_migrations, migrate


async def test_migrations_apply_to_an_empty_database_and_a_second_run_changes_nothing(
    pool: asyncpg.Pool,
) -> None:
    # The template already ran them: this database is up to date.
    assert await migrate(pool) == []
    versions = [r["version"] for r in await pool.fetch("select version from schema_migration")]
    assert versions == [m.version for m in load_migrations()]


async def test_fresh_database_gets_every_migration_and_the_job_queue(
    pg_admin_dsn: str,
) -> None:
    from tests.conftest import _with_database

    conn = await asyncpg.connect(pg_admin_dsn)
    await conn.execute("drop database if exists migrate_fresh with (force)")
    await conn.execute("create database migrate_fresh")
    await conn.close()
    dsn = _with_database(pg_admin_dsn, "migrate_fresh")
    from storage.db import create_pool

    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        applied = await migrate(pool)
        assert applied == [m.name for m in load_migrations()] + ["job queue"]
        tables = {
            r["tablename"]
            for r in await pool.fetch("select tablename from pg_tables where schemaname='public'")
        }
        assert {"facility", "study", "instance", "reading_case", "report", "event"} <= tables
        assert await migrate(pool) == []
    finally:
        await pool.close()
        conn = await asyncpg.connect(pg_admin_dsn)
        await conn.execute("drop database if exists migrate_fresh with (force)")
        await conn.close()
