"""Two-way referral (双向转诊) under /api/v1/referrals, and its statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from storage.records import Referral, ReferralDirection, Role, Urgency
from storage.referrals import referral_stats
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest
from teleradiology.core.referrals import ReferralRequest
from teleradiology.http.context import POOL, current_user
from teleradiology.http.params import (
    choice,
    int_param,
    iso,
    json_body,
    optional_bool,
    parse_time,
    path_id,
    text_field,
    time_param,
)
from teleradiology.services import referrals


def referral_json(r: Referral) -> dict[str, Any]:
    return {
        "id": r.id,
        "direction": r.direction.value,
        "status": r.status.value,
        "urgency": r.urgency.value,
        "reason": r.reason,
        "case_id": r.case_id,
        "in_reply_to": r.in_reply_to,
        "from": r.from_facility_code,
        "to": r.to_facility_code,
        "patient_name": r.patient_name,
        "discharge_summary": r.discharge_summary,
        "follow_up_plan": r.follow_up_plan,
        "created_at": iso(r.created_at),
        "responded_at": iso(r.responded_at),
        "appointment_at": iso(r.appointment_at),
        "decline_reason": r.decline_reason,
    }


def _optional_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest(f"'{name}' must be a record id")
    return value


async def create(request: web.Request) -> web.Response:
    """Raise an up-referral (上转) or a down-referral (下转/转回)."""
    user = current_user(request)
    require_role(user, Role.CLINIC, Role.READER, Role.ADMIN)
    body = await json_body(request)
    direction = choice(body, "direction", ReferralDirection, ReferralDirection.UP)
    down = direction is ReferralDirection.DOWN
    req = ReferralRequest(
        direction=direction,
        to_facility=text_field(body, "to", max_len=64),
        urgency=choice(body, "urgency", Urgency, Urgency.ROUTINE),
        reason=text_field(body, "reason", max_len=4000),
        case_id=_optional_int(body, "case_id"),
        in_reply_to=_optional_int(body, "in_reply_to"),
        discharge_summary=text_field(body, "discharge_summary", required=down) or None,
        follow_up_plan=text_field(body, "follow_up_plan", required=down) or None,
    )
    found = await referrals.create(request.app[POOL], user, req)
    return web.json_response(referral_json(found), status=201)


async def respond(request: web.Request) -> web.Response:
    """The receiving facility accepts (接诊, with a time) or declines (with a reason)."""
    user = current_user(request)
    body = await json_body(request)
    accept = optional_bool(body, "accept")
    if accept is None:
        raise BadRequest("send 'accept': true (with 'appointment_at') or false (with 'reason')")
    when = body.get("appointment_at")
    if when is not None and not isinstance(when, str):
        raise BadRequest("'appointment_at' must be an ISO 8601 time")
    found = await referrals.respond(
        request.app[POOL],
        path_id(request),
        user,
        accept=accept,
        appointment_at=parse_time(when, "appointment_at") if when else None,
        reason=text_field(body, "reason", required=False, max_len=2000) or None,
    )
    return web.json_response(referral_json(found))


async def list_referrals(request: web.Request) -> web.Response:
    found = await referrals.listed(
        request.app[POOL],
        current_user(request),
        limit=int_param(request, "limit", 100, low=1, high=1000),
        offset=int_param(request, "offset", 0, low=0, high=10**9),
    )
    return web.json_response({"referrals": [referral_json(r) for r in found]})


async def get_referral(request: web.Request) -> web.Response:
    found = await referrals.read(request.app[POOL], current_user(request), path_id(request))
    return web.json_response(referral_json(found))


async def stats(request: web.Request) -> web.Response:
    """Referrals per sending facility, direction and status, for administrators."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    until = time_param(request, "until", datetime.now(UTC) + timedelta(seconds=1))
    since = time_param(request, "since", until - timedelta(days=30))
    rows = await referral_stats(request.app[POOL], user.facility_id, since, until)
    return web.json_response(
        {
            "since": iso(since),
            "until": iso(until),
            "referrals": [
                {
                    "facility": r.facility_code,
                    "direction": r.direction.value,
                    "status": r.status.value,
                    "count": r.count,
                    "median_response_minutes": (
                        round(r.median_response_s / 60, 2)
                        if r.median_response_s is not None
                        else None
                    ),
                }
                for r in rows
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/referrals", create)
    r.add_get("/api/v1/referrals", list_referrals)
    r.add_get("/api/v1/referrals/{id}", get_referral)
    r.add_post("/api/v1/referrals/{id}/respond", respond)
    r.add_get("/api/v1/stats/referrals", stats)
