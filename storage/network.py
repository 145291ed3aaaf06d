"""The facility network, its users and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.errors import Conflict, NotFound
from storage.queries import q
from storage.records import Facility, FacilityId, Role, Specialty, Tier, User, UserId


@dataclass(frozen=True, kw_only=True)
class FacilitySpec:
    """A facility as an import file declares it."""

    code: str
    name: str
    tier: Tier
    parent: str | None
    ae_titles: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class UserSpec:
    """A user as an import file declares it; ``password_hash`` is already hashed."""

    username: str
    display_name: str
    role: Role
    facility: str
    specialties: tuple[Specialty, ...]
    password_hash: str | None


async def import_network(
    pool: asyncpg.Pool, facilities: Sequence[FacilitySpec], users: Sequence[UserSpec]
) -> tuple[int, int]:
    """Add or update facilities (parents first) and users, all in one transaction.

    Raises
    ------
    Conflict
        If an AE title already belongs to another facility.
    """
    async with pool.acquire() as conn, conn.transaction():
        for f in facilities:
            if (
                f.parent is not None
                and await conn.fetchval(q("facility_id_by_code"), f.parent) is None
            ):
                raise NotFound(f"facility {f.code}: parent {f.parent} is not in the network")
            fid = await conn.fetchval(q("facility_upsert"), f.code, f.name, f.tier.value, f.parent)
            for ae in f.ae_titles:
                owner = await conn.fetchval(q("facility_ae_owner"), ae)
                if owner is not None and owner != f.code:
                    raise Conflict(f"AE title {ae} already belongs to facility {owner}")
            await conn.execute(q("facility_ae_delete_others"), fid, list(f.ae_titles))
            for ae in f.ae_titles:
                await conn.execute(q("facility_ae_insert"), ae, fid)
        for u in users:
            if await conn.fetchval(q("facility_id_by_code"), u.facility) is None:
                raise NotFound(f"user {u.username}: facility {u.facility} is not in the network")
            await conn.fetchval(
                q("user_upsert"),
                u.username,
                u.display_name,
                u.role.value,
                u.facility,
                [s.value for s in u.specialties],
                u.password_hash,
            )
    return len(facilities), len(users)


async def facility_count(pool: asyncpg.Pool) -> int:
    """How many facilities the network has (0 on a fresh database)."""
    n: int = await pool.fetchval(q("facility_count"))
    return n


async def facility_by_ae(pool: asyncpg.Pool, ae_title: str) -> Facility | None:
    """The facility a calling AE title belongs to, or None when unknown."""
    row = await pool.fetchrow(q("facility_by_ae"), ae_title)
    return Facility.from_row(row) if row else None


async def facility_by_id(pool: asyncpg.Pool, facility_id: FacilityId) -> Facility | None:
    row = await pool.fetchrow(q("facility_by_id"), facility_id)
    return Facility.from_row(row) if row else None


async def list_ae_titles(pool: asyncpg.Pool) -> list[str]:
    """Every calling AE title configured in the network."""
    return [r["ae_title"] for r in await pool.fetch(q("ae_title_list"))]


async def facility_chain(pool: asyncpg.Pool, facility_id: FacilityId) -> list[Facility]:
    """The facility and every facility above it, nearest first."""
    return [Facility.from_row(r) for r in await pool.fetch(q("facility_chain"), facility_id)]


async def list_facilities(pool: asyncpg.Pool) -> list[Facility]:
    return [Facility.from_row(r) for r in await pool.fetch(q("facility_list"))]


async def list_users(pool: asyncpg.Pool) -> list[User]:
    return [User.from_row(r) for r in await pool.fetch(q("user_list"))]


async def user_by_username(pool: asyncpg.Pool, username: str) -> User | None:
    row = await pool.fetchrow(q("user_by_username"), username)
    return User.from_row(row) if row else None


async def password_hash(pool: asyncpg.Pool, username: str) -> tuple[UserId, str] | None:
    """The stored password hash of an active user, when one is set."""
    row = await pool.fetchrow(q("user_password_hash"), username)
    if row is None or row["password_hash"] is None:
        return None
    return UserId(row["id"]), row["password_hash"]


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(
    pool: asyncpg.Pool, user_id: UserId, *, expires_at: datetime | None = None
) -> str:
    """Make a new bearer token for a user; only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    await pool.execute(q("token_insert"), _token_digest(token), user_id, expires_at)
    return token


async def user_by_token(pool: asyncpg.Pool, token: str) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to."""
    row = await pool.fetchrow(q("user_by_token"), _token_digest(token))
    return User.from_row(row) if row else None
