"""Notification channels, the messages that leave the network on them, and the record of
each attempt: queries and row mapping (what goes to whom is ``teleradiology.core.notices``).

The functions taking a connection run in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Conn, Queryable
from storage.queries import q
from storage.records import (
    Channel,
    ChannelId,
    ChannelSpec,
    FacilityId,
    NoticeKind,
    OutboundStatus,
    ReportId,
    UserId,
)


def _settings(spec: ChannelSpec) -> tuple[object, ...]:
    """A channel's settings in the order the queries take them (after its kind)."""
    return (
        spec.label,
        spec.target,
        spec.secret,
        spec.markdown,
        spec.allow_patient_name,
        spec.reports,
        spec.active,
    )


async def upsert(
    conn: Queryable, facility_id: FacilityId, user_id: UserId | None, spec: ChannelSpec
) -> ChannelId:
    """Add a channel, or update the one of the same facility, user, kind and target."""
    found: int = await conn.fetchval(
        q("channel_upsert"), facility_id, user_id, spec.kind.value, *_settings(spec)
    )
    return ChannelId(found)


async def update(conn: Queryable, channel_id: ChannelId, spec: ChannelSpec) -> bool:
    """Write a channel's settings (its kind stays); False when it is gone."""
    return await conn.fetchval(q("channel_update"), channel_id, *_settings(spec)) is not None


async def delete(conn: Queryable, channel_id: ChannelId) -> bool:
    """Remove a channel with its messages and their attempts; False when it was gone."""
    return await conn.fetchval(q("channel_delete"), channel_id) is not None


async def for_admin(
    db: Queryable, admin_id: UserId, channel_id: int | None = None
) -> list[Channel]:
    """The channels in the administrator's network (or the one named, when it is)."""
    return [
        Channel.from_row(r) for r in await db.fetch(q("channels_for_admin"), admin_id, channel_id)
    ]


async def of_user(db: Queryable, user_id: UserId) -> list[Channel]:
    """A user's own channels."""
    return [Channel.from_row(r) for r in await db.fetch(q("channels_of_user"), user_id)]


async def of_clinic(db: Queryable, facility_id: FacilityId) -> list[Channel]:
    """The active channels of a clinic: the facility's and its clinic users' own."""
    return [Channel.from_row(r) for r in await db.fetch(q("channels_of_clinic"), facility_id)]


async def of_users(db: Queryable, user_ids: Sequence[UserId]) -> list[Channel]:
    """The active own channels of these users."""
    rows = await db.fetch(q("channels_of_users"), list(user_ids))
    return [Channel.from_row(r) for r in rows]


async def queue_message(
    conn: Conn,
    *,
    notification_id: int,
    channel_id: ChannelId,
    report_id: ReportId,
    kind: NoticeKind,
    resend: int,
) -> int | None:
    """One outbound message of a notification on a channel; None when it was queued before."""
    found: int | None = await conn.fetchval(
        q("outbound_insert"), notification_id, channel_id, report_id, kind.value, resend
    )
    return found


@dataclass(frozen=True, kw_only=True)
class Outbound:
    """A message to send: what it tells (no text is kept), on which channel, how it went."""

    id: int
    report_id: ReportId
    kind: NoticeKind
    resend: int
    status: OutboundStatus
    attempts: int
    #: the report was acknowledged (a re-send or an alert is then no longer sent)
    acknowledged: bool
    channel: Channel


async def lock_message(conn: Conn, message_id: int) -> Outbound | None:
    """The message, locked while it is tried; None when it is gone or another worker has it."""
    r = await conn.fetchrow(q("outbound_lock"), message_id)
    if r is None:
        return None
    fields = {k: r[k] for k in r.keys()}  # noqa: SIM118 - asyncpg's Record
    return Outbound(
        id=r["id"],
        report_id=ReportId(r["report_id"]),
        kind=NoticeKind(r["kind"]),
        resend=r["resend"],
        status=OutboundStatus(r["status"]),
        attempts=r["attempts"],
        acknowledged=r["acknowledged"],
        channel=Channel.from_row({**fields, "id": r["channel_id"], "kind": r["channel_kind"]}),
    )


async def record_attempt(
    conn: Conn,
    message_id: int,
    *,
    ok: bool,
    code: str,
    answer: str,
    status: OutboundStatus,
    attempts: int,
) -> None:
    """One attempt's outcome (the answer cut to 300 characters) and the message's state."""
    await conn.execute(q("outbound_attempt_insert"), message_id, ok, code[:40], answer[:300])
    await conn.execute(q("outbound_done"), message_id, status.value, attempts)


async def mark(conn: Conn, message_id: int, status: OutboundStatus, attempts: int) -> None:
    await conn.execute(q("outbound_done"), message_id, status.value, attempts)


@dataclass(frozen=True, kw_only=True)
class SentRecord:
    """A message as administrators and the clinic see it: where and how, never what."""

    id: int
    kind: NoticeKind
    resend: int
    status: OutboundStatus
    attempts: int
    channel_id: ChannelId
    channel_kind: str
    label: str
    facility_code: str
    username: str | None
    created_at: datetime
    updated_at: datetime
    tries: list[dict[str, Any]]


async def of_report(db: Queryable, report_id: int) -> list[SentRecord]:
    """The messages a report caused, with each attempt."""
    return [
        SentRecord(
            id=r["id"],
            kind=NoticeKind(r["kind"]),
            resend=r["resend"],
            status=OutboundStatus(r["status"]),
            attempts=r["attempts"],
            channel_id=ChannelId(r["channel_id"]),
            channel_kind=r["channel_kind"],
            label=r["label"],
            facility_code=r["facility_code"],
            username=r["username"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            tries=json.loads(r["tries"]),
        )
        for r in await db.fetch(q("outbound_of_report"), report_id)
    ]


async def retry_for_user(db: Queryable, user_id: UserId, message_id: int) -> bool:
    """A given-up message set to be tried again; False when there is none in the scope."""
    return await db.fetchval(q("outbound_retry_for_user"), user_id, message_id) is not None


async def messages_without_job(
    db: Queryable, entrypoint: str, *, untouched_since: datetime, limit: int = 100
) -> list[int]:
    """Pending messages untouched since then, with no job of ``entrypoint`` for them."""
    rows = await db.fetch(q("outbound_without_job"), untouched_since, entrypoint, limit)
    return [int(r["id"]) for r in rows]
