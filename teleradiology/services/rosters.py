"""The administrator's console for routing: reading pools and their members, the duty
roster (weekly shifts and the exceptions on a date), routing rules added one at a time,
and the preview of where a study would go.

Every change is audited here, with the administrator and the values before and after.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from storage import audit, cases, network, rosters
from storage.db import Conn, Pool, transaction
from storage.records import (
    AuditAction,
    DutyShift,
    Facility,
    FacilityId,
    Priority,
    Role,
    RouteSpec,
    Specialty,
    StudyId,
    Tier,
    User,
    UserId,
)
from storage.rosters import DutyException, ExceptionKind, ReadingPool, RosterUser
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, Conflict, NotFound
from teleradiology.core.language import N_
from teleradiology.core.routing import RoutingError, unclaimed_escalation_at
from teleradiology.services import administration
from teleradiology.services import routing as routing_service

_READING_TIERS = (Tier.COUNTY, Tier.CITY)

# --- reading pools ---------------------------------------------------------------------------


async def list_pools(pool: Pool, admin: User) -> list[ReadingPool]:
    """The reading pools of the administrator's network."""
    require_role(admin, Role.ADMIN)
    async with pool.acquire() as conn:
        return await rosters.pools_in_scope(conn, admin.id)


def _pool_values(p: ReadingPool) -> dict[str, Any]:
    return {
        "name": p.name,
        "specialty": p.specialty.value,
        "facility": p.facility_code,
        "active": p.active,
        "members": list(p.members),
    }


async def _reading_facility(conn: Conn, admin: User, code: str) -> FacilityId:
    fid = await network.facility_in_admin_scope(conn, code, admin)
    if fid is None:
        raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=code)
    tier = await rosters.facility_tier(conn, fid)
    if tier not in _READING_TIERS:
        raise BadRequest(
            N_("机构 %(code)s 是%(tier)s：阅片组只设在县级或市级机构"), code=code, tier=tier
        )
    return fid


async def _members(
    conn: Conn, admin: User, usernames: Sequence[str], facility_id: FacilityId, specialty: Specialty
) -> list[UserId]:
    """The users named, each an active reader of the specialty at the pool's facility."""
    found: list[UserId] = []
    for username in dict.fromkeys(usernames):
        user_id = await network.user_in_admin_scope(conn, username, admin)
        user = await rosters.user_named(conn, username) if user_id else None
        if user is None:
            raise NotFound(N_("用户 %(username)s 不在您的网络中工作"), username=username)
        if user.role is not Role.READER or not user.active or specialty not in user.specialties:
            raise BadRequest(
                N_("%(username)s 不是在用的%(specialty)s阅片医生"),
                username=username,
                specialty=specialty,
            )
        if user.facility_id != facility_id:
            raise BadRequest(N_("%(username)s 不在阅片组所在机构阅片"), username=username)
        found.append(user.id)
    return found


async def create_pool(
    pool: Pool,
    admin: User,
    *,
    code: str,
    name: str,
    specialty: Specialty,
    facility: str,
    members: Sequence[str] = (),
) -> ReadingPool:
    """A new reading pool at a county or city of the administrator's network; audited.

    Raises
    ------
    Conflict
        The code is taken; NotFound: the facility or a member is not in the network;
        BadRequest: the facility does not read, or a member is not its reader of the
        specialty.
    """
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        fid = await _reading_facility(conn, admin, facility)
        if await rosters.pool_code_taken(conn, code):
            raise Conflict(N_("阅片组 %(code)s 已存在：请换一个代码"), code=code)
        member_ids = await _members(conn, admin, members, fid, specialty)
        pool_id = await rosters.insert_pool(
            conn, code=code, name=name, specialty=specialty, facility_id=fid
        )
        await rosters.set_members(conn, pool_id, member_ids)
        (created,) = await rosters.pools_in_scope(conn, admin.id, code)
        await _audit_pool(conn, admin, code, None, created)
    return created


async def _audit_pool(
    conn: Conn, admin: User, code: str, before: ReadingPool | None, after: ReadingPool
) -> None:
    await audit.record(
        conn,
        user_id=admin.id,
        action=AuditAction.CONFIGURE,
        object_type="reading_pool",
        object_id=code,
        detail={
            "before": _pool_values(before) if before else None,
            "after": _pool_values(after),
        },
    )


