"""The administrator's console pages: the facilities of their network (add, rename, move,
deactivate, workstations' titles; a link to each report destination's route), its users
(add, with the one-time link; each user's page: name, role, facility, specialties, and the
deactivation, reset link and tokens of the accounts page) and its DICOM nodes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from storage.db import Pool
from storage.records import Role, Specialty, Tier, User
from teleradiology.core.errors import Forbidden, NotFound
from teleradiology.core.language import N_
from teleradiology.http.api.models.accounts import ManagedUserOut
from teleradiology.http.api.models.admin import UserPath
from teleradiology.http.api.models.console import FacilityOut, NodeOut
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.params import path_of
from teleradiology.http.web.accounts import shown_tokens
from teleradiology.http.web.common import base_context, render, signed_in
from teleradiology.services import accounts, console


async def _admin(request: web.Request) -> User:
    user = await signed_in(request)
    if user.role is not Role.ADMIN:
        raise Forbidden(N_("管理控制台供网络管理员使用"))
    return user


def _workstations_text(f: FacilityOut) -> str:
    """A facility's titles as the form edits them: one a line, ``TITLE host fingerprint``."""
    return "\n".join(
        " ".join(x for x in (w.ae_title, w.host or "-", w.certificate_sha256 or "") if x)
        for w in f.workstations
    )


async def facilities_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    found = [FacilityOut.of(f) for f in await console.facilities(request.app[POOL], admin)]
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("机构"),
        facilities=[f.model_dump() | {"titles_text": _workstations_text(f)} for f in found],
        tiers=list(Tier),
    )
    return render("facilities.html", context)


async def _user_choices(pool: Pool, admin: User) -> dict[str, list[Any]]:
    """What a user's form chooses from: the network's facilities, roles, specialties."""
    return {
        "facilities": [f.code for f in await console.facilities(pool, admin)],
        "roles": list(Role),
        "specialties": list(Specialty),
    }


async def users_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    pool = request.app[POOL]
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("用户"),
        users=[
            ManagedUserOut.of(m).model_dump() for m in await accounts.network_users(pool, admin)
        ],
        **await _user_choices(pool, admin),
    )
    return render("users.html", context)


async def user_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    pool = request.app[POOL]
    username = path_of(request, UserPath).username
    found = [m for m in await accounts.network_users(pool, admin) if m.user.username == username]
    if not found:
        raise NotFound(N_("用户 %(username)s 不在您的网络中工作"), username=username)
    tokens = await accounts.network_tokens(pool, admin, username)
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("用户 %(name)s") % {"name": username},
        person=ManagedUserOut.of(found[0]).model_dump(),
        tokens=shown_tokens(tokens, await user_zone(request, admin)),
        **await _user_choices(pool, admin),
    )
    return render("user.html", context)


async def dicom_nodes_page(request: web.Request) -> web.StreamResponse:
    admin = await _admin(request)
    pool = request.app[POOL]
    context = await base_context(request, admin)
    context.update(
        title=context["_"]("DICOM 节点"),
        nodes=[NodeOut.of(n).model_dump() for n in await console.dicom_nodes(pool, admin)],
        facilities=[f.code for f in await console.facilities(pool, admin)],
    )
    return render("dicom_nodes.html", context)
