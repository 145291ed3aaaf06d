"""The web UI: sign-in, the reader's worklist and case pages, the clinic's inbox, the
administrator's dashboard, and the page actions behind them.

Pages are jinja2 templates (autoescaped) over one base template and one stylesheet; they
read through the storage functions the JSON API uses, scoped to the signed-in user and
audited as the API audits. A page's actions are routes beside it that run the JSON API's
own handlers for the session-cookie user (:func:`page_action`): a change needs the pages'
header and a same-site Origin, and the cookie is SameSite=Strict.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from ecg.record import MEASUREMENT_KEYS
from ecg.render import SheetFilter
from storage import (
    audit,
    cases,
    ecg,
    index,
    network,
    notifications,
    patients,
    referrals,
    reports,
    templates,
)
from storage.records import (
    Case,
    CaseStatus,
    Conclusion,
    Priority,
    Referral,
    Report,
    ReportStatus,
    ReturnReason,
    Role,
    Specialty,
    Study,
    Tier,
    User,
)
from teleradiology.core.errors import Forbidden, NotFound, Unauthorized
from teleradiology.http import sse as events
from teleradiology.http.api import cases as api
from teleradiology.http.api import casework
from teleradiology.http.api import ecg as ecg_api
from teleradiology.http.api import referrals as referrals_api
from teleradiology.http.context import POOL, USER, user_zone
from teleradiology.http.params import path_id
from teleradiology.http.session import session_user, set_cookie, sign_in, sign_out
from teleradiology.http.web.viewer import viewer_url

PAGE_HEADER = "X-Telemed-Page"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

# --- words on the pages (zh-CN first, English in parentheses) ----------------------------

PRIORITY_ZH = {
    Priority.HIGH: "紧急 (urgent)",
    Priority.MEDIUM: "常规 (routine)",
    Priority.LOW: "低 (low)",
}
STATUS_ZH = {
    "scheduled": "待领取 (scheduled)",
    "in_progress": "判读中 (in progress)",
    "completed": "已完成 (completed)",
    "canceled": "已取消 (canceled)",
}
CONCLUSION_ZH = {
    "normal": "正常 (normal)",
    "abnormal": "异常 (abnormal)",
    "critical": "危急值 (critical)",
}
REPORT_STATUS_ZH = {"preliminary": "初步报告 (preliminary)", "final": "正式报告 (final)"}
RETURN_REASON_ZH = {
    ReturnReason.MOTION: "运动伪影 (motion)",
    ReturnReason.POSITIONING: "体位不正 (positioning)",
    ReturnReason.EXPOSURE: "曝光不当 (exposure)",
    ReturnReason.INCOMPLETE: "检查不完整，缺序列或导联 (incomplete)",
    ReturnReason.ARTIFACT: "伪影、干扰 (artifact)",
    ReturnReason.WRONG_PATIENT: "患者信息错误 (wrong patient)",
    ReturnReason.NOISE: "基线漂移、肌电干扰 (noise)",
    ReturnReason.OTHER: "其他 (other)",
}
EVENT_ZH = {
    "received": "接收 (received)",
    "complete": "接收完整 (complete)",
    "routed": "分配 (routed)",
    "claimed": "领取 (claimed)",
    "released": "释放 (released)",
    "lease_expired": "领取超时 (lease expired)",
    "escalated": "上转会诊 (escalated)",
    "preliminary": "初步报告 (preliminary)",
    "final": "正式报告 (final)",
    "delivered": "已送达 (delivered)",
    "acknowledged": "已确认 (acknowledged)",
    "returned": "退回 (returned)",
    "second_read": "申请复核 (second read)",
    "addendum": "补充报告 (addendum)",
    "priority": "申请判读 (reading requested)",
    "stemi": "疑似STEMI (suspected STEMI)",
    "late_instance": "补传图像 (late instance)",
    "identity_conflict": "患者信息不一致 (identity conflict)",
}
REFERRAL_STATUS_ZH = {
    "requested": "待接诊 (requested)",
    "accepted": "已接诊 (accepted)",
    "declined": "已拒绝 (declined)",
}
URGENCY_ZH = {
    "routine": "常规 (routine)",
    "urgent": "紧急 (urgent)",
    "emergency": "急诊 (emergency)",
}
DIRECTION_ZH = {"up": "上转 (up)", "down": "下转 (down)"}
SEGMENT_ZH = {
    "received_to_complete": "接收→完整 (received→complete)",
    "complete_to_routed": "完整→分配 (complete→routed)",
    "routed_to_claimed": "分配→领取 (routed→claimed)",
    "claimed_to_escalated": "领取→上转 (claimed→escalated)",
    "claimed_to_preliminary": "领取→初步报告 (claimed→preliminary)",
    "escalated_to_final": "上转→正式报告 (escalated→final)",
    "claimed_to_final": "领取→正式报告 (claimed→final)",
    "final_to_delivered": "签发→送达 (final→delivered)",
    "delivered_to_acknowledged": "送达→确认 (delivered→acknowledged)",
    "received_to_final": "接收→正式报告 (received→final)",
    "received_to_acknowledged": "接收→确认 (received→acknowledged)",
}
WORKLIST_FILTERS = {
    "all": "全部 (all)",
    "scheduled": "待领取 (scheduled)",
    "in_progress": "判读中 (in progress)",
    "mine": "我领取的 (mine)",
}


# --- shared helpers --------------------------------------------------------------------


def local_time(at: datetime | None, zone: ZoneInfo) -> str:
    """A server UTC time as the network's local time (Asia/Shanghai)."""
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if at else ""


