"""Reports: signing, addenda, delivery to the clinic, acknowledgement, critical results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from storage import jobs
from storage.cases import DELIVER_REPORT, locked_case, require_holder
from storage.db import Conn
from storage.errors import InvalidState, NotFound
from storage.eventlog import notify, record_event
from storage.index import instances_of_study
from storage.queries import q
from storage.records import (
    CaseId,
    Conclusion,
    Destination,
    EventKind,
    NetworkPolicy,
    NotificationKind,
    Report,
    ReportDocument,
    ReportId,
    ReportStatus,
    Role,
    StudyId,
    User,
)


@dataclass(frozen=True, kw_only=True)
class ReportDraft:
    findings: str
    impression: str
    conclusion: Conclusion
    status: ReportStatus
    signed_at: datetime
    signature_sha256: str
    #: on an escalated case: whether the finalising reader agrees with the first reader's
    #: draft (None: judged from the conclusions), and what they changed
    agreed: bool | None = None
    discrepancy: str | None = None


async def submit_report(pool: asyncpg.Pool, case_id: int, user: User, draft: ReportDraft) -> Report:
    """Store a signed report by the reader holding the case.

    A final report completes the case and queues its delivery to the sending clinic, in the
    same transaction. On an escalated case the final report records whether the reader
    agreed with the first reader's preliminary report, and the discrepancy if not.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await locked_case(conn, case_id, user)
        require_holder(row, user, "report on")
        final = draft.status is ReportStatus.FINAL
        agreed, discrepancy = None, None
        if final and row["escalated_at"] is not None:
            agreed, discrepancy = await _agreement(conn, case_id, draft)
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
            None,
            agreed,
            discrepancy,
        )
        detail: dict[str, object] = {"conclusion": draft.conclusion.value}
        if agreed is not None:
            detail.update(agreed=agreed, discrepancy=discrepancy)
        await record_event(
            conn,
            EventKind.FINAL if final else EventKind.PRELIMINARY,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=case_id,
            report_id=report_id,
            user_id=user.id,
            detail=detail,
        )
        if final:
            await conn.execute(q("case_complete"), case_id)
            await jobs.enqueue(conn, DELIVER_REPORT, {"report_id": report_id})
    return await _reload(pool, report_id, user)


async def _agreement(conn: Conn, case_id: int, draft: ReportDraft) -> tuple[bool, str | None]:
    first = await conn.fetchrow(q("report_latest_preliminary"), case_id)
    if first is None:
        return (draft.agreed if draft.agreed is not None else True), draft.discrepancy
    same = first["conclusion"] == draft.conclusion.value
    agreed = draft.agreed if draft.agreed is not None else same
    discrepancy = draft.discrepancy
    if not agreed and not discrepancy:
        discrepancy = f"结论由 {first['conclusion']} 改为 {draft.conclusion.value}"
    return agreed, discrepancy


async def add_addendum(
    pool: asyncpg.Pool, report_id: int, user: User, *, text: str, signature_sha256: str
) -> Report:
    """Add an addendum to a final report: a new version, delivered like the report."""
    async with pool.acquire() as conn, conn.transaction():
        original = await conn.fetchrow(q("report_for_user"), report_id, user.id)
        if original is None:
            raise NotFound(f"report {report_id} not found")
        if original["status"] != "final":
            raise InvalidState(f"report {report_id} is not final: edit the draft instead")
        row = await locked_case(conn, original["case_id"], user)
        root = original["amends_report_id"] or report_id
        new_id = await conn.fetchval(
            q("report_insert"),
            original["case_id"],
            user.id,
            "final",
            text,
            original["impression"],
            original["conclusion"],
            signature_sha256,
            datetime.now(UTC),
            root,
            None,
            None,
        )
        await record_event(
            conn,
            EventKind.ADDENDUM,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=row["id"],
            report_id=new_id,
            user_id=user.id,
            detail={"amends": root},
        )
        await jobs.enqueue(conn, DELIVER_REPORT, {"report_id": new_id})
    return await _reload(pool, new_id, user)


async def _reload(pool: asyncpg.Pool, report_id: int, user: User) -> Report:
    found = await report_for_user(pool, report_id, user)
    if found is None:
        raise NotFound(f"report {report_id} not found")
    return found


