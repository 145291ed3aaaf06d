"""The audit log: who read or changed which patient data, when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from storage.db import Conn
from storage.queries import q
from storage.records import AuditAction, UserId


async def record(
    db: asyncpg.Pool | Conn,
    *,
    user_id: UserId | None,
    action: AuditAction,
    object_type: str,
    object_id: str | int,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one audit entry (in the caller's transaction when ``db`` is a connection);
    times and durations in ``detail`` are written as text."""
    await db.execute(
        q("audit_insert"),
        user_id,
        action.value,
        object_type,
        str(object_id),
        json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
    )


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    user_id: UserId | None
    action: str
    at: datetime


async def entries_for(
    pool: asyncpg.Pool, object_type: str, object_id: str | int
) -> list[AuditEntry]:
    rows = await pool.fetch(q("audit_of_object"), object_type, str(object_id))
    return [AuditEntry(user_id=r["user_id"], action=r["action"], at=r["at"]) for r in rows]