def time_left(deadline: datetime, now: datetime) -> tuple[str, bool]:
    """The time to a deadline in words, and whether it has passed."""
    seconds = (deadline - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days}天{hours}小时"
    elif hours:
        text = f"{hours}小时{mins}分"
    else:
        text = f"{mins}分"
    if seconds < 0:
        return f"超时 {text} (overdue)", True
    return f"剩余 {text} (left)", False


def study_date(value: str | None) -> str:
    """A DICOM date (YYYYMMDD) as people write it (YYYY-MM-DD)."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def person(name: str | None) -> str:
    """A DICOM person name as people write it (components separated by a space)."""
    return (name or "").replace("^", " ").strip()


async def signed_in(request: web.Request) -> User:
    user = await session_user(request)
    if user is None:
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs)}")
    return user


def render(name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=TEMPLATES.get_template(name).render(context),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


async def _base_context(request: web.Request, user: User | None) -> dict[str, Any]:
    facility = ""
    if user is not None:
        chain = await network.facility_chain(request.app[POOL], user.facility_id)
        facility = chain[0].name if chain else ""
    return {"user": user, "facility_name": facility, "path": request.path}


PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: PageHandler) -> PageHandler:
    """A page: what is not found or not allowed answers an HTML page a person can read."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (NotFound, Forbidden) as exc:
            status = 404 if isinstance(exc, NotFound) else 403
            user = await session_user(request)
            context = await _base_context(request, user)
            title = "未找到 (not found)" if status == 404 else "无权访问 (not allowed)"
            return render(
                "error.html", {**context, "title": title, "detail": str(exc)}, status=status
            )

    return run


def page_action(handler: PageHandler) -> PageHandler:
    """Run a JSON API handler for the page's signed-in user (session cookie).

    A change needs the pages' own header, which no other site can send without a CORS
    preflight we never grant, and an Origin (when sent) of this site; the cookie itself is
    SameSite=Strict.
    """

    async def run(request: web.Request) -> web.StreamResponse:
        user = await session_user(request)
        if user is None:
            raise Unauthorized("your session has ended; sign in again at /login")
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if request.headers.get(PAGE_HEADER) != "1" or (
                origin is not None and origin != f"{request.scheme}://{request.host}"
            ):
                raise Forbidden("changes are made from this site's own pages only")
        request[USER] = user
        return await handler(request)

    return run


# --- sign-in ---------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no //host) may follow sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def _login(
    request: web.Request, next_path: str, error: str = "", status: int = 200
) -> web.Response:
    context = await _base_context(request, None)
    context.update(title="登录 (Sign in)", next=next_path, error=error)
    return render("login.html", context, status=status)


