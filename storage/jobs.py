"""The job queue in PostgreSQL (pgqueuer): enqueued in the same transaction as the row."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import asyncpg
from pgqueuer import QueueManager
from pgqueuer.queries import Queries
from pgqueuer.types import JobId

from storage.db import (
    COMMAND_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    SERVER_SETTINGS,
    Conn,
    Queryable,
    transaction,
)
from storage.queries import q
from storage.records import CaseId, ReportId, UserId


async def install_queue(conn: Conn) -> bool:
    """Create pgqueuer's tables when missing; True when this call installed them."""
    queries = Queries.from_asyncpg_connection(cast(asyncpg.Connection, conn))
    if await queries.schema_is_installed():
        return False
    await queries.install()
    return True


async def enqueue(conn: Conn, entrypoint: str, payload: Mapping[str, Any]) -> None:
    """Add a job on this connection, so it commits or rolls back with the caller's rows."""
    await Queries.from_asyncpg_connection(cast(asyncpg.Connection, conn)).enqueue(
        entrypoint, json.dumps(payload).encode()
    )


async def enqueue_each(pool: asyncpg.Pool, entrypoint: str, key: str, ids: list[int]) -> None:
    """Queue one job per id (``{key: id}``), each in a transaction of its own."""
    for item in ids:
        async with transaction(pool) as conn:
            await enqueue(conn, entrypoint, {key: item})


def decode_payload(payload: bytes | None) -> dict[str, Any]:
    """The JSON object a job was enqueued with."""
    if not payload:
        return {}
    value = json.loads(payload)
    if not isinstance(value, dict):
        raise ValueError("job payload is not a JSON object")
    return value


async def queue_manager(dsn: str) -> tuple[QueueManager, asyncpg.Connection]:
    """A queue manager on its own connection (LISTEN needs one outside the pool)."""
    conn = await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        server_settings=SERVER_SETTINGS,
    )
    return QueueManager(Queries.from_asyncpg_connection(conn)), conn


class FailedKind(StrEnum):
    """What failed to go home: the delivery of a report, one DICOM copy of it, or one
    message of it on a notification channel."""

    REPORT = "report"
    DICOM_COPY = "dicom_copy"
    #: a message on a notification channel (e-mail, a robot, a webhook)
    NOTICE = "notice"


@dataclass(frozen=True, kw_only=True)
class FailedDelivery:
    """A report delivery given up after its last attempt, waiting for an administrator."""

    kind: FailedKind
    id: int
    report_id: ReportId
    case_id: CaseId
    facility_code: str
    attempts: int
    last_error: str | None
    failed_at: datetime


async def failed_deliveries(
    pool: Queryable, user_id: UserId, entrypoint: str, *, limit: int = 200
) -> list[FailedDelivery]:
    """Held delivery jobs of ``entrypoint`` and given-up DICOM copies in the user's scope,
    the latest first."""
    rows = await pool.fetch(q("failed_deliveries_for_user"), user_id, entrypoint, limit)
    return [
        FailedDelivery(
            kind=FailedKind(r["kind"]),
            id=r["id"],
            report_id=ReportId(r["report_id"]),
            case_id=CaseId(r["case_id"]),
            facility_code=r["facility_code"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            failed_at=r["failed_at"],
        )
        for r in rows
    ]


async def retry_failed(
    pool: asyncpg.Pool, user_id: UserId, entrypoint: str, kind: FailedKind, item_id: int
) -> bool:
    """Try a given-up delivery again from its first attempt; False when there is no such
    failed item in the user's scope."""
    if kind is FailedKind.DICOM_COPY:
        return await pool.fetchval(q("dicom_copy_retry_for_user"), user_id, item_id) is not None
    async with pool.acquire() as conn:
        found = await conn.fetchval(q("failed_delivery_job_of_user"), user_id, item_id, entrypoint)
        if found is None:
            return False
        queries = Queries.from_asyncpg_connection(cast(asyncpg.Connection, conn))
        await queries.requeue_jobs([JobId(item_id)])
    return True


async def reports_without_delivery(
    pool: Queryable, entrypoint: str, *, signed_before: datetime, limit: int = 100
) -> list[ReportId]:
    """Final reports signed before ``signed_before``, undelivered, with no delivery job."""
    rows = await pool.fetch(q("reports_without_delivery"), signed_before, entrypoint, limit)
    return [ReportId(r["id"]) for r in rows]
