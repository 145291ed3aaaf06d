"""The facility network, its users and their API tokens."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn
from storage.errors import Conflict, NotFound
from storage.queries import q
from storage.records import (
    Destination,
    DutyShift,
    Facility,
    FacilityId,
    FacilitySpec,
    NetworkPolicy,
    Priority,
    Role,
    RouteSpec,
    RoutingData,
    RoutingRule,
    Specialty,
    Tier,
    User,
    UserId,
    UserSpec,
)


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
            user_id = await conn.fetchval(
                q("user_upsert"),
                u.username,
                u.display_name,
                u.role.value,
                u.facility,
                [s.value for s in u.specialties],
                u.password_hash,
            )
            if u.duty is not None:
                await conn.execute(q("duty_delete"), user_id)
                for shift in u.duty:
                    await conn.execute(
                        q("duty_insert"), user_id, sorted(shift.weekdays), shift.starts, shift.ends
                    )
        for f in facilities:
            await _import_rules(conn, f)
    return len(facilities), len(users)


async def _facility_id(conn: Conn, code: str, where: str) -> int:
    found: int | None = await conn.fetchval(q("facility_id_by_code"), code)
    if found is None:
        raise NotFound(f"{where}: facility {code} is not in the network")
    return found


async def _import_rules(conn: Conn, f: FacilitySpec) -> None:
    """A facility's policy, routing rules and report destination (after every facility)."""
    fid = await _facility_id(conn, f.code, f"facility {f.code}")
    await _write_rules(
        conn, fid, f.code, policy=f.policy, routes=f.routes, destination=f.report_destination
    )


async def _write_rules(
    conn: Conn,
    fid: int,
    code: str,
    *,
    policy: NetworkPolicy | None,
    routes: Sequence[RouteSpec] | None,
    destination: Destination | None,
) -> None:
    if policy is not None:
        p = policy
        await conn.execute(
            q("policy_upsert"),
            fid,
            p.timezone,
            p.deadlines[Priority.HIGH],
            p.deadlines[Priority.MEDIUM],
            p.deadlines[Priority.LOW],
            p.stemi_deadline,
            p.critical_ack,
            p.at_risk_share,
        )
    if routes is not None:
        await conn.execute(q("routes_delete"), fid)
        for r in routes:
            where = f"facility {code}: route"
            first = await _facility_id(conn, r.first_read, where)
            escalation = await _facility_id(conn, r.escalation, where) if r.escalation else None
            await conn.execute(
                q("route_insert"),
                fid,
                r.modality,
                r.specialty.value if r.specialty else None,
                r.priority.value if r.priority else None,
                first,
                escalation,
                r.deadline,
            )
    if destination is not None:
        d = destination
        await conn.execute(q("destination_upsert"), fid, d.ae_title, d.host, d.port)


async def _audit(conn: Conn, admin: User, object_type: str, object_id: str, detail: object) -> None:
    await conn.execute(
        q("audit_insert"),
        admin.id,
        "configure",
        object_type,
        object_id,
        json.dumps(detail, ensure_ascii=False, default=str),
    )


async def configure_facility(
    pool: asyncpg.Pool,
    admin: User,
    code: str,
    *,
    policy: NetworkPolicy | None = None,
    routes: Sequence[RouteSpec] | None = None,
    destination: Destination | None = None,
) -> None:
    """An administrator sets a facility's policy, replaces its routing rules (``routes``,
    empty: the defaults), or sets its report destination; audited.

    Raises
    ------
    NotFound
        The facility is not in the administrator's network, or a rule names an unknown
        facility.
    """
    async with pool.acquire() as conn, conn.transaction():
        fid = await conn.fetchval(q("facility_in_admin_scope"), code, admin.id)
        if fid is None:
            raise NotFound(f"facility {code} is not in your network")
        await _write_rules(conn, fid, code, policy=policy, routes=routes, destination=destination)
        detail: dict[str, object] = {}
        if policy is not None:
            detail["policy"] = {
                "deadlines": {k.value: v for k, v in policy.deadlines.items()},
                "stemi": policy.stemi_deadline,
                "critical_ack": policy.critical_ack,
                "at_risk_share": policy.at_risk_share,
                "timezone": policy.timezone,
            }
        if routes is not None:
            detail["routes"] = [dataclasses.asdict(r) for r in routes]
        if destination is not None:
            detail["report_destination"] = dataclasses.asdict(destination)
        await _audit(conn, admin, "facility_routing", code, detail)


async def set_duty(
    pool: asyncpg.Pool, admin: User, username: str, shifts: Sequence[DutyShift]
) -> None:
    """An administrator replaces a user's on-duty schedule (empty: always on duty); audited.

    Raises
    ------
    NotFound
        The user does not work in the administrator's network.
    """
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(q("user_in_admin_scope"), username, admin.id)
        if user_id is None:
            raise NotFound(f"user {username} does not work in your network")
        await conn.execute(q("duty_delete"), user_id)
        for shift in shifts:
            await conn.execute(
                q("duty_insert"), user_id, sorted(shift.weekdays), shift.starts, shift.ends
            )
        await _audit(
            conn,
            admin,
            "duty",
            username,
            {"duty": [dataclasses.asdict(s) | {"weekdays": sorted(s.weekdays)} for s in shifts]},
        )


