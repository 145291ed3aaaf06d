"""A step of a clinic's study on its way to a report: the event, and the sending clinic's
pages told (they follow their studies live on the event stream)."""

from __future__ import annotations

from typing import Any

from storage.db import Conn
from storage.eventlog import notify, record_event
from storage.records import EventKind, NotificationKind, Role
from teleradiology.core.progress import FOLLOWED_STEPS


async def record_step(
    conn: Conn,
    kind: EventKind,
    *,
    facility_id: int,
    study_id: int,
    case_id: int | None = None,
    user_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record the step as an event of the sending facility's study (``facility_id``), and,
    for a step the clinic follows, tell its pages which step it was (no patient data)."""
    await record_event(
        conn,
        kind,
        facility_id=facility_id,
        study_id=study_id,
        case_id=case_id,
        user_id=user_id,
        detail=detail,
    )
    if kind in FOLLOWED_STEPS:
        told, to = {"step": kind.value}, Role.CLINIC
        await notify(
            conn, NotificationKind.STUDY_PROGRESS, facility_id=facility_id, audience=to,
            case_id=case_id, detail=told,
        )  # fmt: skip
