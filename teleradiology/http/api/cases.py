"""The JSON API under /api/v1: worklist, cases, reports, studies, turnaround."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from storage import cases, network, patients, reports
from storage import turnaround as stats
from storage.records import (
    Case,
    Conclusion,
    Report,
    ReportStatus,
    Role,
    Study,
    TurnaroundSegment,
    User,
)
from teleradiology.core import casework
from teleradiology.core.access import require_role
from teleradiology.core.casework import CaseAction
from teleradiology.core.errors import BadRequest, Forbidden, Unauthorized
from teleradiology.core.passwords import verify_password
from teleradiology.core.words import both
from teleradiology.http.api.openapi import openapi_document
from teleradiology.http.context import POOL, SETTINGS, current_user
from teleradiology.http.params import (
    choice,
    int_param,
    iso,
    json_body,
    optional_bool,
    path_id,
    text_field,
    time_param,
)
from teleradiology.services import reading
from teleradiology.services.reading import ReportDraft

LOGIN_TOKEN_LIFETIME = timedelta(hours=12)


def case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "study_instance_uid": case.study_instance_uid,
        "facility": case.facility_code,
        "specialty": case.specialty.value,
        "priority": case.priority.value,
        "status": case.status.value,
        "deadline": iso(case.deadline),
        "created_at": iso(case.created_at),
        "claimed_by": case.claimed_by,
        "lease_expires_at": iso(case.lease_expires_at),
        "modalities": list(case.modalities),
        "patient_name": case.patient_name,
        "pool": case.pool_code,
        "question": case.question,
        "clinical_question": case.clinical_question,
        "escalated_at": iso(case.escalated_at),
        "stemi": case.stemi,
        "second_read_of": case.second_read_of,
        "return_reason": case.return_code,
    }


def report_json(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "case_id": report.case_id,
        "study_instance_uid": report.study_instance_uid,
        "status": report.status.value,
        "findings": report.findings,
        "impression": report.impression,
        "conclusion": report.conclusion.value,
        "author": report.author_name,
        "signed_at": iso(report.signed_at),
        "signature_sha256": report.signature_sha256,
        "delivered_at": iso(report.delivered_at),
        "acknowledged_at": iso(report.acknowledged_at),
        "acknowledged_by_name": report.acknowledged_name,
        "version": report.version,
        "amends_report_id": report.amends_report_id,
        "agreed": report.agreed,
        "discrepancy": report.discrepancy,
        "pdf": f"/api/v1/reports/{report.id}/pdf" if report.has_pdf else None,
        "critical_due_at": iso(report.critical_due_at),
    }


def study_json(study: Study) -> dict[str, Any]:
    return {
        "study_instance_uid": study.study_instance_uid,
        "facility": study.facility_code,
        "patient_id": study.patient_id,
        "patient_name": study.patient_name,
        "accession_number": study.accession_number,
        "study_date": study.study_date,
        "description": study.description,
        "modalities": list(study.modalities),
        "state": study.state.value,
        "priority": study.priority.value,
        "num_series": study.num_series,
        "num_instances": study.num_instances,
        "received_at": iso(study.first_received_at),
        "completed_at": iso(study.completed_at),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role.value,
        "facility_id": user.facility_id,
        "specialties": sorted(s.value for s in user.specialties),
    }


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("send 'username' and 'password'")
    pool = request.app[POOL]
    found = await network.password_hash(pool, username)
    if found is None or not verify_password(found[1], password):
        raise Unauthorized("wrong username or password")
    expires = datetime.now(UTC) + LOGIN_TOKEN_LIFETIME
    token = await network.create_token(pool, found[0], expires_at=expires)
    user = await network.user_by_username(pool, username)
    assert user is not None
    return web.json_response({"token": token, "expires_at": iso(expires), "user": user_json(user)})


async def me(request: web.Request) -> web.Response:
    return web.json_response(user_json(current_user(request)))


async def get_worklist(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.READER, Role.ADMIN)
    limit = int_param(request, "limit", 200, low=1, high=1000)
    pool = request.app[POOL]
    found = await reading.worklist(pool, user, limit=limit)
    readers = await network.pool_readers(
        pool, sorted({c.pool_facility_id for c in found}), datetime.now(UTC)
    )
    body = []
    for c in found:
        item = case_json(c)
        candidates = [
            r
            for r in readers
            if r.facility_id == c.pool_facility_id and r.specialty is c.specialty and r.on_duty
        ]
        # readers come least loaded first: the first on-duty reader of the pool is suggested
        item["suggested_reader"] = candidates[0].username if candidates else None
        body.append(item)
    return web.json_response(
        {
            "cases": body,
            "readers": [
                {
                    "username": r.username,
                    "display_name": r.display_name,
                    "specialty": r.specialty.value,
                    "on_duty": r.on_duty,
                    "open_cases": r.open_cases,
                }
                for r in readers
            ],
        }
    )


async def get_case(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    case = await reading.open_case(pool, user, path_id(request))
    body = case_json(case)
    body["reports"] = [report_json(r) for r in await reports.reports_of_case(pool, case.id)]
    body["patient_ref"] = await patients.patient_of_study(pool, case.study_id)
    body["priors"] = [
        {
            "study_instance_uid": p.study_instance_uid,
            "facility": p.facility_code,
            "study_date": p.study_date,
            "modalities": list(p.modalities),
            "description": p.description,
            "received_at": iso(p.received_at),
            "conclusion": p.conclusion,
            "impression": p.impression,
            "linked_record": p.patient_ref != body["patient_ref"],
        }
        for p in await patients.priors(pool, case.study_id, user)
    ]
    body["events"] = [
        {
            "kind": e.kind,
            "at": iso(e.at),
            "user_id": e.user_id,
            "case_id": e.case_id,
            "detail": e.detail,
        }
        for e in await cases.events_of_case(pool, case)
    ]
    return web.json_response(body)


def lease_of(request: web.Request) -> timedelta:
    """How long a claim holds before another reader may take the case."""
    return timedelta(minutes=request.app[SETTINGS].lease_minutes)


async def claim(request: web.Request) -> web.Response:
    user = current_user(request)
    case = await reading.claim(request.app[POOL], user, path_id(request), lease=lease_of(request))
    return web.json_response(case_json(case))


async def release(request: web.Request) -> web.Response:
    user = current_user(request)
    case = await reading.release(request.app[POOL], user, path_id(request))
    return web.json_response(case_json(case))


def _template_id(body: dict[str, Any]) -> int | None:
    template_id = body.get("template_id")
    if template_id is None:
        return None
    if isinstance(template_id, bool) or not isinstance(template_id, int):
        raise BadRequest("'template_id' must be a template id from /api/v1/templates")
    return template_id


async def report(request: web.Request) -> web.Response:
    """Sign a report: its text as sent, or (for what is left out) the template's named by
    ``template_id``."""
    user = current_user(request)
    casework.check_role(user, CaseAction.REPORT)
    case_id = path_id(request)
    body = await json_body(request)
    template_id = _template_id(body)
    written = template_id is None  # without a template, the reader writes both
    draft = ReportDraft(
        findings=text_field(body, "findings", required=written),
        impression=text_field(body, "impression", required=written),
        conclusion=choice(body, "conclusion", Conclusion),
        status=choice(body, "status", ReportStatus, ReportStatus.FINAL),
        template_id=template_id,
        agreed=optional_bool(body, "agreed"),
        discrepancy=text_field(body, "discrepancy", required=False) or None,
    )
    saved = await reading.submit_report(request.app[POOL], user, case_id, draft)
    return web.json_response(report_json(saved), status=201)


async def list_reports(request: web.Request) -> web.Response:
    user = current_user(request)
    flag = request.query.get("acknowledged")
    unacknowledged = None if flag is None else flag.lower() in ("false", "0", "no")
    limit = int_param(request, "limit", 100, low=1, high=1000)
    offset = int_param(request, "offset", 0, low=0, high=10**9)
    found = await reading.inbox(
        request.app[POOL], user, unacknowledged=unacknowledged, limit=limit, offset=offset
    )
    return web.json_response({"reports": [report_json(r) for r in found]})


async def get_report(request: web.Request) -> web.Response:
    user = current_user(request)
    found = await reading.open_report(request.app[POOL], user, path_id(request))
    return web.json_response(report_json(found))


async def acknowledge(request: web.Request) -> web.Response:
    user = current_user(request)
    casework.check_role(user, casework.ReportAction.ACKNOWLEDGE)
    body = await json_body(request)
    name = text_field(body, "name", required=False, max_len=64).strip() or None
    found = await reading.acknowledge(request.app[POOL], user, path_id(request), name=name)
    return web.json_response(report_json(found))


async def list_studies(request: web.Request) -> web.Response:
    user = current_user(request)
    limit = int_param(request, "limit", 100, low=1, high=1000)
    offset = int_param(request, "offset", 0, low=0, high=10**9)
    found = await reading.studies(
        request.app[POOL],
        user,
        study_uid=request.query.get("study_instance_uid"),
        patient_id=request.query.get("patient_id"),
        limit=limit,
        offset=offset,
    )
    return web.json_response({"studies": [study_json(s) for s in found]})


async def turnaround_data(request: web.Request) -> dict[str, Any]:
    """Received-to-final-report turnaround per sending facility in the caller's network,
    and each workflow segment, as the JSON and CSV answers share it."""
    user = current_user(request)
    if user.role is Role.READER:
        raise Forbidden("turnaround statistics are for administrators and clinics")
    now = datetime.now(UTC)
    until = time_param(request, "until", now + timedelta(seconds=1))
    since = time_param(request, "since", until - timedelta(days=30))
    if since >= until:
        raise BadRequest("'since' must be before 'until'")
    case_id = int_param(request, "case_id", 0, low=0, high=2**62) or None
    pool = request.app[POOL]
    rows = await stats.turnaround(pool, user.facility_id, since, until)
    segments = await stats.segments(pool, user.facility_id, since, until, case_id=case_id)
    return {
        "since": iso(since),
        "until": iso(until),
        "segment": TurnaroundSegment.RECEIVED_TO_FINAL.value,
        "facilities": [
            {
                "facility": r.facility_code,
                "name": r.facility_name,
                "reports": r.reports,
                "median_minutes": round(r.median_s / 60, 2),
                "p90_minutes": round(r.p90_s / 60, 2),
                "mean_minutes": round(r.mean_s / 60, 2),
                "max_minutes": round(r.max_s / 60, 2),
            }
            for r in rows
        ],
        "segments": {
            s.segment.value: {
                "cases": s.cases,
                "median_minutes": round(s.median_s / 60, 3),
                "p90_minutes": round(s.p90_s / 60, 3),
                "max_minutes": round(s.max_s / 60, 3),
            }
            for s in segments
        },
    }


async def turnaround(request: web.Request) -> web.Response:
    """Received-to-final-report turnaround per sending facility in the caller's network."""
    return web.json_response(await turnaround_data(request))


