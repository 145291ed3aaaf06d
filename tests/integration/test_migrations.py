from __future__ import annotations

import time

import asyncpg
import pytest

from storage.errors import SchemaError
from storage.schema import _MIGRATION_LOCK, check_schema, load_migrations, migrate


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
        # a migration's statements after its commit ran, outside its transaction: the
        # table 0073 rewrote was vacuumed (its index-only reads need no visit to it)
        rewrote = next(m for m in load_migrations() if m.version == 73)
        assert rewrote.after_commit == ["vacuum (analyze) case_turnaround"]
        vacuumed = await pool.fetchval(
            "select vacuum_count from pg_stat_user_tables where relname = 'case_turnaround'"
        )
        assert vacuumed >= 1
        assert await migrate(pool) == []
    finally:
        await pool.close()
        conn = await asyncpg.connect(pg_admin_dsn)
        await conn.execute("drop database if exists migrate_fresh with (force)")
        await conn.close()


async def test_serving_refuses_a_schema_it_does_not_know(pool: asyncpg.Pool) -> None:
    await check_schema(pool)  # the one this release ships
    await pool.execute("insert into schema_migration (version, name) values (9999, '9999_x.sql')")
    with pytest.raises(SchemaError, match=r"9999_x\.sql, newer than this release knows"):
        await check_schema(pool)
    await pool.execute(
        "delete from schema_migration where version >= $1", load_migrations()[-1].version
    )
    with pytest.raises(SchemaError, match="run `telemed migrate` first"):
        await check_schema(pool)


async def test_a_migration_waits_for_another_one_then_gives_up_clearly(
    pool: asyncpg.Pool,
) -> None:
    holder = await pool.acquire()
    try:
        await holder.execute("select pg_advisory_lock($1)", _MIGRATION_LOCK)
        started = time.monotonic()
        with pytest.raises(SchemaError, match="another process has been changing the database"):
            await migrate(pool, lock_wait_s=1.0)
        assert 1.0 <= time.monotonic() - started < 5.0
        await holder.execute("select pg_advisory_unlock($1)", _MIGRATION_LOCK)
        assert await migrate(pool, lock_wait_s=1.0) == []
    finally:
        await pool.release(holder)
