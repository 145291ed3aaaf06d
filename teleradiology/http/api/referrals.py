"""Two-way referral (双向转诊) under /api/v1/referrals, and its statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from storage.records import Role
from storage.referrals import referral_stats
from teleradiology.core.access import require_role
from teleradiology.core.referrals import ReferralRequest
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.referrals import (
    ReferralAnswer,
    ReferralCount,
    ReferralIn,
    ReferralOut,
    ReferralsOut,
    ReferralStatsOut,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.models import PageQuery, PeriodQuery, RecordPath
from teleradiology.http.params import body_of, path_id, query_of
from teleradiology.services import referrals

routes = Routes(tag="referral")


@routes.post(
    "/api/v1/referrals",
    body=ReferralIn,
    answer=ReferralOut,
    status=201,
    summary="Raise an up-referral (上转) or a down-referral (下转)",
)
async def create(request: web.Request) -> web.Response:
    """Raise an up-referral (上转) or a down-referral (下转/转回)."""
    user = current_user(request)
    require_role(user, Role.CLINIC, Role.READER, Role.ADMIN)
    body = await body_of(request, ReferralIn)
    req = ReferralRequest(
        direction=body.direction,
        to_facility=body.to,
        urgency=body.urgency,
        reason=body.reason,
        case_id=body.case_id,
        in_reply_to=body.in_reply_to,
        discharge_summary=body.discharge_summary or None,
        follow_up_plan=body.follow_up_plan or None,
    )
    found = await referrals.create(request.app[POOL], user, req)
    return reply(ReferralOut.of(found), status=201)


@routes.post(
    "/api/v1/referrals/{id}/respond",
    path=RecordPath,
    body=ReferralAnswer,
    answer=ReferralOut,
    summary="Accept (接诊, with a time) or decline (with a reason)",
)
async def respond(request: web.Request) -> web.Response:
    """The receiving facility accepts (接诊, with a time) or declines (with a reason)."""
    user = current_user(request)
    body = await body_of(request, ReferralAnswer)
    found = await referrals.respond(
        request.app[POOL],
        path_id(request),
        user,
        accept=body.accept,
        appointment_at=body.appointment_at,
        reason=body.reason or None,
    )
    return reply(ReferralOut.of(found))


@routes.get(
    "/api/v1/referrals",
    query=PageQuery,
    answer=ReferralsOut,
    summary="Referrals of the caller's facility",
)
async def list_referrals(request: web.Request) -> web.Response:
    asked = query_of(request, PageQuery)
    found = await referrals.listed(
        request.app[POOL], current_user(request), limit=asked.limit, offset=asked.offset
    )
    return reply(ReferralsOut(referrals=[ReferralOut.of(r) for r in found]))


@routes.get("/api/v1/referrals/{id}", path=RecordPath, answer=ReferralOut, summary="One referral")
async def get_referral(request: web.Request) -> web.Response:
    found = await referrals.read(request.app[POOL], current_user(request), path_id(request))
    return reply(ReferralOut.of(found))


@routes.get(
    "/api/v1/stats/referrals",
    query=PeriodQuery,
    answer=ReferralStatsOut,
    summary="Referrals per facility, direction and status",
    tag="admin",
)
async def stats(request: web.Request) -> web.Response:
    """Referrals per sending facility, direction and status, for administrators."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    asked = query_of(request, PeriodQuery)
    until = asked.until or datetime.now(UTC) + timedelta(seconds=1)
    since = asked.since or until - timedelta(days=30)
    rows = await referral_stats(request.app[POOL], user.facility_id, since, until)
    return reply(
        ReferralStatsOut(since=since, until=until, referrals=[ReferralCount.of(r) for r in rows])
    )


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
