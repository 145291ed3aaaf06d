"""Resumable upload sessions: a manifest per study, what has arrived, parts of large instances.

A session belongs to one facility and one study. Its manifest lists the instances the
client will send (SOP Instance UID, size in bytes and SHA-256 of the file as sent); an item is
stored once its bytes passed the service's one ingest path. The session is the only state of
a resumable upload: the client keeps none, and finds its session again by its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Self
from uuid import UUID

import asyncpg

from storage.collection import guarded
from storage.db import Conn
from storage.queries import q
from storage.records import FacilityId, ManifestItem, Priority, Row, UploadState, UserId


@dataclass(frozen=True, kw_only=True)
class UploadSession:
    id: int
    public_id: UUID
    facility_id: FacilityId
    client_key: str
    study_instance_uid: str
    priority: Priority
    clinical_question: str | None
    state: UploadState
    created_at: datetime
    updated_at: datetime
    committed_at: datetime | None

    def __post_init__(self) -> None:
        for name in ("created_at", "updated_at", "committed_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=row["id"],
            public_id=row["public_id"],
            facility_id=FacilityId(row["facility_id"]),
            client_key=row["client_key"],
            study_instance_uid=row["study_instance_uid"],
            priority=Priority(row["priority"]),
            clinical_question=row["clinical_question"],
            state=UploadState(row["state"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            committed_at=row["committed_at"],
        )


@dataclass(frozen=True, kw_only=True)
class UploadItem:
    sop_instance_uid: str
    size_bytes: int
    sha256: str
    stored: bool
    bodies_received: int


@dataclass(frozen=True, kw_only=True)
class MissingItem:
    """An instance of the manifest not stored yet; ``received`` are [start, end) byte ranges
    already held for an instance sent in parts."""

    sop_instance_uid: str
    size_bytes: int
    sha256: str
    received: tuple[tuple[int, int], ...]


@dataclass(frozen=True, kw_only=True)
class Progress:
    total: int
    stored: int
    total_bytes: int
    #: Whole bodies accepted across the session (each instance once, when nothing was resent).
    bodies_received: int
    missing: tuple[MissingItem, ...]


@dataclass(frozen=True, kw_only=True)
class Part:
    start_byte: int
    length_bytes: int
    object_key: str

    @property
    def end_byte(self) -> int:
        return self.start_byte + self.length_bytes


def _columns(items: Sequence[ManifestItem]) -> tuple[list[str], list[int], list[str]]:
    return (
        [i.sop_instance_uid for i in items],
        [i.size_bytes for i in items],
        [i.sha256 for i in items],
    )


async def insert_session(
    conn: Conn,
    *,
    facility_id: FacilityId,
    user_id: UserId,
    client_key: str,
    study_instance_uid: str,
    priority: Priority,
    clinical_question: str | None,
) -> bool:
    """Open a session under the facility's ``client_key``; False when one is there already."""
    new_id = await conn.fetchval(
        q("upload_session_insert"),
        facility_id,
        user_id,
        client_key,
        study_instance_uid,
        priority.value,
        clinical_question,
    )
    return new_id is not None


async def lock_session_by_key(
    conn: Conn, facility_id: FacilityId, client_key: str
) -> UploadSession | None:
    """The facility's session under ``client_key``, locked in the caller's transaction."""
    row = await conn.fetchrow(q("upload_session_lock_by_key"), facility_id, client_key)
    return UploadSession.from_row(row) if row else None


async def conflicting_items(
    conn: Conn, session_id: int, items: Sequence[ManifestItem]
) -> list[str]:
    """SOP Instance UIDs (a few) that the session has with another size or SHA-256."""
    rows = await conn.fetch(q("upload_items_conflicting"), session_id, *_columns(items))
    return [r["sop_instance_uid"] for r in rows]


async def new_item_count(conn: Conn, session_id: int, items: Sequence[ManifestItem]) -> int:
    """How many of these manifest lines the session does not have yet."""
    sops = [i.sop_instance_uid for i in items]
    count: int = await conn.fetchval(q("upload_items_new"), session_id, sops)
    return count


async def insert_items(conn: Conn, session_id: int, items: Sequence[ManifestItem]) -> None:
    """Add the manifest lines the session does not have."""
    await conn.execute(q("upload_items_insert"), session_id, *_columns(items))


async def update_request(
    conn: Conn, session_id: int, priority: Priority, clinical_question: str | None
) -> None:
    """A resumed session keeps the most urgent priority asked for, and a question once given."""
    await conn.execute(q("upload_session_request"), session_id, priority.value, clinical_question)


async def session_by_id(
    pool: asyncpg.Pool, public_id: UUID, facility_id: FacilityId
) -> UploadSession | None:
    """A session of the facility, or None (another facility's session does not exist)."""
    row = await pool.fetchrow(q("upload_session_by_id"), public_id, facility_id)
    return UploadSession.from_row(row) if row else None


