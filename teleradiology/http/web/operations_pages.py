"""The administrator's operations pages: the operations page (refused instances, studies
returned for quality, failed jobs and deliveries with their retry, refused ECG files, the
queue's and the stores' health), the network's report templates and its notification
channels. The pages read through the same services as the JSON under /api/v1/admin."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import Field

from storage.records import ChannelKind, Language, ReturnReason, Role, Specialty, User
from teleradiology.core.errors import Forbidden
from teleradiology.core.language import N_, word
from teleradiology.core.operations import THRESHOLDS, Measure
from teleradiology.http.api.models.operations import (
    FailedJobOut,
    HealthOut,
    NetworkTemplateOut,
    RejectionOut,
    RejectionsQuery,
    ReturnedOut,
)
from teleradiology.http.context import OBJECTS, POOL, SETTINGS, user_zone
from teleradiology.http.models import Model
from teleradiology.http.params import query_of
from teleradiology.http.web.admin import channel_rows, failed_rows
from teleradiology.http.web.common import (
    base_context,
    facility_names,
    local_time,
    page_language,
    render,
    signed_in,
)
from teleradiology.services import (
    administration,
    channels,
    console,
    ecg,
    operations,
    report_templates,
)


class _ReturnedQuery(Model):
    returned_offset: int = Field(0, ge=0, le=10**9)


#: Rows per page of the refused instances and the returned studies.
PER_PAGE = 50

_MEASURES = {
    Measure.DATABASE_MS: N_("数据库响应"),
    Measure.OBJECTS_MS: N_("对象存储响应"),
    Measure.OLDEST_DUE_S: N_("最久待执行任务"),
    Measure.STALE_JOBS: N_("失联的执行中任务"),
    Measure.FAILED_JOBS: N_("失败任务"),
    Measure.DISK_USED_PCT: N_("数据盘已用"),
}


async def _admin(request: web.Request) -> User:
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden(N_("运维页面供网络管理员使用"))
    return user


def _pages(request: web.Request, prefix: str, total: int, offset: int) -> dict[str, str]:
    """The links to the page before and after, keeping the page's other filters."""
    kept = {k: v for k, v in request.query.items() if k != f"{prefix}offset"}
    links: dict[str, str] = {}
    if offset > 0:
        links["before"] = "?" + urlencode(kept | {f"{prefix}offset": max(0, offset - PER_PAGE)})
    if offset + PER_PAGE < total:
        links["after"] = "?" + urlencode(kept | {f"{prefix}offset": offset + PER_PAGE})
    return links


def _health_rows(found: HealthOut) -> list[dict[str, Any]]:
    """Each reading with its label and its thresholds (the template words them)."""
    rows = []
    for r in found.readings:
        limits = THRESHOLDS[r.measure]
        rows.append(
            r.model_dump(mode="json")
            | {
                "label": _MEASURES[r.measure],
                "unit": limits.unit,
                "amber": f"{limits.amber:g}",
                "red": f"{limits.red:g}",
            }
        )
    return rows


async def _rejections(request: web.Request, admin: User) -> dict[str, Any]:
    asked = query_of(request, RejectionsQuery)
    offset = asked.offset
    zone = await user_zone(request, admin)
    found = await operations.rejections(
        request.app[POOL],
        admin,
        facility=asked.facility,
        day=asked.day,
        zone=zone,
        limit=PER_PAGE,
        offset=offset,
    )
    return {
        "rejections": [
            RejectionOut.of(r).model_dump() | {"when": local_time(r.at, zone)} for r in found.rows
        ],
        "rejections_total": found.total,
        "rejections_pages": _pages(request, "", found.total, offset),
        "asked_facility": asked.facility or "",
        "asked_day": asked.day.isoformat() if asked.day else "",
    }


def _reason(code: str, language: Language) -> str:
    try:
        return word(ReturnReason(code), language)
    except ValueError:
        return code


async def _returned(request: web.Request, admin: User) -> dict[str, Any]:
    language = page_language(request, admin)
    offset = query_of(request, _ReturnedQuery).returned_offset
    zone = await user_zone(request, admin)
    found = await operations.returned_cases(request.app[POOL], admin, limit=PER_PAGE, offset=offset)
    return {
        "returned": [
            ReturnedOut.of(r).model_dump()
            | {
                "when": local_time(r.returned_at, zone),
                "specialty_words": word(r.specialty, language),
                "reason_words": _reason(r.return_code, language),
            }
            for r in found.rows
        ],
        "returned_total": found.total,
        "returned_pages": _pages(request, "returned_", found.total, offset),
    }


async def operations_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    pool = request.app[POOL]
    zone = await user_zone(request, admin)
    names = await facility_names(request)
    health = HealthOut.of(
        await operations.health(pool, request.app[OBJECTS], request.app[SETTINGS].data_dir, admin)
    )
    jobs = [
        FailedJobOut.of(j).model_dump() | {"when": local_time(j.failed_at, zone)}
        for j in await operations.failed_jobs(pool, admin)
    ]
    held = {j["id"] for j in jobs}
    refused = [
        {
            "id": r.id,
            "facility": names.get(r.facility, r.facility),
            "when": local_time(r.received_at, zone),
            "size_bytes": r.size_bytes,
            "reason": r.reason,
        }
        for r in await ecg.refused(pool, admin, limit=50)
    ]
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("运行维护"),
        health=health.model_dump(mode="json"),
        health_rows=_health_rows(health),
        jobs=jobs,
        failed=[
            f
            for f in failed_rows(
                await administration.failed_deliveries(pool, admin),
                names,
                zone,
                page_language(request, admin),
            )
            # a report's delivery held as failed is one of the failed jobs above
            if not (f["kind"] == "report" and f["id"] in held)
        ],
        refused_ecgs=refused,
        facilities=[f.code for f in await console.facilities(pool, admin)],
        **await _rejections(request, admin),
        **await _returned(request, admin),
    )
    return render("operations.html", context)


async def templates_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    pool = request.app[POOL]
    found = await report_templates.network_templates(pool, admin)
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("报告模板"),
        templates=[NetworkTemplateOut.of(t).model_dump() for t in found],
        may_change=await report_templates.may_change(pool, admin),
        specialties=list(Specialty),
    )
    return render("report_templates.html", context)


async def channels_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    pool = request.app[POOL]
    names = await facility_names(request)
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("通知渠道"),
        channels=channel_rows(
            await channels.list_channels(pool, admin), names, page_language(request, admin)
        ),
        facilities=[f.code for f in await console.facilities(pool, admin)],
        kinds=[(k.value, context["word"](k)) for k in ChannelKind],
    )
    return render("notification_channels.html", context)
