"""The JSON API under /api/v1: worklist, cases, reports, studies, turnaround."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web

from storage import audit, cases, index, network
from storage.cases import ReportDraft
from storage.records import Case, Conclusion, Report, ReportStatus, Role, Study, User
from teleradiology.auth import require_role, verify_password
from teleradiology.context import POOL, SETTINGS, current_user
from teleradiology.errors import BadRequest, Forbidden, NotFound, Unauthorized
from teleradiology.openapi import openapi_document

LOGIN_TOKEN_LIFETIME = timedelta(hours=12)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "study_instance_uid": case.study_instance_uid,
        "facility": case.facility_code,
        "specialty": case.specialty.value,
        "priority": case.priority.value,
        "status": case.status.value,
        "deadline": _iso(case.deadline),
        "created_at": _iso(case.created_at),
        "claimed_by": case.claimed_by,
        "lease_expires_at": _iso(case.lease_expires_at),
        "modalities": list(case.modalities),
        "patient_name": case.patient_name,
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
        "signed_at": _iso(report.signed_at),
        "signature_sha256": report.signature_sha256,
        "delivered_at": _iso(report.delivered_at),
        "acknowledged_at": _iso(report.acknowledged_at),
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
        "received_at": _iso(study.first_received_at),
        "completed_at": _iso(study.completed_at),
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


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _int_param(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def _path_id(request: web.Request) -> int:
    text = request.match_info["id"]
    try:
        value = int(text)
    except ValueError:
        raise NotFound(f"no such record: {text!r}") from None
    if value <= 0 or value > 2**62:
        raise NotFound(f"no such record: {text!r}")
    return value


def _text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"'{name}' is required and must be text")
    if len(value) > 20000:
        raise BadRequest(f"'{name}' is longer than 20000 characters")
    return value


_E = TypeVar("_E", Conclusion, ReportStatus)


def _choice(body: dict[str, Any], name: str, kind: type[_E], default: _E | None = None) -> _E:
    value = body.get(name)
    if value is None and default is not None:
        return default
    allowed = ", ".join(e.value for e in kind)
    try:
        return kind(str(value))
    except ValueError:
        raise BadRequest(f"'{name}' must be one of: {allowed}") from None


async def login(request: web.Request) -> web.Response:
    body = await _json_body(request)
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
    return web.json_response({"token": token, "expires_at": _iso(expires), "user": user_json(user)})


async def me(request: web.Request) -> web.Response:
    return web.json_response(user_json(current_user(request)))


async def get_worklist(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.READER, Role.ADMIN)
    limit = _int_param(request, "limit", 200, low=1, high=1000)
    found = await cases.worklist(request.app[POOL], user, limit=limit)
    return web.json_response({"cases": [case_json(c) for c in found]})


async def _case(request: web.Request, user: User) -> Case:
    case = await cases.case_for_user(request.app[POOL], _path_id(request), user)
    if case is None:
        raise NotFound(f"case {request.match_info['id']} not found")
    return case


async def get_case(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    case = await _case(request, user)
    await audit.record(pool, user_id=user.id, action="read", object_type="case", object_id=case.id)
    body = case_json(case)
    body["reports"] = [report_json(r) for r in await cases.reports_of_case(pool, case.id)]
    body["events"] = [
        {"kind": e.kind, "at": _iso(e.at), "user_id": e.user_id, "detail": e.detail}
        for e in await cases.events_of_case(pool, case)
    ]
    return web.json_response(body)


async def claim(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.READER)
    lease = timedelta(minutes=request.app[SETTINGS].lease_minutes)
    case = await cases.claim_case(request.app[POOL], _path_id(request), user, lease=lease)
    return web.json_response(case_json(case))


async def release(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.READER)
    case = await cases.release_case(request.app[POOL], _path_id(request), user)
    return web.json_response(case_json(case))


def sign(case: Case, user: User, draft_fields: dict[str, str], signed_at: datetime) -> str:
    """A digest binding the report's content to its case, author and time."""
    content = {
        "case_id": case.id,
        "study_instance_uid": case.study_instance_uid,
        "author": user.username,
        "signed_at": _iso(signed_at),
        **draft_fields,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def report(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.READER)
    pool = request.app[POOL]
    case = await _case(request, user)
    body = await _json_body(request)
    findings = _text_field(body, "findings")
    impression = _text_field(body, "impression")
    conclusion = _choice(body, "conclusion", Conclusion)
    status = _choice(body, "status", ReportStatus, ReportStatus.FINAL)
    signed_at = datetime.now(UTC)
    fields = {
        "findings": findings,
        "impression": impression,
        "conclusion": conclusion.value,
        "status": status.value,
    }
    draft = ReportDraft(
        findings=findings,
        impression=impression,
        conclusion=conclusion,
        status=status,
        signed_at=signed_at,
        signature_sha256=sign(case, user, fields, signed_at),
    )
    saved = await cases.submit_report(pool, case.id, user, draft)
    return web.json_response(report_json(saved), status=201)


async def list_reports(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    flag = request.query.get("acknowledged")
    unacknowledged = None if flag is None else flag.lower() in ("false", "0", "no")
    limit = _int_param(request, "limit", 100, low=1, high=1000)
    offset = _int_param(request, "offset", 0, low=0, high=10**9)
    found = await cases.inbox(pool, user, unacknowledged=unacknowledged, limit=limit, offset=offset)
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="report",
        object_id="inbox",
        detail={"count": len(found)},
    )
    return web.json_response({"reports": [report_json(r) for r in found]})


async def get_report(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    found = await cases.report_for_user(pool, _path_id(request), user)
    if found is None or (user.role is Role.CLINIC and found.delivered_at is None):
        raise NotFound(f"report {request.match_info['id']} not found")
    await audit.record(
        pool, user_id=user.id, action="read", object_type="report", object_id=found.id
    )
    return web.json_response(report_json(found))


async def acknowledge(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.CLINIC)
    found = await cases.acknowledge_report(request.app[POOL], _path_id(request), user)
    return web.json_response(report_json(found))


async def list_studies(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    limit = _int_param(request, "limit", 100, low=1, high=1000)
    offset = _int_param(request, "offset", 0, low=0, high=10**9)
    found = await index.studies_for_user(
        pool,
        user.id,
        study_uid=request.query.get("study_instance_uid"),
        patient_id=request.query.get("patient_id"),
        limit=limit,
        offset=offset,
    )
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="study",
        object_id="query",
        detail={"count": len(found)},
    )
    return web.json_response({"studies": [study_json(s) for s in found]})


def _time_param(request: web.Request, name: str, default: datetime) -> datetime:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def turnaround(request: web.Request) -> web.Response:
    """Received-to-final-report turnaround per sending facility in the caller's network."""
    user = current_user(request)
    if user.role is Role.READER:
        raise Forbidden("turnaround statistics are for administrators and clinics")
    now = datetime.now(UTC)
    until = _time_param(request, "until", now + timedelta(seconds=1))
    since = _time_param(request, "since", until - timedelta(days=30))
    if since >= until:
        raise BadRequest("'since' must be before 'until'")
    rows = await cases.turnaround(request.app[POOL], user.facility_id, since, until)
    return web.json_response(
        {
            "since": _iso(since),
            "until": _iso(until),
            "segment": "received_to_reported",
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
        }
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
