"""Reading the notification record: the event stream's feed and what a report caused."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import asyncpg

from storage.db import keeps_session_state
from storage.queries import q
from storage.records import (
    CaseId,
    Cursor,
    FacilityId,
    Notification,
    NotificationId,
    ReportId,
    Role,
    Row,
    User,
    UserId,
)


def _from_row(r: Row) -> Notification:
    return Notification(
        id=NotificationId(r["id"]),
        tx=int(r["tx"]),
        at=r["at"],
        kind=r["kind"],
        facility_id=FacilityId(r["facility_id"]),
        audience=Role(r["audience"]),
        user_id=UserId(r["user_id"]) if r["user_id"] is not None else None,
        case_id=CaseId(r["case_id"]) if r["case_id"] is not None else None,
        report_id=ReportId(r["report_id"]) if r["report_id"] is not None else None,
        detail=json.loads(r["detail"]),
    )


#: The channel ``notification_insert`` signals on when its transaction commits.
CHANNEL = "telemed_notification"


async def now(pool: asyncpg.Pool) -> Cursor:
    """The cursor of this moment: every notification already there lies behind it (a
    page made now starts its event stream here, so none falls between)."""
    horizon: str = await pool.fetchval(q("notification_horizon"))
    return Cursor(tx=int(horizon), id=0)


async def after(pool: asyncpg.Pool, cursor: Cursor, *, limit: int = 500) -> list[Notification]:
    """The notifications after ``cursor`` whose place is final, in cursor order (for the
    stream's one poller per process)."""
    rows = await pool.fetch(q("notifications_after"), str(cursor.tx), cursor.id, limit)
    return [_from_row(r) for r in rows]


async def held(pool: asyncpg.Pool) -> bool:
    """Whether a committed notification waits behind a transaction still running (the
    poller looks again soon rather than at its next wake-up)."""
    found: bool = await pool.fetchval(q("notifications_held"))
    return found


async def for_user(
    pool: asyncpg.Pool, user: User, cursor: Cursor, *, limit: int = 500
) -> list[Notification]:
    """The notifications addressed to ``user`` after ``cursor`` (replay on reconnect)."""
    rows = await pool.fetch(q("notifications_for_user"), user.id, str(cursor.tx), cursor.id, limit)
    return [_from_row(r) for r in rows]


async def cursor_of(pool: asyncpg.Pool, notification_id: int) -> Cursor | None:
    """The cursor at a notification named by its id alone (as an older release wrote it)."""
    tx: str | None = await pool.fetchval(q("notification_tx"), notification_id)
    return None if tx is None else Cursor(tx=int(tx), id=notification_id)


@dataclass
class Listening:
    """Set when a notification commits (``woken``), or when the listening connection is
    lost (``lost``: listen again; poll meanwhile)."""

    woken: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)

    def _notified(self, *_args: object) -> None:
        self.woken.set()

    def _terminated(self, *_args: object) -> None:
        self.lost.set()
        self.woken.set()


@contextlib.asynccontextmanager
async def listening(pool: asyncpg.Pool) -> AsyncIterator[Listening]:
    """LISTEN for committed notifications on a connection of the pool, held for the block."""
    state = Listening()
    async with pool.acquire() as conn:
        raw = cast(asyncpg.Connection, conn)
        keeps_session_state(conn)
        raw.add_termination_listener(state._terminated)
        await raw.add_listener(CHANNEL, state._notified)
        try:
            yield state
        finally:
            raw.remove_termination_listener(state._terminated)
            if not raw.is_closed():
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    await raw.remove_listener(CHANNEL, state._notified)


async def of_report(pool: asyncpg.Pool, report_id: int) -> list[Notification]:
    return [_from_row(r) for r in await pool.fetch(q("notifications_of_report"), report_id)]
