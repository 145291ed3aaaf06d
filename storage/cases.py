"""Reading cases: routing into pools, leases, escalation, return, double reading, deadlines.

Reports on cases are in ``storage.reports``; turnaround statistics in ``storage.turnaround``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from storage import network
from storage.db import Conn
from storage.errors import Conflict, InvalidState, NotFound
from storage.eventlog import notify, record_event
from storage.queries import q
from storage.records import (
    Case,
    CaseId,
    CasePlan,
    EventKind,
    Facility,
    FacilityId,
    NetworkPolicy,
    NotificationKind,
    Priority,
    ReturnReason,
    Role,
    Specialty,
    StudyId,
    StudyToRoute,
    User,
    UserId,
)

DELIVER_REPORT = "deliver_report"


RoutingPlan = Callable[[StudyToRoute, list[Facility]], list[CasePlan]]


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


async def complete_stable_studies(
    pool: asyncpg.Pool,
    *,
    stable_age: timedelta,
    plan: RoutingPlan,
    limit: int = 50,
    now: datetime | None = None,
) -> list[CaseId]:
    """Mark studies complete that received nothing for ``stable_age``, and route them.

    Each study is completed and its cases created in one transaction; concurrent workers
    skip each other's studies. A study returned to its clinic waits for a new instance.
    """
    at = _now(now)
    created: list[CaseId] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(q("studies_stable_lock"), stable_age, limit)
        for row in rows:
            chain = [
                Facility.from_row(r)
                for r in await conn.fetch(q("facility_chain"), row["facility_id"])
            ]
            study = StudyToRoute(
                id=StudyId(row["id"]),
                study_instance_uid=row["study_instance_uid"],
                facility_id=FacilityId(row["facility_id"]),
                modalities=tuple(row["modalities"]),
                priority=Priority(row["priority"]),
                suspected_stemi=row["suspected_stemi"],
                routing=await network.routing_data(conn, chain, at),
            )
            await conn.execute(q("study_mark_complete"), study.id)
            await record_event(
                conn, EventKind.COMPLETE, facility_id=study.facility_id, study_id=study.id
            )
            codes = {f.id: f.code for f in chain}
            for case_plan in plan(study, chain):
                case_id = await _insert_case(conn, study.id, study.facility_id, case_plan, None)
                if case_id is None:
                    continue
                pool_code = codes.get(case_plan.pool_facility_id) or await conn.fetchval(
                    q("facility_code_by_id"), case_plan.pool_facility_id
                )
                await record_event(
                    conn,
                    EventKind.ROUTED,
                    facility_id=study.facility_id,
                    study_id=study.id,
                    case_id=case_id,
                    detail={
                        "pool": pool_code,
                        "specialty": case_plan.specialty.value,
                        "reason": case_plan.reason,
                    },
                )
                created.append(case_id)
    return created


async def _insert_case(
    conn: Conn, study_id: int, facility_id: int, plan: CasePlan, second_read_of: int | None
) -> CaseId | None:
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
    )
    if case_id is None:
        return None
    await notify(
        conn,
        NotificationKind.CASE,
        facility_id=plan.pool_facility_id,
        audience=Role.READER,
        case_id=case_id,
        detail={"specialty": plan.specialty.value, "priority": plan.priority.value},
    )
    return CaseId(case_id)


async def worklist(pool: asyncpg.Pool, user: User, *, limit: int = 200) -> list[Case]:
    """Open cases in the user's scope (a reader: their current pools), most urgent first."""
    return [Case.from_row(r) for r in await pool.fetch(q("worklist"), user.id, limit)]


async def case_for_user(pool: asyncpg.Pool, case_id: int, user: User) -> Case | None:
    """One case, only when it is in the user's scope."""
    row = await pool.fetchrow(q("case_for_user"), case_id, user.id)
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


async def locked_case(conn: Conn, case_id: int, user: User) -> Any:
    """The case row, locked for update, when it is in the user's scope."""
    row = await conn.fetchrow(q("case_lock_for_user"), case_id, user.id)
    if row is None:
        raise NotFound(f"case {case_id} not found")
    return row


