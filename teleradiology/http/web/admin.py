"""The administrator's dashboard: the turnaround dashboard (``dashboard_page``), then the open
and overdue cases per pool, SLA breaches, deliveries given up and referrals over their
network, and the sections and links other pages add (``admin_sections``, ``admin_links``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from storage import (
    cases,
    network,
    referrals,
)
from storage.jobs import FailedDelivery, FailedKind
from storage.records import (
    Channel,
    Conclusion,
    FacilityId,
    Report,
    Role,
    TurnaroundSegment,
)
from teleradiology.core.errors import Forbidden
from teleradiology.core.language import N_, Language, gettext, word
from teleradiology.core.referrals import StatisticsRow
from teleradiology.http.api import cases as api
from teleradiology.http.api import dashboard as dashboard_api
from teleradiology.http.api.models.dashboard import DashboardQuery
from teleradiology.http.api.models.notices import ChannelOut
from teleradiology.http.api.models.reading import TurnaroundQuery
from teleradiology.http.context import POOL, USER, user_zone
from teleradiology.http.params import query_of
from teleradiology.http.web.common import (
    base_context,
    facility_names,
    local_time,
    page_language,
    render,
    signed_in,
    time_left,
)
from teleradiology.http.web.dashboard_page import dashboard_context
from teleradiology.services import administration, channels, reading
from teleradiology.services import referrals as referral_service


@dataclass
class _PoolLoad:
    pool: str
    name: str
    specialty: str
    open: int = 0
    scheduled: int = 0
    in_progress: int = 0
    urgent: int = 0
    overdue: int = 0


#: The rows a long table of the page shows: the busiest, in the table's own order (every row
#: is in the table's CSV and API).
PAGE_ROWS = 50


def _busiest(
    rows: list[dict[str, Any]], weight: Callable[[dict[str, Any]], float], limit: int = PAGE_ROWS
) -> tuple[list[dict[str, Any]], int]:
    """The `limit` rows of most `weight`, kept in their order, and how many rows there were."""
    if len(rows) <= limit:
        return rows, len(rows)
    kept = {id(r) for r in sorted(rows, key=weight, reverse=True)[:limit]}
    return [r for r in rows if id(r) in kept], len(rows)


def _minutes(value: float | None, language: Language) -> str:
    """A duration given in minutes, in the unit that reads best, in `language`."""
    if value is None:
        return ""
    _ = gettext(language)
    if value < 1:
        return _(N_("%(n)s 秒")) % {"n": f"{value * 60:.0f}"}
    if value >= 120:
        return _(N_("%(n)s 小时")) % {"n": f"{value / 60:.1f}"}
    return _(N_("%(n)s 分钟")) % {"n": f"{value:.1f}"}


def _local_days(request: web.Request, zone: ZoneInfo) -> web.Request:
    """The dashboard's date fields are local days: 'since' from its midnight, 'until' to
    the end of its day, as the stats handler's ISO times."""
    changed: dict[str, str] = {}
    for name, extra in (("since", 0), ("until", 1)):
        text = request.query.get(name, "")
        if len(text) == 10:
            try:
                day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=zone)
            except ValueError:
                continue
            changed[name] = (day + timedelta(days=extra)).isoformat()
    if not changed:
        return request
    return request.clone(rel_url=request.rel_url.update_query(changed))


@dataclass
class _OpenCases:
    """The open cases of the network, by pool and by sending facility, and those overdue."""

    loads: dict[tuple[str, str], _PoolLoad]
    by_facility: dict[str, int]
    breaches: list[dict[str, Any]]


def _open_cases(
    found: cases.OpenCases,
    facilities: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
    language: Language,
) -> _OpenCases:
    loads = {
        (load.pool_code, load.specialty.value): _PoolLoad(
            pool=load.pool_code,
            name=facilities.get(load.pool_code, load.pool_code),
            specialty=load.specialty.value,
            open=load.open,
            scheduled=load.scheduled,
            in_progress=load.in_progress,
            urgent=load.urgent,
            overdue=load.overdue,
        )
        for load in found.loads
    }
    breaches = [
        {
            "kind": N_("逾期未报告"),
            "case_id": c.id,
            "facility": facilities.get(c.facility_code, c.facility_code),
            "pool": facilities.get(c.pool_code, c.pool_code),
            "priority": word(c.priority, language) + (" · STEMI" if c.stemi else ""),
            "due": local_time(c.deadline, zone),
            "by": time_left(c.deadline, now, language)[0],
            "claimed": c.claimed,
        }
        for c in found.overdue
    ]
    return _OpenCases(loads=loads, by_facility=dict(found.by_facility), breaches=breaches)


