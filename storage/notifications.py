"""Reading the notification record: the event stream's feed and what a report caused."""

from __future__ import annotations

import json

import asyncpg

from storage.queries import q
from storage.records import (
    CaseId,
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
        at=r["at"],
        kind=r["kind"],
        facility_id=FacilityId(r["facility_id"]),
        audience=Role(r["audience"]),
        user_id=UserId(r["user_id"]) if r["user_id"] is not None else None,
        case_id=CaseId(r["case_id"]) if r["case_id"] is not None else None,
        report_id=ReportId(r["report_id"]) if r["report_id"] is not None else None,
        detail=json.loads(r["detail"]),
    )


async def last_id(pool: asyncpg.Pool) -> int:
    n: int = await pool.fetchval(q("notification_last_id"))
    return n


async def after(pool: asyncpg.Pool, last: int, *, limit: int = 500) -> list[Notification]:
    """Every notification after id ``last``, oldest first (for the stream's one poller)."""
    return [_from_row(r) for r in await pool.fetch(q("notifications_after"), last, limit)]


async def for_user(
    pool: asyncpg.Pool, user: User, last: int, *, limit: int = 500
) -> list[Notification]:
    """The notifications addressed to ``user`` after id ``last`` (replay on reconnect)."""
    rows = await pool.fetch(q("notifications_for_user"), user.id, last, limit)
    return [_from_row(r) for r in rows]


async def of_report(pool: asyncpg.Pool, report_id: int) -> list[Notification]:
    return [_from_row(r) for r in await pool.fetch(q("notifications_of_report"), report_id)]
