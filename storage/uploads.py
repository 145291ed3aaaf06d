"""Resumable upload sessions: a manifest per study, what has arrived, parts of large instances.

A session belongs to one facility and one study. Its manifest lists the instances the
client will send (SOP Instance UID, size in bytes and SHA-256 of the file as sent); an item is
stored once its bytes passed the service's one ingest path. The session is the only state of
a resumable upload: the client keeps none, and finds its session again by its key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Self
from uuid import UUID

import asyncpg

from storage.errors import Conflict, InvalidState, NotFound
from storage.queries import q
from storage.records import FacilityId, Priority, Row, UserId

_SHA256 = re.compile(r"[0-9a-f]{64}")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class UploadState(StrEnum):
    OPEN = "open"
    COMMITTED = "committed"


@dataclass(frozen=True, kw_only=True)
class ManifestItem:
    """One instance the client will send, described as the file it sends."""

    sop_instance_uid: str
    size_bytes: int
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sop_instance_uid) > 64 or not _UID.fullmatch(self.sop_instance_uid):
            raise ValueError(
                f"SOP Instance UID {self.sop_instance_uid[:80]!r} is not a DICOM UID "
                "(digits and dots, at most 64 characters)"
            )
        if self.size_bytes <= 0:
            raise ValueError(f"instance {self.sop_instance_uid}: size must be positive")
        if not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"instance {self.sop_instance_uid}: sha256 must be 64 lowercase hex characters"
            )


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


@dataclass(frozen=True, kw_only=True)
class Opened:
    session: UploadSession
    created: bool


def _columns(items: Sequence[ManifestItem]) -> tuple[list[str], list[int], list[str]]:
    return (
        [i.sop_instance_uid for i in items],
        [i.size_bytes for i in items],
        [i.sha256 for i in items],
    )


async def open_session(
    pool: asyncpg.Pool,
    *,
    facility_id: FacilityId,
    user_id: UserId,
    client_key: str,
    study_instance_uid: str,
    priority: Priority,
    clinical_question: str | None,
    items: Sequence[ManifestItem],
) -> Opened:
    """Open the facility's session under ``client_key``, or resume it, adding manifest lines.

    Raises
    ------
    Conflict
        The key belongs to a session of another study, or a line names an instance already in
        the session with another size or SHA-256.
    InvalidState
        The session is committed and the manifest names instances it does not have.
    """
    sops, sizes, shas = _columns(items)
    async with pool.acquire() as conn, conn.transaction():
        new_id = await conn.fetchval(
            q("upload_session_insert"),
            facility_id,
            user_id,
            client_key,
            study_instance_uid,
            priority.value,
            clinical_question,
        )
        row = await conn.fetchrow(q("upload_session_lock_by_key"), facility_id, client_key)
        if row is None:  # pragma: no cover - inserted or found under the same lock
            raise RuntimeError("upload session vanished while opening it")
        session = UploadSession.from_row(row)
        if session.study_instance_uid != study_instance_uid:
            raise Conflict(
                f"upload key {client_key!r} is already used for study "
                f"{session.study_instance_uid}; one session carries one study"
            )
        conflicting = await conn.fetch(q("upload_items_conflicting"), session.id, sops, sizes, shas)
        if conflicting:
            names = ", ".join(r["sop_instance_uid"] for r in conflicting)
            raise Conflict(
                f"the manifest gives other sizes or SHA-256 than this session has for {names}; "
                "a file changed since the upload began: open a new session (another key)"
            )
        if session.state is UploadState.COMMITTED:
            if await conn.fetchval(q("upload_items_new"), session.id, sops):
                raise InvalidState(
                    f"upload {session.public_id} is already committed; send the further "
                    "instances in a new session (another key)"
                )
            return Opened(session=session, created=False)
        await conn.execute(q("upload_items_insert"), session.id, sops, sizes, shas)
        if new_id is None:
            await conn.execute(
                q("upload_session_request"), session.id, priority.value, clinical_question
            )
            row = await conn.fetchrow(q("upload_session_lock_by_key"), facility_id, client_key)
            session = UploadSession.from_row(row) if row is not None else session
    return Opened(session=session, created=new_id is not None)


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


async def item(pool: asyncpg.Pool, session_id: int, sop_instance_uid: str) -> UploadItem | None:
    row = await pool.fetchrow(q("upload_item_get"), session_id, sop_instance_uid)
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


async def remove_item(pool: asyncpg.Pool, session_id: int, sop_instance_uid: str) -> list[str]:
    """Take an instance that will not be sent out of the manifest; returns its part objects'
    keys (to collect).

    Raises
    ------
    NotFound
        The instance is not in the manifest.
    InvalidState
        The instance is stored already; it stays part of the upload.
    """
    async with pool.acquire() as conn, conn.transaction():
        keys = [
            r["object_key"]
            for r in await conn.fetch(q("upload_parts_delete"), session_id, sop_instance_uid)
        ]
        removed = await conn.fetchval(q("upload_item_delete"), session_id, sop_instance_uid)
        if removed is None:
            exists = await conn.fetchrow(q("upload_item_get"), session_id, sop_instance_uid)
            if exists is None:
                raise NotFound(f"instance {sop_instance_uid} is not in this upload's manifest")
            raise InvalidState(f"instance {sop_instance_uid} is already stored; it stays")
        await conn.execute(q("upload_session_touch"), session_id)
    return keys


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
    replaced: str | None = await pool.fetchval(
        q("upload_part_upsert"), session_id, sop_instance_uid, start_byte, length_bytes, object_key
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


async def drop_parts(pool: asyncpg.Pool, session_id: int, sop_instance_uid: str) -> list[str]:
    """Forget an instance's parts; returns their object keys (to collect when unreferenced)."""
    rows = await pool.fetch(q("upload_parts_delete"), session_id, sop_instance_uid)
    return [r["object_key"] for r in rows]


async def part_key_referenced(pool: asyncpg.Pool, object_key: str) -> bool:
    """Whether a part of any upload, or an indexed instance, still uses this object."""
    found: bool = await pool.fetchval(q("upload_part_key_referenced"), object_key)
    return found


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