TURNAROUND_CSV_COLUMNS = (
    "row",
    "facility",
    "name",
    "segment",
    "segment_name",
    "count",
    "median_minutes",
    "p90_minutes",
    "mean_minutes",
    "max_minutes",
    "since",
    "until",
)


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ would be read as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else str(value)


async def turnaround_csv(request: web.Request) -> web.Response:
    """The turnaround statistics as CSV (UTF-8 with a byte order mark, for spreadsheets):
    one row per sending facility (received to final), then one per workflow segment, each
    segment named in words as the dashboard names it."""
    body = await turnaround_data(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TURNAROUND_CSV_COLUMNS)
    since, until = body["since"], body["until"]
    for f in body["facilities"]:
        writer.writerow(
            _csv_cell(v)
            for v in (
                "facility",
                f["facility"],
                f["name"],
                body["segment"],
                both(TurnaroundSegment(body["segment"])),
                f["reports"],
                f["median_minutes"],
                f["p90_minutes"],
                f["mean_minutes"],
                f["max_minutes"],
                since,
                until,
            )
        )
    for name, s in body["segments"].items():
        writer.writerow(
            _csv_cell(v)
            for v in (
                "segment",
                "",
                "",
                name,
                both(TurnaroundSegment(name)),
                s["cases"],
                s["median_minutes"],
                s["p90_minutes"],
                "",
                s["max_minutes"],
                since,
                until,
            )
        )
    day = datetime.now(UTC).strftime("%Y%m%d")
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="turnaround-{day}.csv"',
            "Cache-Control": "no-store",
        },
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/openapi.json", openapi)
    r.add_post("/api/v1/login", login)
    r.add_get("/api/v1/me", me)
    r.add_get("/api/v1/worklist", get_worklist)
    r.add_get("/api/v1/cases/{id}", get_case)
    r.add_post("/api/v1/cases/{id}/claim", claim)
    r.add_post("/api/v1/cases/{id}/release", release)
    r.add_post("/api/v1/cases/{id}/report", report)
    r.add_get("/api/v1/reports", list_reports)
    r.add_get("/api/v1/reports/{id}", get_report)
    r.add_post("/api/v1/reports/{id}/acknowledge", acknowledge)
    r.add_get("/api/v1/studies", list_studies)
    r.add_get("/api/v1/stats/turnaround", turnaround)
    r.add_get("/api/v1/stats/turnaround.csv", turnaround_csv)
