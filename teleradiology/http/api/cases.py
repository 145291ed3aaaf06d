"""The JSON API under /api/v1: sign-in, worklist, cases, reports, studies, turnaround."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from storage import index, network, patients, reports
from storage import turnaround as stats
from storage.records import Role, TokenKind, TurnaroundSegment
from teleradiology.core import casework
from teleradiology.core.access import require_role
from teleradiology.core.casework import CaseAction
from teleradiology.core.errors import BadRequest, Forbidden, Unauthorized
from teleradiology.core.language import N_, Language, word
from teleradiology.http.api.endpoints import PROBLEMS, Routes, reply
from teleradiology.http.api.models.reading import (
    AcknowledgeIn,
    CaseDetailOut,
    CaseOut,
    FacilityTurnaround,
    HeldDecisionOut,
    HeldInstanceOut,
    HeldOut,
    LoginIn,
    LoginOut,
    ReaderOut,
    ReportIn,
    ReportOut,
    ReportsOut,
    ReportsQuery,
    SegmentTurnaround,
    StudiesOut,
    StudiesQuery,
    StudyOut,
    TurnaroundOut,
    TurnaroundQuery,
    UserOut,
    WorklistCase,
    WorklistOut,
    WorklistQuery,
)
from teleradiology.http.context import OBJECTS, POOL, SETTINGS, SIGNIN_THROTTLE, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id, query_of
from teleradiology.services import holds, orders, reading, signin
from teleradiology.services.reading import ReportDraft

LOGIN_TOKEN_LIFETIME = timedelta(hours=12)

routes = Routes(tag="reading")


@routes.post(
    "/api/v1/login",
    body=LoginIn,
    answer=LoginOut,
    summary="Sign in; returns a bearer token (429: too many wrong passwords, wait and retry)",
    tag="auth",
    public=True,
    problems=(*PROBLEMS, 429),
)
async def login(request: web.Request) -> web.Response:
    body = await body_of(request, LoginIn)
    pool = request.app[POOL]
    user_id = await signin.check_credentials(
        pool, request.app[SIGNIN_THROTTLE], body.username, body.password, address=request.remote
    )
    if user_id is None:
        raise Unauthorized(N_("用户名或密码错误"))
    expires = datetime.now(UTC) + LOGIN_TOKEN_LIFETIME
    token = await network.create_token(pool, user_id, expires_at=expires, kind=TokenKind.SIGNIN)
    user = await network.user_by_username(pool, body.username)
    assert user is not None
    return reply(LoginOut(token=token, expires_at=expires, user=UserOut.of(user)))


@routes.get("/api/v1/me", answer=UserOut, summary="The signed-in user", tag="auth")
async def me(request: web.Request) -> web.Response:
    return reply(UserOut.of(current_user(request)))


@routes.get(
    "/api/v1/worklist",
    query=WorklistQuery,
    answer=WorklistOut,
    summary="Open cases of the reader's pools, most urgent first",
)
async def get_worklist(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.READER, Role.ADMIN)
    asked = query_of(request, WorklistQuery)
    pool = request.app[POOL]
    found = await reading.worklist(pool, user, limit=asked.limit)
    readers = await network.pool_readers(
        pool, sorted({c.pool_facility_id for c in found}), datetime.now(UTC)
    )
    return reply(
        WorklistOut(
            cases=[WorklistCase.listed(c, readers) for c in found],
            readers=[ReaderOut.from_record(r) for r in readers],
        )
    )


@routes.get(
    "/api/v1/cases/{id}",
    path=RecordPath,
    answer=CaseDetailOut,
    summary="One case with its reports and events",
)
async def get_case(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    case = await reading.open_case(pool, user, path_id(request))
    patient_ref = await patients.patient_of_study(pool, case.study_id)
    return reply(
        CaseDetailOut.detailed(
            case,
            reports=await reports.reports_of_case(pool, case.id, user),
            patient_ref=patient_ref,
            priors=await patients.priors(pool, case.study_id, user),
            events=await reading.case_events(pool, user, case),
            held=len(await index.held_of_case(pool, case.id)),
            steps=await orders.performed_steps(pool, case),
        )
    )


def lease_of(request: web.Request) -> timedelta:
    """How long a claim holds before another reader may take the case."""
    return timedelta(minutes=request.app[SETTINGS].lease_minutes)


@routes.post(
    "/api/v1/cases/{id}/claim",
    path=RecordPath,
    answer=CaseOut,
    summary="Claim (or renew the lease on) a case",
)
async def claim(request: web.Request) -> web.Response:
    user = current_user(request)
    case = await reading.claim(request.app[POOL], user, path_id(request), lease=lease_of(request))
    return reply(CaseOut.of(case))


@routes.post(
    "/api/v1/cases/{id}/release",
    path=RecordPath,
    answer=CaseOut,
    summary="Give a claimed case back to its pool",
)
async def release(request: web.Request) -> web.Response:
    user = current_user(request)
    case = await reading.release(request.app[POOL], user, path_id(request))
    return reply(CaseOut.of(case))


@routes.get(
    "/api/v1/cases/{id}/held",
    path=RecordPath,
    answer=HeldOut,
    summary="Instances sent by C-STORE while the case was claimed, held for the reader",
)
async def held(request: web.Request) -> web.Response:
    user = current_user(request)
    found = await holds.held_for_case(request.app[POOL], user, path_id(request))
    return reply(
        HeldOut(case_id=path_id(request), instances=[HeldInstanceOut.of(h) for h in found])
    )


async def _decide(request: web.Request, decision: holds.Decision) -> web.Response:
    user = current_user(request)
    case_id = path_id(request)
    count = await holds.decide(request.app[POOL], request.app[OBJECTS], user, case_id, decision)
    return reply(HeldDecisionOut(case_id=case_id, decision=decision.value, count=count))


@routes.post(
    "/api/v1/cases/{id}/held/let-in",
    path=RecordPath,
    answer=HeldDecisionOut,
    summary="Add the held instances to the study (the reader holding the case, or an admin)",
)
async def let_in_held(request: web.Request) -> web.Response:
    return await _decide(request, holds.Decision.LET_IN)


@routes.post(
    "/api/v1/cases/{id}/held/discard",
    path=RecordPath,
    answer=HeldDecisionOut,
    summary="Discard the held instances (the reader holding the case, or an admin)",
)
async def discard_held(request: web.Request) -> web.Response:
    return await _decide(request, holds.Decision.DISCARD)


@routes.post(
    "/api/v1/cases/{id}/report",
    path=RecordPath,
    body=ReportIn,
    answer=ReportOut,
    status=201,
    summary="Sign a report on a claimed case",
)
async def report(request: web.Request) -> web.Response:
    """Sign a report: its text as sent, or (for what is left out) the template's named by
    ``template_id``."""
    user = current_user(request)
    casework.check_role(user, CaseAction.REPORT)
    case_id = path_id(request)
    body = await body_of(request, ReportIn)
    draft = ReportDraft(
        findings=body.findings or "",
        impression=body.impression or "",
        conclusion=body.conclusion,
        status=body.status,
        template_id=body.template_id,
        agreed=body.agreed,
        discrepancy=body.discrepancy or None,
    )
    saved = await reading.submit_report(request.app[POOL], user, case_id, draft)
    return reply(ReportOut.of(saved), status=201)


@routes.get(
    "/api/v1/reports",
    query=ReportsQuery,
    answer=ReportsOut,
    summary="The clinic's report inbox",
    tag="clinic",
)
async def list_reports(request: web.Request) -> web.Response:
    user = current_user(request)
    asked = query_of(request, ReportsQuery)
    found = await reading.inbox(
        request.app[POOL],
        user,
        unacknowledged=asked.unacknowledged,
        limit=asked.limit,
        offset=asked.offset,
    )
    return reply(ReportsOut(reports=[ReportOut.of(r) for r in found]))


@routes.get(
    "/api/v1/reports/{id}",
    path=RecordPath,
    answer=ReportOut,
    summary="One delivered report",
    tag="clinic",
)
async def get_report(request: web.Request) -> web.Response:
    user = current_user(request)
    found = await reading.open_report(request.app[POOL], user, path_id(request))
    return reply(ReportOut.of(found))


@routes.post(
    "/api/v1/reports/{id}/acknowledge",
    path=RecordPath,
    body=AcknowledgeIn,
    answer=ReportOut,
    summary="The clinic confirms it received the report (a critical result: by name, with "
    "the read-back)",
    tag="clinic",
)
async def acknowledge(request: web.Request) -> web.Response:
    user = current_user(request)
    casework.check_role(user, casework.ReportAction.ACKNOWLEDGE)
    body = await body_of(request, AcknowledgeIn)
    name = (body.name or "").strip() or None
    read_back = (body.read_back or "").strip() or None
    found = await reading.acknowledge(
        request.app[POOL], user, path_id(request), name=name, read_back=read_back
    )
    return reply(ReportOut.of(found))


@routes.get(
    "/api/v1/studies",
    query=StudiesQuery,
    answer=StudiesOut,
    summary="Studies in the caller's scope",
    tag="clinic",
)
async def list_studies(request: web.Request) -> web.Response:
    user = current_user(request)
    asked = query_of(request, StudiesQuery)
    found = await reading.studies(
        request.app[POOL],
        user,
        study_uid=asked.study_instance_uid,
        patient_id=asked.patient_id,
        limit=asked.limit,
        offset=asked.offset,
    )
    return reply(StudiesOut(studies=[StudyOut.of(s) for s in found]))


def turnaround_period(asked: TurnaroundQuery) -> tuple[datetime, datetime]:
    """The period the turnaround figures cover: by default the last 30 days.

    Raises
    ------
    BadRequest
        ``since`` is not before ``until``.
    """
    until = asked.until or datetime.now(UTC) + timedelta(seconds=1)
    since = asked.since or until - timedelta(days=30)
    if since >= until:
        raise BadRequest(N_("'since' 须早于 'until'"))
    return since, until


async def turnaround_of(
    request: web.Request, period: tuple[datetime, datetime] | None = None
) -> TurnaroundOut:
    """Received-to-final-report turnaround per sending facility in the caller's network,
    and each workflow segment, as the JSON and CSV answers share it (over ``period`` when
    the caller worked it out already)."""
    user = current_user(request)
    if user.role is Role.READER:
        raise Forbidden(N_("周转统计供管理员和诊所使用"))
    asked = query_of(request, TurnaroundQuery)
    since, until = period or turnaround_period(asked)
    pool = request.app[POOL]
    if asked.case_id:
        rows, segments = await asyncio.gather(
            stats.turnaround(pool, user.facility_id, since, until),
            stats.segments(pool, user.facility_id, since, until, case_id=asked.case_id),
        )
    else:  # the same cases: one read for both tables
        rows, segments = await stats.tables(pool, user.facility_id, since, until)
    return TurnaroundOut(
        since=since,
        until=until,
        segment=TurnaroundSegment.RECEIVED_TO_FINAL.value,
        facilities=[FacilityTurnaround.of(r) for r in rows],
        segments={s.segment.value: SegmentTurnaround.of(s) for s in segments},
    )


async def turnaround_data(
    request: web.Request, period: tuple[datetime, datetime] | None = None
) -> dict[str, Any]:
    """The turnaround answer as JSON values (the dashboard reads it)."""
    return (await turnaround_of(request, period)).model_dump(mode="json")


@routes.get(
    "/api/v1/stats/turnaround",
    query=TurnaroundQuery,
    answer=TurnaroundOut,
    summary="Turnaround per sending facility and per segment (received, complete, routed, "
    "claimed, preliminary, escalated, final, delivered, acknowledged); ?case_id= for one case",
    tag="admin",
)
async def turnaround(request: web.Request) -> web.Response:
    """Received-to-final-report turnaround per sending facility in the caller's network."""
    return reply(await turnaround_of(request))


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


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ would be read as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else str(value)