async def report_document(pool: asyncpg.Pool, report_id: int) -> ReportDocument:
    """The report with its patient, study, facilities and the instances it was made from
    (for the worker; unscoped)."""
    row = await pool.fetchrow(q("report_document"), report_id)
    if row is None:
        raise NotFound(f"report {report_id} not found")
    instances = await instances_of_study(pool, StudyId(row["study_id"]))
    return ReportDocument(
        report=Report.from_row(row),
        case_id=CaseId(row["case_id"]),
        specialty=row["specialty"],
        sending_facility_id=row["facility_id"],
        sending_facility=row["sending_facility"],
        reading_facility=row["reading_facility"],
        patient_id=row["patient_id"],
        patient_name=row["patient_name"],
        patient_birth_date=row["birth_date"],
        patient_sex=row["sex"],
        study_instance_uid=row["study_instance_uid"],
        study_date=row["study_date"],
        study_time=row["study_time"],
        accession_number=row["accession_number"],
        description=row["description"],
        modalities=tuple(row["modalities"]),
        referring_physician=row["referring_physician"],
        evidence=tuple(
            (i.series_instance_uid, i.sop_class_uid, i.sop_instance_uid) for i in instances
        ),
        first_metadata_zlib=row["first_metadata_zlib"],
    )


@dataclass(frozen=True, kw_only=True)
class DicomCopy:
    """One DICOM object made from a report, stored, to be sent to the clinic's node."""

    object_key: str
    sop_class_uid: str
    sop_instance_uid: str


