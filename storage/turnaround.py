"""Turnaround from the server's own clock: per sending facility, and per workflow segment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.queries import q
from storage.records import FacilityId

#: The segments of a case's life, each from one event to the next, in order.
SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("received_to_complete", "received", "complete"),
    ("complete_to_routed", "complete", "routed"),
    ("routed_to_claimed", "routed", "claimed"),
    ("claimed_to_escalated", "claimed", "escalated"),
    ("claimed_to_preliminary", "claimed", "preliminary"),
    ("escalated_to_final", "escalated", "final"),
    ("claimed_to_final", "claimed", "final"),
    ("final_to_delivered", "final", "delivered"),
    ("delivered_to_acknowledged", "delivered", "acknowledged"),
    ("received_to_final", "received", "final"),
    ("received_to_acknowledged", "received", "acknowledged"),
)


@dataclass(frozen=True, kw_only=True)
class TurnaroundRow:
    facility_id: FacilityId
    facility_code: str
    facility_name: str
    reports: int
    median_s: float
    p90_s: float
    mean_s: float
    max_s: float


async def turnaround(
    pool: asyncpg.Pool, root_facility_id: FacilityId, since: datetime, until: datetime
) -> list[TurnaroundRow]:
    """Received-to-final-report turnaround per sending facility below ``root_facility_id``."""
    rows = await pool.fetch(q("turnaround"), root_facility_id, since, until)
    return [
        TurnaroundRow(
            facility_id=FacilityId(r["facility_id"]),
            facility_code=r["code"],
            facility_name=r["name"],
            reports=r["reports"],
            median_s=float(r["median_s"]),
            p90_s=float(r["p90_s"]),
            mean_s=float(r["mean_s"]),
            max_s=float(r["max_s"]),
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class SegmentRow:
    segment: str
    cases: int
    median_s: float
    p90_s: float
    max_s: float


async def segments(
    pool: asyncpg.Pool,
    root_facility_id: FacilityId,
    since: datetime,
    until: datetime,
    *,
    case_id: int | None = None,
) -> list[SegmentRow]:
    """Each segment's duration over the cases reported in the window (or one case), from
    the first event of each kind; segments a case never went through are left out."""
    names = [s[0] for s in SEGMENTS]
    starts = [s[1] for s in SEGMENTS]
    ends = [s[2] for s in SEGMENTS]
    rows = await pool.fetch(
        q("turnaround_segments"), root_facility_id, since, until, names, starts, ends, case_id
    )
    found = {
        r["segment"]: SegmentRow(
            segment=r["segment"],
            cases=r["cases"],
            median_s=float(r["median_s"]),
            p90_s=float(r["p90_s"]),
            max_s=float(r["max_s"]),
        )
        for r in rows
    }
    return [found[n] for n in names if n in found]
