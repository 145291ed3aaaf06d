"""The administrator's accounts page: the users of their network (deactivate, reactivate,
a password-reset link, release from the sign-in throttle) and the tokens that work; each
user's own page (their password, their tokens); and the page a one-time link opens to set a
password."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from storage.accounts import TokenInfo
from storage.records import Role
from teleradiology.core.errors import Forbidden
from teleradiology.core.language import N_
from teleradiology.http.api.endpoints import reply
from teleradiology.http.api.models.accounts import ManagedUserOut, TokenOut
from teleradiology.http.api.models.admin import UserPath
from teleradiology.http.api.models.notices import ChannelOut
from teleradiology.http.context import POOL, current_user, user_zone
from teleradiology.http.params import path_of
from teleradiology.http.web.common import (
    PageHandler,
    base_context,
    local_time,
    render,
    signed_in,
)
from teleradiology.services import accounts, channels


def shown_tokens(found: list[TokenInfo], zone: ZoneInfo) -> list[dict[str, Any]]:
    return [
        TokenOut.of(t).model_dump()
        | {
            "created_at": local_time(t.created_at, zone),
            "expires_at": local_time(t.expires_at, zone),
        }
        for t in found
    ]


async def account_page(request: web.Request) -> web.StreamResponse:
    """The signed-in user's own: a password change, their tokens to revoke, and the
    e-mail addresses they are told at besides the page."""
    user = await signed_in(request)
    found = await accounts.own_tokens(request.app[POOL], user)
    own = await channels.own_channels(request.app[POOL], user)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("我的账户"),
        tokens=shown_tokens(found, await user_zone(request, user)),
        channels=[ChannelOut.of(c).model_dump() for c in own],
    )
    return render("account.html", context)


async def accounts_page(request: web.Request) -> web.StreamResponse:
    admin = await signed_in(request)
    if admin.role is not Role.ADMIN:
        raise Forbidden(N_("账户页面供网络管理员使用"))
    pool = request.app[POOL]
    zone = await user_zone(request, admin)
    tokens = shown_tokens(await accounts.network_tokens(pool, admin), zone)
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("账户"),
        users=[
            ManagedUserOut.of(m).model_dump() for m in await accounts.network_users(pool, admin)
        ],
        tokens=tokens,
    )
    return render("accounts.html", context)


async def password_page(request: web.Request) -> web.StreamResponse:
    context = await base_context(request, None)
    context.update(title=context["_"]("设置密码"))
    return render("password.html", context)


def _set_active(active: bool) -> PageHandler:
    """The page's button: the administrators' PATCH with ``{"active": active}``."""

    async def change(request: web.Request) -> web.StreamResponse:
        admin = current_user(request)
        username = path_of(request, UserPath).username
        changed = await accounts.set_active(request.app[POOL], admin, username, active)
        return reply(ManagedUserOut.of(changed))

    return change


deactivate = _set_active(False)
activate = _set_active(True)
