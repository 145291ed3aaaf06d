"""The administrator's routing pages: reading pools, routing rules with the preview of where
a study would go, and each pool's week of duty as a calendar (server-rendered; the forms
send the JSON API's bodies through the page's own routes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError

from storage import network
from storage.records import DutyShift, Language, NetworkPolicy, Priority, Role, Specialty, User
from storage.rosters import DutyException, ExceptionKind
from teleradiology.core.errors import BadRequest, Forbidden
from teleradiology.core.language import N_, gettext, word
from teleradiology.core.network_file import parse_policy
from teleradiology.http.api.endpoints import reply
from teleradiology.http.api.models.admin import PolicyOut, PolicySaved
from teleradiology.http.api.models.rosters import PolicyForm, PreviewQuery
from teleradiology.http.api.rosters import monday_of, preview_of
from teleradiology.http.context import POOL, USER, current_user, user_zone
from teleradiology.http.params import body_of, invalid
from teleradiology.http.web.common import (
    base_context,
    local_time,
    page_language,
    render,
    signed_in,
)
from teleradiology.services import administration, rosters
from teleradiology.services.rosters import PlannedCase, RoutePreview

#: The days of the week, Monday first, as the templates translate them.
DAYS = (N_("周一"), N_("周二"), N_("周三"), N_("周四"), N_("周五"), N_("周六"), N_("周日"))
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The priorities as the rules' and the preview's forms name them (the API's words).
PRIORITIES = (("routine", Priority.MEDIUM), ("urgent", Priority.HIGH), ("low", Priority.LOW))
#: Why a case goes elsewhere than a rule says, in words.
_REASONS = {
    "default": N_("无匹配规则，按默认"),
    "no reader on duty at the first-read pool": N_("首读阅片组无人在岗"),
}


async def _admin(request: web.Request) -> User:
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden(N_("分诊页面供网络管理员使用"))
    request[USER] = user
    return user


def _hours(minutes: float) -> str:
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


def _preview_text(
    found: RoutePreview, case: PlannedCase, zone: ZoneInfo, language: Language
) -> str:
    """One case of the preview in a sentence of `language`."""
    _ = gettext(language)
    values = {
        "priority": word(case.priority, language),
        "modality": found.modality,
        "sender": found.sender.name,
        "at": f"{case.reads_at.name} [{case.reads_at.code}]",
        "due_in": _hours(case.due_in.total_seconds() / 60),
        "due_at": local_time(case.due_at, zone),
    }
    if case.pool is not None:
        values["pool"] = f"{case.pool.name} [{case.pool.code}]"
        where = N_("%(priority)s %(modality)s 来自 %(sender)s → 阅片组 %(pool)s 于 %(at)s")
    else:
        where = N_("%(priority)s %(modality)s 来自 %(sender)s → %(at)s")
    text = _(where) % values + _(N_("，时限 %(due_in)s，截止 %(due_at)s")) % values
    if case.escalation is not None and case.escalated_at is not None:
        text += _(N_("；未领取则于 %(when)s 上转至 %(to)s")) % {
            "when": local_time(case.escalated_at, zone),
            "to": f"{case.escalation.name} [{case.escalation.code}]",
        }
    if case.reason != "rule":
        text += _(N_("（%(reason)s）")) % {"reason": _(_REASONS.get(case.reason, case.reason))}
    return text


def preview_lines(found: RoutePreview, zone: ZoneInfo, language: Language) -> list[dict[str, str]]:
    """The preview in words: where each case goes, when it is due, where it escalates."""
    lines = []
    for c in found.cases:
        text = _preview_text(found, c, zone, language)
        lines.append(
            {
                "text": text,
                "pool": c.pool.code if c.pool else "",
                "facility": c.reads_at.code,
                "due_at": c.due_at.astimezone(UTC).isoformat(),
            }
        )
    return lines


async def _preview(
    request: web.Request, zone: ZoneInfo, language: Language
) -> tuple[dict[str, str], list[dict[str, str]], str | None]:
    """The preview the page's form asks for (its time is local), in words, or its error."""
    names = ("facility", "modality", "priority", "at")
    asked = {k: request.query[k] for k in names if request.query.get(k)}
    if "facility" not in asked:
        return asked, [], None
    query = dict(asked)
    if "at" in query:
        try:
            local = datetime.fromisoformat(query["at"])
        except ValueError:
            wrong = gettext(language)(N_("“%(at)s”不是日期和时间"))
            return asked, [], wrong % {"at": query["at"]}
        query["at"] = (local if local.tzinfo else local.replace(tzinfo=zone)).isoformat()
    try:
        found = await preview_of(request, PreviewQuery.model_validate(query))
    except BadRequest as exc:
        return asked, [], exc.say(language)
    except ValidationError as exc:
        return asked, [], invalid(exc, PreviewQuery).say(language)
    return asked, preview_lines(found, zone, language), None


