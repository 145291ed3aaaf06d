"""Accounts over their lifetime: their tokens (listed, revoked), deactivation, passwords
and the one-time links that set them, the sign-in throttle's releases, and what is left of
the demo."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from storage.db import Conn, Pool, transaction
from storage.network import token_digest
from storage.queries import q
from storage.records import Row, TokenKind, User, UserId, _aware

# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    """A token that still works, as its user or an administrator sees it (never its
    secret)."""

    id: int
    username: str
    kind: TokenKind
    created_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        _aware("created_at", self.created_at)
        _aware("expires_at", self.expires_at)

    @classmethod
    def from_row(cls, row: Row) -> TokenInfo:
        return cls(
            id=row["id"],
            username=row["username"],
            kind=TokenKind(row["kind"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )


async def tokens_of(pool: Pool, user_id: UserId) -> list[TokenInfo]:
    """A user's working tokens, the newest first."""
    return [TokenInfo.from_row(r) for r in await pool.fetch(q("tokens_of_user"), user_id)]


async def tokens_in_scope(
    pool: Pool, admin_id: UserId, username: str | None = None
) -> list[TokenInfo]:
    """The working tokens of the users of an administrator's network (of one, if named)."""
    rows = await pool.fetch(q("tokens_in_admin_scope"), admin_id, username)
    return [TokenInfo.from_row(r) for r in rows]


async def revoke_own_token(db: Pool | Conn, token_id: int, user_id: UserId) -> bool:
    """Revoke one of a user's own tokens; False when it is not theirs or no longer works."""
    return await db.fetchval(q("token_revoke_own"), token_id, user_id) is not None


async def revoke_token_in_scope(db: Pool | Conn, token_id: int, admin_id: UserId) -> bool:
    """Revoke a token of a user of an administrator's network; False when there is none."""
    return await db.fetchval(q("token_revoke_in_admin_scope"), token_id, admin_id) is not None


async def revoke_user_tokens(db: Pool | Conn, user_id: UserId, *, keep: str | None = None) -> None:
    """Revoke every token of a user (sessions too), but ``keep`` when given."""
    await db.execute(q("tokens_revoke_user"), user_id, token_digest(keep) if keep else None)


async def still_valid(pool: Pool, tokens: Sequence[str]) -> set[str]:
    """Those of ``tokens`` that still let their user in (unexpired, unrevoked, active)."""
    by_digest = {token_digest(t): t for t in tokens}
    rows = await pool.fetch(q("tokens_still_valid"), list(by_digest))
    return {by_digest[bytes(r["token_sha256"])] for r in rows}


# --- users -----------------------------------------------------------------------------------


async def set_active(conn: Conn, user_id: UserId, active: bool) -> None:
    """Activate or deactivate a user; deactivating also revokes every token they hold."""
    await conn.execute(q("user_set_active"), user_id, active)
    if not active:
        await revoke_user_tokens(conn, user_id)


async def password_hash_of(pool: Pool, user_id: UserId) -> str | None:
    """The stored password hash of an active user (None: no password, or not active)."""
    found: str | None = await pool.fetchval(q("user_password_hash_by_id"), user_id)
    return found


async def set_password(
    pool: Pool, user_id: UserId, password_hash: str, *, keep_token: str | None = None
) -> None:
    """A user's new password hash; every other token and session of theirs is revoked."""
    async with transaction(pool) as conn:
        await conn.execute(q("user_set_password"), user_id, password_hash)
        await revoke_user_tokens(conn, user_id, keep=keep_token)


@dataclass(frozen=True, kw_only=True)
class ManagedUser:
    """A user as their administrator manages them."""

    user: User
    facility_code: str
    has_password: bool


async def users_in_scope(pool: Pool, admin_id: UserId) -> list[ManagedUser]:
    rows = await pool.fetch(q("users_in_admin_scope"), admin_id)
    return [
        ManagedUser(
            user=User.from_row(r), facility_code=r["facility_code"], has_password=r["has_password"]
        )
        for r in rows
    ]


# --- one-time password links -----------------------------------------------------------------


async def create_password_link(
    db: Pool | Conn, user_id: UserId, *, expires_at: datetime, created_by: UserId | None
) -> str:
    """A new one-time link secret that sets the user's password (it replaces their unused
    ones); only its SHA-256 is stored."""
    secret = secrets.token_urlsafe(32)
    await db.execute(q("password_links_drop"), user_id)
    await db.execute(
        q("password_link_insert"), token_digest(secret), user_id, created_by, expires_at
    )
    return secret


async def password_link_user(pool: Pool, secret: str) -> str | None:
    """The username a link still works for, or None."""
    found: str | None = await pool.fetchval(q("password_link_user"), token_digest(secret))
    return found


async def use_password_link(pool: Pool, secret: str, password_hash: str) -> str | None:
    """Set the password a link is for and spend the link (every token of the user is
    revoked); the username, or None when the link is unknown, used or expired."""
    async with transaction(pool) as conn:
        row = await conn.fetchrow(q("password_link_use"), token_digest(secret))
        if row is None:
            return None
        user_id = UserId(row["user_id"])
        await conn.execute(q("user_set_password"), user_id, password_hash)
        await revoke_user_tokens(conn, user_id)
        username: str = row["username"]
        return username


# --- the sign-in throttle --------------------------------------------------------------------


async def unlock(db: Pool | Conn, user_id: UserId) -> None:
    """Record that an administrator released the account from the sign-in throttle."""
    await db.execute(q("user_unlock"), user_id)


async def unlocked_at(pool: Pool, username: str) -> datetime | None:
    """When an administrator last released this account from the sign-in throttle."""
    found: datetime | None = await pool.fetchval(q("user_unlocked_at"), username)
    return found


# --- what the demo leaves ---------------------------------------------------------------------


async def demo_password_users(pool: Pool) -> list[str]:
    """Active users whose password is the public demo one."""
    return [r["username"] for r in await pool.fetch(q("demo_password_users"))]


async def unchecked_for_demo(pool: Pool) -> list[tuple[UserId, str, str]]:
    """(id, username, hash) of the active users whose hash was never checked against the
    demo password."""
    rows = await pool.fetch(q("demo_unchecked_users"))
    return [(UserId(r["id"]), r["username"], r["password_hash"]) for r in rows]


async def mark_checked_for_demo(
    pool: Pool, user_id: UserId, password_hash: str, *, is_demo: bool
) -> None:
    """Record what the check of this hash found (nothing, if the password changed since)."""
    await pool.execute(q("demo_mark_checked"), user_id, password_hash, is_demo)


async def live_demo_tokens(pool: Pool) -> int:
    n: int = await pool.fetchval(q("demo_tokens_live"))
    return n


async def revoke_demo_tokens(pool: Pool) -> None:
    await pool.execute(q("demo_tokens_revoke"))
