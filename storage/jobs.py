"""The job queue in PostgreSQL (pgqueuer): enqueued in the same transaction as the row."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import asyncpg
from pgqueuer import QueueManager
from pgqueuer.queries import Queries

from storage.db import Conn


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
    conn = await asyncpg.connect(dsn)
    return QueueManager(Queries.from_asyncpg_connection(conn)), conn
