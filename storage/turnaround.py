"""Turnaround from the server's own clock: per sending facility, and per workflow segment."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import numpy as np

from storage.dashboard import (
    FIGURES,
    dense,
    field,
    percentiles,
    planned,
    read_parts,
    records_of,
)
from storage.queries import q
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


async def _columns(
    pool: asyncpg.Pool,
    name: str,
    root: FacilityId,
    since: datetime,
    until: datetime,
    *more: object,
    split: bool = True,
) -> list[tuple[bytes, ...]]:
    """The columns of the one row of the column query ``name`` (taking the network's root,
    the period and ``more``), read in parts of the period side by side (unless not
    ``split``): for each part with cases, its columns."""

    async def part(a: datetime, b: datetime) -> tuple[bytes, ...] | None:
        async with planned(pool, by_index=True) as conn:
            row = await conn.fetchrow(q(name), root, a, b, *more)
        assert row is not None  # an aggregate answers one row
        return None if row[0] is None else tuple(row.values())

    periods = read_parts(since, until) if split else [(since, until)]
    found = await asyncio.gather(*(part(a, b) for a, b in periods))
    return [p for p in found if p is not None]


#: A facility's id, how many cases, their p50 and p90, mean and max seconds.
_FacilityFigures = tuple[int, int, tuple[float, float], float, float]


def _per_facility(facility: np.ndarray, final: np.ndarray) -> list[_FacilityFigures]:
    """For each facility: its id, how many cases, their p50 and p90, mean and max seconds."""
    order = np.argsort(final)
    small, values = dense(facility)
    # the cases by facility and, within each, by their seconds (a stable sort of the
    # seconds' order by facility)
    ranked = order[np.argsort(small[order], kind="stable")]
    counts = np.bincount(small)
    sums = np.bincount(small, weights=final)
    present = np.flatnonzero(counts)
    ends = np.cumsum(counts)[present]
    counts, sums = counts[present], sums[present]
    found = percentiles(final, ends - counts, counts, ranked)
    longest = final[ranked[ends - 1]]
    ids = present if values is None else values[present]
    return [
        (int(f), int(n), p, float(total / n), float(most))
        for f, n, total, p, most in zip(ids, counts, sums, found, longest, strict=True)
        if p is not None
    ]


async def turnaround(
    pool: asyncpg.Pool, root_facility_id: FacilityId, since: datetime, until: datetime
) -> list[TurnaroundRow]:
    """Received-to-final-report turnaround per sending facility below ``root_facility_id``
    (the median and p90 as PostgreSQL's ``percentile_cont`` reads them)."""
    parts = await _columns(pool, "turnaround_final_seconds", root_facility_id, since, until)
    if not parts:
        return []
    cases = records_of([p[0] for p in parts], FIGURES)
    facility, final = field(cases, "ids") >> 32, field(cases, "final")
    return await _named(pool, await asyncio.to_thread(_per_facility, facility, final))


async def _named(pool: asyncpg.Pool, found: list[_FacilityFigures]) -> list[TurnaroundRow]:
    """The rows of ``_per_facility``'s figures, with each facility's code and name."""
    async with pool.acquire() as conn:
        names = {
            r["id"]: r
            for r in await conn.fetch(q("dashboard_facility_names"), [f[0] for f in found])
        }
    rows = [
        TurnaroundRow(
            facility_id=FacilityId(facility_id),
            facility_code=names[facility_id]["code"],
            facility_name=names[facility_id]["name"],
            reports=n,
            median_s=float(p[0]),
            p90_s=float(p[1]),
            mean_s=mean,
            max_s=longest,
        )
        for facility_id, n, p, mean, longest in found
    ]
    return sorted(rows, key=lambda r: r.facility_code)


@dataclass(frozen=True, kw_only=True)
class SegmentRow:
    segment: TurnaroundSegment
    cases: int
    median_s: float
    p90_s: float
    max_s: float


#: The steps whose times ``turnaround_step_times`` reads, in its order.
STEPS = (
    EventKind.RECEIVED,
    EventKind.COMPLETE,
    EventKind.ROUTED,
    EventKind.CLAIMED,
    EventKind.ESCALATED,
    EventKind.PRELIMINARY,
    EventKind.FINAL,
    EventKind.DELIVERED,
    EventKind.ACKNOWLEDGED,
)
#: One case's packed steps (``case_turnaround.steps``) as PostgreSQL sends them: its sending
#: facility and the time of each of ``STEPS`` (microseconds since 2000).
STEP_TIMES = np.dtype([("facility", ">i8"), *((kind.value, ">i8") for kind in STEPS)])
#: A step not gone through: PostgreSQL's 'infinity' in its binary form.
_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True)
class _Steps:
    """The cases' sending facilities and the times of their steps (microseconds, ``_NEVER``
    for a step not gone through), a column each."""

    facility: np.ndarray
    at: dict[EventKind, np.ndarray]

    @classmethod
    def of(cls, parts: list[tuple[bytes, ...]]) -> _Steps:
        cases = records_of([p[0] for p in parts], STEP_TIMES)
        return cls(facility=field(cases, "facility"), at={k: field(cases, k.value) for k in STEPS})

    def seconds(self, start: EventKind, end: EventKind) -> np.ndarray:
        """The seconds from ``start`` to ``end`` of the cases that went through both, in
        that order."""
        a, b = self.at[start], self.at[end]
        # b at or after a, and not never: then a is not never either
        went = (b != _NEVER) & (b >= a)
        return (b - a)[went] / 1e6


async def _step_parts(
    pool: asyncpg.Pool,
    root: FacilityId,
    since: datetime,
    until: datetime,
    case_id: int | None = None,
) -> list[tuple[bytes, ...]]:
    """The step times of the cases reported in the window (or of the one case)."""
    return await _columns(
        pool, "turnaround_step_times", root, since, until, case_id, split=case_id is None
    )


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
    parts = await _step_parts(pool, root_facility_id, since, until, case_id)
    return await asyncio.to_thread(_per_segment, _Steps.of(parts)) if parts else []


def _both(parts: list[tuple[bytes, ...]]) -> tuple[list[_FacilityFigures], list[SegmentRow]]:
    steps = _Steps.of(parts)
    final = (steps.at[EventKind.FINAL] - steps.at[EventKind.RECEIVED]) / 1e6
    return _per_facility(steps.facility, final), _per_segment(steps)


async def tables(
    pool: asyncpg.Pool, root_facility_id: FacilityId, since: datetime, until: datetime
) -> tuple[list[TurnaroundRow], list[SegmentRow]]:
    """``turnaround`` and ``segments`` of the same window from one read of its cases."""
    parts = await _step_parts(pool, root_facility_id, since, until)
    if not parts:
        return [], []
    per_facility, per_segment = await asyncio.to_thread(_both, parts)
    return await _named(pool, per_facility), per_segment


def _per_segment(steps: _Steps) -> list[SegmentRow]:
    """Each segment some case went through: how many, p50, p90 and max seconds."""
    found = []
    for segment, start, end in SEGMENTS:
        went = steps.seconds(start, end)
        if not len(went):
            continue
        median, p90 = np.percentile(went, [50, 90])
        found.append(
            SegmentRow(
                segment=segment,
                cases=len(went),
                median_s=float(median),
                p90_s=float(p90),
                max_s=float(went.max()),
            )
        )
    return found
