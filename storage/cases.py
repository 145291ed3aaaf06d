"""Reading cases, their leases, reports, delivery, and the event log."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from storage import jobs
from storage.db import Conn
from storage.errors import Conflict, InvalidState, NotFound
from storage.queries import q
from storage.records import (
    Case,
    CaseId,
    Conclusion,
    Facility,
    FacilityId,
    Priority,
    Report,
    ReportStatus,
    Specialty,
    StudyId,
    User,
    UserId,
)

DELIVER_REPORT = "deliver_report"


@dataclass(frozen=True, kw_only=True)
class StudyToRoute:
    """What routing needs to know of a study that has just become complete."""

    id: StudyId
    study_instance_uid: str
    facility_id: FacilityId
    modalities: tuple[str, ...]
    priority: Priority


@dataclass(frozen=True, kw_only=True)
class CasePlan:
    """Where one case of a study goes: its pool, escalation and deadline."""

    specialty: Specialty
    priority: Priority
    pool_facility_id: FacilityId
    escalation_facility_id: FacilityId | None
    due_in: timedelta


RoutingPlan = Callable[[StudyToRoute, list[Facility]], list[CasePlan]]


async def _event(
    conn: Conn,
    kind: str,
    *,
    facility_id: int | None = None,
    study_id: int | None = None,
    case_id: int | None = None,
    report_id: int | None = None,
    user_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        q("event_insert"),
        kind,
        facility_id,
        study_id,
        case_id,
        report_id,
        user_id,
        json.dumps(detail, ensure_ascii=False) if detail else None,
    )


async def complete_stable_studies(
    pool: asyncpg.Pool, *, stable_age: timedelta, plan: RoutingPlan, limit: int = 50
) -> list[CaseId]:
    """Mark studies complete that received nothing for ``stable_age``, and route them.

    Each study is completed and its cases created in one transaction; concurrent workers
    skip each other's studies.
    """
    created: list[CaseId] = []
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(q("studies_stable_lock"), stable_age, limit)
        for row in rows:
            study = StudyToRoute(
                id=StudyId(row["id"]),
                study_instance_uid=row["study_instance_uid"],
                facility_id=FacilityId(row["facility_id"]),
                modalities=tuple(row["modalities"]),
                priority=Priority(row["priority"]),
            )
            chain = [
                Facility.from_row(r)
                for r in await conn.fetch(q("facility_chain"), study.facility_id)
            ]
            await conn.execute(q("study_mark_complete"), study.id)
            await _event(conn, "complete", facility_id=study.facility_id, study_id=study.id)
            for case_plan in plan(study, chain):
                case_id = await conn.fetchval(
                    q("case_insert"),
                    study.id,
                    study.facility_id,
                    case_plan.specialty.value,
                    case_plan.priority.value,
                    case_plan.pool_facility_id,
                    case_plan.escalation_facility_id,
                    case_plan.due_in,
                )
                if case_id is None:
                    continue
                pool_code = next(f.code for f in chain if f.id == case_plan.pool_facility_id)
                await _event(
                    conn,
                    "routed",
                    facility_id=study.facility_id,
                    study_id=study.id,
                    case_id=case_id,
                    detail={"pool": pool_code, "specialty": case_plan.specialty.value},
                )
                created.append(CaseId(case_id))
    return created


async def worklist(pool: asyncpg.Pool, user: User, *, limit: int = 200) -> list[Case]:
    """Open cases in the user's scope, most urgent first."""
    return [Case.from_row(r) for r in await pool.fetch(q("worklist"), user.id, limit)]


async def case_for_user(pool: asyncpg.Pool, case_id: int, user: User) -> Case | None:
    """One case, only when it is in the user's scope."""
    row = await pool.fetchrow(q("case_for_user"), case_id, user.id)
    return Case.from_row(row) if row else None


async def _locked_case(conn: Conn, case_id: int, user: User) -> Any:
    row = await conn.fetchrow(q("case_lock_for_user"), case_id, user.id)
    if row is None:
        raise NotFound(f"case {case_id} not found")
    return row


async def claim_case(pool: asyncpg.Pool, case_id: int, user: User, *, lease: timedelta) -> Case:
    """Take (or renew) the lease on a case; another reader's live lease is a Conflict."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked_case(conn, case_id, user)
        status, holder = row["status"], row["claimed_by"]
        if status in ("completed", "canceled"):
            raise InvalidState(f"case {case_id} is {status}")
        if status == "in_progress" and holder != user.id and not row["lease_expired"]:
            raise Conflict(f"case {case_id} is being read by another reader")
        await conn.execute(q("case_claim"), case_id, user.id, lease)
        if holder != user.id:
            await _event(
                conn,
                "claimed",
                facility_id=row["facility_id"],
                study_id=row["study_id"],
                case_id=case_id,
                user_id=user.id,
            )
    found = await case_for_user(pool, case_id, user)
    assert found is not None
    return found


async def release_case(pool: asyncpg.Pool, case_id: int, user: User) -> Case:
    """Give a claimed case back to its pool."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked_case(conn, case_id, user)
        if row["status"] != "in_progress" or row["claimed_by"] != user.id:
            raise InvalidState(f"case {case_id} is not claimed by you")
        await conn.execute(q("case_release"), case_id)
        await _event(
            conn,
            "released",
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=case_id,
            user_id=user.id,
        )
    found = await case_for_user(pool, case_id, user)
    assert found is not None
    return found


