"""The audit chain: a clean chain verifies; a record changed, removed or moved (even with
every later hash recomputed) is named by `telemed audit verify`; the application's role can
append and read, and can neither change nor remove a record."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from storage import audit
from storage.db import create_pool
from storage.errors import Conflict, ObjectNotFound
from storage.objects import FileObjectStore, ObjectStore
from storage.records import AuditAction, AuditResult
from teleradiology.core.audit_chain import link_hash
from teleradiology.http.context import OBJECTS
from teleradiology.services import audit as keeping
from tests.integration.conftest import local_settings, serving
from tests.integration.test_forwarder import eventually


async def _write(pool: asyncpg.Pool, count: int) -> None:
    for n in range(count):
        await audit.record(
            pool,
            user_id=None,
            action=AuditAction.READ,
            object_type="case",
            object_id=n,
            detail={"n": n, "名": "王"},
        )


async def _problems(pool: asyncpg.Pool, objects: ObjectStore) -> list[tuple[int, str]]:
    verdict = await keeping.verify(pool, objects, page=2)
    return [(f.seq, f.problem) for f in verdict.findings]


async def test_a_clean_chain_verifies_with_its_anchor(
    pool: asyncpg.Pool, object_store: ObjectStore
) -> None:
    await _write(pool, 5)
    anchored = await keeping.anchor_head(pool, object_store)
    assert anchored is not None
    assert anchored.seq == 5
    assert await keeping.anchor_head(pool, object_store) is None  # already anchored there
    await _write(pool, 2)
    verdict = await keeping.verify(pool, object_store, page=2)
    assert (verdict.checked, verdict.anchors, verdict.head_seq, verdict.findings) == (7, 1, 7, [])


async def test_a_changed_record_is_named(pool: asyncpg.Pool, tmp_path: Path) -> None:
    objects = FileObjectStore(tmp_path / "objects")
    await _write(pool, 5)
    await pool.execute("update audit set object_id = 'other' where seq = 3")
    assert [seq for seq, _ in await _problems(pool, objects)] == [3]


async def test_a_removed_record_is_named(pool: asyncpg.Pool, tmp_path: Path) -> None:
    objects = FileObjectStore(tmp_path / "objects")
    await _write(pool, 5)
    await pool.execute("delete from audit where seq = 2")
    problems = await _problems(pool, objects)
    assert problems == [(3, "record(s) 2 before it were removed")]


async def test_the_removed_tail_is_named_by_the_head(pool: asyncpg.Pool, tmp_path: Path) -> None:
    objects = FileObjectStore(tmp_path / "objects")
    await _write(pool, 5)
    await pool.execute("delete from audit where seq >= 4")
    assert [seq for seq, _ in await _problems(pool, objects)] == [4]


async def test_moved_records_are_named(pool: asyncpg.Pool, tmp_path: Path) -> None:
    objects = FileObjectStore(tmp_path / "objects")
    await _write(pool, 5)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("update audit set seq = -2 where seq = 2")
        await conn.execute("update audit set seq = 2 where seq = 3")
        await conn.execute("update audit set seq = 3 where seq = -2")
    problems = await _problems(pool, objects)
    assert {seq for seq, _ in problems} == {2, 3, 4}


async def _rewrite_from(pool: asyncpg.Pool, seq: int) -> None:
    """What someone with the database's keys could do: change a record and recompute every
    hash after it, and the head, so the chain in the database is consistent again."""
    await pool.execute("update audit set object_id = 'hidden' where seq = $1", seq)
    links = await audit.chain_page(pool, 0, 1000)
    prev = links[seq - 2].hash if seq > 1 else bytes(32)
    for link in links[seq - 1 :]:
        new = link_hash(prev, link.body)
        await pool.execute(
            "update audit set prev_hash = $2, hash = $3 where seq = $1", link.seq, prev, new
        )
        prev = new
    await pool.execute("update audit_head set hash = $1", prev)


async def test_a_rewritten_chain_is_caught_by_its_anchor(
    pool: asyncpg.Pool, object_store: ObjectStore
) -> None:
    await _write(pool, 4)
    await keeping.anchor_head(pool, object_store)
    await _write(pool, 2)
    await _rewrite_from(pool, 2)
    problems = await _problems(pool, object_store)
    assert problems == [
        (
            4,
            "its hash is not the one anchored outside the database: the chain up to it was "
            "rewritten",
        )
    ]


def _telemed(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TELEMED_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    env.pop("STORAGE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "teleradiology", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_telemed_audit_verify_exits_non_zero_naming_the_record(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await _write(pool, 3)
    anchored = await asyncio.to_thread(_telemed, database_url, tmp_path, "audit", "anchor")
    assert anchored.returncode == 0, anchored.stderr
    assert "anchored at record 3" in anchored.stdout
    clean = await asyncio.to_thread(_telemed, database_url, tmp_path, "audit", "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "checked 3 audit record(s) up to the head at 3 against 1 anchor(s)" in clean.stdout
    await pool.execute("update audit set result = 'denied' where seq = 2")
    changed = await asyncio.to_thread(_telemed, database_url, tmp_path, "audit", "verify")
    assert changed.returncode == 1
    assert "record 2: its content does not match its hash" in changed.stdout


# --- the application's role --------------------------------------------------------------


def _as_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@pytest.fixture
async def app_role(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A DSN for a non-superuser role that owns every table the migrations made (as the
    deployed application's role does), except the audit's."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    await pool.execute(f"create role {name} login nosuperuser nocreaterole")
    await pool.execute(
        f"""do $$ declare t record; begin
            for t in select tablename from pg_tables
                     where schemaname = 'public' and tableowner = current_user loop
                execute format('alter table %I owner to {name}', t.tablename);
            end loop; end $$"""  # noqa: S608 (the role's name is made here, not given)
    )
    yield _as_user(database_url, name)
    await pool.execute(f"reassign owned by {name} to current_user")
    await pool.execute(f"drop owned by {name}")
    await pool.execute(f"drop role {name}")


async def test_the_application_role_appends_and_cannot_change_or_remove(
    app_role: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await _write(pool, 2)
    app = await create_pool(app_role, min_size=1, max_size=1)
    try:
        assert not await app.fetchval("select rolsuper from pg_roles where rolname = current_user")
        seq = await audit.record(
            app,
            user_id=None,
            action=AuditAction.SIGN_IN,
            object_type="user",
            object_id="nobody",
            result=AuditResult.FAILED,
        )
        assert seq == 3
        assert await app.fetchval("select count(*) from audit") == 3
        for statement in (
            "update audit set result = 'ok' where seq = 3",
            "delete from audit where seq = 1",
            "truncate audit",
            "update audit_head set seq = 0",
            "insert into audit select * from audit where seq = 1",
            "alter table audit disable trigger all",
            "set role telemed_audit",
            "select audit_link(null, null, null, null, null, 'read', 'x', 'y', null, null,"
            " null, 'ok', null)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()
    assert (await keeping.verify(pool, FileObjectStore(tmp_path / "o"))).findings == []


async def test_concurrent_writers_line_up_on_one_chain(pool: asyncpg.Pool, tmp_path: Path) -> None:
    async def one(n: int) -> int:
        async with pool.acquire() as conn, conn.transaction():
            seq = await audit.record(
                conn, user_id=None, action=AuditAction.READ, object_type="case", object_id=n
            )
            await asyncio.sleep(0.001 * (n % 3))  # commits in another order than they began
            return seq

    seqs = await asyncio.gather(*(one(n) for n in range(40)))
    assert sorted(seqs) == list(range(1, 41))
    verdict = await keeping.verify(pool, FileObjectStore(tmp_path / "o"), page=7)
    assert (verdict.checked, verdict.findings) == (40, [])


async def test_a_rolled_back_record_leaves_no_gap(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await _write(pool, 1)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert (
            await audit.record(
                conn, user_id=None, action=AuditAction.READ, object_type="case", object_id=9
            )
            == 2
        )
        await tx.rollback()  # the read it recorded failed
    await _write(pool, 1)
    verdict = await keeping.verify(pool, FileObjectStore(tmp_path / "o"))
    assert (verdict.checked, verdict.head_seq, verdict.findings) == (2, 2, [])


async def test_anchors_are_notes_written_once_and_unseen_by_the_collector(
    object_store: ObjectStore,
) -> None:
    await object_store.put_note("audit-anchors/00000000000000000001", b'{"seq": 1}')
    await object_store.put_note("audit-anchors/00000000000000000001", b'{"seq": 1}')
    with pytest.raises(Conflict):
        await object_store.put_note("audit-anchors/00000000000000000001", b'{"seq": 2}')
    await object_store.put_note("audit-anchors/00000000000000000002", b"{}")
    assert await object_store.note_names("audit-anchors") == [
        "audit-anchors/00000000000000000001",
        "audit-anchors/00000000000000000002",
    ]
    assert await object_store.get_note("audit-anchors/00000000000000000001") == b'{"seq": 1}'
    with pytest.raises(ObjectNotFound):
        await object_store.get_note("audit-anchors/00000000000000000003")
    with pytest.raises(ValueError, match="note name"):
        await object_store.put_note("../escape", b"")
    future = datetime.now(UTC) + timedelta(days=1)
    assert [k async for k in object_store.keys_older_than(future)] == []


async def test_the_worker_anchors_the_head_as_records_come(
    database_url: str, tmp_path: Path
) -> None:
    settings = local_settings(database_url, tmp_path, audit_anchor_every_s=0.2)
    async with serving(settings, run_worker=True) as api:
        objects = api.app[OBJECTS]
        found = await api.client.get("/dicomweb/studies", headers=api.auth("wang.reader"))
        assert found.status == 200
        head, _ = await audit.head(api.pool)

        async def anchored() -> bool:
            return head in await keeping.anchors(objects)

        await eventually(anchored, timeout_s=20)
        verdict = await keeping.verify(api.pool, objects)
        assert verdict.findings == []
        assert verdict.anchors >= 1
