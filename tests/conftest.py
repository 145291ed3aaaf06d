"""Fixtures shared by every suite: a real PostgreSQL with a migrated template database."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from storage.db import EmbeddedPostgres, create_pool
from storage.schema import migrate
from tests.s3 import S3Endpoint, seaweedfs_s3

TEMPLATE = "telemed_template"

# The telemed command speaks its terminal's language: the commands the tests run (and their
# children) speak English, whatever the locale of the machine running them.
for _name in ("LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_name, None)
os.environ["LANG"] = "C.UTF-8"


def _with_database(dsn: str, name: str) -> str:
    """The same server, another database: replace the path of a postgresql:// URL."""
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[S3Endpoint]:
    """One SeaweedFS S3 server for the whole session (started only if a test asks for it)."""
    with seaweedfs_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
async def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A maintenance DSN: TEST_DATABASE_URL's server, or a private embedded one."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    await server.start()
    try:
        yield server.admin_dsn()
    finally:
        await server.stop()


@pytest.fixture(scope="session")
async def template_dsn(pg_admin_dsn: str) -> str:
    """A template database with every migration applied, copied for each test."""
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        await conn.execute(f"drop database if exists {TEMPLATE}")
        await conn.execute(f"create database {TEMPLATE}")
    finally:
        await conn.close()
    dsn = _with_database(pg_admin_dsn, TEMPLATE)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    return dsn


@pytest.fixture
async def database_url(pg_admin_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh database for one test, copied from the migrated template."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        await conn.execute(f"create database {name} template {TEMPLATE}")
    finally:
        await conn.close()
    yield _with_database(pg_admin_dsn, name)
    conn = await asyncpg.connect(pg_admin_dsn)
    try:
        await conn.execute(f"drop database if exists {name} with (force)")
    finally:
        await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()
