"""What a network's administrator watches to run it: refused instances, studies returned to
their clinic for quality, jobs held as failed (and their retry), and the queue's and the
stores' health. Counts, codes and reasons only: no patient names."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar, cast

import asyncpg
from pgqueuer.queries import Queries
from pgqueuer.types import JobId

from storage.db import Queryable, transaction
from storage.objects import ObjectStore
from storage.queries import q
from storage.records import CaseId, ReportId, Specialty, UserId

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """An instance the service refused, with why."""

    id: int
    at: datetime
    facility_code: str
    facility_name: str
    sender_ae: str | None
    sop_class_uid: str | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReturnedCase:
    """A case a reader returned to its clinic for quality, and whether it came again."""

    case_id: CaseId
    study_id: int
    facility_code: str
    facility_name: str
    specialty: Specialty
    modalities: tuple[str, ...]
    return_code: str
    return_note: str | None
    returned_at: datetime
    resent: bool


@dataclass(frozen=True, kw_only=True)
class FailedJob:
    """A job held as failed after its last attempt, with the error its log kept."""

    id: int
    entrypoint: str
    attempts: int
    created: datetime
    failed_at: datetime
    report_id: ReportId
    case_id: CaseId
    facility_code: str
    error_type: str | None
    error_message: str | None


@dataclass(frozen=True, kw_only=True)
class Page(Generic[_T]):
    """One page of a listing, and how many rows the listing has in all."""

    rows: list[_T]
    total: int


@dataclass(frozen=True, kw_only=True)
class QueueDepth:
    """The job queue of one kind of job."""

    entrypoint: str
    queued: int
    #: how long the oldest job due now has waited (None: none is due)
    oldest_due_s: float | None
    picked: int
    #: picked jobs whose runner stopped sending heartbeats
    stale: int
    failed: int


@dataclass(frozen=True, kw_only=True)
class Probe:
    """Whether a store answered, and how long it took (``error``: the exception's name)."""

    ok: bool
    latency_ms: float
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Sizes:
    database_bytes: int | None
    instances_estimate: int | None
    disk_free_bytes: int | None
    disk_total_bytes: int | None


async def rejections(
    pool: Queryable,
    user_id: UserId,
    *,
    facility_code: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> Page[Rejection]:
    """Refused instances of the administrator's network, newest first, one page."""
    rows = await pool.fetch(
        q("rejections_for_user"), user_id, facility_code, since, until, limit, offset
    )
    return Page(
        rows=[
            Rejection(
                id=r["id"],
                at=r["at"],
                facility_code=r["facility_code"],
                facility_name=r["facility_name"],
                sender_ae=r["sender_ae"],
                sop_class_uid=r["sop_class_uid"],
                reason=r["reason"],
            )
            for r in rows
            if r["id"] is not None
        ],
        total=rows[0]["total"] if rows else 0,
    )


async def returned_cases(
    pool: Queryable, user_id: UserId, *, limit: int, offset: int
) -> Page[ReturnedCase]:
    """Cases returned for quality in the user's scope, newest first, one page."""
    rows = await pool.fetch(q("returned_cases_for_user"), user_id, limit, offset)
    return Page(
        rows=[
            ReturnedCase(
                case_id=CaseId(r["case_id"]),
                study_id=r["study_id"],
                facility_code=r["facility_code"],
                facility_name=r["facility_name"],
                specialty=Specialty(r["specialty"]),
                modalities=tuple(r["modalities"] or ()),
                return_code=r["return_code"],
                return_note=r["return_note"],
                returned_at=r["returned_at"],
                resent=r["resent"],
            )
            for r in rows
            if r["case_id"] is not None
        ],
        total=rows[0]["total"] if rows else 0,
    )


def _failed_job(r: asyncpg.Record) -> FailedJob:
    return FailedJob(
        id=r["id"],
        entrypoint=r["entrypoint"],
        attempts=r["attempts"],
        created=r["created"],
        failed_at=r["updated"],
        report_id=ReportId(r["report_id"]),
        case_id=CaseId(r["case_id"]),
        facility_code=r["facility_code"],
        error_type=r["error_type"],
        error_message=r["error_message"],
    )


async def failed_jobs(pool: Queryable, user_id: UserId, *, limit: int = 200) -> list[FailedJob]:
    """Jobs held as failed whose report is in the user's scope, the latest first."""
    rows = await pool.fetch(q("failed_jobs_for_user"), user_id, None, limit)
    return [_failed_job(r) for r in rows]


async def requeue_failed_job(pool: asyncpg.Pool, user_id: UserId, job_id: int) -> FailedJob | None:
    """Queue a failed job of the user's scope again from its first attempt, due now; the job
    as it was, or None when there is no such failed job (or it is another network's)."""
    async with transaction(pool) as conn:
        if await conn.fetchval(q("failed_job_lock"), job_id) is None:
            return None
        row = await conn.fetchrow(q("failed_jobs_for_user"), user_id, job_id, 1)
        if row is None:
            return None
        queries = Queries.from_asyncpg_connection(cast(asyncpg.Connection, conn))
        await queries.requeue_jobs([JobId(job_id)])
        return _failed_job(row)


async def queue_depth(pool: Queryable, *, stale_after_s: float) -> list[QueueDepth]:
    """The job queue per kind of job (every network's: one queue serves them all)."""
    rows = await pool.fetch(q("queue_depth"), stale_after_s)
    return [
        QueueDepth(
            entrypoint=r["entrypoint"],
            queued=r["queued"],
            oldest_due_s=r["oldest_due_s"],
            picked=r["picked"],
            stale=r["stale"],
            failed=r["failed"],
        )
        for r in rows
    ]


async def probe_database(pool: Queryable, *, timeout_s: float) -> Probe:
    """One round trip to PostgreSQL, timed."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await pool.fetchval("select 1")
    except Exception as exc:
        return Probe(ok=False, latency_ms=_ms(started), error=type(exc).__name__)
    return Probe(ok=True, latency_ms=_ms(started))


async def probe_objects(objects: ObjectStore, *, timeout_s: float) -> Probe:
    """One question to the object store (whether a key that is never written exists), timed."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await objects.exists("0" * 64)
    except Exception as exc:
        return Probe(ok=False, latency_ms=_ms(started), error=type(exc).__name__)
    return Probe(ok=True, latency_ms=_ms(started))


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def sizes(pool: Queryable, data_dir: Path) -> Sizes:
    """The database's size, the instances stored (the planner's estimate: no count runs)
    and the data directory's disk; None for what could not be read."""
    try:
        row = await pool.fetchrow(q("store_sizes"))
    except (asyncpg.PostgresError, OSError):
        row = None
    free: int | None = None
    total: int | None = None
    try:
        disk = await asyncio.to_thread(shutil.disk_usage, data_dir)
        free, total = disk.free, disk.total
    except OSError:
        pass
    return Sizes(
        database_bytes=row["database_bytes"] if row else None,
        instances_estimate=row["instances_estimate"] if row else None,
        disk_free_bytes=free,
        disk_total_bytes=total,
    )