async def deliver_report(
    pool: asyncpg.Pool,
    report_id: int,
    *,
    pdf_key: str | None = None,
    destination: Destination | None = None,
    copies: tuple[DicomCopy, ...] = (),
    policy: NetworkPolicy | None = None,
) -> bool:
    """Put a final report in the sending clinic's inbox and push it; False when it already
    was. A critical result starts its acknowledgement clock; DICOM copies are queued for the
    clinic's node in the same transaction."""
    policy = policy or NetworkPolicy()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("report_deliver"), report_id, pdf_key, policy.critical_ack)
        if row is None:
            return False
        await record_event(
            conn,
            EventKind.DELIVERED,
            facility_id=row["facility_id"],
            study_id=row["study_id"],
            case_id=row["case_id"],
            report_id=report_id,
        )
        critical = row["conclusion"] == Conclusion.CRITICAL.value
        kind = (
            NotificationKind.ADDENDUM
            if row["amends_report_id"]
            else NotificationKind.CRITICAL
            if critical
            else NotificationKind.REPORT
        )
        await notify(
            conn,
            kind,
            facility_id=row["facility_id"],
            audience=Role.CLINIC,
            case_id=row["case_id"],
            report_id=report_id,
            detail={"conclusion": row["conclusion"], "version": row["version"]},
        )
        if destination is not None:
            for copy in copies:
                await conn.execute(
                    q("dicom_send_insert"),
                    report_id,
                    copy.object_key,
                    copy.sop_class_uid,
                    copy.sop_instance_uid,
                    destination.ae_title,
                    destination.host,
                    destination.port,
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


async def pdf_key_for_user(pool: asyncpg.Pool, report_id: int, user: User) -> str | None:
    """The stored PDF of a delivered report in the user's scope."""
    row = await pool.fetchrow(q("report_for_user"), report_id, user.id)
    if row is None or row["delivered_at"] is None:
        return None
    key: str | None = row["pdf_key"]
    return key


async def acknowledge_report(
    pool: asyncpg.Pool, report_id: int, user: User, *, name: str | None = None
) -> Report:
    """The clinic confirms it has the report; acknowledging twice keeps the first time.

    A critical result must be acknowledged by a named person (``name``).
    """
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(q("report_for_user"), report_id, user.id)
        if found is None or found["delivered_at"] is None:
            raise NotFound(f"report {report_id} not found")
        if found["conclusion"] == Conclusion.CRITICAL.value and not name:
            raise InvalidState(
                f"report {report_id} is a critical result (危急值): say who took it "
                "('name': the person at the clinic who received it)"
            )
        row = await conn.fetchrow(q("report_acknowledge"), report_id, user.id, name)
        if row is not None:
            await record_event(
                conn,
                EventKind.ACKNOWLEDGED,
                facility_id=row["facility_id"],
                study_id=row["study_id"],
                case_id=row["case_id"],
                report_id=report_id,
                user_id=user.id,
                detail={"name": name} if name else None,
            )
    return await _reload(pool, report_id, user)


@dataclass(frozen=True, kw_only=True)
class CriticalResend:
    report_id: ReportId
    resends: int
    alerted_admins: tuple[int, ...]


async def resend_unacknowledged_critical(
    pool: asyncpg.Pool, *, now: datetime | None = None
) -> list[CriticalResend]:
    """Re-send each critical result not acknowledged in time, and alert the duty
    administrators of the county above the clinic; each step is recorded."""
    at = now or datetime.now(UTC)
    done: list[CriticalResend] = []
    async with pool.acquire() as conn, conn.transaction():
        for row in await conn.fetch(q("critical_overdue_lock"), at, 50):
            await conn.execute(q("critical_resent"), row["id"], row["critical_ack"], at)
            base = {
                "facility_id": row["facility_id"],
                "study_id": row["study_id"],
                "case_id": row["case_id"],
                "report_id": row["id"],
            }
            resends = row["critical_resends"] + 1
            await record_event(conn, EventKind.CRITICAL_RESENT, **base, detail={"resend": resends})
            await notify(
                conn,
                NotificationKind.CRITICAL,
                facility_id=row["facility_id"],
                audience=Role.CLINIC,
                case_id=row["case_id"],
                report_id=row["id"],
                detail={"resend": resends, "conclusion": "critical"},
            )
            admins = await _duty_admins(conn, row["facility_id"], at)
            for admin in admins:
                await notify(
                    conn,
                    NotificationKind.CRITICAL_ALERT,
                    facility_id=row["county_id"],
                    audience=Role.ADMIN,
                    user_id=admin,
                    case_id=row["case_id"],
                    report_id=row["id"],
                    detail={"clinic": row["clinic_code"], "resend": resends},
                )
            await record_event(
                conn, EventKind.CRITICAL_ALERT, **base, detail={"admins": admins, "resend": resends}
            )
            done.append(
                CriticalResend(
                    report_id=ReportId(row["id"]), resends=resends, alerted_admins=tuple(admins)
                )
            )
    return done


async def _duty_admins(conn: Conn, clinic_facility_id: int, at: datetime) -> list[int]:
    """The on-duty administrators of the county above a clinic (all of them if none is)."""
    county = await conn.fetchval(q("county_above"), clinic_facility_id)
    if county is None:
        return []
    on_duty = [r["id"] for r in await conn.fetch(q("duty_admins"), county, at)]
    if on_duty:
        return on_duty
    return [r["id"] for r in await conn.fetch(q("facility_admins"), county)]


@dataclass(frozen=True, kw_only=True)
class PendingSend:
    id: int
    report_id: ReportId
    object_key: str
    destination: Destination
    attempts: int


async def due_dicom_sends(pool: asyncpg.Pool, *, limit: int = 20) -> list[PendingSend]:
    """DICOM copies whose next attempt is due (claimed for a minute against other workers)."""
    rows = await pool.fetch(q("dicom_send_due"), limit)
    return [
        PendingSend(
            id=r["id"],
            report_id=ReportId(r["report_id"]),
            object_key=r["object_key"],
            destination=Destination(ae_title=r["ae_title"], host=r["host"], port=r["port"]),
            attempts=r["attempts"],
        )
        for r in rows
    ]


async def dicom_send_done(
    pool: asyncpg.Pool, send_id: int, *, error: str | None, retry_in: timedelta | None
) -> None:
    """Record one attempt: sent (error None), retried after ``retry_in``, or failed for good."""
    if error is None:
        await pool.execute(q("dicom_send_sent"), send_id)
    else:
        await pool.execute(q("dicom_send_failed"), send_id, error[:500], retry_in)


async def dicom_sends_of_report(pool: asyncpg.Pool, report_id: int) -> list[dict[str, object]]:
    rows = await pool.fetch(q("dicom_sends_of_report"), report_id)
    return [dict(r) for r in rows]
