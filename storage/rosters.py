"""Reading pools (named reader groups of one specialty at one facility) and the duty
roster: readers' weekly shifts and the exceptions on a date (leave, an extra shift)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum

from storage.db import Conn
from storage.queries import q
from storage.records import DutyShift, FacilityId, Row, Specialty, Tier, User, UserId


@dataclass(frozen=True, kw_only=True)
class ReadingPool:
    """A named pool of readers of one specialty at one reading facility."""

    id: int
    code: str
    name: str
    specialty: Specialty
    facility_id: FacilityId
    facility_code: str
    facility_name: str
    active: bool
    #: The members' usernames, in order
    members: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class PoolKey:
    """What routing needs of a pool named by code."""

    id: int
    facility_id: FacilityId
    specialty: Specialty
    active: bool


class ExceptionKind(StrEnum):
    LEAVE = "leave"
    EXTRA = "extra"


@dataclass(frozen=True, kw_only=True)
class DutyException:
    """Leave (``starts`` and ``ends`` None: the whole day) or an extra shift on a local date;
    an end not after the start runs past midnight."""

    id: int
    username: str
    day: date
    kind: ExceptionKind
    starts: time | None
    ends: time | None

    def __post_init__(self) -> None:
        if (self.starts is None) != (self.ends is None):
            raise ValueError("an exception gives both its start and its end, or neither")
        if self.kind is ExceptionKind.EXTRA and self.starts is None:
            raise ValueError("an extra shift needs its start and end")


@dataclass(frozen=True, kw_only=True)
class RosterUser:
    """A member of a pool with their weekly shifts."""

    username: str
    display_name: str
    shifts: tuple[DutyShift, ...]


async def pools_in_scope(
    conn: Conn, admin_id: UserId, code: str | None = None
) -> list[ReadingPool]:
    """The pools of the administrator's network (one, when ``code`` is given)."""
    return [
        ReadingPool(
            id=r["id"],
            code=r["code"],
            name=r["name"],
            specialty=Specialty(r["specialty"]),
            facility_id=FacilityId(r["facility_id"]),
            facility_code=r["facility_code"],
            facility_name=r["facility_name"],
            active=r["active"],
            members=tuple(r["members"]),
        )
        for r in await conn.fetch(q("pools_in_scope"), admin_id, code)
    ]


async def pool_by_code(conn: Conn, code: str) -> PoolKey | None:
    r = await conn.fetchrow(q("pool_by_code"), code)
    if r is None:
        return None
    return PoolKey(
        id=r["id"],
        facility_id=FacilityId(r["facility_id"]),
        specialty=Specialty(r["specialty"]),
        active=r["active"],
    )


async def pool_code_taken(conn: Conn, code: str) -> bool:
    taken: bool = await conn.fetchval(q("pool_code_taken"), code)
    return taken


async def insert_pool(
    conn: Conn, *, code: str, name: str, specialty: Specialty, facility_id: FacilityId
) -> int:
    pool_id: int = await conn.fetchval(q("pool_insert"), code, name, specialty.value, facility_id)
    return pool_id


async def update_pool(
    conn: Conn,
    pool_id: int,
    *,
    name: str,
    specialty: Specialty,
    facility_id: FacilityId,
    active: bool,
) -> None:
    await conn.execute(q("pool_update"), pool_id, name, specialty.value, facility_id, active)


async def set_members(conn: Conn, pool_id: int, user_ids: Sequence[UserId]) -> None:
    """The pool's members are these users."""
    await conn.execute(q("pool_members_delete"), pool_id)
    for user_id in user_ids:
        await conn.execute(q("pool_member_insert"), pool_id, user_id)


async def roster_users(conn: Conn, usernames: Sequence[str]) -> list[RosterUser]:
    """The users named, with their weekly shifts, by username."""
    found: dict[str, RosterUser] = {}
    for r in await conn.fetch(q("roster_users"), list(usernames)):
        user = found.setdefault(
            r["username"],
            RosterUser(username=r["username"], display_name=r["display_name"], shifts=()),
        )
        if r["starts"] is not None:
            shift = DutyShift(weekdays=frozenset(r["weekdays"]), starts=r["starts"], ends=r["ends"])
            found[r["username"]] = RosterUser(
                username=user.username,
                display_name=user.display_name,
                shifts=(*user.shifts, shift),
            )
    return list(found.values())


def _exception(row: Row) -> DutyException:
    return DutyException(
        id=row["id"],
        username=row["username"],
        day=row["day"],
        kind=ExceptionKind(row["kind"]),
        starts=row["starts"],
        ends=row["ends"],
    )


async def exceptions_between(
    conn: Conn, usernames: Sequence[str], first: date, last: date
) -> list[DutyException]:
    """The users' exceptions on local dates from ``first`` to ``last``, inclusive."""
    rows = await conn.fetch(q("roster_exceptions"), list(usernames), first, last)
    return [_exception(r) for r in rows]


async def insert_exception(
    conn: Conn,
    user_id: UserId,
    *,
    day: date,
    kind: ExceptionKind,
    starts: time | None,
    ends: time | None,
) -> int:
    found: int = await conn.fetchval(q("exception_insert"), user_id, day, kind.value, starts, ends)
    return found


async def delete_exception_in_scope(
    conn: Conn, exception_id: int, admin_id: UserId
) -> DutyException | None:
    """Delete an exception of a user in the administrator's network; what it was."""
    row = await conn.fetchrow(q("exception_delete_in_scope"), exception_id, admin_id)
    return _exception(row) if row is not None else None


async def case_reading_pool(conn: Conn, case_id: int) -> str | None:
    """The code of the named pool a case was routed to, if any."""
    code: str | None = await conn.fetchval(q("case_reading_pool"), case_id)
    return code


async def facility_tier(conn: Conn, facility_id: FacilityId) -> Tier:
    return Tier(await conn.fetchval(q("facility_tier"), facility_id))


async def user_named(conn: Conn, username: str) -> User | None:
    row = await conn.fetchrow(q("user_by_username"), username)
    return User.from_row(row) if row else None