def _critical_breaches(
    pending: list[Report],
    code_of: dict[FacilityId, str],
    facilities: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
    language: Language,
) -> tuple[int, list[dict[str, Any]]]:
    """How many critical results wait for acknowledgement, and those overdue."""
    critical_pending = 0
    breaches: list[dict[str, Any]] = []
    for r in pending:
        if r.conclusion is not Conclusion.CRITICAL:
            continue
        critical_pending += 1
        if r.critical_due_at is not None and r.critical_due_at < now:
            left, _ = time_left(r.critical_due_at, now, language)
            code = code_of.get(r.facility_id, "")
            breaches.append(
                {
                    "kind": N_("危急值未确认"),
                    "case_id": r.case_id,
                    "facility": facilities.get(code, code),
                    "pool": "",
                    "priority": word(Conclusion.CRITICAL, language),
                    "due": local_time(r.critical_due_at, zone),
                    "by": left,
                    "claimed": True,
                }
            )
    return critical_pending, breaches


def _facility_rows(
    body: dict[str, Any],
    open_by_facility: dict[str, int],
    facilities: dict[str, str],
    language: Language,
) -> list[dict[str, Any]]:
    """Turnaround per sending facility, with its open cases (and the facilities with open
    cases and no report yet)."""
    rows = [
        {
            **f,
            "median": _minutes(f["median_minutes"], language),
            "p90": _minutes(f["p90_minutes"], language),
            "mean": _minutes(f["mean_minutes"], language),
            "max": _minutes(f["max_minutes"], language),
            "open": open_by_facility.get(f["facility"], 0),
        }
        for f in body["facilities"]
    ]
    reported_codes = {f["facility"] for f in body["facilities"]}
    for code, count in sorted(open_by_facility.items()):
        if code not in reported_codes:
            rows.append(
                {
                    "facility": code,
                    "name": facilities.get(code, code),
                    "reports": 0,
                    "median_minutes": None,
                    "median": "",
                    "p90": "",
                    "mean": "",
                    "max": "",
                    "open": count,
                }
            )
    return rows


def _segments(body: dict[str, Any], language: Language) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "label": word(TurnaroundSegment(key), language),
            "cases": s["cases"],
            "median": _minutes(s["median_minutes"], language),
            "p90": _minutes(s["p90_minutes"], language),
            "max": _minutes(s["max_minutes"], language),
        }
        for key, s in body["segments"].items()
    ]


def _referral_rows(
    rows: list[referrals.ReferralStats], facilities: dict[str, str], language: Language
) -> list[dict[str, Any]]:
    return [
        {
            "facility": facilities.get(r.facility_code, r.facility_code),
            "direction": word(r.direction, language),
            "status": word(r.status, language),
            "count": r.count,
            "response": _minutes(
                r.median_response_s / 60 if r.median_response_s is not None else None, language
            ),
        }
        for r in rows
    ]


