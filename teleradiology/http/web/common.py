"""What every page shares: templates (they and the pages take their words from
:mod:`teleradiology.core.words`), times and names as people write them, the signed-in user,
and the wrappers that turn a handler into a page or a page's action.

Pages are jinja2 templates (autoescaped) over one base template and one stylesheet; they
read through the functions the JSON API uses, scoped to the signed-in user and audited as
the API audits. A page's actions are routes beside it that run the JSON API's own handlers
for the session-cookie user (:func:`page_action`): a change needs the pages' header and a
same-site Origin, and the cookie is SameSite=Strict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
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
    CaseStatus,
    Conclusion,
    Language,
    NotificationKind,
    Priority,
    Report,
    ReportStatus,
    ReturnReason,
    Specialty,
    Urgency,
    User,
)
from teleradiology.core.errors import Forbidden, NotFound, Unauthorized
from teleradiology.core.language import N_, gettext, ngettext, parse_language, word
from teleradiology.http.context import POOL, TOKEN, USER
from teleradiology.http.headers import site_origin
from teleradiology.http.problems import audit_denied
from teleradiology.http.session import LANGUAGE_COOKIE, session_token, session_user

PAGE_HEADER = "X-Telemed-Page"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
# the templates' own words (their choices and labels), and those the scripts show
TEMPLATES.globals.update(
    # a page's words are in its language (base_context sets these; zh-CN without it)
    lang=Language.ZH_CN.value,
    _=gettext(Language.ZH_CN),
    ngettext=ngettext(Language.ZH_CN),
    word=lambda member: word(member, Language.ZH_CN),
    CaseStatus=CaseStatus,
    Priority=Priority,
    ReportStatus=ReportStatus,
    Specialty=Specialty,
    Urgency=Urgency,
)

# --- shared helpers --------------------------------------------------------------------


def local_time(at: datetime | None, zone: ZoneInfo) -> str:
    """A server UTC time as the network's local time (Asia/Shanghai)."""
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if at else ""


def time_left(deadline: datetime, now: datetime, language: Language) -> tuple[str, bool]:
    """The time to a deadline in words, in `language`, and whether it has passed."""
    seconds = (deadline - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    overdue = seconds < 0
    return _time_left_in(language, overdue, days, hours, mins), overdue


def _time_left_in(language: Language, overdue: bool, days: int, hours: int, mins: int) -> str:
    _ = gettext(language)
    if days:
        text = _(N_("%(days)s天%(hours)s小时")) % {"days": days, "hours": hours}
    elif hours:
        text = _(N_("%(hours)s小时%(mins)s分")) % {"hours": hours, "mins": mins}
    else:
        text = _(N_("%(mins)s分")) % {"mins": mins}
    if overdue:
        return _(N_("超时 %(time)s")) % {"time": text}
    return _(N_("剩余 %(time)s")) % {"time": text}


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


def page_language(request: web.Request, user: User | None) -> Language:
    """The language of a page: the user's own, else the sign-in page's switch (cookie),
    else zh-CN."""
    if user is not None:
        return user.language
    return parse_language(request.cookies.get(LANGUAGE_COOKIE)) or Language.ZH_CN


def language_context(language: Language) -> dict[str, Any]:
    """What a template writes its words with: ``_`` for its own, ``ngettext`` for its
    phrases with a count, ``word`` for an enumeration's, and ``lang`` (the page's
    ``<html lang>``)."""

    def word_of(member: Enum) -> str:
        return word(member, language)

    return {
        "lang": language.value,
        "_": gettext(language),
        "ngettext": ngettext(language),
        "word": word_of,
    }


async def base_context(request: web.Request, user: User | None) -> dict[str, Any]:
    facility = ""
    if user is not None:
        chain = await network.facility_chain(request.app[POOL], user.facility_id)
        facility = chain[0].name if chain else ""
    language = page_language(request, user)
    return {
        "user": user,
        "facility_name": facility,
        "path": request.path,
        "script_words": script_words(language),
        **language_context(language),
    }


#: The messages of the pages' shared script (app.js), by its name for each.
SCRIPT_MESSAGES = {
    "done": N_("已完成"),
    "failed": N_("操作失败"),
    "one_time_link": N_("一次性链接"),
    "reload": N_("刷新"),
    "arrived": N_("已到达：%(kind)s"),
    "lost": N_("实时连接中断，定时刷新"),
}


def script_words(language: Language) -> dict[str, dict[str, str]]:
    """The words of the server's values the pages' scripts show, and the scripts' own
    messages, in a page's language."""
    _ = gettext(language)
    return {
        "conclusion": {c.value: word(c, language) for c in Conclusion},
        "report_status": {s.value: word(s, language) for s in ReportStatus},
        "notification": {n.value: word(n, language) for n in NotificationKind},
        "messages": {name: _(text) for name, text in SCRIPT_MESSAGES.items()},
    }


#: A page rendered without a signed-in context (base_context) shows its scripts' words in zh-CN.
TEMPLATES.globals["script_words"] = script_words(Language.ZH_CN)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: PageHandler) -> PageHandler:
    """A page: what is not found or not allowed answers an HTML page a person can read."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except (NotFound, Forbidden) as exc:
            status = 404 if isinstance(exc, NotFound) else 403
            user = await session_user(request)
            if user is not None:
                request[USER] = user
                await audit_denied(request, exc)
            context = await base_context(request, user)
            title = context["_"](N_("未找到") if status == 404 else N_("无权访问"))
            detail = exc.say(page_language(request, user))
            return render(
                "error.html", {**context, "title": title, "detail": detail}, status=status
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
            raise Unauthorized(N_("您的会话已结束；请在 /login 重新登录"))
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("Origin")
            if request.headers.get(PAGE_HEADER) != "1" or (
                origin is not None and origin != site_origin(request)
            ):
                raise Forbidden(N_("只能在本站自己的页面上修改"))
        request[USER] = user
        token = session_token(request)
        if token is not None:
            request[TOKEN] = token
        return await handler(request)

    return run


async def facility_names(request: web.Request) -> dict[str, str]:
    return {f.code: f.name for f in await network.list_facilities(request.app[POOL])}


def report_context(
    r: Report, zone: ZoneInfo, language: Language = Language.ZH_CN
) -> dict[str, Any]:
    """A report as the pages show it: its status and conclusion in `language`
    (``status_word``, ``conclusion_word``)."""
    return {
        "id": r.id,
        "status": r.status.value,
        "status_word": word(r.status, language),
        "conclusion": r.conclusion.value,
        "conclusion_word": word(r.conclusion, language),
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
        "read_back": r.acknowledged_read_back or "",
        "critical_due_at": local_time(r.critical_due_at, zone),
        "pdf": f"/reports/{r.id}/pdf" if r.has_pdf else "",
    }


def stored_word(kind: type[Enum], value: str, language: Language) -> str:
    """A stored value of ``kind`` in `language`; a value that names none of its members
    (written by an older release) as it is."""
    try:
        return word(kind(value), language)
    except ValueError:
        return value


def event_detail(kind: str, detail: dict[str, Any], language: Language) -> str:
    """A case event's detail: its values of an enumeration in `language`."""
    parts: list[str] = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if key == "reason" and kind == "returned":
            value = stored_word(ReturnReason, str(value), language)
        elif key == "conclusion":
            value = stored_word(Conclusion, str(value), language)
        parts.append(f"{key}: {value}")
    return ("; " if language is Language.EN else "；").join(parts)
