"""Two-way referral (双向转诊) under /api/v1/referrals, and its statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from storage.records import Role
from storage.referrals import referral_stats
from teleradiology.core.access import require_role
from teleradiology.core.referrals import (
    Answer,
    ReferralRequest,
    ReturnForm,
    local_bounds,
    period_of,
)
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.referrals import (
    AttachmentOut,
    AttachmentsOut,
    DocumentPath,
    ReferralAnswer,
    ReferralArrivalIn,
    ReferralCount,
    ReferralDetailOut,
    ReferralIn,
    ReferralOut,
    ReferralReturnIn,
    ReferralsOut,
    ReferralStatsOut,
    StatisticsOut,
    StatisticsQuery,
    StatisticsRowOut,
)
from teleradiology.http.context import POOL, current_user, user_zone
from teleradiology.http.models import PageQuery, PeriodQuery, RecordPath
from teleradiology.http.params import body_of, path_id, path_of, query_of
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
        patient_id=body.patient_id,
        preliminary_diagnosis=body.preliminary_diagnosis or None,
        history=body.history or None,
        findings=body.findings or None,
        studies=tuple(body.studies),
        reports=tuple(body.reports),
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
    """The receiving facility accepts (接诊单: a time, department, doctor, green channel) or
    declines (with a reason)."""
    body = await body_of(request, ReferralAnswer)
    answer = Answer(
        accept=body.accept,
        appointment_at=body.appointment_at,
        reason=body.reason or None,
        department=body.department or None,
        doctor=body.doctor or None,
        green_channel=body.green_channel,
    )
    found = await referrals.respond(
        request.app[POOL], path_id(request), current_user(request), answer
    )
    return reply(ReferralOut.of(found))


@routes.post(
    "/api/v1/referrals/{id}/arrive",
    path=RecordPath,
    body=ReferralArrivalIn,
    answer=ReferralOut,
    summary="Record that the referred patient arrived (到诊)",
)
async def arrive(request: web.Request) -> web.Response:
    """The receiving facility records the patient's arrival (到诊), by default now."""
    body = await body_of(request, ReferralArrivalIn)
    found = await referrals.arrive(
        request.app[POOL], path_id(request), current_user(request), at=body.arrived_at
    )
    return reply(ReferralOut.of(found))


@routes.post(
    "/api/v1/referrals/{id}/return",
    path=RecordPath,
    body=ReferralReturnIn,
    answer=ReferralOut,
    summary="Return the patient down to the referring clinic (转回单)",
)
async def return_down(request: web.Request) -> web.Response:
    """The receiving hospital returns the patient down with the return form (转回单)."""
    body = await body_of(request, ReferralReturnIn)
    form = ReturnForm(
        kind=body.kind,
        diagnosis=body.diagnosis,
        orders=body.orders or None,
        follow_up=body.follow_up,
    )
    found = await referrals.return_down(
        request.app[POOL], path_id(request), current_user(request), form
    )
    return reply(ReferralOut.of(found))


@routes.get(
    "/api/v1/referrals/{id}/documents/{kind}",
    path=DocumentPath,
    media={"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    summary="A referral's document as PDF: form (转诊单), answer (接诊单), return (转回单)",
)
async def document(request: web.Request) -> web.Response:
    """One printable document of the referral, as a zh-CN PDF."""
    asked = path_of(request, DocumentPath)
    pdf = await referrals.document_pdf(
        request.app[POOL], current_user(request), asked.id, asked.kind
    )
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="referral-{asked.id}-{asked.kind.value}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@routes.get(
    "/api/v1/referrals/statistics",
    query=StatisticsQuery,
    answer=StatisticsOut,
    summary="Referrals up and down, accepted, arrived (到位率), returned, per facility and month",
    tag="admin",
)
async def statistics(request: web.Request) -> web.Response:
    """The administrator's network: referral steps per facility and month, and the total."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    asked = query_of(request, StatisticsQuery)
    zone = await user_zone(request, user)
    first, last = period_of(asked.from_, asked.to, datetime.now(zone).date())
    rows, total = await referrals.statistics(
        request.app[POOL], user, *local_bounds(first, last, zone), zone.key
    )
    return reply(
        StatisticsOut(
            since=first,
            until=last,
            time_zone=zone.key,
            rows=[StatisticsRowOut.of(r) for r in rows],
            total=StatisticsRowOut.of(total),
        )
    )


@routes.get(
    "/api/v1/patients/{id}/referral-results",
    path=RecordPath,
    answer=AttachmentsOut,
    summary="The patient's studies, ECGs and reports a referral form may attach",
)
async def attachable(request: web.Request) -> web.Response:
    found = await referrals.attachable(request.app[POOL], current_user(request), path_id(request))
    return reply(AttachmentsOut(results=[AttachmentOut.of(a) for a in found]))


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


@routes.get(
    "/api/v1/referrals/{id}",
    path=RecordPath,
    answer=ReferralDetailOut,
    summary="One referral, with the results attached and its documents",
)
async def get_referral(request: web.Request) -> web.Response:
    found = await referrals.detail(request.app[POOL], current_user(request), path_id(request))
    r = found.referral
    return reply(
        ReferralDetailOut(
            **ReferralOut.of(r).model_dump(),
            attachments=[AttachmentOut.of(a) for a in found.attachments],
            documents={k: f"/api/v1/referrals/{r.id}/documents/{k.value}" for k in found.documents},
        )
    )


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
