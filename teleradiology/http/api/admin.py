"""Routing as data, edited by administrators under /api/v1/admin: the network's deadlines,
each facility's routing rules and report destination, and readers' on-duty schedules.

The bodies are the network file's tables as JSON (``deadline_minutes``, ``route``,
``report_destination``, ``duty``), so a rule reads the same in the file and in the API: the
models check their shape, the network file's parsers their meaning.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from storage import network
from storage.records import Role
from teleradiology.core.access import require_role
from teleradiology.core.network_file import (
    parse_duty,
    parse_policy,
    parse_routes,
)
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.admin import (
    DestinationIn,
    DestinationOut,
    DestinationSaved,
    DutyIn,
    DutySaved,
    DutyUserOut,
    FacilityPath,
    FacilityRoutingOut,
    FailedDeliveriesOut,
    FailedDeliveryOut,
    FailedPath,
    PolicyIn,
    PolicyOut,
    PolicySaved,
    QuotaIn,
    QuotaSaved,
    RetriedOut,
    RouteOut,
    RoutesIn,
    RoutesSaved,
    RoutingOut,
    ShiftOut,
    UserPath,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.params import body_of, path_of
from teleradiology.services import administration

routes = Routes(tag="admin")


def _sent(body: BaseModel) -> Any:
    """What the client sent, as the network file's parsers read a table."""
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


@routes.get(
    "/api/v1/admin/routing",
    answer=RoutingOut,
    summary="The administrator's network as routing sees it: policies (deadlines per "
    "priority and STEMI, critical-result window), routing rules, report destinations, duty "
    "rosters",
)
async def get_routing(request: web.Request) -> web.Response:
    """The administrator's network as routing sees it."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    facilities, duty = await network.routing_config(request.app[POOL], user)
    return reply(
        RoutingOut(
            facilities=[FacilityRoutingOut.of(f) for f in facilities],
            users=[DutyUserOut.of(u) for u in duty],
        )
    )


@routes.put(
    "/api/v1/admin/facilities/{code}/policy",
    path=FacilityPath,
    body=PolicyIn,
    answer=PolicySaved,
    summary="Set the deadlines and timings of a network",
)
async def put_policy(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    policy = parse_policy(_sent(await body_of(request, PolicyIn)))
    code = path_of(request, FacilityPath).code
    await administration.configure_facility(request.app[POOL], user, code, policy=policy)
    return reply(PolicySaved(facility=code, policy=PolicyOut.of(policy)))


@routes.put(
    "/api/v1/admin/facilities/{code}/routes",
    path=FacilityPath,
    body=RoutesIn,
    answer=RoutesSaved,
    summary="Replace the routing rules of a sending facility (empty: the defaults)",
)
async def put_routes(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    found = parse_routes(_sent(await body_of(request, RoutesIn))["routes"])
    code = path_of(request, FacilityPath).code
    await administration.configure_facility(request.app[POOL], user, code, routes=found)
    return reply(RoutesSaved(facility=code, routes=[RouteOut.of(r) for r in found]))


@routes.put(
    "/api/v1/admin/facilities/{code}/report-destination",
    path=FacilityPath,
    body=DestinationIn,
    answer=DestinationSaved,
    summary="Choose which of the facility's configured DICOM nodes takes its reports back "
    "(by AE title; its host and port are the node's)",
)
async def put_destination(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await body_of(request, DestinationIn)
    code = path_of(request, FacilityPath).code
    destination = await administration.configure_facility(
        request.app[POOL], user, code, destination_ae=body.ae_title
    )
    assert destination is not None
    saved = DestinationOut.from_record(destination)
    return reply(DestinationSaved(facility=code, report_destination=saved))


@routes.put(
    "/api/v1/admin/users/{username}/duty",
    path=UserPath,
    body=DutyIn,
    answer=DutySaved,
    summary="Replace a user's weekly on-duty shifts (empty: always on duty)",
)
async def put_duty(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    shifts = parse_duty(_sent(await body_of(request, DutyIn))["duty"])
    username = path_of(request, UserPath).username
    await administration.set_duty(request.app[POOL], user, username, shifts)
    return reply(DutySaved(username=username, duty=[ShiftOut.of(s) for s in shifts]))


@routes.get(
    "/api/v1/admin/deliveries/failed",
    answer=FailedDeliveriesOut,
    summary="Deliveries given up on after every attempt: final reports not delivered to the "
    "clinic, DICOM copies not accepted by a report destination (the caller's network)",
)
async def get_failed_deliveries(request: web.Request) -> web.Response:
    found = await administration.failed_deliveries(request.app[POOL], current_user(request))
    return reply(FailedDeliveriesOut(failed=[FailedDeliveryOut.of(f) for f in found]))


@routes.post(
    "/api/v1/admin/deliveries/failed/{kind}/{id}/retry",
    path=FailedPath,
    answer=RetriedOut,
    summary="Try a given-up delivery again (404 if it is not failed, or not in your network)",
)
async def retry_failed_delivery(request: web.Request) -> web.Response:
    named = path_of(request, FailedPath)
    await administration.retry_delivery(
        request.app[POOL], current_user(request), named.kind, named.id
    )
    return reply(RetriedOut(kind=named.kind, id=named.id, retried=True))


@routes.put(
    "/api/v1/admin/facilities/{code}/quota",
    path=FacilityPath,
    body=QuotaIn,
    answer=QuotaSaved,
    summary="Set a facility's own daily intake limits (bytes, instances; null: the default)",
)
async def put_quota(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    asked = await body_of(request, QuotaIn)
    code = path_of(request, FacilityPath).code
    sent = await administration.set_intake_limits(
        request.app[POOL],
        user,
        code,
        bytes_per_day=asked.bytes_per_day,
        instances_per_day=asked.instances_per_day,
    )
    return reply(
        QuotaSaved(
            facility=code,
            bytes_per_day=sent.own_bytes_per_day,
            instances_per_day=sent.own_instances_per_day,
            sent_today_bytes=sent.bytes,
            sent_today_instances=sent.instances,
        )
    )


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
