"""The safety nets the worker runs periodically: leases that ran out, deadlines that will be
missed, and critical results nobody acknowledged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from storage import cases, reports
from storage.cases import CaseAtRisk
from storage.db import Conn, Pool, transaction
from storage.eventlog import notify, record_event
from storage.records import (
    CaseId,
    EventKind,
    NoticeKind,
    NotificationKind,
    ReportId,
    Role,
    UserId,
)
from storage.reports import OverdueCritical
from teleradiology.core import casework
from teleradiology.core.casework import DeadlineStep
from teleradiology.services import notices
from teleradiology.services.progress import record_step
from teleradiology.services.reading import escalate_locked

log = logging.getLogger(__name__)


async def expire_leases(pool: Pool) -> int:
    """Return cases whose lease ran out to their pool; how many were returned."""
    async with transaction(pool) as conn:
        expired = await cases.expire_leases(conn)
        for lease in expired:
            await record_step(
                conn,
                EventKind.LEASE_EXPIRED,
                facility_id=lease.facility_id,
                study_id=lease.study_id,
                case_id=lease.case_id,
                detail={"holder": lease.holder},
            )
    return len(expired)


@dataclass(frozen=True, kw_only=True)
class DeadlineAction:
    case_id: CaseId
    step: DeadlineStep
    reason: str


async def handle_deadlines(pool: Pool, *, now: datetime | None = None) -> list[DeadlineAction]:
    """Act once on each open case that will miss its deadline (or has), as
    `core.casework.deadline_step` says: escalate it, send it back to its pool (its reader is
    off duty), or tell its pool's readers and the duty administrator. Each action is an
    event with its reason.

    ``now`` is the clock the deadlines are compared with (the server's, unless a test
    passes its own); events are stamped with the server's time.
    """
    at = now or datetime.now(UTC)
    actions: list[DeadlineAction] = []
    async with transaction(pool) as conn:
        for risk in await cases.lock_cases_at_risk(conn, at):
            case = risk.case
            step, reason = casework.deadline_step(
                status=case.status,
                has_escalation_pool=case.escalation_facility_id is not None,
                holder_off_duty=risk.holder_off_duty,
                deadline=case.deadline,
                now=at,
            )
            if step is DeadlineStep.ESCALATE:
                await escalate_locked(conn, case, by=None, question=None, reason=reason)
            elif step is DeadlineStep.REASSIGN:
                await _reassign(conn, risk, reason)
            else:
                await _flag_at_risk(conn, risk, reason)
            await cases.mark_deadline_handled(conn, case)
            actions.append(DeadlineAction(case_id=case.id, step=step, reason=reason))
    return actions


async def _reassign(conn: Conn, risk: CaseAtRisk, reason: str) -> None:
    """The reader holding the case went off duty: back to its pool, its readers told."""
    case = risk.case
    await cases.release(conn, case.id)
    detail = {"reason": reason, "holder": case.claimed_by, "deadline": True}
    await record_step(
        conn,
        EventKind.RELEASED,
        facility_id=case.facility_id,
        study_id=case.study_id,
        case_id=case.id,
        detail=detail,
    )
    await notify(
        conn,
        NotificationKind.DEADLINE_AT_RISK,
        facility_id=case.pool_facility_id,
        audience=Role.READER,
        case_id=case.id,
        detail=detail,
    )


async def _flag_at_risk(conn: Conn, risk: CaseAtRisk, reason: str) -> None:
    """Tell the pool's administrators and readers the case is at risk."""
    case = risk.case
    detail = {"reason": reason, "pool": case.pool_code, "status": case.status.value}
    await record_event(
        conn,
        EventKind.DEADLINE_AT_RISK,
        facility_id=case.facility_id,
        study_id=case.study_id,
        case_id=case.id,
        detail=detail,
    )
    for audience in (Role.ADMIN, Role.READER):
        await notify(
            conn,
            NotificationKind.DEADLINE_AT_RISK,
            facility_id=case.pool_facility_id,
            audience=audience,
            case_id=case.id,
            detail=detail,
        )


@dataclass(frozen=True, kw_only=True)
class CriticalResend:
    report_id: ReportId
    resends: int
    alerted_admins: tuple[UserId, ...]


