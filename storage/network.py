"""The facility network, its users and their API tokens."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from storage.db import Conn, Queryable
from storage.queries import q
from storage.records import (
    AePeer,
    Destination,
    DutyShift,
    Facility,
    FacilityId,
    FacilitySpec,
    Language,
    NetworkPolicy,
    Priority,
    Role,
    RouteSpec,
    RoutingData,
    RoutingRule,
    Row,
    Specialty,
    Tier,
    TokenKind,
    User,
    UserId,
    UserSpec,
)

# --- writing the network (the rules and their audit are the administration service's) ------


async def facility_id_by_code(conn: Conn, code: str) -> FacilityId | None:
    found: int | None = await conn.fetchval(q("facility_id_by_code"), code)
    return FacilityId(found) if found is not None else None


async def user_id_by_username(conn: Conn, username: str) -> UserId | None:
    found: int | None = await conn.fetchval(q("user_id_by_username"), username)
    return UserId(found) if found is not None else None


async def upsert_facility(conn: Conn, f: FacilitySpec) -> FacilityId:
    """Add or update a facility by its code (its parent is there already)."""
    fid: int = await conn.fetchval(
        q("facility_upsert"), f.code, f.name, f.tier.value, f.parent, f.active
    )
    return FacilityId(fid)


async def ae_title_owner(conn: Conn, ae_title: str) -> str | None:
    """The code of the facility a calling AE title belongs to, if any."""
    owner: str | None = await conn.fetchval(q("facility_ae_owner"), ae_title)
    return owner


async def set_ae_titles(
    conn: Conn,
    facility_id: FacilityId,
    ae_titles: Sequence[str],
    peers: Sequence[AePeer] = (),
) -> None:
    """The facility's calling AE titles are these, bound as ``peers`` says (a title not in
    it is bound to nothing); titles of other facilities are kept."""
    await conn.execute(q("facility_ae_delete_others"), facility_id, list(ae_titles))
    bound = {p.ae_title: p for p in peers}
    for ae in ae_titles:
        peer = bound.get(ae, AePeer(ae_title=ae))
        await conn.execute(q("facility_ae_insert"), ae, facility_id, peer.host, peer.cert_sha256)


async def dicom_peers(pool: asyncpg.Pool) -> list[AePeer]:
    """Every calling AE title we accept, with its binding (a title may come twice: as a
    workstation and as a query node; both bindings count)."""
    return [
        AePeer(ae_title=r["ae_title"], host=r["peer_host"], cert_sha256=r["cert_sha256"])
        for r in await pool.fetch(q("dicom_peers"))
    ]


async def upsert_user(conn: Conn, u: UserSpec) -> tuple[UserId, bool]:
    """Add or update a user by username (their facility is there); whether they still have
    no password."""
    row = await conn.fetchrow(
        q("user_upsert"),
        u.username,
        u.display_name,
        u.role.value,
        u.facility,
        [s.value for s in u.specialties],
        u.password_hash,
        u.active,
        u.demo_password,
    )
    assert row is not None  # an upsert returns its row
    return UserId(row["id"]), bool(row["needs_password"])


async def replace_duty(conn: Conn, user_id: int, shifts: Sequence[DutyShift]) -> None:
    """The user's on-duty schedule is these shifts (none: always on duty)."""
    await conn.execute(q("duty_delete"), user_id)
    for shift in shifts:
        await conn.execute(
            q("duty_insert"), user_id, sorted(shift.weekdays), shift.starts, shift.ends
        )


async def write_policy(conn: Conn, facility_id: int, p: NetworkPolicy) -> None:
    await conn.execute(
        q("policy_upsert"),
        facility_id,
        p.timezone,
        p.deadlines[Priority.HIGH],
        p.deadlines[Priority.MEDIUM],
        p.deadlines[Priority.LOW],
        p.stemi_deadline,
        p.critical_ack,
        p.at_risk_share,
    )


@dataclass(frozen=True, kw_only=True)
class PlacedRoute:
    """A routing rule with the facilities it names found: its first-read and escalation
    pools."""

    spec: RouteSpec
    first_read_id: int
    escalation_id: int | None
    pool_id: int | None = None


async def replace_routes(conn: Conn, facility_id: int, routes: Sequence[PlacedRoute]) -> None:
    """The facility's routing rules are these (none: the defaults)."""
    await conn.execute(q("routes_delete"), facility_id)
    for r in routes:
        await conn.execute(
            q("route_insert"),
            facility_id,
            r.spec.modality,
            r.spec.specialty.value if r.spec.specialty else None,
            r.spec.priority.value if r.spec.priority else None,
            r.first_read_id,
            r.escalation_id,
            r.spec.deadline,
            r.pool_id,
        )


async def write_destination(conn: Conn, facility_id: int, d: Destination) -> None:
    await conn.execute(q("destination_upsert"), facility_id, d.ae_title, d.host, d.port, d.tls)


async def facility_in_admin_scope(conn: Conn, code: str, admin: User) -> FacilityId | None:
    """A facility by code, when it is in the administrator's network."""
    found: int | None = await conn.fetchval(q("facility_in_admin_scope"), code, admin.id)
    return FacilityId(found) if found is not None else None


async def facility_in_admin_reach(conn: Conn, code: str, admin: User) -> FacilityId | None:
    """A facility by code that the administrator's routing rules may name: of their network,
    or above it."""
    found: int | None = await conn.fetchval(q("facility_in_admin_reach"), code, admin.id)
    return FacilityId(found) if found is not None else None


