"""The reader's actions beyond claim and report, the clinic's reading request, report
addenda, PDFs and templates, under /api/v1."""

from __future__ import annotations

from aiohttp import web

from storage import channels, notifications, reports, templates
from storage.records import Priority, ReportStatus, Role
from teleradiology.core import casework
from teleradiology.core.access import require_role
from teleradiology.core.casework import CaseAction, ReportAction
from teleradiology.core.errors import NotFound
from teleradiology.core.language import N_
from teleradiology.http.api.cases import lease_of
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.notices import MessageOut
from teleradiology.http.api.models.reading import (
    AddendumIn,
    CaseOut,
    DicomSendOut,
    EscalateIn,
    NotificationOut,
    ReadingRequested,
    ReadingRequestIn,
    ReportNotificationsOut,
    ReportOut,
    ReturnIn,
    StudyPath,
    TemplateIn,
    TemplateOut,
    TemplateSaved,
    TemplatesOut,
    TemplatesQuery,
)
from teleradiology.http.context import OBJECTS, POOL, WORK_POOL, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id, path_of, query_of
from teleradiology.services import reading, report_templates
from teleradiology.services.reading import ReportDraft

_URGENCY = {"urgent": Priority.HIGH, "routine": Priority.MEDIUM, "low": Priority.LOW}

routes = Routes(tag="reading")


@routes.post(
    "/api/v1/worklist/next",
    answer=CaseOut,
    summary="Claim the most urgent unclaimed case of your pools",
)
async def claim_next(request: web.Request) -> web.Response:
    """Claim the most urgent unclaimed case of the reader's pools."""
    user = current_user(request)
    case = await reading.claim_next(request.app[POOL], user, lease=lease_of(request))
    if case is None:
        raise NotFound(N_("您的阅片组中没有待领取的病例"))
    return reply(CaseOut.of(case))


@routes.post(
    "/api/v1/cases/{id}/escalate",
    path=RecordPath,
    body=EscalateIn,
    answer=CaseOut,
    summary="Escalate a claimed case with a question (and a draft, signed as preliminary)",
)
async def escalate(request: web.Request) -> web.Response:
    """Escalate with a question; a draft in the body is signed as a preliminary report."""
    user = current_user(request)
    casework.check_role(user, CaseAction.ESCALATE)
    body = await body_of(request, EscalateIn)
    draft = None
    if body.findings is not None or body.impression is not None:
        draft = ReportDraft(
            findings=body.findings or "",
            impression=body.impression or "",
            conclusion=body.conclusion,
            status=ReportStatus.PRELIMINARY,
        )
    case = await reading.escalate(
        request.app[POOL], user, path_id(request), question=body.question, draft=draft
    )
    return reply(CaseOut.of(case))


@routes.post(
    "/api/v1/cases/{id}/return",
    path=RecordPath,
    body=ReturnIn,
    answer=CaseOut,
    summary="Return a study to the clinic for poor quality, with a coded reason",
)
async def return_to_clinic(request: web.Request) -> web.Response:
    """Return a study to its clinic for poor quality, with a coded reason."""
    user = current_user(request)
    casework.check_role(user, CaseAction.RETURN)
    body = await body_of(request, ReturnIn)
    case = await reading.return_to_clinic(
        request.app[POOL], user, path_id(request), reason=body.reason, note=body.note
    )
    return reply(CaseOut.of(case))


@routes.post(
    "/api/v1/cases/{id}/second-read",
    path=RecordPath,
    answer=CaseOut,
    status=201,
    summary="Open a second, independent read (double reading)",
)
async def second_read(request: web.Request) -> web.Response:
    """Open a second, independent read of the case (double reading)."""
    user = current_user(request)
    case = await reading.request_second_read(request.app[POOL], user, path_id(request))
    return reply(CaseOut.of(case), status=201)


