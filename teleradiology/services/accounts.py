"""Accounts over their lifetime: a user's own tokens and password; an administrator's
tokens, users, password resets and sign-in releases in their network; and the check that a
service outside the demo holds none of the demo's public credentials.

An administrator's change is audited here, once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage import accounts, audit, network
from storage.accounts import ManagedUser, TokenInfo
from storage.db import Conn, Pool, transaction
from storage.network import (
    facility_in_admin_scope,
    upsert_user,
    user_id_by_username,
    user_in_admin_scope,
)
from storage.records import AuditAction, Language, Role, Specialty, User, UserId, UserSpec
from teleradiology.core.access import require_role
from teleradiology.core.credentials import example_secrets_in
from teleradiology.core.errors import Conflict, NotFound, Unauthorized
from teleradiology.core.language import N_, gettext
from teleradiology.core.network_file import parse_user
from teleradiology.services import signin
from teleradiology.services.signin import Throttle

log = logging.getLogger(__name__)

#: A one-time link that cannot be used (any more).
LINK_GONE = N_("此链接未知、已用过或已过期：请联系您的管理员")

#: How long an administrator's password-reset link works.
RESET_LINK_LIFETIME = timedelta(hours=24)
#: How long the link of a new user (imported or added without a password) works.
FIRST_LINK_LIFETIME = timedelta(days=7)

# --- a user's own ----------------------------------------------------------------------------


async def own_tokens(pool: Pool, user: User) -> list[TokenInfo]:
    return await accounts.tokens_of(pool, user.id)


async def revoke_own_token(pool: Pool, user: User, token_id: int) -> None:
    """Revoke one of the caller's tokens.

    Raises
    ------
    NotFound
        The caller has no working token of that id.
    """
    if not await accounts.revoke_own_token(pool, token_id, user.id):
        raise NotFound(N_("您没有有效令牌 %(id)s"), id=token_id)


async def change_password(
    pool: Pool, throttle: Throttle, user: User, old: str, new: str, *, token: str | None
) -> None:
    """The caller changes their password, giving the old one (checked as a sign-in is, so
    the throttle counts a wrong one); every other token and session of theirs is revoked.

    Raises
    ------
    Unauthorized
        The old password is wrong; BadRequest: the new one is too short or the demo's;
        TooManyAttempts: too many wrong passwords in a row.
    """
    checked = await signin.check_credentials(pool, throttle, user.username, old, address=None)
    if checked != user.id:
        raise Unauthorized(N_("当前密码不对"))
    new_hash = await signin.hash_new_password(user.username, new)
    await accounts.set_password(pool, user.id, new_hash, keep_token=token)
    log.info("user %s changed their password", user.id)


async def set_language(pool: Pool, user: User, language: Language) -> Language:
    """The caller chooses the language of their pages, PDFs and e-mails (remembered for
    them, on every device); audited with the one it replaced. The language now."""
    async with transaction(pool) as conn:
        before = await network.set_user_language(conn, user.id, language)
        await audit.record(
            conn,
            user_id=user.id,
            action=AuditAction.CONFIGURE,
            object_type="user_language",
            object_id=user.username,
            detail={"language": language.value, "before": {"language": before.value}},
        )
    return language


async def set_password_by_link(pool: Pool, secret: str, new: str) -> str:
    """Set a password with a one-time link; the username it was for.

    Raises
    ------
    NotFound
        The link is unknown, used already or expired; BadRequest: the password is too short
        or the demo's.
    """
    username = await accounts.password_link_user(pool, secret)
    if username is None:
        raise NotFound(LINK_GONE)
    new_hash = await signin.hash_new_password(username, new)
    if await accounts.use_password_link(pool, secret, new_hash) is None:
        raise NotFound(LINK_GONE)
    return username


# --- an administrator's ----------------------------------------------------------------------


async def _managed(pool: Pool, admin: User, username: str) -> UserId:
    require_role(admin, Role.ADMIN)
    async with pool.acquire() as conn:
        found = await user_in_admin_scope(conn, username, admin)
    if found is None:
        raise NotFound(N_("用户 %(username)s 不在您的网络中工作"), username=username)
    return found


async def network_users(pool: Pool, admin: User) -> list[ManagedUser]:
    require_role(admin, Role.ADMIN)
    return await accounts.users_in_scope(pool, admin.id)


async def network_tokens(pool: Pool, admin: User, username: str | None = None) -> list[TokenInfo]:
    """The working tokens of the users of the administrator's network (of one, if named)."""
    require_role(admin, Role.ADMIN)
    if username is not None:
        await _managed(pool, admin, username)
    return await accounts.tokens_in_scope(pool, admin.id, username)