async def policy_submit(request: web.Request) -> web.StreamResponse:
    """The deadlines form: a network's policy from flat fields, as the policy API sets it."""
    admin = current_user(request)
    form = await body_of(request, PolicyForm)
    policy = parse_policy(
        {
            "timezone": form.timezone,
            "deadline_minutes": {
                "urgent": form.urgent,
                "routine": form.routine,
                "low": form.low,
                "stemi": form.stemi,
            },
            "critical_ack_minutes": form.critical_ack,
            "at_risk_share": form.at_risk_share,
        }
    )
    code = request.match_info["code"]
    await administration.configure_facility(request.app[POOL], admin, code, policy=policy)
    return reply(PolicySaved(facility=code, policy=PolicyOut.of(policy)))


def _minutes_of(value: timedelta) -> str:
    return f"{value.total_seconds() / 60:g}"


def _policy_fields(policy: NetworkPolicy) -> dict[str, str]:
    """A policy as the deadlines form's values."""
    return {
        "urgent": _minutes_of(policy.deadlines[Priority.HIGH]),
        "routine": _minutes_of(policy.deadlines[Priority.MEDIUM]),
        "low": _minutes_of(policy.deadlines[Priority.LOW]),
        "stemi": _minutes_of(policy.stemi_deadline),
        "critical_ack": _minutes_of(policy.critical_ack),
        "at_risk_share": f"{round(policy.at_risk_share, 4):g}",
        "timezone": policy.timezone,
    }


async def routing_page(request: web.Request) -> web.StreamResponse:
    """Pools, routing rules and SLAs of the administrator's network, and the preview."""
    admin = await _admin(request)
    pool = request.app[POOL]
    zone = await user_zone(request, admin)
    facilities, duty = await network.routing_config(pool, admin)
    asked, lines, error = await _preview(request, zone, page_language(request, admin))
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("分诊规则与阅片组"),
        priorities=PRIORITIES,
        specialties=list(Specialty),
        pools=await rosters.list_pools(pool, admin),
        facilities=facilities,
        readers=[u for u in duty if u.role is Role.READER],
        rules=[(f, r) for f in facilities for r in f.routes],
        policies=[(f, _policy_fields(f.policy)) for f in facilities if f.policy is not None],
        network_policy=_policy_fields(await network.policy_of(pool, admin.facility_id)),
        asked=asked,
        preview=lines,
        preview_error=error,
        now_local=datetime.now(zone).strftime("%Y-%m-%dT%H:%M"),
        day_keys=list(zip(DAY_KEYS, DAYS, strict=True)),
    )
    return render("routing.html", context)


@dataclass
class _Cell:
    """One member's day in the calendar."""

    shifts: list[str] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    leave: list[dict[str, Any]] = field(default_factory=list)


def _span(starts: time | None, ends: time | None) -> str:
    if starts is None or ends is None:
        return N_("全天")
    end = "24:00" if ends == time.max else ends.strftime("%H:%M")
    return f"{starts.strftime('%H:%M')}–{end}" + (" (+1)" if ends <= starts else "")


def week_cells(
    shifts: list[DutyShift], exceptions: list[DutyException], monday: date
) -> list[_Cell]:
    """A member's seven days from ``monday``: weekly shifts, extra shifts and leave."""
    cells = [_Cell() for _ in range(7)]
    for s in shifts:
        for day in sorted(s.weekdays):
            cells[day - 1].shifts.append(_span(s.starts, s.ends))
    for e in exceptions:
        index = (e.day - monday).days
        if not 0 <= index < 7:
            continue
        entry = {"id": e.id, "span": _span(e.starts, e.ends)}
        target = cells[index].leave if e.kind is ExceptionKind.LEAVE else cells[index].extra
        target.append(entry)
    return cells


async def roster_page(request: web.Request) -> web.StreamResponse:
    """A pool's week as a calendar grid: its members by day, with forms to add a weekly
    shift, leave or an extra shift."""
    admin = await _admin(request)
    zone = await user_zone(request, admin)
    try:
        day = date.fromisoformat(request.query["week"]) if "week" in request.query else None
    except ValueError:
        raise BadRequest(
            N_("week=%(week)r 不是日期，应写作 2026-01-05"), week=request.query["week"]
        ) from None
    monday = monday_of(day or datetime.now(zone).date())
    week = await rosters.pool_week(request.app[POOL], admin, request.match_info["code"], monday)
    rows = [
        {
            "username": m.username,
            "display_name": m.display_name,
            "cells": week_cells(
                list(m.shifts), [e for e in week.exceptions if e.username == m.username], monday
            ),
        }
        for m in week.members
    ]
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("排班") + f" · {week.pool.name}",
        pool=week.pool,
        days=[(DAYS[i], monday + timedelta(days=i)) for i in range(7)],
        rows=rows,
        monday=monday,
        previous=monday - timedelta(days=7),
        next=monday + timedelta(days=7),
        today=datetime.now(zone).date(),
        day_keys=list(zip(DAY_KEYS, DAYS, strict=True)),
        now=datetime.now(UTC),
    )
    return render("roster.html", context)
