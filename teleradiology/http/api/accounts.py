"""Accounts under /api/v1: the caller's own tokens and password, a one-time link's
password, and an administrator's users, tokens, password resets and sign-in releases (their
own network only)."""

from __future__ import annotations

from aiohttp import web

from teleradiology.core.network_file import parse_user
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.accounts import (
    LanguageIn,
    LanguageOut,
    ManagedUserOut,
    ManagedUsersOut,
    PasswordChanged,
    PasswordChangeIn,
    PasswordLinkIn,
    PasswordLinkOut,
    PasswordSet,
    RevokedOut,
    TokenOut,
    TokensOut,
    TokensQuery,
    UnlockedOut,
    UserChangeIn,
    UserCreated,
    UserCreateIn,
)
from teleradiology.http.api.models.admin import UserPath
from teleradiology.http.context import POOL, SIGNIN_THROTTLE, TOKEN, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id, path_of, query_of
from teleradiology.services import accounts

routes = Routes(tag="auth")

#: The page a one-time link opens (its secret after ``#``: never sent to a server log).
PASSWORD_PAGE = "/password"  # noqa: S105 (a path, not a password)


@routes.get("/api/v1/me/tokens", answer=TokensOut, summary="The caller's working tokens")
async def my_tokens(request: web.Request) -> web.Response:
    found = await accounts.own_tokens(request.app[POOL], current_user(request))
    return reply(TokensOut(tokens=[TokenOut.of(t) for t in found]))


@routes.delete(
    "/api/v1/tokens/{id}",
    path=RecordPath,
    answer=RevokedOut,
    summary="Revoke a token: one's own, or (an administrator) one of a user of their network",
)
async def revoke_token(request: web.Request) -> web.Response:
    token_id = path_id(request)
    await accounts.revoke_token(request.app[POOL], current_user(request), token_id)
    return reply(RevokedOut(id=token_id, revoked=True))


@routes.post(
    "/api/v1/me/password",
    body=PasswordChangeIn,
    answer=PasswordChanged,
    summary="Change one's password, giving the current one; every other token and session "
    "of the caller is revoked",
)
async def change_password(request: web.Request) -> web.Response:
    body = await body_of(request, PasswordChangeIn)
    await accounts.change_password(
        request.app[POOL],
        request.app[SIGNIN_THROTTLE],
        current_user(request),
        body.current_password,
        body.new_password,
        token=request.get(TOKEN),
    )
    return reply(PasswordChanged(changed=True, other_tokens_revoked=True))


@routes.put(
    "/api/v1/me/language",
    body=LanguageIn,
    answer=LanguageOut,
    summary="Choose the language of one's pages, PDFs and e-mails (zh-CN or en), remembered "
    "for the user",
)
async def set_language(request: web.Request) -> web.Response:
    body = await body_of(request, LanguageIn)
    chosen = await accounts.set_language(request.app[POOL], current_user(request), body.language)
    return reply(LanguageOut(language=chosen))


@routes.post(
    "/api/v1/password/link",
    body=PasswordLinkIn,
    answer=PasswordSet,
    summary="Set one's password with a one-time link (a first sign-in, or an "
    "administrator's reset); every token of the user is revoked",
    public=True,
)
async def set_password_by_link(request: web.Request) -> web.Response:
    body = await body_of(request, PasswordLinkIn)
    username = await accounts.set_password_by_link(request.app[POOL], body.link, body.new_password)
    return reply(PasswordSet(username=username))


@routes.get(
    "/api/v1/admin/users",
    answer=ManagedUsersOut,
    summary="The users of the administrator's network",
    tag="admin",
)
async def list_users(request: web.Request) -> web.Response:
    found = await accounts.network_users(request.app[POOL], current_user(request))
    return reply(ManagedUsersOut(users=[ManagedUserOut.of(m) for m in found]))


@routes.post(
    "/api/v1/admin/users",
    body=UserCreateIn,
    answer=UserCreated,
    status=201,
    summary="Add a user to a facility of the network, without a password: the answer "
    "carries the one-time link (7 days) with which they set their own",
    tag="admin",
)
async def create_user(request: web.Request) -> web.Response:
    body = await body_of(request, UserCreateIn)
    spec = parse_user(body.model_dump(mode="json", exclude_none=True))
    created, secret, expires = await accounts.create_user(
        request.app[POOL], current_user(request), spec
    )
    link = f"{PASSWORD_PAGE}#{secret}"
    answer = UserCreated(user=ManagedUserOut.of(created), link=link, expires_at=expires)
    return reply(answer, status=201)


@routes.patch(
    "/api/v1/admin/users/{username}",
    path=UserPath,
    body=UserChangeIn,
    answer=ManagedUserOut,
    summary='Deactivate ({"active": false}) or reactivate a user of the network (a '
    "deactivated user's tokens and sessions stop working at once), or change their name, "
    "role, facility or specialties",
    tag="admin",
)
async def change_user(request: web.Request) -> web.Response:
    admin = current_user(request)
    username = path_of(request, UserPath).username
    body = await body_of(request, UserChangeIn)
    pool = request.app[POOL]
    change = accounts.UserChange(
        display_name=body.display_name,
        role=body.role,
        facility=body.facility,
        specialties=tuple(body.specialties) if body.specialties is not None else None,
    )
    changed = None
    if change != accounts.UserChange():
        changed = await accounts.change_user(pool, admin, username, change)
    if body.active is not None:
        changed = await accounts.set_active(pool, admin, username, body.active)
    assert changed is not None  # the model asks for at least one field
    return reply(ManagedUserOut.of(changed))


@routes.get(
    "/api/v1/admin/tokens",
    query=TokensQuery,
    answer=TokensOut,
    summary="The working tokens of the users of the administrator's network",
    tag="admin",
)
async def network_tokens(request: web.Request) -> web.Response:
    asked = query_of(request, TokensQuery)
    found = await accounts.network_tokens(request.app[POOL], current_user(request), asked.username)
    return reply(TokensOut(tokens=[TokenOut.of(t) for t in found]))


@routes.post(
    "/api/v1/admin/users/{username}/password-reset",
    path=UserPath,
    answer=PasswordLinkOut,
    summary="A one-time link for the user to set their own password (24 hours; it replaces "
    "their unused links)",
    tag="admin",
)
async def reset_password(request: web.Request) -> web.Response:
    username = path_of(request, UserPath).username
    made = await accounts.reset_password(request.app[POOL], current_user(request), username)
    link = f"{PASSWORD_PAGE}#{made.secret}"
    shown = accounts.password_link_message(made, link)
    return reply(
        PasswordLinkOut(username=username, link=link, expires_at=made.expires_at, show=shown)
    )


@routes.post(
    "/api/v1/admin/users/{username}/unlock",
    path=UserPath,
    answer=UnlockedOut,
    summary="Release an account the sign-in throttle holds after wrong passwords",
    tag="admin",
)
async def unlock(request: web.Request) -> web.Response:
    username = path_of(request, UserPath).username
    await accounts.unlock(
        request.app[POOL], request.app[SIGNIN_THROTTLE], current_user(request), username
    )
    return reply(UnlockedOut(username=username, unlocked=True))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