async def resend_unacknowledged_critical(
    pool: Pool, *, now: datetime | None = None
) -> list[CriticalResend]:
    """Re-send each critical result not acknowledged in time, and alert the duty
    administrators of the county above the clinic; each step is recorded."""
    at = now or datetime.now(UTC)
    done: list[CriticalResend] = []
    async with transaction(pool) as conn:
        for overdue in await reports.lock_overdue_critical(conn, at):
            await reports.mark_critical_resent(conn, overdue, at)
            resends = overdue.resends + 1
            await _resend(conn, overdue, resends)
            admins = await _alert(conn, overdue, resends, at)
            done.append(
                CriticalResend(
                    report_id=overdue.report_id, resends=resends, alerted_admins=tuple(admins)
                )
            )
    return done


async def _resend(conn: Conn, overdue: OverdueCritical, resends: int) -> None:
    await record_event(
        conn,
        EventKind.CRITICAL_RESENT,
        facility_id=overdue.facility_id,
        study_id=overdue.study_id,
        case_id=overdue.case_id,
        report_id=overdue.report_id,
        detail={"resend": resends},
    )
    notification_id = await notify(
        conn,
        NotificationKind.CRITICAL,
        facility_id=overdue.facility_id,
        audience=Role.CLINIC,
        case_id=overdue.case_id,
        report_id=overdue.report_id,
        detail={"resend": resends, "conclusion": "critical"},
    )
    await notices.to_clinic(
        conn,
        NoticeKind.CRITICAL_RESEND,
        facility_id=overdue.facility_id,
        notification_id=notification_id,
        report_id=overdue.report_id,
        resend=resends,
    )


async def _alert(conn: Conn, overdue: OverdueCritical, resends: int, at: datetime) -> list[UserId]:
    """Alert the duty administrators of the county above the clinic; those alerted."""
    admins: list[UserId] = []
    county = overdue.county_id
    if county is not None:
        # the administrators on duty, or all of them when none is
        admins = await reports.duty_admins(conn, county, at) or await reports.facility_admins(
            conn, county
        )
        for admin in admins:
            notification_id = await notify(
                conn,
                NotificationKind.CRITICAL_ALERT,
                facility_id=county,
                audience=Role.ADMIN,
                user_id=admin,
                case_id=overdue.case_id,
                report_id=overdue.report_id,
                detail={"clinic": overdue.clinic_code, "resend": resends},
            )
            await notices.to_user(
                conn,
                NoticeKind.CRITICAL_ALERT,
                user_id=admin,
                notification_id=notification_id,
                report_id=overdue.report_id,
                resend=resends,
            )
    await record_event(
        conn,
        EventKind.CRITICAL_ALERT,
        facility_id=overdue.facility_id,
        study_id=overdue.study_id,
        case_id=overdue.case_id,
        report_id=overdue.report_id,
        detail={"admins": admins, "resend": resends},
    )
    return admins


@dataclass(frozen=True, kw_only=True)
class Pass:
    escalated: int
    reassigned: int
    at_risk: int
    critical_resent: int


async def watch_once(pool: Pool, *, now: datetime | None = None) -> Pass:
    """One pass of the deadline and critical-result watch at ``now`` (the server's clock
    unless a test passes its own)."""
    at = now or datetime.now(UTC)
    actions = await handle_deadlines(pool, now=at)
    resent = await resend_unacknowledged_critical(pool, now=at)
    escalated = sum(a.step is DeadlineStep.ESCALATE for a in actions)
    reassigned = sum(a.step is DeadlineStep.REASSIGN for a in actions)
    at_risk = len(actions) - escalated - reassigned
    if actions:
        log.info(
            "deadlines: %d escalated, %d reassigned, %d at risk", escalated, reassigned, at_risk
        )
    for r in resent:
        log.warning(
            "critical report %s unacknowledged: re-sent (%d), %d duty administrator(s) alerted",
            r.report_id,
            r.resends,
            len(r.alerted_admins),
        )
    return Pass(
        escalated=escalated, reassigned=reassigned, at_risk=at_risk, critical_resent=len(resent)
    )
