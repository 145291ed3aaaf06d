"""The administrator's console for routing under /api/v1/admin: reading pools, the duty
roster (a weekly shift added, leave or an extra shift on a date), a routing rule added, and
the preview of where a study would go (the plan real routing makes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from storage.records import Priority, Specialty
from storage.rosters import ExceptionKind
from teleradiology.core.errors import BadRequest, ConfigError
from teleradiology.core.network_file import parse_clock, parse_duty, parse_priority, parse_routes
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.admin import (
    FacilityPath,
    RouteIn,
    RouteOut,
    RoutesSaved,
    ShiftIn,
    UserPath,
)
from teleradiology.http.api.models.rosters import (
    ExceptionIn,
    ExceptionOut,
    ExceptionPath,
    PoolIn,
    PoolOut,
    PoolPatch,
    PoolPath,
    PoolsOut,
    PreviewOut,
    PreviewQuery,
    RosterOut,
    RosterQuery,
    ShiftsSaved,
)
from teleradiology.http.context import POOL, current_user, user_zone
from teleradiology.http.params import body_of, parse_time, path_of, query_of
from teleradiology.services import rosters

routes = Routes(tag="admin")


@routes.get(
    "/api/v1/admin/pools",
    answer=PoolsOut,
    summary="The reading pools of the administrator's network, with their members",
)
async def list_pools(request: web.Request) -> web.Response:
    found = await rosters.list_pools(request.app[POOL], current_user(request))
    return reply(PoolsOut(pools=[PoolOut.of(p) for p in found]))


@routes.post(
    "/api/v1/admin/pools",
    body=PoolIn,
    answer=PoolOut,
    status=201,
    summary="Create a reading pool (name, specialty, the county or city that reads, members)",
)
async def create_pool(request: web.Request) -> web.Response:
    asked = await body_of(request, PoolIn)
    made = await rosters.create_pool(
        request.app[POOL],
        current_user(request),
        code=asked.code,
        name=asked.name,
        specialty=Specialty(asked.specialty),
        facility=asked.facility,
        members=asked.members,
    )
    return reply(PoolOut.of(made), status=201)


@routes.patch(
    "/api/v1/admin/pools/{code}",
    path=PoolPath,
    body=PoolPatch,
    answer=PoolOut,
    summary="Change a reading pool: its name, specialty, facility, members; "
    '{"active": false} deactivates it',
)
async def update_pool(request: web.Request) -> web.Response:
    asked = await body_of(request, PoolPatch)
    changed = await rosters.update_pool(
        request.app[POOL],
        current_user(request),
        path_of(request, PoolPath).code,
        name=asked.name,
        specialty=Specialty(asked.specialty) if asked.specialty else None,
        facility=asked.facility,
        members=asked.members,
        active=asked.active,
    )
    return reply(PoolOut.of(changed))


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@routes.get(
    "/api/v1/admin/pools/{code}/roster",
    path=PoolPath,
    query=RosterQuery,
    answer=RosterOut,
    summary="A pool's week: its members' weekly shifts and the exceptions in the week "
    "(the network's local dates)",
)
async def pool_roster(request: web.Request) -> web.Response:
    user = current_user(request)
    asked = query_of(request, RosterQuery)
    today = datetime.now(await user_zone(request, user)).date()
    week = await rosters.pool_week(
        request.app[POOL], user, path_of(request, PoolPath).code, monday_of(asked.week or today)
    )
    return reply(RosterOut.of(week))


@routes.post(
    "/api/v1/admin/users/{username}/shifts",
    path=UserPath,
    body=ShiftIn,
    answer=ShiftsSaved,
    summary="Add a weekly on-duty shift to a user's roster (days, from, until, local time)",
)
async def add_shift(request: web.Request) -> web.Response:
    sent = (await body_of(request, ShiftIn)).model_dump(by_alias=True, exclude_unset=True)
    (shift,) = parse_duty([sent])
    username = path_of(request, UserPath).username
    now = await rosters.add_shift(request.app[POOL], current_user(request), username, shift)
    return reply(ShiftsSaved.of(username, now))


@routes.post(
    "/api/v1/admin/users/{username}/duty-exceptions",
    path=UserPath,
    body=ExceptionIn,
    answer=ExceptionOut,
    status=201,
    summary="Leave (whole day, or from–until) or an extra shift for a user on a local date",
)
async def add_exception(request: web.Request) -> web.Response:
    asked = await body_of(request, ExceptionIn)
    made = await rosters.add_exception(
        request.app[POOL],
        current_user(request),
        path_of(request, UserPath).username,
        day=asked.date,
        kind=ExceptionKind(asked.kind),
        starts=parse_clock(asked.from_, "from") if asked.from_ else None,
        ends=parse_clock(asked.until, "until") if asked.until else None,
    )
    return reply(ExceptionOut.of(made), status=201)


@routes.delete(
    "/api/v1/admin/duty-exceptions/{id}",
    path=ExceptionPath,
    answer=ExceptionOut,
    summary="Remove a duty exception",
)
async def delete_exception(request: web.Request) -> web.Response:
    gone = await rosters.delete_exception(
        request.app[POOL], current_user(request), path_of(request, ExceptionPath).id
    )
    return reply(ExceptionOut.of(gone))


@routes.post(
    "/api/v1/admin/facilities/{code}/routes",
    path=FacilityPath,
    body=RouteIn,
    answer=RoutesSaved,
    summary="Add a routing rule to a sending facility (it replaces the facility's rule for "
    "the same modality, specialty and priority)",
)
async def add_route(request: web.Request) -> web.Response:
    sent = (await body_of(request, RouteIn)).model_dump(
        mode="json", by_alias=True, exclude_unset=True
    )
    (rule,) = parse_routes([sent])
    code = path_of(request, FacilityPath).code
    now = await rosters.add_route(request.app[POOL], current_user(request), code, rule)
    return reply(RoutesSaved(facility=code, routes=[RouteOut.of(r) for r in now]))


async def preview_of(request: web.Request, asked: PreviewQuery) -> rosters.RoutePreview:
    """The preview a query asks for (its time in UTC unless it gives an offset)."""
    try:
        priority: Priority = parse_priority(asked.priority)
    except ConfigError as exc:
        raise BadRequest(exc.phrase) from None
    at = parse_time(asked.at, "at") if asked.at else datetime.now(UTC)
    return await rosters.preview(
        request.app[POOL],
        current_user(request),
        asked.facility,
        modality=asked.modality.strip().upper(),
        priority=priority,
        at=at,
    )


@routes.get(
    "/api/v1/admin/routing/preview",
    query=PreviewQuery,
    answer=PreviewOut,
    summary="Where a study from a facility would go: pool, facility, due time and when it "
    "is escalated, as routing decides it (the duty roster at the time given)",
)
async def routing_preview(request: web.Request) -> web.Response:
    found = await preview_of(request, query_of(request, PreviewQuery))
    return reply(PreviewOut.of(found))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