async def revoke_token(pool: Pool, caller: User, token_id: int) -> None:
    """Revoke a token: one of the caller's own, or (an administrator) one of a user of
    their network; audited when it is another's.

    Raises
    ------
    NotFound
        No such working token the caller may revoke.
    """
    async with transaction(pool) as conn:
        if await accounts.revoke_own_token(conn, token_id, caller.id):
            return
        if caller.role is Role.ADMIN and await accounts.revoke_token_in_scope(
            conn, token_id, caller.id
        ):
            await record_change(conn, caller, "api_token", token_id, {"revoked": True})
            return
    raise NotFound(N_("没有您可吊销的有效令牌 %(id)s"), id=token_id)


async def set_active(pool: Pool, admin: User, username: str, active: bool) -> ManagedUser:
    """Activate or deactivate a user of the administrator's network, and the user as they
    are now; a deactivated user's tokens and sessions stop working at once (their event
    streams close within ``sse.ACCESS_CHECK_S``).

    Raises
    ------
    NotFound
        The user is not in the network; Conflict: an administrator deactivating themselves.
    """
    user_id = await _managed(pool, admin, username)
    if user_id == admin.id and not active:
        raise Conflict(N_("不能停用您自己：请另一位管理员操作"))
    async with transaction(pool) as conn:
        await accounts.set_active(conn, user_id, active)
        await record_change(conn, admin, "user", username, {"active": active})
    (changed,) = [m for m in await accounts.users_in_scope(pool, admin.id) if m.user.id == user_id]
    return changed


@dataclass(frozen=True, kw_only=True)
class UserChange:
    """What an administrator changes of a user; None leaves a value as it is."""

    display_name: str | None = None
    role: Role | None = None
    facility: str | None = None
    specialties: tuple[Specialty, ...] | None = None


def _user_shown(m: ManagedUser) -> dict[str, object]:
    return {
        "display_name": m.user.display_name,
        "role": m.user.role.value,
        "facility": m.facility_code,
        "specialties": sorted(s.value for s in m.user.specialties),
        "active": m.user.active,
    }


async def change_user(pool: Pool, admin: User, username: str, change: UserChange) -> ManagedUser:
    """Change a user's name, role, facility (one of the network) or specialties, checked as
    the network file's users are (a reader has a specialty, only readers have one); the
    password and tokens are kept; audited with the values before and after.

    Raises
    ------
    NotFound
        The user or the facility is not in the network; ConfigError: the role and
        specialties do not fit; Conflict: an administrator changing their own role.
    """
    user_id = await _managed(pool, admin, username)
    (before,) = [m for m in await accounts.users_in_scope(pool, admin.id) if m.user.id == user_id]
    if user_id == admin.id and change.role not in (None, Role.ADMIN):
        raise Conflict(N_("不能修改您自己的角色：请另一位管理员操作"))
    role = change.role or before.user.role
    specialties = change.specialties
    if specialties is None:
        specialties = tuple(sorted(before.user.specialties)) if role is Role.READER else ()
    spec = parse_user(
        {
            "username": username,
            "display_name": change.display_name or before.user.display_name,
            "role": role.value,
            "facility": change.facility or before.facility_code,
            "specialties": [s.value for s in specialties],
        }
    )
    async with transaction(pool) as conn:
        if await facility_in_admin_scope(conn, spec.facility, admin) is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=spec.facility)
        await upsert_user(conn, spec)
        shown = _user_shown(before)
        after = shown | {
            "display_name": spec.display_name,
            "role": spec.role.value,
            "facility": spec.facility,
            "specialties": sorted(s.value for s in spec.specialties),
        }
        await record_change(conn, admin, "user", username, {"before": shown, "after": after})
    (changed,) = [m for m in await accounts.users_in_scope(pool, admin.id) if m.user.id == user_id]
    return changed


async def create_user(
    pool: Pool, admin: User, spec: UserSpec, *, lifetime: timedelta = FIRST_LINK_LIFETIME
) -> tuple[ManagedUser, str, datetime]:
    """Add a user to a facility of the administrator's network, without a password: the
    user, and the one-time link secret (and its expiry) with which they set their own.

    Raises
    ------
    NotFound
        The facility is not in the network; Conflict: the username is taken.
    """
    require_role(admin, Role.ADMIN)
    expires = datetime.now(UTC) + lifetime
    async with transaction(pool) as conn:
        if await facility_in_admin_scope(conn, spec.facility, admin) is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=spec.facility)
        if await user_id_by_username(conn, spec.username) is not None:
            raise Conflict(N_("用户名 %(username)s 已被使用"), username=spec.username)
        user_id, _ = await upsert_user(conn, dataclasses.replace(spec, password_hash=None))
        secret = await accounts.create_password_link(
            conn, user_id, expires_at=expires, created_by=admin.id
        )
        await record_change(
            conn, admin, "user", spec.username, {"created": True, "role": spec.role.value}
        )
    (created,) = [m for m in await accounts.users_in_scope(pool, admin.id) if m.user.id == user_id]
    return created, secret, expires


