"""Reading cases: the queries and updates of cases and their studies, and their rows as
records.

The rules of reading (who may do what to a case, what follows) are
``teleradiology.core.casework``; the use cases that apply them, in one transaction each, are
in ``teleradiology.services``. The functions taking a connection run in the caller's
transaction. Reports are in ``storage.reports``; turnaround statistics in
``storage.turnaround``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from storage import network
from storage.db import Conn, Queryable
from storage.queries import q
from storage.records import (
    Case,
    CaseId,
    CasePlan,
    Facility,
    FacilityId,
    NetworkPolicy,
    Priority,
    ReturnReason,
    Specialty,
    StudyId,
    StudyToRoute,
    User,
    UserId,
)

# --- routing ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StableStudy:
    """A study that received nothing for long enough, locked, with what routing reads."""

    study: StudyToRoute
    #: the sender's facility chain, nearest first
    chain: tuple[Facility, ...]


async def lock_stable_studies(
    conn: Conn, *, stable_age: timedelta, limit: int, at: datetime
) -> list[StableStudy]:
    """Lock the studies that are complete (nothing received for ``stable_age``, or marked
    ready) with their routing data as of ``at``; other workers skip them.

    A study returned to its clinic waits for a new instance.
    """
    found: list[StableStudy] = []
    for row in await conn.fetch(q("studies_stable_lock"), stable_age, limit):
        found.append(
            await study_to_route(
                conn,
                StudyId(row["id"]),
                row["study_instance_uid"],
                FacilityId(row["facility_id"]),
                modalities=tuple(row["modalities"]),
                priority=Priority(row["priority"]),
                suspected_stemi=row["suspected_stemi"],
                at=at,
            )
        )
    return found


async def study_to_route(
    conn: Conn,
    study_id: StudyId,
    study_instance_uid: str,
    facility_id: FacilityId,
    *,
    modalities: tuple[str, ...],
    priority: Priority,
    suspected_stemi: bool,
    at: datetime,
) -> StableStudy:
    """A study sent from ``facility_id`` with the sender's facility chain and the routing
    data (rules, policy, pools on duty) as of ``at``: what routing plans from."""
    chain = tuple(Facility.from_row(r) for r in await conn.fetch(q("facility_chain"), facility_id))
    study = StudyToRoute(
        id=study_id,
        study_instance_uid=study_instance_uid,
        facility_id=facility_id,
        modalities=modalities,
        priority=priority,
        suspected_stemi=suspected_stemi,
        routing=await network.routing_data(conn, chain, at),
    )
    return StableStudy(study=study, chain=chain)


async def mark_complete(conn: Conn, study_id: StudyId) -> None:
    await conn.execute(q("study_mark_complete"), study_id)


async def insert_case(
    conn: Conn,
    study_id: StudyId,
    facility_id: FacilityId,
    plan: CasePlan,
    *,
    second_read_of: CaseId | None = None,
) -> CaseId | None:
    """A new scheduled case as planned; None when the study already has that open case."""
    case_id = await conn.fetchval(
        q("case_insert"),
        study_id,
        facility_id,
        plan.specialty.value,
        plan.priority.value,
        plan.pool_facility_id,
        plan.escalation_facility_id,
        plan.due_in,
        plan.stemi,
        second_read_of,
        plan.reading_pool_id,
    )
    return CaseId(case_id) if case_id is not None else None


async def facility_code(conn: Conn, facility_id: FacilityId) -> str | None:
    code: str | None = await conn.fetchval(q("facility_code_by_id"), facility_id)
    return code


# --- reads -----------------------------------------------------------------------------


async def worklist(pool: asyncpg.Pool, user: User, *, limit: int = 200) -> list[Case]:
    """Open cases in the user's scope (a reader: their current pools), most urgent first."""
    return [Case.from_row(r) for r in await pool.fetch(q("worklist"), user.id, limit)]


@dataclass(frozen=True, kw_only=True)
class PoolLoad:
    """The open cases of one reading pool and specialty."""

    pool_code: str
    specialty: Specialty
    open: int
    scheduled: int
    in_progress: int
    urgent: int
    overdue: int


@dataclass(frozen=True, kw_only=True)
class OpenCases:
    """The open cases sent from a network: per reading pool, per sending facility (code),
    and the longest overdue of them."""

    loads: list[PoolLoad]
    by_facility: dict[str, int]
    overdue: list[OverdueCase]


@dataclass(frozen=True, kw_only=True)
class OverdueCase:
    """An open case past its deadline, as the dashboard lists it (no patient data)."""

    id: CaseId
    study_id: StudyId
    facility_code: str
    pool_code: str
    specialty: Specialty
    priority: Priority
    stemi: bool
    deadline: datetime
    claimed: bool


