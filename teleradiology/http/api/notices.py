"""Notification channels: administrators keep those of their network under
/api/v1/admin/notification-channels; each user keeps their own e-mail under
/api/v1/me/notification-channels."""

from __future__ import annotations

from aiohttp import web

from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.notices import (
    ChannelChange,
    ChannelIn,
    ChannelOut,
    ChannelRemoved,
    ChannelsOut,
    OwnEmailIn,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id
from teleradiology.services import channels

routes = Routes(tag="admin")

ADMIN = "/api/v1/admin/notification-channels"
OWN = "/api/v1/me/notification-channels"


@routes.get(ADMIN, answer=ChannelsOut, summary="The notification channels of your network")
async def list_channels(request: web.Request) -> web.Response:
    found = await channels.list_channels(request.app[POOL], current_user(request))
    return reply(ChannelsOut(channels=[ChannelOut.of(c) for c in found]))


@routes.post(
    ADMIN,
    body=ChannelIn,
    answer=ChannelOut,
    status=201,
    summary="Add a channel (e-mail, WeChat Work or DingTalk robot, webhook) to a facility "
    "or one of its users; the same kind and target again updates it",
)
async def add_channel(request: web.Request) -> web.Response:
    body = await body_of(request, ChannelIn)
    added = await channels.add_channel(
        request.app[POOL],
        current_user(request),
        body.channel(),
        facility=body.facility,
        username=body.username,
    )
    return reply(ChannelOut.of(added), status=201)


@routes.patch(
    ADMIN + "/{id}",
    path=RecordPath,
    body=ChannelChange,
    answer=ChannelOut,
    summary="Change a channel's settings",
)
async def change_channel(request: web.Request) -> web.Response:
    body = await body_of(request, ChannelChange)
    changed = await channels.change_channel(
        request.app[POOL],
        current_user(request),
        path_id(request),
        body.model_dump(exclude_unset=True),
    )
    return reply(ChannelOut.of(changed))


@routes.delete(ADMIN + "/{id}", path=RecordPath, answer=ChannelRemoved, summary="Remove a channel")
async def remove_channel(request: web.Request) -> web.Response:
    channel_id = path_id(request)
    await channels.remove_channel(request.app[POOL], current_user(request), channel_id)
    return reply(ChannelRemoved(id=channel_id, removed=True))


@routes.get(OWN, answer=ChannelsOut, summary="Your own notification channels", tag="account")
async def own_channels(request: web.Request) -> web.Response:
    found = await channels.own_channels(request.app[POOL], current_user(request))
    return reply(ChannelsOut(channels=[ChannelOut.of(c) for c in found]))


@routes.post(
    OWN,
    body=OwnEmailIn,
    answer=ChannelOut,
    status=201,
    summary="Be told by e-mail too (no patient names: an administrator allows those)",
    tag="account",
)
async def add_own_email(request: web.Request) -> web.Response:
    body = await body_of(request, OwnEmailIn)
    added = await channels.add_own_email(
        request.app[POOL], current_user(request), body.address, reports=body.reports
    )
    return reply(ChannelOut.of(added), status=201)


@routes.delete(
    OWN + "/{id}",
    path=RecordPath,
    answer=ChannelRemoved,
    summary="Remove one of your own channels",
    tag="account",
)
async def remove_own(request: web.Request) -> web.Response:
    channel_id = path_id(request)
    await channels.remove_own(request.app[POOL], current_user(request), channel_id)
    return reply(ChannelRemoved(id=channel_id, removed=True))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
