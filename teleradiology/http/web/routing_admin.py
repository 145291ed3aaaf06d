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
from storage.records import DutyShift, NetworkPolicy, Priority, Role, User
from storage.rosters import DutyException, ExceptionKind
from teleradiology.core.errors import BadRequest, Forbidden
from teleradiology.core.network_file import parse_policy
from teleradiology.http.api.endpoints import reply
from teleradiology.http.api.models.admin import PolicyOut, PolicySaved
from teleradiology.http.api.models.rosters import PolicyForm, PreviewQuery
from teleradiology.http.api.rosters import monday_of, preview_of
from teleradiology.http.context import POOL, USER, current_user, user_zone
from teleradiology.http.params import body_of
from teleradiology.http.web.common import base_context, local_time, render, signed_in
from teleradiology.services import administration, rosters
from teleradiology.services.rosters import RoutePreview

DAYS = ("一 (Mon)", "二 (Tue)", "三 (Wed)", "四 (Thu)", "五 (Fri)", "六 (Sat)", "日 (Sun)")
DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PRIORITY_WORDS = {"high": "急诊 (urgent)", "medium": "常规 (routine)", "low": "低 (low)"}


async def _admin(request: web.Request) -> User:
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden("the routing pages are for network administrators")
    request[USER] = user
    return user


def _hours(minutes: float) -> str:
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


def preview_lines(found: RoutePreview, zone: ZoneInfo) -> list[dict[str, str]]:
    """The preview in words: where each case goes, when it is due, where it escalates."""
    lines = []
    for c in found.cases:
        where = f"阅片组 (pool) {c.pool.name} [{c.pool.code}] 于 (at) " if c.pool else ""
        minutes = c.due_in.total_seconds() / 60
        text = (
            f"{_PRIORITY_WORDS[c.priority.value]} {found.modality} 来自 (from) "
            f"{found.sender.name} → {where}{c.reads_at.name} [{c.reads_at.code}]，"
            f"时限 (due in) {_hours(minutes)}，截止 (due at) {local_time(c.due_at, zone)}"
        )
        if c.escalation is not None and c.escalated_at is not None:
            text += (
                f"；未领取则于 {local_time(c.escalated_at, zone)} 上转至 (escalated to) "
                f"{c.escalation.name} [{c.escalation.code}]"
            )
        if c.reason != "rule":
            text += f"（{c.reason}）"
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
    request: web.Request, zone: ZoneInfo
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
            return asked, [], f"{query['at']!r} is not a date and time"
        query["at"] = (local if local.tzinfo else local.replace(tzinfo=zone)).isoformat()
    try:
        found = await preview_of(request, PreviewQuery.model_validate(query))
    except (BadRequest, ValidationError) as exc:
        return asked, [], str(exc)
    return asked, preview_lines(found, zone), None


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
    asked, lines, error = await _preview(request, zone)
    context = await base_context(request, admin)
    context.update(
        title="分诊规则与阅片组 (routing)",
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
        return "全天 (all day)"
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
        raise BadRequest(f"week={request.query['week']!r} is not a date like 2026-01-05") from None
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
        title=f"排班 (roster) · {week.pool.name}",
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
