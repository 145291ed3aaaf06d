"""What every page shares: templates, the words on the pages, times and names as people
write them, the signed-in user, and the wrappers that turn a handler into a page or a page's
action.

Pages are jinja2 templates (autoescaped) over one base template and one stylesheet; they
read through the functions the JSON API uses, scoped to the signed-in user and audited as
the API audits. A page's actions are routes beside it that run the JSON API's own handlers
for the session-cookie user (:func:`page_action`): a change needs the pages' header and a
same-site Origin, and the cookie is SameSite=Strict.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from storage import (
    network,
)
from storage.records import (
    Priority,
    Report,
    ReturnReason,
    User,
)
from teleradiology.core.errors import Forbidden, NotFound, Unauthorized
from teleradiology.http.context import POOL, USER
from teleradiology.http.session import session_user

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


async def base_context(request: web.Request, user: User | None) -> dict[str, Any]:
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
            context = await base_context(request, user)
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


async def facility_names(request: web.Request) -> dict[str, str]:
    return {f.code: f.name for f in await network.list_facilities(request.app[POOL])}


def report_context(r: Report, zone: ZoneInfo) -> dict[str, Any]:
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


def event_detail(kind: str, detail: dict[str, Any]) -> str:
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