def require_holder(row: Any, user: User, action: str) -> None:
    if row["status"] != "in_progress" or row["claimed_by"] != user.id:
        raise InvalidState(f"claim case {row['id']} before you {action} it")


async def _reload(pool: asyncpg.Pool, case_id: int, user: User) -> Case:
    found = await case_for_user(pool, case_id, user)
    if found is None:
        raise NotFound(f"case {case_id} not found")
    return found


async def _claim_row(conn: Conn, row: Any, user: User, lease: timedelta) -> None:
    case_id = row["id"]
    status, holder = row["status"], row["claimed_by"]
    if status in ("completed", "canceled"):
        raise InvalidState(f"case {case_id} is {status}")
    if row["pool_facility_id"] != user.facility_id:
        raise InvalidState(
            f"case {case_id} is now read at {row['pool_code']}; only its readers can claim it"
        )
    if status == "in_progress" and holder != user.id and not row["lease_expired"]:
        raise Conflict(f"case {case_id} is being read by another reader")
    if row["second_read_of"] is not None and await conn.fetchval(
        q("case_first_reader_is"), row["second_read_of"], user.id
    ):
        raise InvalidState(f"case {case_id} is a second read: another reader must read it")
    await conn.execute(q("case_claim"), case_id, user.id, lease)
    if holder != user.id:
        await record_event(
            conn,
            EventKind.CLAIMED,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=case_id,
            user_id=user.id,
        )


async def claim_case(pool: asyncpg.Pool, case_id: int, user: User, *, lease: timedelta) -> Case:
    """Take (or renew) the lease on a case; another reader's live lease is a Conflict."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked_case(conn, case_id, user)
        await _claim_row(conn, row, user, lease)
    return await _reload(pool, case_id, user)


async def claim_next(pool: asyncpg.Pool, user: User, *, lease: timedelta) -> Case | None:
    """Claim the most urgent unclaimed case of the reader's pools; None when there is none.

    Concurrent readers skip each other's rows, so no case is handed out twice.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("case_next_for_user"), user.id, 1)
        if row is None:
            return None
        await _claim_row(conn, row, user, lease)
        return await _reload_in(conn, row["id"], user)


async def _reload_in(conn: Conn, case_id: int, user: User) -> Case:
    row = await conn.fetchrow(q("case_for_user"), case_id, user.id)
    if row is None:
        raise NotFound(f"case {case_id} not found")
    return Case.from_row(row)


async def release_case(pool: asyncpg.Pool, case_id: int, user: User) -> Case:
    """Give a claimed case back to its pool; an administrator may force-release any claim."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked_case(conn, case_id, user)
        forced = user.role is Role.ADMIN
        if forced:
            if row["status"] != "in_progress":
                raise InvalidState(f"case {case_id} is not claimed")
        else:
            require_holder(row, user, "release")
        await conn.execute(q("case_release"), case_id)
        await record_event(
            conn,
            EventKind.RELEASED,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=case_id,
            user_id=user.id,
            detail={"forced": True, "holder": row["claimed_by"]} if forced else None,
        )
    return await _reload(pool, case_id, user)


async def expire_leases(pool: asyncpg.Pool) -> int:
    """Return cases whose lease ran out to their pool; how many were returned."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(q("case_expire_leases"))
        for row in rows:
            await record_event(
                conn,
                EventKind.LEASE_EXPIRED,
                facility_id=row["facility_id"],
                study_id=row["study_id"],
                case_id=row["id"],
                detail={"holder": row["holder"]},
            )
    return len(rows)