async def login_page(request: web.Request) -> web.Response:
    return await _login(request, _safe_next(request.query.get("next")))


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = form.get("username"), form.get("password")
    next_path = _safe_next(str(form.get("next") or "/"))
    if not isinstance(username, str) or not isinstance(password, str):
        return await _login(request, next_path, "请输入用户名和密码 (enter both)", 400)
    token = await sign_in(request, username, password)
    if token is None:
        error = "用户名或密码错误 (wrong username or password)"
        return await _login(request, next_path, error, 401)
    response = web.Response(
        status=303, headers={"Location": next_path, "Cache-Control": "no-store"}
    )
    set_cookie(request, response, token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.Response(status=303, headers={"Location": "/login", "Cache-Control": "no-store"})
    await sign_out(request, response)
    return response


# --- the landing page: a reader's worklist, a clinic's inbox ------------------------------


async def landing(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    if user.role is Role.CLINIC:
        return await inbox_page(request, user)
    return await worklist_page(request, user)


async def _facility_names(request: web.Request) -> dict[str, str]:
    return {f.code: f.name for f in await network.list_facilities(request.app[POOL])}


async def worklist_page(request: web.Request, user: User) -> web.Response:
    """Open cases of the reader's pools (an administrator: of their network), most urgent
    first, with time left, sender, who holds each and whom the pool suggests."""
    pool = request.app[POOL]
    # read first: what arrives while the page is made is replayed by its stream
    live_after = await notifications.last_id(pool)
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    chosen = request.query.get("status", "all")
    if chosen not in WORKLIST_FILTERS:
        chosen = "all"
    found = await cases.worklist(pool, user, limit=500)
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="case",
        object_id="worklist",
        detail={"count": len(found)},
    )
    readers = await network.pool_readers(pool, sorted({c.pool_facility_id for c in found}), now)
    names = {r.user_id: r.display_name for r in readers}
    facilities = await _facility_names(request)
    counts = dict.fromkeys(WORKLIST_FILTERS, 0)
    rows: list[dict[str, Any]] = []
    for case in found:
        mine = case.claimed_by == user.id
        counts["all"] += 1
        counts[case.status.value] = counts.get(case.status.value, 0) + 1
        counts["mine"] += mine
        if chosen == "mine" and not mine:
            continue
        if chosen in ("scheduled", "in_progress") and case.status.value != chosen:
            continue
        suggested = next(
            (
                r
                for r in readers
                if r.facility_id == case.pool_facility_id
                and r.specialty is case.specialty
                and r.on_duty
            ),
            None,
        )
        left, overdue = time_left(case.deadline, now)
        ecg_case = case.specialty is Specialty.ECG
        rows.append(
            {
                "case": case,
                "patient": person(case.patient_name),
                "modalities": ", ".join(case.modalities),
                "specialty": "心电 (ECG)" if ecg_case else "影像 (radiology)",
                "priority": PRIORITY_ZH[case.priority],
                "status": STATUS_ZH.get(case.status.value, case.status.value),
                "deadline": local_time(case.deadline, zone),
                "left": left,
                "overdue": overdue,
                "facility": facilities.get(case.facility_code, case.facility_code),
                "claimed_by": (
                    names.get(case.claimed_by, f"#{case.claimed_by}")
                    if case.claimed_by is not None
                    else ""
                ),
                "mine": mine,
                "suggested": (
                    f"{suggested.display_name} ({suggested.username})" if suggested else ""
                ),
                "href": f"/ecg/cases/{case.id}" if ecg_case else f"/cases/{case.id}",
                "viewer": "" if ecg_case else viewer_url(case.study_instance_uid),
            }
        )
    context = await _base_context(request, user)
    return render(
        "worklist.html",
        {
            **context,
            "title": "待读病例 (worklist)",
            "rows": rows,
            "filters": [
                {"key": k, "label": v, "count": counts[k], "active": k == chosen}
                for k, v in WORKLIST_FILTERS.items()
            ],
            "now": local_time(now, zone),
            "live_after": live_after,
        },
    )


# --- the radiology case page -------------------------------------------------------------


def _report_context(r: Report, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": r.status.value,
        "status_zh": REPORT_STATUS_ZH.get(r.status.value, r.status.value),
        "conclusion": r.conclusion.value,
        "conclusion_zh": CONCLUSION_ZH.get(r.conclusion.value, r.conclusion.value),
        "findings": r.findings,
        "impression": r.impression,
        "author": r.author_name,
        "author_id": r.author_id,
        "signed_at": local_time(r.signed_at, zone),
        "version": r.version,
        "amends": r.amends_report_id,
        "agreed": r.agreed,
        "discrepancy": r.discrepancy or "",
        "delivered_at": local_time(r.delivered_at, zone),
        "acknowledged_at": local_time(r.acknowledged_at, zone),
        "acknowledged_by": r.acknowledged_name or "",
        "critical_due_at": local_time(r.critical_due_at, zone),
        "pdf": f"/reports/{r.id}/pdf" if r.has_pdf else "",
    }


def _event_detail(kind: str, detail: dict[str, Any]) -> str:
    parts: list[str] = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if key == "reason" and kind == "returned":
            with contextlib.suppress(ValueError):
                value = RETURN_REASON_ZH[ReturnReason(value)]
        elif key == "conclusion":
            value = CONCLUSION_ZH.get(str(value), value)
        parts.append(f"{key}: {value}")
    return "；".join(parts)


async def case_page(request: web.Request) -> web.StreamResponse:
    """A radiology case for its reader: patient, sender, question, the study and a link to
    the viewer, the patient's priors, the case's history, and the reading actions."""
    user = await signed_in(request)
    pool = request.app[POOL]
    case = await cases.case_for_user(pool, path_id(request), user)
    if case is None:
        raise NotFound(f"case {request.match_info['id']} not found")
    if case.specialty is Specialty.ECG:
        raise web.HTTPSeeOther(f"/ecg/cases/{case.id}")
    await audit.record(pool, user_id=user.id, action="read", object_type="case", object_id=case.id)
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    study = await index.study_for_user(pool, case.study_instance_uid, user.id)
    case_reports = await reports.reports_of_case(pool, case.id)
    priors = await patients.priors(pool, case.study_id, user)
    events = await cases.events_of_case(pool, case)
    pools = {case.pool_facility_id, case.facility_id}
    for fid in (case.escalation_facility_id, case.first_pool_facility_id):
        if fid is not None:
            pools.add(fid)
    readers = await network.pool_readers(pool, sorted(pools), now)
    names = {r.user_id: f"{r.display_name} ({r.username})" for r in readers}
    for r in case_reports:
        names.setdefault(r.author_id, r.author_name)
    unknown = {e.user_id for e in events if e.user_id is not None} - names.keys()
    if case.claimed_by is not None and case.claimed_by not in names:
        unknown.add(case.claimed_by)
    if unknown:  # a clinic's operator or an administrator acted on the case
        for u in await network.list_users(pool):
            if u.id in unknown:
                names[u.id] = f"{u.display_name} ({u.username})"
    facilities = await _facility_names(request)
    left, overdue = time_left(case.deadline, now)
    is_reader = user.role is Role.READER
    open_case = case.status in (CaseStatus.SCHEDULED, CaseStatus.IN_PROGRESS)
    holder = is_reader and case.claimed_by == user.id and case.status is CaseStatus.IN_PROGRESS
    lease_over = case.lease_expires_at is not None and case.lease_expires_at < now
    can_claim = (
        is_reader
        and not holder
        and (case.status is CaseStatus.SCHEDULED or (open_case and lease_over))
    )
    preliminary = [r for r in case_reports if r.status is ReportStatus.PRELIMINARY]
    draft = preliminary[-1] if preliminary else None
    # the city reader of an escalated case: the county draft and the question, agree or amend
    consult = (
        case.escalated_at is not None
        and is_reader
        and user.facility_id == case.pool_facility_id
        and draft is not None
        and draft.author_id != user.id
    )
    modalities = list(study.modalities if study else case.modalities)
    found_templates: dict[int, templates.Template] = {}
    wanted: list[str | None] = list(modalities) or [None]
    for modality in wanted:
        for t in await templates.list_templates(
            pool, specialty=Specialty.RADIOLOGY.value, modality=modality, language=None
        ):
            found_templates.setdefault(t.id, t)
    report_items = [_report_context(r, zone) for r in case_reports]
    context = await _base_context(request, user)
    context.update(
        title=f"影像病例 (case) #{case.id}",
        case=case,
        patient=person(case.patient_name),
        patient_id=study.patient_id if study else "",
        facility=facilities.get(case.facility_code, case.facility_code),
        pool_name=facilities.get(case.pool_code or "", case.pool_code or ""),
        priority_zh=PRIORITY_ZH[case.priority],
        status_zh=STATUS_ZH.get(case.status.value, case.status.value),
        deadline=local_time(case.deadline, zone),
        left=left if open_case else "",
        overdue=overdue and open_case,
        claimed_by=names.get(case.claimed_by, f"#{case.claimed_by}") if case.claimed_by else "",
        lease_expires=local_time(case.lease_expires_at, zone),
        escalated_at=local_time(case.escalated_at, zone),
        study={
            "modalities": ", ".join(modalities),
            "description": (study.description if study else "") or "",
            "study_date": study_date(study.study_date if study else None),
            "accession": (study.accession_number if study else "") or "",
            "series": study.num_series if study else 0,
            "instances": study.num_instances if study else 0,
            "received": local_time(study.first_received_at if study else None, zone),
            "completed": local_time(study.completed_at if study else None, zone),
        },
        viewer=viewer_url(case.study_instance_uid),
        priors=[
            {
                "date": study_date(p.study_date) or local_time(p.received_at, zone),
                "modalities": ", ".join(p.modalities),
                "description": p.description or "",
                "facility": facilities.get(p.facility_code, p.facility_code),
                "conclusion": CONCLUSION_ZH.get(p.conclusion or "", p.conclusion or ""),
                "impression": p.impression or "",
                "viewer": viewer_url(p.study_instance_uid),
            }
            for p in priors
        ],
        events=[
            {
                "at": local_time(e.at, zone),
                "kind": EVENT_ZH.get(e.kind, e.kind),
                "by": names.get(e.user_id, f"#{e.user_id}") if e.user_id else "",
                "detail": _event_detail(e.kind, e.detail),
                "earlier_case": e.case_id is not None and e.case_id != case.id,
            }
            for e in events
        ],
        reports=report_items,
        draft=_report_context(draft, zone) if draft else None,
        consult=consult,
        is_reader=is_reader,
        holder=holder,
        can_claim=can_claim,
        can_release=open_case
        and case.claimed_by is not None
        and (holder or user.role is Role.ADMIN),
        can_escalate=holder and case.escalated_at is None and case.escalation_facility_id,
        can_second_read=(is_reader or user.role is Role.ADMIN)
        and case.second_read_of is None
        and case.status is not CaseStatus.CANCELED,
        addendum_to=[
            r["id"]
            for r in report_items
            if r["status"] == "final" and r["author_id"] == user.id and is_reader
        ],
        templates=[
            {
                "id": t.id,
                "name": t.name,
                "modality": t.modality or "",
                "findings": t.findings,
                "impression": t.impression,
            }
            for t in found_templates.values()
        ],
        return_reasons=[{"value": r.value, "label": RETURN_REASON_ZH[r]} for r in ReturnReason],
        conclusions=[{"value": c.value, "label": CONCLUSION_ZH[c.value]} for c in Conclusion],
    )
    return render("case.html", context)


# --- the ECG reading page ----------------------------------------------------------------

#: The sheet filters as the ECG page offers them.
SHEET_FILTER_ZH = {
    SheetFilter.DIAGNOSTIC: "诊断滤波 (diagnostic)",
    SheetFilter.MUSCLE: "肌电滤波 (muscle)",
    SheetFilter.NONE: "原始信号 (unfiltered)",
}
MEASUREMENT_LABELS = {
    "heart_rate_bpm": "心率 (heart rate)",
    "rr_ms": "RR间期 (RR)",
    "p_ms": "P波时限 (P)",
    "pr_ms": "PR间期 (PR)",
    "qrs_ms": "QRS时限 (QRS)",
    "qt_ms": "QT间期 (QT)",
    "qtc_bazett_ms": "QTc (Bazett)",
    "qtc_fridericia_ms": "QTc (Fridericia)",
    "p_axis_deg": "P电轴 (P axis)",
    "qrs_axis_deg": "QRS电轴 (QRS axis)",
    "t_axis_deg": "T电轴 (T axis)",
}
#: The rows of the measurement tables: the analysis' own keys (both QTc formulas).
PAGE_MEASUREMENTS: dict[str, str] = {
    (k2 if k == "qtc_ms" else k): u
    for k, u in MEASUREMENT_KEYS.items()
    for k2 in (("qtc_bazett_ms", "qtc_fridericia_ms") if k == "qtc_ms" else (k,))
}
UNITS_ZH = {"beats per minute": "次/分 (bpm)", "ms": "ms", "degrees": "°"}
#: A difference from the prior worth a reader's eye: 10 ms, 10 bpm, 30°.
NOTABLE_CHANGE = {"ms": 10.0, "beats per minute": 10.0, "degrees": 30.0}


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{value:.0f}"


def _statement_text(statement: Any) -> str:
    if isinstance(statement, dict):
        return str(statement.get("text_zh") or statement.get("text_en") or statement.get("code"))
    return str(statement)


async def ecg_case_page(request: web.Request) -> web.Response:
    """An ECG case for its reader: sheet, measurements and statements with their edit
    history, the patient's prior ECGs side by side, and the report form."""
    user = await signed_in(request)
    pool = request.app[POOL]
    case = await cases.case_for_user(pool, path_id(request), user)
    if case is None:
        raise NotFound(f"case {request.match_info['id']} not found")
    await audit.record(pool, user_id=user.id, action="read", object_type="case", object_id=case.id)
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    sops = await ecg.ecg_instances_of_study(pool, case.study_id)
    view = await ecg.ecg_for_user(pool, sops[0], user.id) if sops else None
    left, overdue = time_left(case.deadline, now)
    context = await _base_context(request, user)
    context.update(
        title=f"心电图判读 (ECG reading) · {person(case.patient_name)}",
        case=case,
        view=view,
        sop=view.sop_instance_uid if view else None,
        patient=person(case.patient_name),
        priority_zh=PRIORITY_ZH[case.priority],
        status_zh=STATUS_ZH.get(case.status.value, case.status.value),
        deadline=local_time(case.deadline, zone),
        left=left if case.status.value in ("scheduled", "in_progress") else "",
        overdue=overdue and case.status.value in ("scheduled", "in_progress"),
        can_claim=user.role is Role.READER
        and case.claimed_by != user.id
        and case.status.value in ("scheduled", "in_progress"),
        reports=[_report_context(r, zone) for r in await reports.reports_of_case(pool, case.id)],
        conclusions=[{"value": c.value, "label": CONCLUSION_ZH[c.value]} for c in Conclusion],
        findings_draft="",
        measurements=[],
        statements=[],
        statements_json="[]",
        edits=[],
        priors=[],
        acquired="",
        sheet_png="",
        sheet_pdf="",
        sheet_filters=[],
    )
    if view is not None:
        await audit.record(
            pool, user_id=user.id, action="read", object_type="ecg", object_id=view.sop_instance_uid
        )
        automatic = dict((view.result or {}).get("measurements", {}))
        current = ecg_api.current_measurements(view)
        statements = ecg_api.current_statements(view)
        base = f"/ecg/cases/{case.id}/sheets"
        chosen = ecg_api.sheet_filter(request)
        query = "" if chosen is SheetFilter.DIAGNOSTIC else f"?filter={chosen.value}"
        context.update(
            sheet_png=f"{base}/{view.sop_instance_uid}.png{query}",
            sheet_pdf=f"{base}/{view.sop_instance_uid}.pdf{query}",
            sheet_filters=[
                {"value": f.value, "label": SHEET_FILTER_ZH[f], "active": f is chosen}
                for f in SheetFilter
            ],
            acquired=local_time(view.analyzed_at, zone),
            measurements=[
                {
                    "key": key,
                    "label": MEASUREMENT_LABELS.get(key, key),
                    "unit": UNITS_ZH.get(unit, unit),
                    "automatic": _number(automatic.get(key)),
                    "current": _number(current.get(key)),
                    "edited": key in view.edited_measurements,
                }
                for key, unit in PAGE_MEASUREMENTS.items()
            ],
            statements=[{"text": _statement_text(s)} for s in statements],
            # "<" escaped: the JSON sits in a <script> element
            statements_json=json.dumps(statements, ensure_ascii=False).replace("<", "\\u003c"),
            findings_draft="；".join(_statement_text(s) for s in statements),
        )
        if view.analysis_id is not None:
            context["edits"] = [
                {
                    "at": local_time(e.at, zone),
                    "by": f"{e.display_name} ({e.username})",
                    "field": e.field,
                    "old": _edit_value(e.old_value),
                    "new": _edit_value(e.new_value),
                }
                for e in await ecg.edits(pool, view.analysis_id)
            ]
        context["priors"] = [
            _prior_context(case, p, current, zone, query) for p in await ecg.priors(pool, view)
        ]
    return render("ecg_case.html", context)


def _edit_value(value: Any) -> str:
    if isinstance(value, list):
        return "；".join(_statement_text(s) for s in value)
    return "—" if value is None else str(value)


def _prior_context(
    case: Case, prior: ecg.EcgPrior, current: dict[str, Any], zone: ZoneInfo, query: str
) -> dict[str, Any]:
    measured = {**dict((prior.result or {}).get("measurements", {})), **prior.edited_measurements}
    rows: list[dict[str, Any]] = []
    for key, unit in PAGE_MEASUREMENTS.items():
        now, then = current.get(key), measured.get(key)
        both = isinstance(now, int | float) and isinstance(then, int | float)
        delta = float(now) - float(then) if both else None  # type: ignore[arg-type]
        rows.append(
            {
                "key": key,
                "label": MEASUREMENT_LABELS.get(key, key),
                "now": _number(now),
                "prior": _number(then),
                "delta": f"{delta:+.0f}" if delta is not None else "",
                "changed": delta is not None and abs(delta) >= NOTABLE_CHANGE.get(unit, 10.0),
            }
        )
    return {
        "sop": prior.sop_instance_uid,
        "received": local_time(prior.received_at, zone),
        "sheet_png": f"/ecg/cases/{case.id}/sheets/{prior.sop_instance_uid}.png{query}",
        "rows": rows,
        "statements": "；".join(
            _statement_text(s) for s in (prior.result or {}).get("statements", [])
        ),
    }


# --- the clinic's inbox --------------------------------------------------------------------


def _study_label(study: Study | None) -> str:
    if study is None:
        return ""
    parts = [", ".join(study.modalities), study.description or "", study_date(study.study_date)]
    return " · ".join(p for p in parts if p)


async def inbox_page(request: web.Request, user: User) -> web.Response:
    """The clinic's reports (critical results first, to acknowledge by name), returned
    studies with the reason, its studies with their status, and its referrals."""
    pool = request.app[POOL]
    live_after = await notifications.last_id(pool)
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    found = await reports.inbox(pool, user, limit=200)
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="report",
        object_id="inbox",
        detail={"count": len(found)},
    )
    studies = await index.studies_for_user(
        pool, user.id, study_uid=None, patient_id=None, limit=200, offset=0
    )
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="study",
        object_id="inbox",
        detail={"count": len(studies)},
    )
    by_uid = {s.study_instance_uid: s for s in studies}
    open_cases = await cases.worklist(pool, user, limit=500)
    items: dict[int, dict[str, Any]] = {}
    addenda: list[dict[str, Any]] = []
    reported: set[str] = set()
    for r in found:
        item = _report_context(r, zone)
        study = by_uid.get(r.study_instance_uid)
        item.update(
            patient=person(study.patient_name) if study else "",
            patient_id=study.patient_id if study else "",
            study=_study_label(study),
            case_id=r.case_id,
            critical_open=r.conclusion is Conclusion.CRITICAL and r.acknowledged_at is None,
            overdue=r.critical_due_at is not None
            and r.acknowledged_at is None
            and r.critical_due_at < now,
            addenda=[],
        )
        if r.status is ReportStatus.FINAL:
            reported.add(r.study_instance_uid)
        if r.amends_report_id is not None:
            addenda.append(item)
        else:
            items[r.id] = item
    for a in addenda:
        original = items.get(a["amends"]) if a["amends"] is not None else None
        if original is not None:
            original["addenda"].append(a)
        else:
            items[a["id"]] = a
    ordered = sorted(items.values(), key=lambda i: not i["critical_open"])
    resent = {c.study_instance_uid for c in open_cases} | reported
    returned: list[dict[str, Any]] = []
    for back in await cases.returned_to_clinic(pool, user):
        case = back.case
        try:
            reason_zh = RETURN_REASON_ZH[ReturnReason(case.return_code or "other")]
        except ValueError:
            reason_zh = case.return_code or ""
        returned.append(
            {
                "case_id": case.id,
                "at": local_time(back.returned_at, zone),
                "patient": person(case.patient_name),
                "study": ", ".join(case.modalities),
                "uid": case.study_instance_uid,
                "reason": reason_zh,
                "note": back.note,
                "resent": case.study_instance_uid in resent,
            }
        )
    case_by_uid = {c.study_instance_uid: c for c in open_cases}
    returned_open = {r["uid"] for r in returned if not r["resent"]}
    study_rows = []
    for s in studies:
        open_case = case_by_uid.get(s.study_instance_uid)
        if s.study_instance_uid in reported:
            state, label = "reported", "已报告 (reported)"
        elif open_case is not None and open_case.status is CaseStatus.IN_PROGRESS:
            state, label = "reading", "判读中 (in reading)"
        elif open_case is not None:
            state, label = "waiting", "等待判读 (waiting)"
        elif s.study_instance_uid in returned_open:
            state, label = "returned", "已退回 (returned)"
        elif s.state.value == "receiving":
            state, label = "receiving", "接收中 (receiving)"
        else:
            state, label = "waiting", "等待分配 (waiting)"
        study_rows.append(
            {
                "patient": person(s.patient_name),
                "patient_id": s.patient_id,
                "study": _study_label(s),
                "series": s.num_series,
                "instances": s.num_instances,
                "received": local_time(s.first_received_at, zone),
                "state": state,
                "label": label,
                "priority": PRIORITY_ZH[open_case.priority] if open_case else "",
                "deadline": local_time(open_case.deadline, zone) if open_case else "",
            }
        )
    found_referrals = await referrals.referrals_for_user(pool, user, limit=100, offset=0)
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="referral",
        object_id="inbox",
        detail={"count": len(found_referrals)},
    )
    chain = await network.facility_chain(pool, user.facility_id)
    facilities = await _facility_names(request)
    # the cases a referral can be raised for: the clinic's reported and open cases
    referable: dict[int, str] = {}
    for i in ordered:
        referable.setdefault(i["case_id"], f"{i['patient']} · {i['study']} · #{i['case_id']}")
    for c in open_cases:
        referable.setdefault(
            c.id, f"{person(c.patient_name)} · {', '.join(c.modalities)} · #{c.id}"
        )
    context = await _base_context(request, user)
    context.update(
        title="报告收件箱 (report inbox)",
        live_after=live_after,
        reports=ordered,
        critical_count=sum(1 for i in ordered if i["critical_open"]),
        returned=returned,
        studies=study_rows,
        referrals=[_referral_context(r, zone, facilities) for r in found_referrals],
        referable=[{"id": k, "label": v} for k, v in referable.items()],
        targets=[
            {"code": f.code, "name": f.name} for f in chain if f.tier in (Tier.COUNTY, Tier.CITY)
        ],
    )
    return render("inbox.html", context)