async def user_in_admin_scope(conn: Conn, username: str, admin: User) -> UserId | None:
    """A user by username, when they work in the administrator's network."""
    found: int | None = await conn.fetchval(q("user_in_admin_scope"), username, admin.id)
    return UserId(found) if found is not None else None


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


def _route_spec(r: Row) -> RouteSpec:
    return RouteSpec(
        modality=r["modality"],
        specialty=Specialty(r["specialty"]) if r["specialty"] else None,
        priority=Priority(r["priority"]) if r["priority"] else None,
        first_read=r["first_read"],
        escalation=r["escalation"],
        deadline=r["deadline"],
        pool=r["pool"],
    )


def routes_by_sender(rules: Sequence[asyncpg.Record]) -> dict[str, list[RouteSpec]]:
    """Routing rule rows (``sender``, ``first_read``, ``escalation`` by code) as each sending
    facility's rules, in order."""
    routes: dict[str, list[RouteSpec]] = {}
    for r in rules:
        routes.setdefault(r["sender"], []).append(_route_spec(r))
    return routes


async def facility_rules(
    conn: Conn, facility_id: FacilityId
) -> tuple[NetworkPolicy | None, list[RouteSpec]]:
    """A facility's own policy (None: it has none) and its routing rules as a sender."""
    row = await conn.fetchrow(q("facility_own_policy"), facility_id)
    rules = await conn.fetch(q("routing_rules_of_sender"), facility_id)
    return (NetworkPolicy.from_row(row) if row else None), [_route_spec(r) for r in rules]


async def routing_config(
    pool: asyncpg.Pool, admin: User
) -> tuple[list[FacilityRouting], list[UserDuty]]:
    """The policies, routing rules, report destinations and duty rosters of the
    administrator's network (their facility and everything below it)."""
    async with pool.acquire() as conn:
        facilities = await conn.fetch(q("routing_facilities_in_scope"), admin.id)
        rules = await conn.fetch(q("routing_rules_in_scope"), admin.id)
        duty = await conn.fetch(q("duty_in_scope"), admin.id)
    routes = routes_by_sender(rules)
    found = [
        FacilityRouting(
            code=f["code"],
            name=f["name"],
            tier=Tier(f["tier"]),
            policy=NetworkPolicy.from_row(f) if f["deadline_high"] is not None else None,
            routes=tuple(routes.get(f["code"], ())),
            report_destination=(
                Destination(ae_title=f["ae_title"], host=f["host"], port=f["port"], tls=f["tls"])
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
    named = [r.pool_id for r in rules if r.pool_id is not None]
    staffed_pools = frozenset(
        r["pool_id"] for r in await conn.fetch(q("named_pools_on_duty"), named, at)
    )
    return RoutingData(
        policy=NetworkPolicy.from_row(policy_row) if policy_row else NetworkPolicy(),
        rules=rules,
        staffed=staffed,
        staffed_pools=staffed_pools,
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
        Destination(ae_title=row["ae_title"], host=row["host"], port=row["port"], tls=row["tls"])
        if row
        else None
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


async def facility_chain(pool: asyncpg.Pool, facility_id: FacilityId) -> list[Facility]:
    """The facility and every facility above it, nearest first."""
    return [Facility.from_row(r) for r in await pool.fetch(q("facility_chain"), facility_id)]


async def list_facilities(pool: asyncpg.Pool) -> list[Facility]:
    return [Facility.from_row(r) for r in await pool.fetch(q("facility_list"))]


async def list_users(pool: asyncpg.Pool) -> list[User]:
    return [User.from_row(r) for r in await pool.fetch(q("user_list"))]


async def user_by_username(pool: Queryable, username: str) -> User | None:
    row = await pool.fetchrow(q("user_by_username"), username)
    return User.from_row(row) if row else None


async def password_hash(pool: asyncpg.Pool, username: str) -> tuple[UserId, str] | None:
    """The stored password hash of an active user, when one is set."""
    row = await pool.fetchrow(q("user_password_hash"), username)
    if row is None or row["password_hash"] is None:
        return None
    return UserId(row["id"]), row["password_hash"]


def token_digest(token: str) -> bytes:
    """What is stored of a token (or a one-time link): its SHA-256."""
    return hashlib.sha256(token.encode()).digest()


#: How long a token lives when its maker names no expiry.
DEFAULT_TOKEN_LIFETIME = timedelta(days=30)


async def create_token(
    pool: asyncpg.Pool,
    user_id: UserId,
    *,
    expires_at: datetime | None = None,
    kind: TokenKind = TokenKind.CLI,
) -> str:
    """Make a new bearer token for a user, expiring at ``expires_at`` (default
    ``DEFAULT_TOKEN_LIFETIME`` from now); only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    expires = expires_at or datetime.now(UTC) + DEFAULT_TOKEN_LIFETIME
    await pool.execute(q("token_insert"), token_digest(token), user_id, expires, kind.value)
    return token


async def user_by_token(pool: asyncpg.Pool, token: str) -> User | None:
    """The active user a valid, unexpired, unrevoked token belongs to."""
    row = await pool.fetchrow(q("user_by_token"), token_digest(token))
    return User.from_row(row) if row else None


async def set_user_language(db: Queryable, user_id: UserId, language: Language) -> Language:
    """Set what the user reads pages, PDFs and e-mails in; the language it replaced."""
    before = await db.fetchval(q("user_language_set"), user_id, language.value)
    return Language(before)