async def expire_leases(pool: asyncpg.Pool) -> int:
    """Return cases whose lease ran out to their pool; how many were returned."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(q("case_expire_leases"))
        for row in rows:
            await _event(
                conn,
                "lease_expired",
                facility_id=row["facility_id"],
                study_id=row["study_id"],
                case_id=row["id"],
            )
    return len(rows)


@dataclass(frozen=True, kw_only=True)
class ReportDraft:
    findings: str
    impression: str
    conclusion: Conclusion
    status: ReportStatus
    signed_at: datetime
    signature_sha256: str


async def submit_report(pool: asyncpg.Pool, case_id: int, user: User, draft: ReportDraft) -> Report:
    """Store a signed report by the reader holding the case.

    A final report completes the case and queues its delivery to the sending clinic, in the
    same transaction.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await _locked_case(conn, case_id, user)
        if row["status"] != "in_progress" or row["claimed_by"] != user.id:
            raise InvalidState(f"claim case {case_id} before reporting on it")
        report_id = await conn.fetchval(
            q("report_insert"),
            case_id,
            user.id,
            draft.status.value,
            draft.findings,
            draft.impression,
            draft.conclusion.value,
            draft.signature_sha256,
            draft.signed_at,
        )
        final = draft.status is ReportStatus.FINAL
        await _event(
            conn,
            "reported" if final else "preliminary",
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=case_id,
            report_id=report_id,
            user_id=user.id,
            detail={"conclusion": draft.conclusion.value},
        )
        if final:
            await conn.execute(q("case_complete"), case_id)
            await jobs.enqueue(conn, DELIVER_REPORT, {"report_id": report_id})
    report = await report_for_user(pool, report_id, user)
    assert report is not None
    return report


async def deliver_report(pool: asyncpg.Pool, report_id: int) -> bool:
    """Put a final report in the sending clinic's inbox; False when it already was."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("report_deliver"), report_id)
        if row is None:
            return False
        await _event(
            conn,
            "delivered",
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=row["case_id"],
            report_id=report_id,
        )
    return True


async def reports_of_case(pool: asyncpg.Pool, case_id: CaseId) -> list[Report]:
    return [Report.from_row(r) for r in await pool.fetch(q("reports_of_case"), case_id)]


async def inbox(
    pool: asyncpg.Pool,
    user: User,
    *,
    unacknowledged: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Report]:
    """Delivered reports in the user's scope, newest first."""
    rows = await pool.fetch(q("inbox"), user.id, unacknowledged, limit, offset)
    return [Report.from_row(r) for r in rows]


async def report_for_user(pool: asyncpg.Pool, report_id: int, user: User) -> Report | None:
    row = await pool.fetchrow(q("report_for_user"), report_id, user.id)
    return Report.from_row(row) if row else None


async def acknowledge_report(pool: asyncpg.Pool, report_id: int, user: User) -> Report:
    """The clinic confirms it has the report; acknowledging twice keeps the first time."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(q("report_for_user"), report_id, user.id)
        if found is None or found["delivered_at"] is None:
            raise NotFound(f"report {report_id} not found")
        row = await conn.fetchrow(q("report_acknowledge"), report_id, user.id)
        if row is not None:
            await _event(
                conn,
                "acknowledged",
                facility_id=row["facility_id"],
                study_id=row["study_id"],
                case_id=row["case_id"],
                report_id=report_id,
                user_id=user.id,
            )
    report = await report_for_user(pool, report_id, user)
    assert report is not None
    return report


@dataclass(frozen=True, kw_only=True)
class TurnaroundRow:
    facility_id: FacilityId
    facility_code: str
    facility_name: str
    reports: int
    median_s: float
    p90_s: float
    mean_s: float
    max_s: float


async def turnaround(
    pool: asyncpg.Pool, root_facility_id: FacilityId, since: datetime, until: datetime
) -> list[TurnaroundRow]:
    """Received-to-final-report turnaround per sending facility below ``root_facility_id``."""
    rows = await pool.fetch(q("turnaround"), root_facility_id, since, until)
    return [
        TurnaroundRow(
            facility_id=FacilityId(r["facility_id"]),
            facility_code=r["code"],
            facility_name=r["name"],
            reports=r["reports"],
            median_s=float(r["median_s"]),
            p90_s=float(r["p90_s"]),
            mean_s=float(r["mean_s"]),
            max_s=float(r["max_s"]),
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: str
    at: datetime
    user_id: UserId | None
    detail: dict[str, Any]


async def events_of_case(pool: asyncpg.Pool, case: Case) -> list[Event]:
    rows = await pool.fetch(q("events_of_case"), case.id, case.study_id)
    return [
        Event(
            kind=r["kind"],
            at=r["at"],
            user_id=UserId(r["user_id"]) if r["user_id"] is not None else None,
            detail=json.loads(r["detail"]),
        )
        for r in rows
    ]