async def escalate_case(pool: asyncpg.Pool, case_id: int, user: User, *, question: str) -> Case:
    """Send a claimed case, with the reader's question, to its escalation pool; the reader's
    preliminary report (if any) goes with it. The deadline stays the patient's."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked_case(conn, case_id, user)
        require_holder(row, user, "escalate")
        if row["escalation_facility_id"] is None:
            raise InvalidState(f"case {case_id} has no escalation pool above {row['pool_code']}")
        await _escalate(conn, row, user_id=user.id, question=question, reason="reader")
    return await _reload(pool, case_id, user)


async def _escalate(
    conn: Conn, row: Any, *, user_id: int | None, question: str | None, reason: str
) -> None:
    target = row["escalation_facility_id"]
    above = await conn.fetchval(q("facility_escalation_above"), target)
    await conn.execute(q("case_escalate"), row["id"], target, above, question, user_id)
    to_code = await conn.fetchval(q("facility_code_by_id"), target)
    await record_event(
        conn,
        EventKind.ESCALATED,
        facility_id=row["facility_id"],
        study_id=row["study_id"],
        case_id=row["id"],
        user_id=user_id,
        detail={"from": row["pool_code"], "to": to_code, "question": question, "reason": reason},
    )
    await notify(
        conn,
        NotificationKind.ESCALATED,
        facility_id=target,
        audience=Role.READER,
        case_id=row["id"],
        detail={"from": row["pool_code"], "reason": reason},
    )


async def return_case(
    pool: asyncpg.Pool, case_id: int, user: User, *, reason: ReturnReason, note: str
) -> Case:
    """Return a claimed case to the clinic for poor quality: the case is canceled with the
    coded reason, the clinic is told, and the study is routed again once it re-sends."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked_case(conn, case_id, user)
        require_holder(row, user, "return")
        await conn.execute(q("case_return"), case_id, reason.value, note or None)
        await conn.execute(q("study_mark_returned"), row["study_id"])
        detail = {"reason": reason.value, "note": note}
        await record_event(
            conn,
            EventKind.RETURNED,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=case_id,
            user_id=user.id,
            detail=detail,
        )
        await notify(
            conn,
            NotificationKind.RETURNED,
            facility_id=row["facility_id"],
            audience=Role.CLINIC,
            case_id=case_id,
            detail=detail,
        )
    return await _reload(pool, case_id, user)


async def request_second_read(pool: asyncpg.Pool, case_id: int, user: User) -> Case:
    """Open a second, independent read of a case in the same pool (double reading)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await locked_case(conn, case_id, user)
        if row["second_read_of"] is not None:
            raise InvalidState(f"case {case_id} is itself a second read")
        if row["status"] == "canceled":
            raise InvalidState(f"case {case_id} is canceled")
        plan = CasePlan(
            specialty=Specialty(row["specialty"]),
            priority=Priority(row["priority"]),
            pool_facility_id=FacilityId(row["pool_facility_id"]),
            escalation_facility_id=row["escalation_facility_id"],
            due_in=max(row["deadline"] - datetime.now(UTC), timedelta(minutes=1)),
            stemi=row["stemi"],
        )
        second = await _insert_case(conn, row["study_id"], row["facility_id"], plan, case_id)
        if second is None:
            raise Conflict(f"case {case_id} already has an open second read")
        await record_event(
            conn,
            EventKind.SECOND_READ,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=second,
            user_id=user.id,
            detail={"first_read": case_id},
        )
    return await _reload(pool, second, user)


async def set_urgency(
    pool: asyncpg.Pool, study_id: StudyId, user: User, *, priority: Priority, question: str | None
) -> list[CaseId]:
    """The clinic asks for a reading with a priority (and a clinical question): the study
    and its open cases take it, with the deadline of that priority when sooner."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("study_lock_for_user"), study_id, user.id)
        if row is None:
            raise NotFound(f"study {study_id} not found")
        policy = await _policy(conn, row["facility_id"])
        await conn.execute(q("study_set_priority"), study_id, priority.value, question)
        changed = await conn.fetch(
            q("cases_raise_priority"), study_id, priority.value, policy.deadlines[priority]
        )
        await record_event(
            conn,
            EventKind.PRIORITY,
            facility_id=row["facility_id"],
            study_id=study_id,
            user_id=user.id,
            detail={"priority": priority.value},
        )
    return [CaseId(r["id"]) for r in changed]


