"""The event log: every step of a study, case, report or referral, on the server's clock."""

from __future__ import annotations

import json
from typing import Any

from storage.db import Conn
from storage.queries import q
from storage.records import EventKind, NotificationKind, Role


async def record_event(
    conn: Conn,
    kind: EventKind,
    *,
    facility_id: int | None = None,
    study_id: int | None = None,
    case_id: int | None = None,
    report_id: int | None = None,
    user_id: int | None = None,
    referral_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event in the caller's transaction; its time is the server's UTC clock."""
    await conn.execute(
        q("event_insert_full"),
        kind.value,
        facility_id,
        study_id,
        case_id,
        report_id,
        user_id,
        referral_id,
        json.dumps(detail, ensure_ascii=False) if detail else None,
    )


async def notify(
    conn: Conn,
    kind: NotificationKind,
    *,
    facility_id: int,
    audience: Role,
    user_id: int | None = None,
    case_id: int | None = None,
    report_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Record a notification for a facility's users of one role (or one user); the event
    stream pushes it, and the record says who was told what, when. Its id."""
    found: int = await conn.fetchval(
        q("notification_insert"),
        kind.value,
        facility_id,
        audience.value,
        user_id,
        case_id,
        report_id,
        json.dumps(detail, ensure_ascii=False) if detail else None,
    )
    return found
