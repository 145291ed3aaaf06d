"""Per-facility daily intake: bytes and instances received per UTC day, against limits.

An instance's bytes are reserved (`reserve`) before its object is written and given back
(`release`) when nothing new was stored (refused, a duplicate, a failure); a reservation that
does not fit the facility's limits changes nothing. Limits are the facility's own
(`set_quota`), else the defaults the caller passes; 0 is no limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from storage.db import Conn
from storage.queries import q
from storage.records import FacilityId, IntakeLimits


@dataclass(frozen=True, kw_only=True)
class Intake:
    """What a facility sent today, and its own limits (None: the defaults)."""

    bytes: int
    instances: int
    own_bytes_per_day: int | None
    own_instances_per_day: int | None


async def reserve(
    pool: asyncpg.Pool, facility_id: FacilityId, size_bytes: int, defaults: IntakeLimits
) -> date | None:
    """Count one instance of ``size_bytes`` against today's intake: the day it was counted
    on, or None (nothing counted) when it would go past the facility's limits."""
    day: date | None = await pool.fetchval(
        q("intake_reserve"),
        facility_id,
        size_bytes,
        defaults.bytes_per_day,
        defaults.instances_per_day,
    )
    return day


async def release(pool: asyncpg.Pool, facility_id: FacilityId, day: date, size_bytes: int) -> None:
    """Give back a reservation of `reserve` (the instance was not stored after all)."""
    await pool.execute(q("intake_release"), facility_id, day, size_bytes)


async def known_instance(pool: asyncpg.Pool, sop_instance_uid: str) -> bool:
    """Whether an instance of that SOP Instance UID is stored (a resend is not new intake)."""
    found: bool = await pool.fetchval(q("intake_known_instance"), sop_instance_uid)
    return found


async def today(pool: asyncpg.Pool, facility_id: FacilityId) -> Intake:
    row = await pool.fetchrow(q("intake_today"), facility_id)
    if row is None:  # pragma: no cover - the query always returns a row
        raise RuntimeError("no intake row")
    return Intake(
        bytes=row["bytes"],
        instances=row["instances"],
        own_bytes_per_day=row["bytes_per_day"],
        own_instances_per_day=row["instances_per_day"],
    )


async def set_quota(
    conn: Conn,
    facility_id: FacilityId,
    *,
    bytes_per_day: int | None,
    instances_per_day: int | None,
) -> None:
    """A facility's own daily limits (None: the service's default for that one)."""
    await conn.execute(q("quota_set"), facility_id, bytes_per_day, instances_per_day)
