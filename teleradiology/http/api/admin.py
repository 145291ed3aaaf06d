"""Routing as data, edited by administrators under /api/v1/admin: the network's deadlines,
each facility's routing rules and report destination, and readers' on-duty schedules.

The bodies are the network file's tables as JSON (``deadline_minutes``, ``route``,
``report_destination``, ``duty``), so a rule reads the same in the file and in the API.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from aiohttp import web

from storage import network
from storage.jobs import FailedDelivery, FailedKind
from storage.records import DutyShift, NetworkPolicy, Priority, Role, RouteSpec
from teleradiology.core.access import require_role
from teleradiology.core.errors import NotFound
from teleradiology.core.network_file import (
    parse_destination,
    parse_duty,
    parse_policy,
    parse_routes,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.params import iso, json_body
from teleradiology.services import administration

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(value: timedelta) -> float:
    return round(value.total_seconds() / 60, 3)


def policy_json(p: NetworkPolicy) -> dict[str, Any]:
    return {
        "timezone": p.timezone,
        "deadline_minutes": {
            "urgent": _minutes(p.deadlines[Priority.HIGH]),
            "routine": _minutes(p.deadlines[Priority.MEDIUM]),
            "low": _minutes(p.deadlines[Priority.LOW]),
            "stemi": _minutes(p.stemi_deadline),
        },
        "critical_ack_minutes": _minutes(p.critical_ack),
        "at_risk_share": p.at_risk_share,
    }


def route_json(r: RouteSpec) -> dict[str, Any]:
    return {
        "modality": r.modality,
        "specialty": r.specialty.value if r.specialty else None,
        "priority": r.priority.value if r.priority else None,
        "first_read": r.first_read,
        "escalation": r.escalation,
        "deadline_minutes": _minutes(r.deadline) if r.deadline else None,
    }


def _clock(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


def shift_json(s: DutyShift) -> dict[str, Any]:
    return {
        "days": [_DAY_NAMES[d - 1] for d in sorted(s.weekdays)],
        "from": _clock(s.starts),
        "until": _clock(s.ends),
    }


async def get_routing(request: web.Request) -> web.Response:
    """The administrator's network as routing sees it."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    facilities, duty = await network.routing_config(request.app[POOL], user)
    return web.json_response(
        {
            "facilities": [
                {
                    "code": f.code,
                    "name": f.name,
                    "tier": f.tier.value,
                    "policy": policy_json(f.policy) if f.policy else None,
                    "routes": [route_json(r) for r in f.routes],
                    "report_destination": (
                        {
                            "ae_title": f.report_destination.ae_title,
                            "host": f.report_destination.host,
                            "port": f.report_destination.port,
                        }
                        if f.report_destination
                        else None
                    ),
                }
                for f in facilities
            ],
            "users": [
                {
                    "username": u.username,
                    "facility": u.facility,
                    "role": u.role.value,
                    "duty": [shift_json(s) for s in u.shifts],
                }
                for u in duty
            ],
        }
    )


async def put_policy(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    policy = parse_policy(await json_body(request))
    code = request.match_info["code"]
    await administration.configure_facility(request.app[POOL], user, code, policy=policy)
    return web.json_response({"facility": code, "policy": policy_json(policy)})


async def put_routes(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await json_body(request)
    routes = parse_routes(body.get("routes"))
    code = request.match_info["code"]
    await administration.configure_facility(request.app[POOL], user, code, routes=routes)
    return web.json_response({"facility": code, "routes": [route_json(r) for r in routes]})


async def put_destination(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    destination = parse_destination(await json_body(request))
    code = request.match_info["code"]
    await administration.configure_facility(request.app[POOL], user, code, destination=destination)
    return web.json_response(
        {
            "facility": code,
            "report_destination": {
                "ae_title": destination.ae_title,
                "host": destination.host,
                "port": destination.port,
            },
        }
    )


async def put_duty(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await json_body(request)
    shifts = parse_duty(body.get("duty"))
    username = request.match_info["username"]
    await administration.set_duty(request.app[POOL], user, username, shifts)
    return web.json_response({"username": username, "duty": [shift_json(s) for s in shifts]})


def failed_json(f: FailedDelivery) -> dict[str, Any]:
    return {
        "kind": f.kind.value,
        "id": f.id,
        "report_id": f.report_id,
        "case_id": f.case_id,
        "facility": f.facility_code,
        "attempts": f.attempts,
        "last_error": f.last_error,
        "failed_at": iso(f.failed_at),
    }


async def get_failed_deliveries(request: web.Request) -> web.Response:
    found = await administration.failed_deliveries(request.app[POOL], current_user(request))
    return web.json_response({"failed": [failed_json(f) for f in found]})


async def retry_failed_delivery(request: web.Request) -> web.Response:
    try:
        kind = FailedKind(request.match_info["kind"])
    except ValueError:
        raise NotFound("a failed delivery is a 'report' or a 'dicom_copy'") from None
    item_id = int(request.match_info["id"])
    await administration.retry_delivery(request.app[POOL], current_user(request), kind, item_id)
    return web.json_response({"kind": kind.value, "id": item_id, "retried": True})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/admin/deliveries/failed", get_failed_deliveries)
    r.add_post("/api/v1/admin/deliveries/failed/{kind}/{id:\\d+}/retry", retry_failed_delivery)
    r.add_get("/api/v1/admin/routing", get_routing)
    r.add_put("/api/v1/admin/facilities/{code}/policy", put_policy)
    r.add_put("/api/v1/admin/facilities/{code}/routes", put_routes)
    r.add_put("/api/v1/admin/facilities/{code}/report-destination", put_destination)
    r.add_put("/api/v1/admin/users/{username}/duty", put_duty)