async def sessions_of_facility(
    pool: asyncpg.Pool, facility_id: FacilityId, *, state: UploadState | None, limit: int
) -> list[UploadSession]:
    """The facility's sessions, most recently active first."""
    rows = await pool.fetch(
        q("upload_sessions_of_facility"), facility_id, state.value if state else None, limit
    )
    return [UploadSession.from_row(r) for r in rows]


async def progress(pool: asyncpg.Pool, session_id: int) -> Progress:
    """How much of the manifest is stored, and what is still missing."""
    async with pool.acquire() as conn:
        counts = await conn.fetchrow(q("upload_item_counts"), session_id)
        rows = await conn.fetch(q("upload_items_missing"), session_id)
    if counts is None:  # pragma: no cover - an aggregate always returns a row
        raise RuntimeError("no counts")
    missing = tuple(
        MissingItem(
            sop_instance_uid=r["sop_instance_uid"],
            size_bytes=r["size_bytes"],
            sha256=r["sha256"],
            received=_merge_ranges(zip(r["part_starts"], r["part_lengths"], strict=True)),
        )
        for r in rows
    )
    return Progress(
        total=counts["total"],
        stored=counts["stored"],
        total_bytes=counts["total_bytes"],
        bodies_received=counts["bodies_received"],
        missing=missing,
    )


def _merge_ranges(parts: object) -> tuple[tuple[int, int], ...]:
    merged: list[list[int]] = []
    for start, length in sorted(parts):  # type: ignore[call-overload]
        end = start + length
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((a, b) for a, b in merged)


async def item(
    db: asyncpg.Pool | Conn, session_id: int, sop_instance_uid: str
) -> UploadItem | None:
    row = await db.fetchrow(q("upload_item_get"), session_id, sop_instance_uid)
    if row is None:
        return None
    return UploadItem(
        sop_instance_uid=row["sop_instance_uid"],
        size_bytes=row["size_bytes"],
        sha256=row["sha256"],
        stored=row["stored_at"] is not None,
        bodies_received=row["bodies_received"],
    )


async def mark_item_stored(
    pool: asyncpg.Pool, session_id: int, sop_instance_uid: str, *, duplicate: bool
) -> None:
    """The item passed ingest (stored now, or the archive already had it)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            q("upload_item_stored"),
            session_id,
            sop_instance_uid,
            "duplicate" if duplicate else "stored",
        )
        await conn.execute(q("upload_session_touch"), session_id)


async def delete_item(conn: Conn, session_id: int, sop_instance_uid: str) -> bool:
    """Take an unstored instance out of the manifest; False when there is no such unstored
    instance."""
    removed = await conn.fetchval(q("upload_item_delete"), session_id, sop_instance_uid)
    return removed is not None


async def touch_session(conn: Conn, session_id: int) -> None:
    await conn.execute(q("upload_session_touch"), session_id)


async def add_part(
    pool: asyncpg.Pool,
    session_id: int,
    sop_instance_uid: str,
    *,
    start_byte: int,
    object_key: str,
    length_bytes: int,
) -> str | None:
    """Record a durable part; returns the object key of a part it replaced, if any."""
    with guarded():
        replaced: str | None = await pool.fetchval(
            q("upload_part_upsert"),
            session_id,
            sop_instance_uid,
            start_byte,
            length_bytes,
            object_key,
        )
    return replaced if replaced != object_key else None


async def parts(pool: asyncpg.Pool, session_id: int, sop_instance_uid: str) -> list[Part]:
    rows = await pool.fetch(q("upload_parts_of_item"), session_id, sop_instance_uid)
    return [
        Part(start_byte=r["start_byte"], length_bytes=r["length_bytes"], object_key=r["object_key"])
        for r in rows
    ]


async def forget_part(
    pool: asyncpg.Pool, session_id: int, sop_instance_uid: str, start_byte: int
) -> None:
    """Forget one part whose object is gone, so the client sends it again."""
    await pool.execute(q("upload_part_delete_one"), session_id, sop_instance_uid, start_byte)


async def drop_parts(db: asyncpg.Pool | Conn, session_id: int, sop_instance_uid: str) -> list[str]:
    """Forget an instance's parts; returns their object keys (to collect when unreferenced)."""
    rows = await db.fetch(q("upload_parts_delete"), session_id, sop_instance_uid)
    return [r["object_key"] for r in rows]


async def commit(pool: asyncpg.Pool, session_id: int) -> datetime | None:
    """Mark the session committed when every manifest item is stored; None when some are not.
    Committing twice returns the first commit's time."""
    committed: datetime | None = await pool.fetchval(q("upload_session_commit"), session_id)
    return committed


async def holds_study(pool: asyncpg.Pool, study_instance_uid: str, facility_id: FacilityId) -> bool:
    """Whether an open, recently active upload session holds the study back from completing
    at the stable age (the SQL function ``upload_holds_study``, for the sweep's query)."""
    held: bool = await pool.fetchval(q("upload_holds_study"), study_instance_uid, facility_id)
    return held