def _referral_context(r: Referral, zone: ZoneInfo, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "direction": DIRECTION_ZH.get(r.direction.value, r.direction.value),
        "status": r.status.value,
        "status_zh": REFERRAL_STATUS_ZH.get(r.status.value, r.status.value),
        "urgency": URGENCY_ZH.get(r.urgency.value, r.urgency.value),
        "reason": r.reason,
        "patient": person(r.patient_name),
        "case_id": r.case_id,
        "from": names.get(r.from_facility_code, r.from_facility_code),
        "to": names.get(r.to_facility_code, r.to_facility_code),
        "created_at": local_time(r.created_at, zone),
        "responded_at": local_time(r.responded_at, zone),
        "appointment_at": local_time(r.appointment_at, zone),
        "decline_reason": r.decline_reason or "",
        "follow_up_plan": r.follow_up_plan or "",
    }


# --- the administrator's dashboard ------------------------------------------------------------


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


def _minutes(value: float | None) -> str:
    """A duration given in minutes, in the unit that reads best."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 60:.0f} 秒 (s)"
    if value >= 120:
        return f"{value / 60:.1f} 小时 (h)"
    return f"{value:.1f} 分钟 (min)"


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


async def admin_page(request: web.Request) -> web.StreamResponse:
    """Turnaround per sending facility and segment, volumes, open and overdue cases per
    pool, SLA breaches and referrals, over the administrator's network."""
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden("the dashboard is for network administrators")
    zone = await user_zone(request, user)
    request = _local_days(request, zone)
    request[USER] = user
    pool = request.app[POOL]
    now = datetime.now(UTC)
    body = await api.turnaround_data(request)
    since = datetime.fromisoformat(str(body["since"]).replace("Z", "+00:00"))
    until = datetime.fromisoformat(str(body["until"]).replace("Z", "+00:00"))
    facilities = await _facility_names(request)
    open_cases = await cases.worklist(pool, user, limit=5000)
    loads: dict[tuple[str, str], _PoolLoad] = {}
    open_by_facility: dict[str, int] = {}
    breaches: list[dict[str, Any]] = []
    for c in open_cases:
        code = c.pool_code or ""
        load = loads.setdefault(
            (code, c.specialty.value),
            _PoolLoad(pool=code, name=facilities.get(code, code), specialty=c.specialty.value),
        )
        load.open += 1
        load.scheduled += c.status is CaseStatus.SCHEDULED
        load.in_progress += c.status is CaseStatus.IN_PROGRESS
        load.urgent += c.priority is Priority.HIGH or c.stemi
        open_by_facility[c.facility_code] = open_by_facility.get(c.facility_code, 0) + 1
        if c.deadline < now:
            load.overdue += 1
            left, _ = time_left(c.deadline, now)
            breaches.append(
                {
                    "kind": "逾期未报告 (case overdue)",
                    "case_id": c.id,
                    "facility": facilities.get(c.facility_code, c.facility_code),
                    "pool": facilities.get(code, code),
                    "priority": PRIORITY_ZH[c.priority] + (" · STEMI" if c.stemi else ""),
                    "due": local_time(c.deadline, zone),
                    "by": left,
                    "claimed": c.claimed_by is not None,
                }
            )
    pending = await reports.inbox(pool, user, unacknowledged=True, limit=1000)
    await audit.record(
        pool,
        user_id=user.id,
        action="list",
        object_type="report",
        object_id="dashboard",
        detail={"count": len(pending)},
    )
    code_of = {f.id: f.code for f in await network.list_facilities(pool)}
    critical_pending = 0
    for r in pending:
        if r.conclusion is not Conclusion.CRITICAL:
            continue
        critical_pending += 1
        if r.critical_due_at is not None and r.critical_due_at < now:
            left, _ = time_left(r.critical_due_at, now)
            code = code_of.get(r.facility_id, "")
            breaches.append(
                {
                    "kind": "危急值未确认 (critical result not acknowledged)",
                    "case_id": r.case_id,
                    "facility": facilities.get(code, code),
                    "pool": "",
                    "priority": CONCLUSION_ZH["critical"],
                    "due": local_time(r.critical_due_at, zone),
                    "by": left,
                    "claimed": True,
                }
            )
    facility_rows = [
        {
            **f,
            "median": _minutes(f["median_minutes"]),
            "p90": _minutes(f["p90_minutes"]),
            "mean": _minutes(f["mean_minutes"]),
            "max": _minutes(f["max_minutes"]),
            "open": open_by_facility.get(f["facility"], 0),
        }
        for f in body["facilities"]
    ]
    reported_codes = {f["facility"] for f in body["facilities"]}
    for code, count in sorted(open_by_facility.items()):
        if code not in reported_codes:
            facility_rows.append(
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
    referral_rows = await referrals.referral_stats(pool, user.facility_id, since, until)
    query = {k: v for k, v in request.query.items() if k in ("since", "until")}
    context = await _base_context(request, user)
    context.update(
        title="管理看板 (dashboard)",
        since=local_time(since, zone),
        until=local_time(until, zone),
        since_value=since.astimezone(zone).strftime("%Y-%m-%d"),
        until_value=(until - timedelta(seconds=1)).astimezone(zone).strftime("%Y-%m-%d"),
        facilities=facility_rows,
        total_reports=sum(f["reports"] for f in body["facilities"]),
        segments=[
            {
                "key": key,
                "label": SEGMENT_ZH.get(key, key),
                "cases": s["cases"],
                "median": _minutes(s["median_minutes"]),
                "p90": _minutes(s["p90_minutes"]),
                "max": _minutes(s["max_minutes"]),
            }
            for key, s in body["segments"].items()
        ],
        pools=sorted(loads.values(), key=lambda p: (-p.overdue, -p.open, p.pool)),
        open_total=len(open_cases),
        overdue_total=sum(p.overdue for p in loads.values()),
        critical_pending=critical_pending,
        breaches=breaches,
        referrals=[
            {
                "facility": facilities.get(r.facility_code, r.facility_code),
                "direction": DIRECTION_ZH.get(r.direction.value, r.direction.value),
                "status": REFERRAL_STATUS_ZH.get(r.status.value, r.status.value),
                "count": r.count,
                "response": _minutes(
                    r.median_response_s / 60 if r.median_response_s is not None else None
                ),
            }
            for r in referral_rows
        ],
        csv_href="/admin/turnaround.csv" + (f"?{urlencode(query)}" if query else ""),
    )
    return render("admin.html", context)


# --- routes --------------------------------------------------------------------------------


def _all(handlers: Iterable[tuple[str, str, PageHandler]], app: web.Application) -> None:
    for method, path, handler in handlers:
        app.router.add_route(method, path, handler)


def add_routes(app: web.Application) -> None:
    case = "/cases/{id:\\d+}"
    _all(
        [
            ("GET", "/", landing),
            ("GET", "/login", login_page),
            ("POST", "/login", login_submit),
            ("POST", "/logout", logout),
            # the pages' live updates: the signed-in user's notifications, as /api/v1/events
            ("GET", "/events", page_action(events.stream)),
            # the reader's radiology case
            ("GET", case, page(case_page)),
            ("POST", "/worklist/next", page_action(casework.claim_next)),
            ("POST", case + "/claim", page_action(api.claim)),
            ("POST", case + "/release", page_action(api.release)),
            ("POST", case + "/report", page_action(api.report)),
            ("POST", case + "/escalate", page_action(casework.escalate)),
            ("POST", case + "/return", page_action(casework.return_to_clinic)),
            ("POST", case + "/second-read", page_action(casework.second_read)),
            # reports: the clinic's acknowledgement and PDF, the reader's addendum
            ("GET", "/reports/{id:\\d+}/pdf", page_action(casework.report_pdf)),
            ("POST", "/reports/{id:\\d+}/acknowledge", page_action(api.acknowledge)),
            ("POST", "/reports/{id:\\d+}/addendum", page_action(casework.addendum)),
            ("POST", "/referrals", page_action(referrals_api.create)),
            # the administrator's dashboard
            ("GET", "/admin", page(admin_page)),
            ("GET", "/admin/turnaround.csv", page_action(api.turnaround_csv)),
            # the ECG reading page
            ("GET", "/ecg/cases/{id:\\d+}", page(ecg_case_page)),
            (
                "GET",
                "/ecg/cases/{id:\\d+}/sheets/{sop}.{kind:png|pdf}",
                page_action(ecg_api.sheet),
            ),
            ("PATCH", "/ecg/cases/{id:\\d+}/ecg/{sop}", page_action(ecg_api.edit_ecg)),
            ("POST", "/ecg/cases/{id:\\d+}/claim", page_action(api.claim)),
            ("POST", "/ecg/cases/{id:\\d+}/report", page_action(api.report)),
        ],
        app,
    )
