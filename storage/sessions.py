"""Browser sessions: a bearer token kept in an HttpOnly cookie, revoked on sign-out."""

from __future__ import annotations

import hashlib

import asyncpg

from storage.queries import q


async def revoke(pool: asyncpg.Pool, token: str) -> None:
    """Revoke one token (a no-op when it is unknown or already revoked)."""
    await pool.execute(q("session_revoke"), hashlib.sha256(token.encode()).digest())