async def update_pool(
    pool: Pool,
    admin: User,
    code: str,
    *,
    name: str | None = None,
    specialty: Specialty | None = None,
    facility: str | None = None,
    members: Sequence[str] | None = None,
    active: bool | None = None,
) -> ReadingPool:
    """Change what is given of a pool of the administrator's network; audited.

    Raises
    ------
    NotFound
        The pool, the facility or a member is not in the network; BadRequest: as
        ``create_pool``.
    """
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        found = await rosters.pools_in_scope(conn, admin.id, code)
        if not found:
            raise NotFound(N_("阅片组 %(code)s 不在您的网络中"), code=code)
        before = found[0]
        fid = await _reading_facility(conn, admin, facility) if facility else before.facility_id
        kind = specialty or before.specialty
        await rosters.update_pool(
            conn,
            before.id,
            name=name or before.name,
            specialty=kind,
            facility_id=fid,
            active=before.active if active is None else active,
        )
        if members is not None or fid != before.facility_id or kind is not before.specialty:
            names = before.members if members is None else members
            await rosters.set_members(
                conn, before.id, await _members(conn, admin, names, fid, kind)
            )
        (after,) = await rosters.pools_in_scope(conn, admin.id, code)
        await _audit_pool(conn, admin, code, before, after)
    return after


# --- the duty roster -------------------------------------------------------------------------


async def _user_in_scope(conn: Conn, admin: User, username: str) -> UserId:
    user_id = await network.user_in_admin_scope(conn, username, admin)
    if user_id is None:
        raise NotFound(N_("用户 %(username)s 不在您的网络中工作"), username=username)
    return user_id


async def add_shift(pool: Pool, admin: User, username: str, shift: DutyShift) -> list[DutyShift]:
    """Add a weekly shift to a user's roster; audited with the shifts before and after. The
    user's shifts now.

    Raises
    ------
    NotFound
        The user does not work in the administrator's network.
    """
    require_role(admin, Role.ADMIN)
    return await administration.change_duty(
        pool, admin, username, lambda now: now if shift in now else [*now, shift]
    )


def _exception_values(e: DutyException) -> dict[str, Any]:
    return {
        "id": e.id,
        "day": e.day.isoformat(),
        "kind": e.kind.value,
        "starts": e.starts.isoformat() if e.starts else None,
        "ends": e.ends.isoformat() if e.ends else None,
    }


async def add_exception(
    pool: Pool,
    admin: User,
    username: str,
    *,
    day: date,
    kind: ExceptionKind,
    starts: time | None,
    ends: time | None,
) -> DutyException:
    """Leave or an extra shift for a user on a local date; audited.

    Raises
    ------
    NotFound
        The user does not work in the administrator's network; BadRequest: an extra shift
        without its hours, or only one of them.
    """
    require_role(admin, Role.ADMIN)
    try:
        draft = DutyException(id=0, username=username, day=day, kind=kind, starts=starts, ends=ends)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    async with transaction(pool) as conn:
        user_id = await _user_in_scope(conn, admin, username)
        new_id = await rosters.insert_exception(
            conn, user_id, day=day, kind=kind, starts=starts, ends=ends
        )
        made = dataclasses.replace(draft, id=new_id)
        await audit.record(
            conn,
            user_id=admin.id,
            action=AuditAction.CONFIGURE,
            object_type="duty_exception",
            object_id=username,
            detail={"before": None, "after": _exception_values(made)},
        )
    return made


async def delete_exception(pool: Pool, admin: User, exception_id: int) -> DutyException:
    """Remove a duty exception of a user of the administrator's network; audited.

    Raises
    ------
    NotFound
        No such exception in the network.
    """
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        gone = await rosters.delete_exception_in_scope(conn, exception_id, admin.id)
        if gone is None:
            raise NotFound(N_("您的网络中没有排班例外 %(id)s"), id=exception_id)
        await audit.record(
            conn,
            user_id=admin.id,
            action=AuditAction.CONFIGURE,
            object_type="duty_exception",
            object_id=gone.username,
            detail={"before": _exception_values(gone), "after": None},
        )
    return gone


@dataclass(frozen=True, kw_only=True)
class PoolWeek:
    """A pool's members with their weekly shifts, and their exceptions in the week from
    ``monday``."""

    pool: ReadingPool
    monday: date
    members: list[RosterUser]
    exceptions: list[DutyException]