_CSV_ANSWER = {
    "text/csv": {
        "schema": {
            "type": "string",
            "description": "columns: row (facility | segment), facility, name, segment, "
            "segment_name (in words, in the caller's language), count, median_minutes, "
            "p90_minutes, mean_minutes, max_minutes, since, until",
        }
    }
}
_CSV_HEADERS = {
    "Content-Disposition": {
        "schema": {"type": "string"},
        "description": 'attachment; filename="turnaround-YYYYMMDD.csv"',
    }
}


@routes.get(
    "/api/v1/stats/turnaround.csv",
    query=TurnaroundQuery,
    media=_CSV_ANSWER,
    headers=_CSV_HEADERS,
    summary="The turnaround statistics as CSV (UTF-8 with BOM, for spreadsheets), scoped like "
    "the JSON: one row per sending facility (received to final report), then one per "
    "workflow segment; ?since=, ?until= (ISO 8601), ?case_id=",
    tag="admin",
)
async def turnaround_csv(request: web.Request) -> web.Response:
    """The turnaround statistics as CSV (UTF-8 with a byte order mark, for spreadsheets):
    one row per sending facility (received to final), then one per workflow segment, each
    segment named in words as the dashboard names it, in the caller's language."""
    language = current_user(request).language
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TURNAROUND_CSV_COLUMNS)
    for row in _csv_rows((await turnaround_of(request)).model_dump(mode="json"), language):
        writer.writerow(csv_cell(v) for v in row)
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


def _csv_rows(body: dict[str, Any], language: Language) -> list[tuple[object, ...]]:
    since, until, segment = body["since"], body["until"], body["segment"]
    rows: list[tuple[object, ...]] = [
        (
            "facility",
            f["facility"],
            f["name"],
            segment,
            word(TurnaroundSegment(segment), language),
            f["reports"],
            f["median_minutes"],
            f["p90_minutes"],
            f["mean_minutes"],
            f["max_minutes"],
            since,
            until,
        )
        for f in body["facilities"]
    ]
    rows += [
        (
            "segment",
            "",
            "",
            name,
            word(TurnaroundSegment(name), language),
            s["cases"],
            s["median_minutes"],
            s["p90_minutes"],
            "",
            s["max_minutes"],
            since,
            until,
        )
        for name, s in body["segments"].items()
    ]
    return rows


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
