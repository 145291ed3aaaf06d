"""The administrator's dashboard: turnaround, deadlines kept, volumes, returns for quality,
readers' workload, escalations to the city, second-read discrepancies and referrals over
their own network, for a period and filters.

Figures are counts and durations only, never a patient: reading them is not a disclosure
and is not audited (the cases behind them are, when opened).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from storage import dashboard as figures
from storage import network
from storage.dashboard import (
    BreakdownRow,
    Bucket,
    DashboardScope,
    EscalationRow,
    FacilityChoice,
    IntakeRow,
    ReferralRow,
    SecondReadRow,
    TrendRow,
)
from storage.dashboard import bucket_days as bucket_days  # the pages' x axis
from storage.db import Pool
from storage.records import FacilityId, Priority, Role, Specialty, Tier, User, UserId
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, NotFound
from teleradiology.core.language import N_

#: The period shown when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30
#: The longest period one view covers.
MAX_DAYS = 731


@dataclass(frozen=True, kw_only=True)
class DashboardAsk:
    """What the administrator asks: local days ``since`` to ``until`` (both included),
    the trend's step, and the filters (None: all)."""

    since: date | None = None
    until: date | None = None
    by: Bucket | None = None
    tier: Tier | None = None
    facility: str | None = None
    specialty: Specialty | None = None
    modality: str | None = None
    priority: Priority | None = None
    reader: str | None = None


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    """The figures of one view, with the period and step it covers (``first_day`` and
    ``last_day`` are local days, both included)."""

    scope: DashboardScope
    first_day: date
    last_day: date
    by: Bucket
    zone: ZoneInfo
    breakdown: list[BreakdownRow]
    trend: list[TrendRow]
    intake: list[IntakeRow]
    referrals: list[ReferralRow]
    escalations: list[EscalationRow]
    second_reads: list[SecondReadRow]
    facilities: list[FacilityChoice]


def default_bucket(days: int) -> Bucket:
    """Days for up to two months, weeks for up to half a year, months beyond."""
    if days <= 62:
        return Bucket.DAY
    if days <= 183:
        return Bucket.WEEK
    return Bucket.MONTH


def period(ask: DashboardAsk, zone: ZoneInfo, today: date) -> tuple[date, date]:
    """The local days asked for (by default the last ``DEFAULT_DAYS``, today included).

    Raises
    ------
    BadRequest
        ``since`` is after ``until``, or the period is longer than ``MAX_DAYS``.
    """
    last = ask.until or today
    first = ask.since or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadRequest(N_("'since' 不能晚于 'until'"))
    if (last - first).days + 1 > MAX_DAYS:
        raise BadRequest(N_("看板统计期间至多 %(n)s 天：请缩短"), n=MAX_DAYS)
    return first, last


async def _scope(
    pool: Pool, admin: User, ask: DashboardAsk, since: datetime, until: datetime
) -> DashboardScope:
    facility_id: FacilityId | None = None
    if ask.facility is not None:
        async with pool.acquire() as conn:
            facility_id = await network.facility_in_admin_scope(conn, ask.facility, admin)
        if facility_id is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=ask.facility)
    reader_id: UserId | None = None
    if ask.reader is not None:
        reader = await network.user_by_username(pool, ask.reader)
        if reader is None or reader.role is not Role.READER:
            raise NotFound(N_("没有名为 %(name)r 的阅片医生"), name=ask.reader)
        reader_id = reader.id
    return DashboardScope(
        root=admin.facility_id,
        since=since,
        until=until,
        tier=ask.tier.value if ask.tier else None,
        facility_id=facility_id,
        specialty=ask.specialty.value if ask.specialty else None,
        modality=ask.modality,
        priority=ask.priority.value if ask.priority else None,
        reader_id=reader_id,
    )


async def dashboard(
    pool: Pool, admin: User, ask: DashboardAsk, zone: ZoneInfo, *, now: datetime
) -> Dashboard:
    """The dashboard of the administrator's network for the period and filters asked.

    Raises
    ------
    Forbidden
        The user is not an administrator.
    NotFound
        The facility filter is not in the network, or the reader filter names no reader.
    BadRequest
        The period is reversed or too long.
    """
    require_role(admin, Role.ADMIN)
    first, last = period(ask, zone, now.astimezone(zone).date())
    since = datetime.combine(first, time(), zone)
    until = datetime.combine(last + timedelta(days=1), time(), zone)
    scope = await _scope(pool, admin, ask, since, until)
    by = ask.by or default_bucket((last - first).days + 1)
    key = zone.key
    (
        (breakdown, trend),
        intake,
        referrals,
        escalations,
        second_reads,
        choices,
    ) = await asyncio.gather(
        figures.figures(pool, scope, by, key),
        figures.intake(pool, scope, by, key),
        figures.referrals(pool, scope, by, key),
        figures.escalations(pool, scope),
        figures.second_reads(pool, scope),
        figures.facilities(pool, scope.root),
    )
    return Dashboard(
        scope=scope,
        first_day=first,
        last_day=last,
        by=by,
        zone=zone,
        breakdown=breakdown,
        trend=trend,
        intake=intake,
        referrals=referrals,
        escalations=escalations,
        second_reads=second_reads,
        facilities=choices,
    )