async def open_cases(
    pool: asyncpg.Pool, root: FacilityId, at: datetime, *, overdue_limit: int = 200
) -> OpenCases:
    """The open cases sent from the network under `root`, counted at `at` by SQL (however
    many there are), with at most `overdue_limit` of those overdue, longest first."""
    rows = await pool.fetch(q("open_case_loads"), root, at)
    late = await pool.fetch(q("overdue_open_cases"), root, at, overdue_limit)
    return OpenCases(
        loads=[
            PoolLoad(
                pool_code=r["pool_code"],
                specialty=Specialty(r["specialty"]),
                open=r["open"],
                scheduled=r["scheduled"],
                in_progress=r["in_progress"],
                urgent=r["urgent"],
                overdue=r["overdue"],
            )
            for r in rows
            if r["pool_code"] is not None
        ],
        by_facility={r["facility_code"]: r["open"] for r in rows if r["facility_code"]},
        overdue=[
            OverdueCase(
                id=CaseId(r["id"]),
                study_id=StudyId(r["study_id"]),
                facility_code=r["facility_code"],
                pool_code=r["pool_code"],
                specialty=Specialty(r["specialty"]),
                priority=Priority(r["priority"]),
                stemi=r["stemi"],
                deadline=r["deadline"],
                claimed=r["claimed_by"] is not None,
            )
            for r in late
        ],
    )


async def case_for_user(db: Queryable, case_id: int, user: User) -> Case | None:
    """One case, only when it is in the user's scope."""
    row = await db.fetchrow(q("case_for_user"), case_id, user.id)
    return Case.from_row(row) if row else None


@dataclass(frozen=True, kw_only=True)
class ReturnedCase:
    """A study returned to its clinic for quality: the case, when, and the reader's note."""

    case: Case
    returned_at: datetime
    note: str


async def returned_to_clinic(
    pool: asyncpg.Pool, user: User, *, limit: int = 50
) -> list[ReturnedCase]:
    """The studies of the user's facility returned for quality (the latest return of each),
    newest first."""
    rows = await pool.fetch(q("cases_returned_to_facility"), user.id, user.facility_id, limit)
    return [
        ReturnedCase(
            case=Case.from_row(r), returned_at=r["returned_at"], note=r["return_note"] or ""
        )
        for r in rows
    ]


async def read_first_read(db: Queryable, first_read: CaseId, user_id: UserId) -> bool:
    """Whether the user claimed or reported the case ``first_read`` (of a second read)."""
    found: bool = await db.fetchval(q("case_first_reader_is"), first_read, user_id)
    return found


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: str
    at: datetime
    user_id: UserId | None
    detail: dict[str, Any]
    #: the case it happened to (an earlier, returned case of the same study; None: the study)
    case_id: CaseId | None = None


async def events_of_case(pool: asyncpg.Pool, case: Case) -> list[Event]:
    rows = await pool.fetch(q("events_of_case"), case.id, case.study_id)
    return [
        Event(
            kind=r["kind"],
            at=r["at"],
            user_id=UserId(r["user_id"]) if r["user_id"] is not None else None,
            detail=json.loads(r["detail"]),
            case_id=CaseId(r["case_id"]) if r["case_id"] is not None else None,
        )
        for r in rows
    ]


# --- one case, locked ------------------------------------------------------------------


async def lock_case(conn: Conn, case_id: int, user: User) -> Case | None:
    """The case, locked until the transaction ends, when it is in the user's scope."""
    row = await conn.fetchrow(q("case_lock_for_user"), case_id, user.id)
    return Case.from_row(row) if row else None


async def lock_next_claimable(conn: Conn, user: User) -> Case | None:
    """The most urgent case the reader may claim in their pools (scheduled, or with a lapsed
    lease; not a second read of a case they read), locked; rows other readers hold are
    skipped, so no case is handed out twice."""
    row = await conn.fetchrow(q("case_next_for_user"), user.id, 1)
    return Case.from_row(row) if row else None


async def claim(conn: Conn, case_id: CaseId, user_id: UserId, lease: timedelta) -> None:
    """The case is in progress by the user, leased for ``lease`` from now."""
    await conn.execute(q("case_claim"), case_id, user_id, lease)


async def release(conn: Conn, case_id: CaseId) -> None:
    """The case is back in its pool, held by nobody."""
    await conn.execute(q("case_release"), case_id)


async def complete(conn: Conn, case_id: CaseId) -> None:
    await conn.execute(q("case_complete"), case_id)


