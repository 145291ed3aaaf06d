"""Collecting objects that no row refers to, safely against a writer referring to one.

Orphans come from a crash between an object's write and its index commit, from a transfer
refused after its bytes were stored, and from uploads their clients gave up (their parts). The
collector deletes only objects older than a grace period (longer than the backup window, so a
restored database finds its objects), each under an exclusive lock on its key, after checking
again that no row refers to it, and leaves a tombstone. A writer refers to objects only inside
a transaction that guards them (``guard``): the guard waits for that lock and refuses with
``ObjectCollected`` if the object was collected meanwhile; the writer then makes sure of the
object (``restore``) and commits again. Content addressing makes that necessary: the same
bytes sent again are not written again, so an old orphan can become referenced at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg

from storage.db import Conn, Pool, keeps_session_state, transaction
from storage.errors import ObjectCollected
from storage.instance_keys import keys_match
from storage.objects import ObjectStore
from storage.queries import q

#: Objects younger than this are never collected: a week, longer than the backup window.
GRACE = timedelta(days=7)
#: An open upload untouched for this long was given up by its client.
UPLOAD_IDLE = timedelta(days=7)
#: A writer's transaction lasts seconds; tombstones older than this guard nothing.
TOMBSTONE_KEPT = timedelta(days=1)
_BATCH = 1000
T = TypeVar("T")
_COLLECTED = "TM410"


@dataclass(frozen=True, kw_only=True)
class Collected:
    """What one collection pass did."""

    looked_at: int
    collected: int
    uploads_forgotten: int


async def guard(conn: Conn, keys: Sequence[str]) -> None:
    """Inside a writer's transaction: the objects ``keys`` stay until it commits.

    Raises
    ------
    ObjectCollected
        One of them was collected meanwhile (``restore`` it, then try again).
    """
    with guarded():
        await conn.execute(q("object_guard"), list(keys))


def collected_from(exc: BaseException) -> ObjectCollected | None:
    """The ``ObjectCollected`` a refused statement means, if it is that refusal."""
    if getattr(exc, "sqlstate", None) != _COLLECTED:
        return None
    return ObjectCollected(str(exc))


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Around a statement that calls ``object_guard``: its refusal as ``ObjectCollected``."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        collected = collected_from(exc)
        if collected is None:
            raise
        raise collected from None


async def restore(pool: Pool, objects: ObjectStore, key: str) -> bool:
    """After ``ObjectCollected``: whether the object is there (then rows may refer to it
    again); False when it is gone and must be written again."""
    if not await objects.exists(key):
        return False
    async with transaction(pool) as conn:
        await conn.execute(q("object_lock_shared"), key)
        await conn.execute(q("object_tombstone_delete"), key)
    return True


async def referring(
    pool: Pool,
    objects: ObjectStore,
    keys: Sequence[str],
    write: Callable[[], Awaitable[T]],
    *,
    rewrite: Callable[[], Awaitable[object]] | None = None,
) -> T:
    """Run ``write``, which makes rows refer to ``keys`` and guards them. When one of them was
    collected meanwhile (the same bytes, once an orphan, sent again), make sure of it: found
    again, or written again by ``rewrite`` (the caller still holds the bytes); then write once
    more.

    Raises
    ------
    ObjectCollected
        An object is gone and there is no ``rewrite``: the caller asks its sender to send again.
    """
    try:
        return await write()
    except ObjectCollected:
        for key in keys:
            if await restore(pool, objects, key):
                continue
            if rewrite is None:
                raise
            await rewrite()
            if not await restore(pool, objects, key):
                raise
        return await write()


async def collect(pool: Pool, objects: ObjectStore, key: str) -> bool:
    """Delete the object ``key`` if no row refers to it; whether it was deleted."""
    async with transaction(pool) as conn:
        await conn.execute(q("object_lock_exclusive"), key)
        if not await conn.fetchval(q("objects_unreferenced"), [key]):
            return False
        await conn.execute(q("object_tombstone_put"), key)
        await objects.delete(key)
    return True


async def unreferenced(pool: Pool, keys: Sequence[str]) -> list[str]:
    rows = await pool.fetch(q("objects_unreferenced"), list(keys))
    return [r[0] for r in rows]


async def collect_orphans(
    pool: Pool,
    objects: ObjectStore,
    *,
    grace: timedelta = GRACE,
    upload_idle: timedelta = UPLOAD_IDLE,
) -> Collected:
    """One pass: forget uploads given up, then delete every object older than ``grace`` that
    no row refers to, and forget tombstones that guard nothing any more."""
    forgotten = await pool.fetch(q("uploads_abandoned_forget"), upload_idle.total_seconds())
    cutoff = datetime.now(UTC) - grace
    looked = collected = 0
    batch: list[str] = []
    async for key in objects.keys_older_than(cutoff):
        batch.append(key)
        if len(batch) >= _BATCH:
            looked += len(batch)
            collected += await _collect(pool, objects, batch)
            batch = []
    looked += len(batch)
    collected += await _collect(pool, objects, batch) if batch else 0
    await pool.execute(q("object_tombstones_prune"), TOMBSTONE_KEPT.total_seconds())
    return Collected(looked_at=looked, collected=collected, uploads_forgotten=len(forgotten))


async def collect_orphans_alone(
    pool: Pool, objects: ObjectStore, *, grace: timedelta = GRACE
) -> Collected | None:
    """``collect_orphans``, unless another process is collecting now (then None)."""
    async with pool.acquire() as conn:
        keeps_session_state(conn)
        if not await conn.fetchval(q("collector_lock")):
            return None
        try:
            return await collect_orphans(pool, objects, grace=grace)
        finally:
            await conn.execute(q("collector_unlock"))


@dataclass(frozen=True, kw_only=True)
class Verified:
    """What ``verify`` found: every object a row refers to, checked."""

    checked: int
    #: (key, what refers to it) of the objects missing, and of those whose bytes do not hash
    #: to their key.
    missing: list[tuple[str, str]]
    damaged: list[tuple[str, str]]


async def verify(pool: Pool, objects: ObjectStore, *, read: bool = False) -> Verified:
    """Check that every object a row refers to is in the store (after a restore, a failover,
    a move of the bucket); with ``read``, that its bytes still hash to its key (``keys_match``)."""
    checked, missing, damaged = 0, [], []
    after = ""
    while rows := await pool.fetch(q("objects_referenced_page"), after, _BATCH):
        for key, what in rows:
            checked += 1
            if not await objects.exists(key):
                missing.append((key, what))
            elif read and not await asyncio.to_thread(keys_match, await objects.get(key), key):
                damaged.append((key, what))
        after = rows[-1][0]
    return Verified(checked=checked, missing=missing, damaged=damaged)


async def _collect(pool: Pool, objects: ObjectStore, keys: Sequence[str]) -> int:
    return sum([await collect(pool, objects, key) for key in await unreferenced(pool, keys)])