@dataclass(frozen=True, kw_only=True)
class PasswordLink:
    """A one-time link's secret for a user to set their own password."""

    username: str
    secret: str
    expires_at: datetime
    #: the user's: what the message passing the link on to them is written in
    language: Language


def password_link_message(link: PasswordLink, address: str) -> str:
    """What passes a one-time link (its ``address``) on to its user, in their language."""
    phrase = N_("%(username)s 的一次性链接（有效期至 %(until)s UTC）：%(link)s")
    return gettext(link.language)(phrase) % {
        "username": link.username,
        "until": f"{link.expires_at.astimezone(UTC):%Y-%m-%d %H:%M}",
        "link": address,
    }


async def reset_password(
    pool: Pool, admin: User, username: str, *, lifetime: timedelta = RESET_LINK_LIFETIME
) -> PasswordLink:
    """A one-time link for a user of the administrator's network to set their own
    password; it replaces their unused links (the password is kept until the link is
    used)."""
    user_id = await _managed(pool, admin, username)
    expires = datetime.now(UTC) + lifetime
    async with transaction(pool) as conn:
        secret = await accounts.create_password_link(
            conn, user_id, expires_at=expires, created_by=admin.id
        )
        await record_change(conn, admin, "user", username, {"password_link_until": expires})
        found = await network.user_by_username(conn, username)
    language = found.language if found is not None else Language.ZH_CN
    return PasswordLink(username=username, secret=secret, expires_at=expires, language=language)


async def unlock(pool: Pool, throttle: Throttle, admin: User, username: str) -> None:
    """Release an account the sign-in throttle holds, in this process at once and in the
    others at the account's next try."""
    user_id = await _managed(pool, admin, username)
    async with transaction(pool) as conn:
        await accounts.unlock(conn, user_id)
        await record_change(conn, admin, "user", username, {"signin_unlocked": True})
    throttle.succeeded(signin.account_key(username))


async def record_change(
    conn: Conn, admin: User, object_type: str, object_id: str | int, detail: dict[str, object]
) -> None:
    """The audit record of an administrator's change (``configure``)."""
    await audit.record(
        conn,
        user_id=admin.id,
        action=AuditAction.CONFIGURE,
        object_type=object_type,
        object_id=object_id,
        detail=detail,
    )


# --- the demo's credentials -------------------------------------------------------------------


async def _check_for_demo(pool: Pool) -> None:
    """Check once the hashes never checked against the demo password (users imported before
    the check existed): an argon2 check each, ``signin.CHECKS_AT_ONCE`` at a time."""
    unchecked = await accounts.unchecked_for_demo(pool)
    if unchecked:
        log.info("checking %d password(s) against the demo passwords, once", len(unchecked))

    async def check(user_id: UserId, username: str, password_hash: str) -> None:
        is_demo = await signin.is_demo_hash(username, password_hash)
        await accounts.mark_checked_for_demo(pool, user_id, password_hash, is_demo=is_demo)

    await asyncio.gather(*(check(*u) for u in unchecked))


async def demo_credentials(pool: Pool, env: Mapping[str, str]) -> list[str]:
    """What of the demo's public credentials this service holds, one line each: active
    users whose password is ``demo-<username>`` (marked when imported from a demo file or
    with a hash of that password), demo tokens that still work, and the example secrets of
    ``deploy/`` in the environment. Empty: none."""
    found: list[str] = []
    await _check_for_demo(pool)
    users = await accounts.demo_password_users(pool)
    if users:
        shown = ", ".join(users[:10]) + (f" and {len(users) - 10} more" if len(users) > 10 else "")
        found.append(f"{len(users)} user(s) with the public demo password: {shown}")
    tokens = await accounts.live_demo_tokens(pool)
    if tokens:
        found.append(f"{tokens} demo token(s) printed by 'serve --demo' still work")
    found.extend(
        f"{name} holds the public example value of deploy/" for name in example_secrets_in(env)
    )
    return found