async def escalate(
    conn: Conn, case_id: CaseId, *, to: FacilityId, question: str | None, by: UserId | None
) -> str:
    """Move the case, back in scheduled, to the pool ``to`` (whose own escalation pool is the
    nearest county or city above it), with the question (None keeps the case's); the code
    of the new pool."""
    code: str = await conn.fetchval(q("case_escalate"), case_id, to, question, by)
    return code


async def return_to_clinic(conn: Conn, case: Case, *, reason: ReturnReason, note: str) -> None:
    """Cancel the case with the coded reason, and put its study back in receiving until the
    clinic sends it again."""
    await conn.execute(q("case_return"), case.id, reason.value, note or None)
    await conn.execute(q("study_mark_returned"), case.study_id)


@dataclass(frozen=True, kw_only=True)
class ExpiredLease:
    case_id: CaseId
    facility_id: FacilityId
    study_id: StudyId
    holder: UserId


async def expire_leases(conn: Conn) -> list[ExpiredLease]:
    """Put every case whose lease ran out back in its pool; the cases and their holders."""
    return [
        ExpiredLease(
            case_id=CaseId(r["id"]),
            facility_id=FacilityId(r["facility_id"]),
            study_id=StudyId(r["study_id"]),
            holder=UserId(r["holder"]),
        )
        for r in await conn.fetch(q("case_expire_leases"))
    ]


# --- priorities and deadlines ----------------------------------------------------------


async def lock_study(conn: Conn, study_id: StudyId, user: User) -> FacilityId | None:
    """Lock a study in the user's scope; its sending facility, or None when not in scope."""
    row = await conn.fetchrow(q("study_lock_for_user"), study_id, user.id)
    return FacilityId(row["facility_id"]) if row else None


async def set_priority(
    conn: Conn,
    study_id: StudyId,
    facility_id: FacilityId,
    *,
    priority: Priority,
    question: str | None,
) -> list[CaseId]:
    """The study takes the priority (and the clinical question, unless None); its open cases
    of a lower priority take it too, with its deadline when sooner. The cases raised."""
    policy = await _policy(conn, facility_id)
    await conn.execute(q("study_set_priority"), study_id, priority.value, question)
    changed = await conn.fetch(
        q("cases_raise_priority"), study_id, priority.value, policy.deadlines[priority]
    )
    return [CaseId(r["id"]) for r in changed]


@dataclass(frozen=True, kw_only=True)
class RaisedCase:
    case_id: CaseId
    deadline: datetime
    pool_facility_id: FacilityId


@dataclass(frozen=True, kw_only=True)
class StemiRaise:
    facility_id: FacilityId
    cases: tuple[RaisedCase, ...]


async def raise_to_stemi(conn: Conn, study_id: int) -> StemiRaise | None:
    """Mark the study a suspected STEMI at high priority, and its open ECG cases high with
    the network's STEMI deadline when sooner; None when there is no such study."""
    facility_id = await conn.fetchval(q("study_mark_stemi"), study_id)
    if facility_id is None:
        return None
    policy = await _policy(conn, facility_id)
    rows = await conn.fetch(q("cases_raise_to_stemi"), study_id, policy.stemi_deadline)
    return StemiRaise(
        facility_id=FacilityId(facility_id),
        cases=tuple(
            RaisedCase(
                case_id=CaseId(r["id"]),
                deadline=r["deadline"],
                pool_facility_id=FacilityId(r["pool_facility_id"]),
            )
            for r in rows
        ),
    )


async def _policy(conn: Conn, facility_id: int) -> NetworkPolicy:
    chain = [r["id"] for r in await conn.fetch(q("facility_chain"), facility_id)]
    row = await conn.fetchrow(q("policy_nearest"), chain)
    return NetworkPolicy.from_row(row) if row else NetworkPolicy()


@dataclass(frozen=True, kw_only=True)
class CaseAtRisk:
    case: Case
    #: the reader holding it is off duty at the time asked for
    holder_off_duty: bool


async def lock_cases_at_risk(conn: Conn, at: datetime, *, limit: int = 100) -> list[CaseAtRisk]:
    """Lock the open cases at risk at ``at`` whose deadline was not handled yet: past it, or
    unclaimed with less than the network's at-risk share of their window left; other
    workers skip them."""
    rows = await conn.fetch(q("cases_at_risk_lock"), at, limit)
    return [CaseAtRisk(case=Case.from_row(r), holder_off_duty=r["holder_off_duty"]) for r in rows]


async def mark_deadline_handled(conn: Conn, case: Case) -> None:
    """The case's present deadline is handled (a later deadline will be again)."""
    await conn.execute(q("case_deadline_handled"), case.id, case.deadline)
