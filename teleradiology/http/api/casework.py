"""The reader's actions beyond claim and report, the clinic's reading request, report
addenda, PDFs and templates, under /api/v1."""

from __future__ import annotations

from aiohttp import web

from storage import notifications, reports, templates
from storage.records import Conclusion, Priority, ReportStatus, ReturnReason, Role
from teleradiology.core import casework
from teleradiology.core.access import require_role
from teleradiology.core.casework import CaseAction, ReportAction
from teleradiology.core.errors import BadRequest, NotFound
from teleradiology.http.api.cases import case_json, lease_of, report_json
from teleradiology.http.context import OBJECTS, POOL, current_user
from teleradiology.http.params import choice, iso, json_body, path_id, text_field
from teleradiology.services import reading
from teleradiology.services.reading import ReportDraft

_URGENCY = {"urgent": Priority.HIGH, "routine": Priority.MEDIUM, "low": Priority.LOW}


async def claim_next(request: web.Request) -> web.Response:
    """Claim the most urgent unclaimed case of the reader's pools."""
    user = current_user(request)
    case = await reading.claim_next(request.app[POOL], user, lease=lease_of(request))
    if case is None:
        raise NotFound("no unclaimed case in your pools")
    return web.json_response(case_json(case))


async def escalate(request: web.Request) -> web.Response:
    """Escalate with a question; a draft in the body is signed as a preliminary report."""
    user = current_user(request)
    casework.check_role(user, CaseAction.ESCALATE)
    body = await json_body(request)
    question = text_field(body, "question", max_len=2000)
    draft = None
    if body.get("findings") is not None or body.get("impression") is not None:
        draft = ReportDraft(
            findings=text_field(body, "findings", required=False),
            impression=text_field(body, "impression", required=False),
            conclusion=choice(body, "conclusion", Conclusion, Conclusion.ABNORMAL),
            status=ReportStatus.PRELIMINARY,
        )
    case = await reading.escalate(
        request.app[POOL], user, path_id(request), question=question, draft=draft
    )
    return web.json_response(case_json(case))


async def return_to_clinic(request: web.Request) -> web.Response:
    """Return a study to its clinic for poor quality, with a coded reason."""
    user = current_user(request)
    casework.check_role(user, CaseAction.RETURN)
    body = await json_body(request)
    reason = choice(body, "reason", ReturnReason)
    note = text_field(body, "note", required=False, max_len=2000)
    case = await reading.return_to_clinic(
        request.app[POOL], user, path_id(request), reason=reason, note=note
    )
    return web.json_response(case_json(case))


async def second_read(request: web.Request) -> web.Response:
    """Open a second, independent read of the case (double reading)."""
    user = current_user(request)
    case = await reading.request_second_read(request.app[POOL], user, path_id(request))
    return web.json_response(case_json(case), status=201)


async def addendum(request: web.Request) -> web.Response:
    """Add an addendum to the reader's own final report: a new version, delivered and pushed
    to the clinic."""
    user = current_user(request)
    casework.check_role(user, ReportAction.ADDENDUM)
    body = await json_body(request)
    text = text_field(body, "text")
    saved = await reading.add_addendum(request.app[POOL], user, path_id(request), text=text)
    return web.json_response(report_json(saved), status=201)


async def report_pdf(request: web.Request) -> web.Response:
    """The printable report (zh-CN PDF) of a delivered report."""
    user = current_user(request)
    report_id = path_id(request)
    data = await reading.report_pdf(request.app[POOL], request.app[OBJECTS], user, report_id)
    return web.Response(
        body=data,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'},
    )


async def report_notifications(request: web.Request) -> web.Response:
    """Who was told what about a report, and when (critical-result follow-up)."""
    user = current_user(request)
    pool = request.app[POOL]
    report_id = path_id(request)
    if await reports.report_for_user(pool, report_id, user) is None:
        raise NotFound(f"report {report_id} not found")
    found = await notifications.of_report(pool, report_id)
    sends = await reports.dicom_sends_of_report(pool, report_id)
    return web.json_response(
        {
            "notifications": [
                {
                    "id": n.id,
                    "at": iso(n.at),
                    "kind": n.kind,
                    "facility_id": n.facility_id,
                    "audience": n.audience.value,
                    "user_id": n.user_id,
                    "detail": n.detail,
                }
                for n in found
            ],
            "dicom": [
                {**s, "sent_at": iso(s["sent_at"])}  # type: ignore[arg-type]
                for s in sends
            ],
        }
    )


async def reading_request(request: web.Request) -> web.Response:
    """The clinic asks for a reading of its study: urgent or routine, with a question."""
    user = current_user(request)
    require_role(user, Role.CLINIC)
    uid = request.match_info["uid"]
    body = await json_body(request)
    urgency = body.get("urgency", "routine")
    if urgency not in _URGENCY:
        raise BadRequest("'urgency' must be one of: urgent, routine, low")
    question = text_field(body, "question", required=False, max_len=2000) or None
    changed = await reading.request_reading(
        request.app[POOL], user, uid, priority=_URGENCY[urgency], question=question
    )
    return web.json_response(
        {"study_instance_uid": uid, "priority": _URGENCY[urgency].value, "cases": changed}
    )


async def list_templates(request: web.Request) -> web.Response:
    current_user(request)
    found = await templates.list_templates(
        request.app[POOL],
        specialty=request.query.get("specialty"),
        modality=request.query.get("modality"),
        language=request.query.get("language"),
    )
    return web.json_response(
        {
            "templates": [
                {
                    "id": t.id,
                    "specialty": t.specialty.value,
                    "modality": t.modality,
                    "name": t.name,
                    "language": t.language,
                    "findings": t.findings,
                    "impression": t.impression,
                    "updated_at": iso(t.updated_at),
                }
                for t in found
            ]
        }
    )


async def edit_template(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await json_body(request)
    t = await templates.update_template(
        request.app[POOL],
        path_id(request),
        findings=text_field(body, "findings"),
        impression=text_field(body, "impression"),
        user_id=user.id,
    )
    return web.json_response({"id": t.id, "name": t.name, "updated_at": iso(t.updated_at)})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/worklist/next", claim_next)
    r.add_post("/api/v1/cases/{id}/escalate", escalate)
    r.add_post("/api/v1/cases/{id}/return", return_to_clinic)
    r.add_post("/api/v1/cases/{id}/second-read", second_read)
    r.add_post("/api/v1/reports/{id}/addendum", addendum)
    r.add_get("/api/v1/reports/{id}/pdf", report_pdf)
    r.add_get("/api/v1/reports/{id}/notifications", report_notifications)
    r.add_post("/api/v1/studies/{uid}/reading-request", reading_request)
    r.add_get("/api/v1/templates", list_templates)
    r.add_put("/api/v1/templates/{id}", edit_template)