@routes.post(
    "/api/v1/reports/{id}/addendum",
    path=RecordPath,
    body=AddendumIn,
    answer=ReportOut,
    status=201,
    summary="Add an addendum (a new version) to a final report you signed",
)
async def addendum(request: web.Request) -> web.Response:
    """Add an addendum to the reader's own final report: a new version, delivered and pushed
    to the clinic."""
    user = current_user(request)
    casework.check_role(user, ReportAction.ADDENDUM)
    body = await body_of(request, AddendumIn)
    saved = await reading.add_addendum(request.app[POOL], user, path_id(request), text=body.text)
    return reply(ReportOut.of(saved), status=201)


@routes.get(
    "/api/v1/reports/{id}/pdf",
    path=RecordPath,
    media={"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    summary="The printable report (PDF) in the caller's language",
    tag="clinic",
)
async def report_pdf(request: web.Request) -> web.Response:
    """The printable report (PDF) of a delivered report, in the caller's language."""
    user = current_user(request)
    report_id = path_id(request)
    data = await reading.report_pdf(
        request.app[POOL], request.app[OBJECTS], user, report_id, work=request.app[WORK_POOL]
    )
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'},
    )


@routes.get(
    "/api/v1/reports/{id}/notifications",
    path=RecordPath,
    answer=ReportNotificationsOut,
    summary="Who was told what about a report, when; its DICOM copies",
    tag="clinic",
)
async def report_notifications(request: web.Request) -> web.Response:
    """Who was told what about a report, and when (critical-result follow-up)."""
    user = current_user(request)
    pool = request.app[POOL]
    report_id = path_id(request)
    if await reports.report_for_user(pool, report_id, user) is None:
        raise NotFound(N_("找不到报告 %(id)s"), id=report_id)
    found = await notifications.of_report(pool, report_id)
    sends = await reports.dicom_sends_of_report(pool, report_id)
    messages = await channels.of_report(pool, report_id)
    return reply(
        ReportNotificationsOut(
            notifications=[NotificationOut.from_record(n) for n in found],
            dicom=[DicomSendOut.model_validate(s) for s in sends],
            messages=[MessageOut.of(m) for m in messages],
        )
    )


@routes.post(
    "/api/v1/studies/{uid}/reading-request",
    path=StudyPath,
    body=ReadingRequestIn,
    answer=ReadingRequested,
    summary="Ask for a reading: urgent or routine, with a question",
    tag="clinic",
)
async def reading_request(request: web.Request) -> web.Response:
    """The clinic asks for a reading of its study: urgent or routine, with a question."""
    user = current_user(request)
    require_role(user, Role.CLINIC)
    uid = path_of(request, StudyPath).uid
    body = await body_of(request, ReadingRequestIn)
    priority = _URGENCY[body.urgency]
    changed = await reading.request_reading(
        request.app[POOL], user, uid, priority=priority, question=body.question or None
    )
    return reply(
        ReadingRequested(study_instance_uid=uid, priority=priority, cases=[int(c) for c in changed])
    )


@routes.get(
    "/api/v1/templates",
    query=TemplatesQuery,
    answer=TemplatesOut,
    summary="Report templates per specialty and modality",
)
async def list_templates(request: web.Request) -> web.Response:
    user = current_user(request)
    asked = query_of(request, TemplatesQuery)
    found = await templates.list_templates(
        request.app[POOL],
        user.id,
        specialty=asked.specialty,
        modality=asked.modality,
        language=asked.language,
    )
    return reply(TemplatesOut(templates=[TemplateOut.from_record(t) for t in found]))


@routes.put(
    "/api/v1/templates/{id}",
    path=RecordPath,
    body=TemplateIn,
    answer=TemplateSaved,
    summary="Edit a report template for your network (an administrator of its top facility; "
    "a shared template is copied for the network, which then reads the copy; audited)",
    tag="admin",
)
async def edit_template(request: web.Request) -> web.Response:
    """Change a shared report template: an administrator of the network's top facility."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await body_of(request, TemplateIn)
    t = await report_templates.edit_template(
        request.app[POOL],
        user,
        path_id(request),
        findings=body.findings,
        impression=body.impression,
    )
    return reply(TemplateSaved(id=t.id, name=t.name, updated_at=t.updated_at))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