def _rate(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "—"


def _referral_month_rows(rows: list[StatisticsRow], total: StatisticsRow) -> list[dict[str, Any]]:
    """The referral statistics table: each facility's month, then the total."""
    return [
        {
            "facility": r.facility_code or "",
            "name": r.facility_name,
            "month": r.month or "",
            "up": r.up,
            "accepted": r.accepted,
            "declined": r.declined,
            "arrived": r.arrived,
            "rate": _rate(r.arrival_rate),
            "returned": r.returned,
            "down": r.down,
            "total": r is total,
        }
        for r in [*rows, total]
    ]


_FAILED_WHAT = {
    FailedKind.REPORT: N_("报告投递"),
    FailedKind.DICOM_COPY: N_("DICOM副本"),
    FailedKind.NOTICE: N_("通知消息"),
}


def failed_rows(
    failed: list[FailedDelivery], facilities: dict[str, str], zone: ZoneInfo, language: Language
) -> list[dict[str, Any]]:
    _ = gettext(language)
    return [
        {
            "kind": f.kind.value,
            "id": f.id,
            "what": _(_FAILED_WHAT[f.kind]),
            "report_id": f.report_id,
            "case_id": f.case_id,
            "facility": facilities.get(f.facility_code, f.facility_code),
            "attempts": f.attempts,
            "error": f.last_error or "",
            "at": local_time(f.failed_at, zone),
        }
        for f in failed
    ]


def channel_rows(
    found: list[Channel], facilities: dict[str, str], language: Language
) -> list[dict[str, Any]]:
    return [
        ChannelOut.of(c).model_dump()
        | {
            "kind_words": word(c.spec.kind, language),
            "facility_name": facilities.get(c.facility_code, c.facility_code),
        }
        for c in found
    ]


def _referral_tables(
    rows: list[referrals.ReferralStats],
    months: list[StatisticsRow],
    months_total: StatisticsRow,
    facilities: dict[str, str],
    language: Language,
) -> dict[str, object]:
    """The referral tables of the front page: by pair of facilities, and by month."""
    referral_table, referrals_count = _busiest(
        _referral_rows(rows, facilities, language), lambda r: r["count"]
    )
    *month_all, total_row = _referral_month_rows(months, months_total)
    month_rows, month_count = _busiest(month_all, lambda r: r["up"] + r["down"])
    return {
        "referrals": referral_table,
        "referrals_count": referrals_count,
        "referral_months": [*month_rows, total_row],
        "referral_months_count": month_count,
    }


async def admin_page(request: web.Request) -> web.StreamResponse:
    """Turnaround per sending facility and segment, volumes, open and overdue cases per
    pool, SLA breaches and referrals, over the administrator's network."""
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden(N_("统计看板供网络管理员使用"))
    zone = await user_zone(request, user)
    request[USER] = user
    asked = query_of(request, DashboardQuery)
    local = _local_days(request, zone)
    local[USER] = user
    pool = request.app[POOL]
    now = datetime.now(UTC)
    language = page_language(request, user)
    since, until = api.turnaround_period(query_of(local, TurnaroundQuery))
    # the sections are independent reads: side by side, each on its own connection
    sections = asyncio.gather(
        dashboard_api.dashboard_of(request),
        api.turnaround_data(local, (since, until)),
        facility_names(request),
        reading.open_case_overview(pool, user, now),
        reading.inbox(pool, user, unacknowledged=True, limit=1000, listing="dashboard"),
        network.list_facilities(pool),
    )
    more = asyncio.gather(
        referrals.referral_stats(pool, user.facility_id, since, until),
        referral_service.statistics(pool, user, since, until, zone.key),
        administration.failed_deliveries(pool, user),
        channels.list_channels(pool, user),
    )
    (
        (dash, body, facilities, overview, pending, every),
        (
            referral_rows,
            (months, months_total),
            failed,
            channel_list,
        ),
    ) = await asyncio.gather(sections, more)
    request = local
    found = _open_cases(overview, facilities, now, zone, language)
    code_of = {f.id: f.code for f in every}
    critical_pending, late = _critical_breaches(pending, code_of, facilities, now, zone, language)
    query = {k: v for k, v in request.query.items() if k in ("since", "until")}
    facility_rows, facilities_count = _busiest(
        _facility_rows(body, found.by_facility, facilities, language),
        lambda r: r["reports"] + r["open"],
    )
    context = await base_context(request, user)
    context.update(
        title=context["_"]("管理看板"),
        since=local_time(since, zone),
        until=local_time(until, zone),
        since_value=since.astimezone(zone).strftime("%Y-%m-%d"),
        until_value=(until - timedelta(seconds=1)).astimezone(zone).strftime("%Y-%m-%d"),
        facilities=facility_rows,
        facilities_count=facilities_count,
        total_reports=sum(f["reports"] for f in body["facilities"]),
        segments=_segments(body, language),
        pools=sorted(found.loads.values(), key=lambda p: (-p.overdue, -p.open, p.pool)),
        open_total=sum(p.open for p in found.loads.values()),
        overdue_total=sum(p.overdue for p in found.loads.values()),
        critical_pending=critical_pending,
        breaches=found.breaches + late,
        **_referral_tables(referral_rows, months, months_total, facilities, language),
        page_rows=PAGE_ROWS,
        failed=failed_rows(failed, facilities, zone, language),
        channels=channel_rows(channel_list, facilities, language),
        csv_href="/admin/turnaround.csv" + (f"?{urlencode(query)}" if query else ""),
        admin_links=[],
        admin_sections=[],
        **dashboard_context(dash, asked, language),
    )
    return render("admin.html", context)
