"""The administrator's dashboard figures, read from ``case_turnaround`` (one row per case,
kept by triggers: migration 0065) and the referral table.

Every reader takes a :class:`DashboardScope`: the network's root facility, the period and
the filters. Durations are in seconds, from the server's own clock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from storage.db import Pool
from storage.queries import q
from storage.records import FacilityId, UserId


class Bucket(StrEnum):
    """The step of a trend: PostgreSQL's ``date_trunc`` field of the same name."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True, kw_only=True)
class DashboardScope:
    """Which cases count: the network below ``root`` and, when given, one sending tier,
    one facility (and those below it), specialty, modality, priority and reader; cases
    count in the period ``[since, until)``."""

    root: FacilityId
    since: datetime
    until: datetime
    tier: str | None = None
    facility_id: FacilityId | None = None
    specialty: str | None = None
    modality: str | None = None
    priority: str | None = None
    reader_id: UserId | None = None

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("the dashboard period needs timezone-aware times")
        if self.since >= self.until:
            raise ValueError("the dashboard period must start before it ends")

    def args(self) -> tuple[Any, ...]:
        return (
            self.root,
            self.since,
            self.until,
            self.tier,
            self.facility_id,
            self.specialty,
            self.modality,
            self.priority,
            self.reader_id,
        )


@dataclass(frozen=True, kw_only=True)
class Figures:
    """Cases reported, received->final and final->acknowledged p50/p90 (seconds; None
    without cases), and how many kept their deadline."""

    cases: int
    final_p50_s: float | None
    final_p90_s: float | None
    acknowledged: int
    ack_p50_s: float | None
    ack_p90_s: float | None
    sla_met: int

    @classmethod
    def from_row(cls, row: Any) -> Figures:
        final = row["final_q"] or (None, None)
        ack = row["ack_q"] or (None, None)
        return cls(
            cases=row["cases"],
            final_p50_s=final[0],
            final_p90_s=final[1],
            acknowledged=row["acknowledged"],
            ack_p50_s=ack[0],
            ack_p90_s=ack[1],
            sla_met=row["sla_met"],
        )


@dataclass(frozen=True, kw_only=True)
class BreakdownRow:
    """The figures of one value of one dimension (``all`` for every case together):
    ``key`` is the value (a tier, a facility code, a reader's username, ...), ``label`` how
    people name it, ``extra`` the reader's facility code."""

    dimension: str
    key: str
    label: str
    extra: str
    figures: Figures


def _breakdown_row(dimension: str, r: Any) -> BreakdownRow:
    return BreakdownRow(
        dimension=dimension,
        key=r["code"],
        label=r["label"],
        extra=r["extra"],
        figures=Figures.from_row(r),
    )


@dataclass(frozen=True, kw_only=True)
class TrendRow:
    """The figures of one day, week or month (its start, local midnight), of one
    specialty or (``specialty`` None) of all."""

    bucket: datetime
    specialty: str | None
    figures: Figures


#: The dimensions the figures are split by, each read by its own query ("all": not split).
DIMENSIONS = ("all", "tier", "facility", "specialty", "modality", "priority", "reader")


async def fetch_planned(pool: Pool, name: str, *args: Any) -> list[Any]:
    """Run one dashboard query planned for its own values: a plan cached for any filter
    (``$n is null or ...``) reads the whole table; the percentiles sort in memory."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute("set local plan_cache_mode = force_custom_plan")
        await conn.execute("set local work_mem = '64MB'")
        return list(await conn.fetch(q(name), *args))


async def breakdown(pool: Pool, scope: DashboardScope) -> list[BreakdownRow]:
    """The figures of the cases finally reported in the period, all together and by each
    dimension (the dimensions read side by side)."""
    found = await asyncio.gather(
        *(fetch_planned(pool, "dashboard_figures", *scope.args(), d) for d in DIMENSIONS)
    )
    return [_breakdown_row(d, r) for d, rows in zip(DIMENSIONS, found, strict=True) for r in rows]


async def trend(pool: Pool, scope: DashboardScope, by: Bucket, zone: str) -> list[TrendRow]:
    """The figures by day, week or month of the period in the time zone ``zone``."""
    rows = await fetch_planned(pool, "dashboard_trend", *scope.args(), by.value, zone)
    return [
        TrendRow(bucket=r["bucket"], specialty=r["specialty"], figures=Figures.from_row(r))
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class IntakeRow:
    """Cases received: of one bucket and specialty (``facility_code`` None), or of one
    sending facility (``bucket`` and ``specialty`` None), with how many were returned for
    quality and how many have a final report."""

    bucket: datetime | None
    specialty: str | None
    facility_code: str | None
    facility_name: str | None
    cases: int
    returned: int
    reported: int


async def intake(pool: Pool, scope: DashboardScope, by: Bucket, zone: str) -> list[IntakeRow]:
    """The cases received in the period, by bucket and specialty and by facility."""
    rows = await fetch_planned(pool, "dashboard_intake", *scope.args(), by.value, zone)
    return [IntakeRow(**r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class ReferralRow:
    """Referrals of one direction: of one bucket (``status`` None) or of one status
    (``bucket`` None)."""

    bucket: datetime | None
    direction: str
    status: str | None
    referrals: int


async def referrals(pool: Pool, scope: DashboardScope, by: Bucket, zone: str) -> list[ReferralRow]:
    """Referrals made in the period from or to the network (the facility filter's
    subtree when given), by bucket and by status."""
    rows = await fetch_planned(
        pool,
        "dashboard_referrals",
        scope.root,
        scope.since,
        scope.until,
        scope.facility_id,
        by.value,
        zone,
    )
    return [ReferralRow(**r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class FacilityChoice:
    """A facility of the network, for the facility filter."""

    code: str
    name: str
    tier: str


async def facilities(pool: Pool, root: FacilityId) -> list[FacilityChoice]:
    """The facilities of the network below ``root`` (and it), by code."""
    return [FacilityChoice(**r) for r in await pool.fetch(q("dashboard_facilities"), root)]