async def pool_week(pool: Pool, admin: User, code: str, monday: date) -> PoolWeek:
    """The roster of a pool of the administrator's network for one week.

    Raises
    ------
    NotFound
        The pool is not in the network.
    """
    require_role(admin, Role.ADMIN)
    async with pool.acquire() as conn:
        found = await rosters.pools_in_scope(conn, admin.id, code)
        if not found:
            raise NotFound(N_("阅片组 %(code)s 不在您的网络中"), code=code)
        members = await rosters.roster_users(conn, found[0].members)
        exceptions = await rosters.exceptions_between(
            conn, found[0].members, monday, monday + timedelta(days=6)
        )
    return PoolWeek(pool=found[0], monday=monday, members=members, exceptions=exceptions)


# --- routing rules and the preview -----------------------------------------------------------


async def add_route(pool: Pool, admin: User, sender: str, rule: RouteSpec) -> list[RouteSpec]:
    """Add a routing rule to a sending facility of the administrator's network (replacing
    its rule for the same modality, specialty and priority); audited with the rules before
    and after. The facility's rules now.

    Raises
    ------
    NotFound
        The facility, or a facility or pool the rule names, is not in the network.
    """
    require_role(admin, Role.ADMIN)
    facilities, _ = await network.routing_config(pool, admin)
    current = next((f for f in facilities if f.code == sender), None)
    if current is None:
        raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=sender)

    def key(r: RouteSpec) -> tuple[object, ...]:
        return (r.modality, r.specialty, r.priority)

    kept = [r for r in current.routes if key(r) != key(rule)]
    if rule.pool is not None:
        kept = [r for r in kept if key(r) != (rule.modality, None, rule.priority)]
    await administration.configure_facility(pool, admin, sender, routes=[*kept, rule])
    after, _ = await network.routing_config(pool, admin)
    return list(next(f for f in after if f.code == sender).routes)


@dataclass(frozen=True, kw_only=True)
class PlannedCase:
    """Where one case of a previewed study would go, and when it would be due."""

    specialty: Specialty
    priority: Priority
    stemi: bool
    pool: ReadingPool | None
    reads_at: Facility
    escalation: Facility | None
    due_in: timedelta
    due_at: datetime
    #: when it is escalated if nobody has claimed it (None: nowhere to escalate to)
    escalated_at: datetime | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class RoutePreview:
    sender: Facility
    modality: str
    priority: Priority
    at: datetime
    cases: list[PlannedCase]


async def preview(
    pool: Pool, admin: User, sender: str, *, modality: str, priority: Priority, at: datetime
) -> RoutePreview:
    """Where a study of ``modality`` sent at ``at`` from a facility of the administrator's
    network would go: the plan real routing makes (`services.routing.plan`) over the same
    data.

    Raises
    ------
    NotFound
        The facility is not in the network; BadRequest: nothing above it reads.
    """
    require_role(admin, Role.ADMIN)
    async with pool.acquire() as conn:
        fid = await network.facility_in_admin_scope(conn, sender, admin)
        if fid is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=sender)
        stable = await cases.study_to_route(
            conn,
            StudyId(0),
            "",
            fid,
            modalities=(modality,),
            priority=priority,
            suspected_stemi=False,
            at=at,
        )
        pools = {p.id: p for p in await rosters.pools_in_scope(conn, admin.id)}
    try:
        plans = routing_service.plan(stable)
    except RoutingError as exc:
        raise BadRequest(exc.phrase) from None
    known = {f.id: f for f in await network.list_facilities(pool)}
    assert stable.study.routing is not None
    share = stable.study.routing.policy.at_risk_share
    return RoutePreview(
        sender=stable.chain[0],
        modality=modality,
        priority=priority,
        at=at,
        cases=[
            PlannedCase(
                specialty=p.specialty,
                priority=p.priority,
                stemi=p.stemi,
                pool=pools.get(p.reading_pool_id) if p.reading_pool_id else None,
                reads_at=known[p.pool_facility_id],
                escalation=known.get(p.escalation_facility_id)
                if p.escalation_facility_id
                else None,
                due_in=p.due_in,
                due_at=at + p.due_in,
                escalated_at=unclaimed_escalation_at(at, p.due_in, share)
                if p.escalation_facility_id
                else None,
                reason=p.reason,
            )
            for p in plans
        ],
    )
