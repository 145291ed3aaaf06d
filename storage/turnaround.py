"""Turnaround from the server's own clock: per sending facility, and per workflow segment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.dashboard import fetch_planned
from storage.records import EventKind, FacilityId, TurnaroundSegment

#: The segments of a case's life, each from one event to the next, in order.
SEGMENTS: tuple[tuple[TurnaroundSegment, EventKind, EventKind], ...] = (
    (TurnaroundSegment.RECEIVED_TO_COMPLETE, EventKind.RECEIVED, EventKind.COMPLETE),
    (TurnaroundSegment.COMPLETE_TO_ROUTED, EventKind.COMPLETE, EventKind.ROUTED),
    (TurnaroundSegment.ROUTED_TO_CLAIMED, EventKind.ROUTED, EventKind.CLAIMED),
    (TurnaroundSegment.CLAIMED_TO_ESCALATED, EventKind.CLAIMED, EventKind.ESCALATED),
    (TurnaroundSegment.CLAIMED_TO_PRELIMINARY, EventKind.CLAIMED, EventKind.PRELIMINARY),
    (TurnaroundSegment.ESCALATED_TO_FINAL, EventKind.ESCALATED, EventKind.FINAL),
    (TurnaroundSegment.CLAIMED_TO_FINAL, EventKind.CLAIMED, EventKind.FINAL),
    (TurnaroundSegment.FINAL_TO_DELIVERED, EventKind.FINAL, EventKind.DELIVERED),
    (TurnaroundSegment.DELIVERED_TO_ACKNOWLEDGED, EventKind.DELIVERED, EventKind.ACKNOWLEDGED),
    (TurnaroundSegment.RECEIVED_TO_FINAL, EventKind.RECEIVED, EventKind.FINAL),
    (TurnaroundSegment.RECEIVED_TO_ACKNOWLEDGED, EventKind.RECEIVED, EventKind.ACKNOWLEDGED),
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
    rows = await fetch_planned(pool, "turnaround", root_facility_id, since, until)
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
    segment: TurnaroundSegment
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
    rows = await fetch_planned(pool, "turnaround_segments", root_facility_id, since, until, case_id)
    found = {
        r["segment"]: SegmentRow(
            segment=TurnaroundSegment(r["segment"]),
            cases=r["cases"],
            median_s=float(r["median_s"]),
            p90_s=float(r["p90_s"]),
            max_s=float(r["max_s"]),
        )
        for r in rows
    }
    return [found[s.value] for s, _, _ in SEGMENTS if s.value in found]