async def raise_to_stemi(pool: asyncpg.Pool, study_id: int) -> list[CaseId]:
    """Suspected STEMI on a study's ECG: high priority and the network's STEMI deadline
    (10 minutes by default) for its open ECG cases, and for cases routed later.

    Called by the ECG analysis job; returns the cases whose deadline was brought forward.
    """
    async with pool.acquire() as conn, conn.transaction():
        facility_id = await conn.fetchval(q("study_mark_stemi"), study_id)
        if facility_id is None:
            raise NotFound(f"study {study_id} not found")
        policy = await _policy(conn, facility_id)
        rows = await conn.fetch(q("cases_raise_to_stemi"), study_id, policy.stemi_deadline)
        for r in rows:
            await record_event(
                conn,
                EventKind.STEMI_SUSPECTED,
                facility_id=facility_id,
                study_id=study_id,
                case_id=r["id"],
                detail={"deadline": r["deadline"].isoformat()},
            )
            await notify(
                conn,
                NotificationKind.STEMI,
                facility_id=r["pool_facility_id"],
                audience=Role.READER,
                case_id=r["id"],
            )
    return [CaseId(r["id"]) for r in rows]


async def _policy(conn: Conn, facility_id: int) -> NetworkPolicy:
    chain = [r["id"] for r in await conn.fetch(q("facility_chain"), facility_id)]
    row = await conn.fetchrow(q("policy_nearest"), chain)
    return NetworkPolicy.from_row(row) if row else NetworkPolicy()


@dataclass(frozen=True, kw_only=True)
class DeadlineAction:
    case_id: CaseId
    action: str  # "escalated", "reassigned" or "at_risk"
    reason: str


async def handle_deadlines(
    pool: asyncpg.Pool, *, now: datetime | None = None
) -> list[DeadlineAction]:
    """Act once on each open case that will miss its deadline (or has): an unclaimed case
    with an escalation pool is escalated; a case held by a reader who is off duty goes back
    to its pool (reassigned); any other is flagged to the pool's readers and the duty
    administrator. Each action is an event with its reason.

    ``now`` is the clock the deadlines are compared with (the server's, unless a test
    passes its own); events are stamped with the server's time.
    """
    at = _now(now)
    actions: list[DeadlineAction] = []
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(q("cases_at_risk_lock"), at, 100):
            left = row["deadline"] - at
            past = left <= timedelta(0)
            reason = (
                f"deadline passed {int(-left.total_seconds() // 60)} min ago"
                if past
                else f"{int(left.total_seconds() // 60)} min left and not claimed"
            )
            if row["status"] == "scheduled" and row["escalation_facility_id"] is not None:
                await _escalate(conn, row, user_id=None, question=None, reason=reason)
                action = "escalated"
            elif row["holder_off_duty"]:
                # reassigned within the pool: the reader holding it has gone off duty
                action = "reassigned"
                reason = f"{reason}; the reader holding it is off duty"
                await conn.execute(q("case_release"), row["id"])
                detail = {"reason": reason, "holder": row["claimed_by"], "deadline": True}
                await record_event(
                    conn,
                    EventKind.RELEASED,
                    facility_id=row["facility_id"],
                    study_id=row["study_id"],
                    case_id=row["id"],
                    detail=detail,
                )
                await notify(
                    conn,
                    NotificationKind.DEADLINE_AT_RISK,
                    facility_id=row["pool_facility_id"],
                    audience=Role.READER,
                    case_id=row["id"],
                    detail=detail,
                )
            else:
                action = "at_risk"
                detail = {"reason": reason, "pool": row["pool_code"], "status": row["status"]}
                await record_event(
                    conn,
                    EventKind.DEADLINE_AT_RISK,
                    facility_id=row["facility_id"],
                    study_id=row["study_id"],
                    case_id=row["id"],
                    detail=detail,
                )
                await notify(
                    conn,
                    NotificationKind.DEADLINE_AT_RISK,
                    facility_id=row["pool_facility_id"],
                    audience=Role.ADMIN,
                    case_id=row["id"],
                    detail=detail,
                )
                await notify(
                    conn,
                    NotificationKind.DEADLINE_AT_RISK,
                    facility_id=row["pool_facility_id"],
                    audience=Role.READER,
                    case_id=row["id"],
                    detail=detail,
                )
            await conn.execute(q("case_deadline_handled"), row["id"], row["deadline"])
            actions.append(DeadlineAction(case_id=CaseId(row["id"]), action=action, reason=reason))
    return actions


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