@dataclass(frozen=True, kw_only=True)
class FacilityRouting:
    """One facility of an administrator's network with what routing reads of it."""

    code: str
    name: str
    tier: Tier
    policy: NetworkPolicy | None
    routes: tuple[RouteSpec, ...]
    report_destination: Destination | None


@dataclass(frozen=True, kw_only=True)
class UserDuty:
    username: str
    facility: str
    role: Role
    shifts: tuple[DutyShift, ...]


async def routing_config(
    pool: asyncpg.Pool, admin: User
) -> tuple[list[FacilityRouting], list[UserDuty]]:
    """The policies, routing rules, report destinations and duty rosters of the
    administrator's network (their facility and everything below it)."""
    async with pool.acquire() as conn:
        facilities = await conn.fetch(q("routing_facilities_in_scope"), admin.id)
        rules = await conn.fetch(q("routing_rules_in_scope"), admin.id)
        duty = await conn.fetch(q("duty_in_scope"), admin.id)
    routes: dict[str, list[RouteSpec]] = {}
    for r in rules:
        routes.setdefault(r["sender"], []).append(
            RouteSpec(
                modality=r["modality"],
                specialty=Specialty(r["specialty"]) if r["specialty"] else None,
                priority=Priority(r["priority"]) if r["priority"] else None,
                first_read=r["first_read"],
                escalation=r["escalation"],
                deadline=r["deadline"],
            )
        )
    found = [
        FacilityRouting(
            code=f["code"],
            name=f["name"],
            tier=Tier(f["tier"]),
            policy=NetworkPolicy.from_row(f) if f["deadline_high"] is not None else None,
            routes=tuple(routes.get(f["code"], ())),
            report_destination=(
                Destination(ae_title=f["ae_title"], host=f["host"], port=f["port"])
                if f["ae_title"] is not None
                else None
            ),
        )
        for f in facilities
    ]
    shifts: dict[str, UserDuty] = {}
    for d in duty:
        entry = shifts.setdefault(
            d["username"],
            UserDuty(
                username=d["username"], facility=d["facility"], role=Role(d["role"]), shifts=()
            ),
        )
        if d["starts"] is not None:
            shift = DutyShift(weekdays=frozenset(d["weekdays"]), starts=d["starts"], ends=d["ends"])
            shifts[d["username"]] = dataclasses.replace(entry, shifts=(*entry.shifts, shift))
    return found, list(shifts.values())


async def routing_data(conn: Conn, chain: Sequence[Facility], at: datetime) -> RoutingData:
    """Routing data for a sender whose facility chain (nearest first) is ``chain``."""
    ids = [f.id for f in chain]
    policy_row = await conn.fetchrow(q("policy_nearest"), ids)
    rules = tuple(RoutingRule.from_row(r) for r in await conn.fetch(q("routes_of"), ids))
    pools = ids + [r.first_read_facility_id for r in rules]
    pools += [r.escalation_facility_id for r in rules if r.escalation_facility_id is not None]
    staffed = frozenset(
        (FacilityId(r["facility_id"]), Specialty(r["specialty"]))
        for r in await conn.fetch(q("pools_on_duty"), pools, at)
    )
    return RoutingData(
        policy=NetworkPolicy.from_row(policy_row) if policy_row else NetworkPolicy(),
        rules=rules,
        staffed=staffed,
    )


async def policy_of(pool: asyncpg.Pool, facility_id: FacilityId) -> NetworkPolicy:
    """The policy of the network a facility belongs to."""
    async with pool.acquire() as conn:
        chain = await conn.fetch(q("facility_chain"), facility_id)
        row = await conn.fetchrow(q("policy_nearest"), [r["id"] for r in chain])
    return NetworkPolicy.from_row(row) if row else NetworkPolicy()


async def report_destination(pool: asyncpg.Pool, facility_id: FacilityId) -> Destination | None:
    row = await pool.fetchrow(q("destination_of"), facility_id)
    return (
        Destination(ae_title=row["ae_title"], host=row["host"], port=row["port"]) if row else None
    )


@dataclass(frozen=True, kw_only=True)
class PoolReader:
    """A reader of a pool, whether on duty now, and how many cases they hold."""

    user_id: UserId
    username: str
    display_name: str
    facility_id: FacilityId
    specialty: Specialty
    on_duty: bool
    open_cases: int


async def pool_readers(
    pool: asyncpg.Pool, facility_ids: Sequence[int], at: datetime
) -> list[PoolReader]:
    """The readers of the pools at these facilities, least loaded on-duty readers first."""
    rows = await pool.fetch(q("pool_readers"), list(facility_ids), at)
    return [
        PoolReader(
            user_id=UserId(r["id"]),
            username=r["username"],
            display_name=r["display_name"],
            facility_id=FacilityId(r["facility_id"]),
            specialty=Specialty(r["specialty"]),
            on_duty=r["on_duty"],
            open_cases=r["open_cases"],
        )
        for r in rows
    ]


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
