"""Notification channels as administrators keep them (a facility's, or one user's of their
network) and as each user keeps their own e-mail; every change audited, with the target as
shown (a robot's key in its URL is a credential) and never the secret.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from storage import audit, channels, network
from storage.db import Conn, Pool, transaction
from storage.records import (
    AuditAction,
    Channel,
    ChannelId,
    ChannelKind,
    ChannelSpec,
    Role,
    User,
)
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, NotFound
from teleradiology.core.language import N_
from teleradiology.core.notices import (
    Answer,
    check_channel,
    parse_channel,
    shown_target,
    trial_body,
    trial_message,
    with_changes,
)
from teleradiology.services.notices import Carrier

log = logging.getLogger(__name__)


def _detail(channel_spec: ChannelSpec, **more: Any) -> dict[str, Any]:
    return {
        "kind": channel_spec.kind.value,
        "target": shown_target(channel_spec),
        "allow_patient_name": channel_spec.allow_patient_name,
        "reports": channel_spec.reports,
        "active": channel_spec.active,
        **more,
    }


async def _record(conn: Conn, user: User, channel_id: int, detail: dict[str, Any]) -> None:
    await audit.record(
        conn,
        user_id=user.id,
        action=AuditAction.CONFIGURE,
        object_type="notification_channel",
        object_id=channel_id,
        detail=detail,
    )


async def list_channels(pool: Pool, admin: User) -> list[Channel]:
    """The channels of the administrator's network."""
    require_role(admin, Role.ADMIN)
    return await channels.for_admin(pool, admin.id)


async def _one(conn: Conn, admin: User, channel_id: int) -> Channel:
    found = await channels.for_admin(conn, admin.id, channel_id)
    if not found:
        raise NotFound(N_("通知渠道 %(id)s 不在您的网络中"), id=channel_id)
    return found[0]


async def add_channel(
    pool: Pool, admin: User, body: Mapping[str, Any], *, facility: str, username: str | None
) -> Channel:
    """Add (or update, by its kind and target) a facility's channel, or a user's own.

    Raises
    ------
    NotFound
        The facility or the user is not in the administrator's network.
    ConfigError
        The channel is not one (its kind, target or options).
    """
    require_role(admin, Role.ADMIN)
    spec = parse_channel(body, "channel")
    async with transaction(pool) as conn:
        fid = await network.facility_in_admin_scope(conn, facility, admin)
        if fid is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=facility)
        user_id = None
        if username is not None:
            user_id = await network.user_in_admin_scope(conn, username, admin)
            found = await network.user_by_username(conn, username) if user_id else None
            if found is None or found.facility_id != fid:
                raise NotFound(
                    N_("用户 %(username)s 不在您网络中的 %(code)s 工作"),
                    username=username,
                    code=facility,
                )
        channel_id = await channels.upsert(conn, fid, user_id, spec)
        await _record(conn, admin, channel_id, _detail(spec, facility=facility, user=username))
        return await _one(conn, admin, channel_id)


async def change_channel(
    pool: Pool, admin: User, channel_id: int, changes: Mapping[str, Any]
) -> Channel:
    """Change some of a channel's settings (its kind stays); audited."""
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        before = await _one(conn, admin, channel_id)
        spec = with_changes(before.spec, changes, f"channel {channel_id}")
        await channels.update(conn, ChannelId(channel_id), spec)
        await _record(
            conn,
            admin,
            channel_id,
            _detail(spec, changed=sorted(changes), before=_detail(before.spec)),
        )
        return await _one(conn, admin, channel_id)


async def remove_channel(pool: Pool, admin: User, channel_id: int) -> None:
    """Remove a channel of the administrator's network, with its messages; audited."""
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        before = await _one(conn, admin, channel_id)
        await channels.delete(conn, before.id)
        await _record(conn, admin, channel_id, _detail(before.spec, removed=True))
    log.info("administrator %s removed notification channel %s", admin.id, channel_id)


async def send_trial(
    pool: Pool, admin: User, channel_id: int, *, carrier: Carrier, link: str
) -> Answer:
    """Send a test message on a channel of the administrator's network (active or not) at
    once, in the channel's language (its user's; zh-CN for a facility's), and say how the
    receiver answered; audited with the answer's code.

    Raises
    ------
    NotFound
        The channel is not in the administrator's network.
    """
    require_role(admin, Role.ADMIN)
    async with pool.acquire() as conn:
        found = await _one(conn, admin, channel_id)
    spec = found.spec
    message = trial_message(found.facility_code, link, found.language)
    if spec.kind is ChannelKind.EMAIL:
        answer = await carrier.mail(spec.target, message)
    else:
        answer = await carrier.post(spec, trial_body(spec, message))
    async with pool.acquire() as conn:
        await _record(
            conn, admin, channel_id, _detail(spec, trial=True, ok=answer.ok, code=answer.code)
        )
    log.info(
        "administrator %s tested notification channel %s: %s", admin.id, channel_id, answer.code
    )
    return answer


# --- a user's own e-mail ---------------------------------------------------------------------


async def own_channels(pool: Pool, user: User) -> list[Channel]:
    return await channels.of_user(pool, user.id)


async def add_own_email(pool: Pool, user: User, address: str, *, reports: bool) -> Channel:
    """A user adds their own e-mail address as a channel (without patient names: only an
    administrator allows those on a channel); audited."""
    spec = check_channel(
        ChannelSpec(kind=ChannelKind.EMAIL, target=address.strip(), reports=reports),
        "e-mail",
    )
    async with transaction(pool) as conn:
        channel_id = await channels.upsert(conn, user.facility_id, user.id, spec)
        await _record(conn, user, channel_id, _detail(spec, own=True))
    found = [c for c in await channels.of_user(pool, user.id) if c.id == channel_id]
    if not found:
        raise BadRequest(N_("无法添加此渠道"))
    return found[0]


async def remove_own(pool: Pool, user: User, channel_id: int) -> None:
    """A user removes one of their own channels; audited."""
    async with transaction(pool) as conn:
        mine = [c for c in await channels.of_user(conn, user.id) if c.id == channel_id]
        if not mine:
            raise NotFound(N_("通知渠道 %(id)s 不是您的"), id=channel_id)
        await channels.delete(conn, mine[0].id)
        await _record(conn, user, channel_id, _detail(mine[0].spec, own=True, removed=True))
