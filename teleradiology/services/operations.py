"""Running a network: what its administrator sees on the operations page (refused
instances, studies returned for quality, failed jobs and their retry, the queue's and the
stores' health). Listings that name cases are audited; a retry is audited with the job
before and after."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from storage import audit, network, operations
from storage.db import Pool
from storage.objects import ObjectStore
from storage.operations import FailedJob, Page, QueueDepth, Rejection, ReturnedCase
from storage.records import AuditAction, Role, User
from teleradiology.core.access import require_role
from teleradiology.core.errors import NotFound
from teleradiology.core.language import N_
from teleradiology.core.operations import THRESHOLDS, Light, Measure, worst

log = logging.getLogger(__name__)

#: A picked job whose heartbeat is older than this has lost its runner (pgqueuer's own
#: heartbeat timeout, which the worker keeps).
STALE_AFTER_S = 30.0
#: How long a probe of a store may take before it counts as not answering.
PROBE_TIMEOUT_S = 5.0


async def rejections(
    pool: Pool,
    admin: User,
    *,
    facility: str | None,
    day: date | None,
    zone: ZoneInfo,
    limit: int,
    offset: int,
) -> Page[Rejection]:
    """Refused instances of the administrator's network (of one facility, on one local day
    of the network when asked), newest first.

    Raises
    ------
    NotFound
        ``facility`` is not in the administrator's network.
    """
    require_role(admin, Role.ADMIN)
    if facility is not None:
        async with pool.acquire() as conn:
            known = await network.facility_in_admin_scope(conn, facility, admin)
        if known is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=facility)
    since = until = None
    if day is not None:
        since = datetime.combine(day, time(), tzinfo=zone)
        until = since + timedelta(days=1)
    found = await operations.rejections(
        pool,
        admin.id,
        facility_code=facility,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.LIST,
        object_type="ingest_rejection",
        object_id="operations",
        detail={
            "facility": facility,
            "day": day.isoformat() if day else None,
            "shown": len(found.rows),
        },
    )
    return found


async def returned_cases(pool: Pool, admin: User, *, limit: int, offset: int) -> Page[ReturnedCase]:
    """Cases returned to their clinic for quality in the administrator's network."""
    require_role(admin, Role.ADMIN)
    found = await operations.returned_cases(pool, admin.id, limit=limit, offset=offset)
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.LIST,
        object_type="reading_case",
        object_id="returned",
        study_ids=[r.study_id for r in found.rows],
        detail={"shown": len(found.rows)},
    )
    return found


async def failed_jobs(pool: Pool, admin: User) -> list[FailedJob]:
    """Jobs held as failed after their last attempt, of the administrator's network."""
    require_role(admin, Role.ADMIN)
    return await operations.failed_jobs(pool, admin.id)


async def retry_job(pool: Pool, admin: User, job_id: int) -> FailedJob:
    """Queue a failed job again from its first attempt, due now; audited.

    Raises
    ------
    NotFound
        No such failed job in the administrator's network (or it was retried already).
    """
    require_role(admin, Role.ADMIN)
    before = await operations.requeue_failed_job(pool, admin.id, job_id)
    if before is None:
        raise NotFound(N_("您的网络中没有失败任务 %(id)s"), id=job_id)
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.CONFIGURE,
        object_type="job",
        object_id=job_id,
        detail={
            "entrypoint": before.entrypoint,
            "report": before.report_id,
            "before": {"status": "failed", "attempts": before.attempts, "error": before.error_type},
            "after": {"status": "queued", "attempts": 0},
        },
    )
    log.info("administrator %s retried failed job %d (%s)", admin.id, job_id, before.entrypoint)
    return before


@dataclass(frozen=True, kw_only=True)
class Reading:
    """One measure of the health panel, its light and the thresholds it was judged by."""

    measure: Measure
    value: float | None
    light: Light
    thresholds: str
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Health:
    light: Light
    readings: list[Reading]
    queue: list[QueueDepth]
    sizes: operations.Sizes


def _reading(measure: Measure, value: float | None, error: str | None = None) -> Reading:
    t = THRESHOLDS[measure]
    return Reading(
        measure=measure, value=value, light=t.judge(value), thresholds=t.stated(), error=error
    )


async def health(pool: Pool, objects: ObjectStore, data_dir: Path, admin: User) -> Health:
    """The queue (every network's: one queue serves them all) and the stores, judged."""
    require_role(admin, Role.ADMIN)
    database = await operations.probe_database(pool, timeout_s=PROBE_TIMEOUT_S)
    store = await operations.probe_objects(objects, timeout_s=PROBE_TIMEOUT_S)
    queue = await operations.queue_depth(pool, stale_after_s=STALE_AFTER_S) if database.ok else []
    sizes = await operations.sizes(pool, data_dir)
    oldest = max((q.oldest_due_s or 0.0 for q in queue), default=0.0)
    used = (
        100 * (1 - sizes.disk_free_bytes / sizes.disk_total_bytes)
        if sizes.disk_free_bytes is not None and sizes.disk_total_bytes
        else None
    )
    mine = len(await operations.failed_jobs(pool, admin.id)) if database.ok else None
    readings = [
        _reading(Measure.DATABASE_MS, database.latency_ms if database.ok else None, database.error),
        _reading(Measure.OBJECTS_MS, store.latency_ms if store.ok else None, store.error),
        _reading(Measure.OLDEST_DUE_S, oldest if database.ok else None),
        _reading(Measure.STALE_JOBS, sum(q.stale for q in queue) if database.ok else None),
        _reading(Measure.FAILED_JOBS, mine),
        _reading(Measure.DISK_USED_PCT, used),
    ]
    return Health(
        light=worst([r.light for r in readings]), readings=readings, queue=queue, sizes=sizes
    )
