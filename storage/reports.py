"""Reports: the queries and updates of signed reports, their delivery to the clinic, their
acknowledgement, critical results and DICOM copies, and their rows as records.

The use cases (signing, addenda, delivery, the critical-result loop) are in
``teleradiology.services``; the functions taking a connection run in the caller's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from storage.db import Conn, Queryable
from storage.index import instances_of_study
from storage.queries import q
from storage.records import (
    CaseId,
    Conclusion,
    Destination,
    FacilityId,
    Report,
    ReportDocument,
    ReportId,
    ReportStatus,
    StudyId,
    User,
    UserId,
)

# --- signing ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NewReport:
    """A signed report to store (a final report's version is counted by the insert)."""

    case_id: CaseId
    author_id: UserId
    status: ReportStatus
    findings: str
    impression: str
    conclusion: Conclusion
    signature_sha256: str
    signed_at: datetime
    #: an addendum: the report it amends (the first version)
    amends_report_id: ReportId | None = None
    agreed: bool | None = None
    discrepancy: str | None = None
    #: the earlier read ``agreed`` compares this one with
    compared_report_id: ReportId | None = None


async def insert_report(conn: Conn, report: NewReport) -> ReportId:
    report_id: int = await conn.fetchval(
        q("report_insert"),
        report.case_id,
        report.author_id,
        report.status.value,
        report.findings,
        report.impression,
        report.conclusion.value,
        report.signature_sha256,
        report.signed_at,
        report.amends_report_id,
        report.agreed,
        report.discrepancy,
        report.compared_report_id,
    )
    return ReportId(report_id)


@dataclass(frozen=True)
class EarlierRead:
    """The report a final report is compared with, and its conclusion."""

    report_id: ReportId
    conclusion: Conclusion


async def latest_preliminary(conn: Conn, case_id: CaseId) -> EarlierRead | None:
    """The case's latest preliminary report; None when it has none."""
    return _earlier(await conn.fetchrow(q("report_latest_preliminary"), case_id))


async def first_final(conn: Conn, case_id: CaseId) -> EarlierRead | None:
    """The case's first final report; None when it has none yet."""
    return _earlier(await conn.fetchrow(q("report_first_final"), case_id))


def _earlier(row: asyncpg.Record | None) -> EarlierRead | None:
    return EarlierRead(ReportId(row["id"]), Conclusion(row["conclusion"])) if row else None


# --- reads -----------------------------------------------------------------------------


async def reports_of_case(pool: asyncpg.Pool, case_id: CaseId, user: User) -> list[Report]:
    """The case's reports the user may see (a clinic: the final ones delivered to it)."""
    rows = await pool.fetch(q("reports_of_case"), case_id, user.id)
    return [Report.from_row(r) for r in rows]


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


async def report_for_user(db: Queryable, report_id: int, user: User) -> Report | None:
    """The report when the user may see it (a clinic: once final and delivered)."""
    row = await db.fetchrow(q("report_for_user"), report_id, user.id)
    return Report.from_row(row) if row else None


async def reads_above_author(db: Queryable, user_id: UserId, author_id: UserId) -> bool:
    """Whether the user works at a facility above the author's, in the author's own line."""
    return bool(await db.fetchval(q("reads_above_author"), user_id, author_id))


async def pdf_key_for_user(pool: asyncpg.Pool, report_id: int, user: User) -> str | None:
    """The stored PDF of a delivered report in the user's scope."""
    row = await pool.fetchrow(q("report_for_user"), report_id, user.id)
    if row is None or row["delivered_at"] is None:
        return None
    key: str | None = row["pdf_key"]
    return key


async def report_document(pool: asyncpg.Pool, report_id: int) -> ReportDocument | None:
    """The report with its patient, study, facilities and the instances it was made from
    (for the worker; unscoped); None when there is no such report."""
    row = await pool.fetchrow(q("report_document"), report_id)
    if row is None:
        return None
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


# --- delivery and acknowledgement ------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReportPlace:
    """Where a report belongs: its case, the sending facility, the study."""

    case_id: CaseId
    facility_id: FacilityId
    study_id: StudyId


@dataclass(frozen=True, kw_only=True)
class Delivered(ReportPlace):
    conclusion: Conclusion
    amends_report_id: ReportId | None
    version: int


async def mark_delivered(
    conn: Conn, report_id: ReportId, *, pdf_key: str | None, critical_ack: timedelta
) -> Delivered | None:
    """Put a final report in its clinic's inbox with its PDF; a critical result (not an
    addendum) is due to be acknowledged within ``critical_ack``. None when it already was."""
    row = await conn.fetchrow(q("report_deliver"), report_id, pdf_key, critical_ack)
    if row is None:
        return None
    amends = row["amends_report_id"]
    return Delivered(
        case_id=CaseId(row["case_id"]),
        facility_id=FacilityId(row["facility_id"]),
        study_id=StudyId(row["study_id"]),
        conclusion=Conclusion(row["conclusion"]),
        amends_report_id=ReportId(amends) if amends is not None else None,
        version=row["version"],
    )


@dataclass(frozen=True, kw_only=True)
class DicomCopy:
    """One DICOM object made from a report, stored, to be sent to the clinic's node."""

    object_key: str
    sop_class_uid: str
    sop_instance_uid: str


async def queue_dicom_copies(
    conn: Conn, report_id: ReportId, destination: Destination, copies: tuple[DicomCopy, ...]
) -> None:
    """Queue the copies for the destination (a copy queued before is not queued again)."""
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
            destination.tls,
        )


async def acknowledge(
    conn: Conn,
    report_id: ReportId,
    user_id: UserId,
    *,
    name: str | None,
    read_back: str | None = None,
) -> ReportPlace | None:
    """Record the acknowledgement (who took it, and what they repeated back); None when it
    was acknowledged before (the first time is kept)."""
    row = await conn.fetchrow(q("report_acknowledge"), report_id, user_id, name, read_back)
    if row is None:
        return None
    return ReportPlace(
        case_id=CaseId(row["case_id"]),
        facility_id=FacilityId(row["facility_id"]),
        study_id=StudyId(row["study_id"]),
    )


# --- critical results ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OverdueCritical(ReportPlace):
    """A critical result not acknowledged in time."""

    report_id: ReportId
    resends: int
    critical_ack: timedelta
    clinic_code: str
    #: the county above the clinic (None: the clinic has none)
    county_id: FacilityId | None


async def lock_overdue_critical(
    conn: Conn, at: datetime, *, limit: int = 50
) -> list[OverdueCritical]:
    """Lock the critical results due for acknowledgement by ``at`` and not acknowledged;
    other workers skip them."""
    return [
        OverdueCritical(
            report_id=ReportId(r["id"]),
            case_id=CaseId(r["case_id"]),
            facility_id=FacilityId(r["facility_id"]),
            study_id=StudyId(r["study_id"]),
            resends=r["critical_resends"],
            critical_ack=r["critical_ack"],
            clinic_code=r["clinic_code"],
            county_id=FacilityId(r["county_id"]) if r["county_id"] is not None else None,
        )
        for r in await conn.fetch(q("critical_overdue_lock"), at, limit)
    ]


async def mark_critical_resent(conn: Conn, overdue: OverdueCritical, at: datetime) -> None:
    """One more re-send; the next is due a window after ``at``."""
    await conn.execute(q("critical_resent"), overdue.report_id, overdue.critical_ack, at)


async def duty_admins(conn: Conn, facility_id: FacilityId, at: datetime) -> list[UserId]:
    """The facility's administrators on duty at ``at`` (those without a schedule are)."""
    return [UserId(r["id"]) for r in await conn.fetch(q("duty_admins"), facility_id, at)]


async def facility_admins(conn: Conn, facility_id: FacilityId) -> list[UserId]:
    """The facility's active administrators."""
    return [UserId(r["id"]) for r in await conn.fetch(q("facility_admins"), facility_id)]


# --- DICOM copies ----------------------------------------------------------------------


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
            destination=Destination(
                ae_title=r["ae_title"], host=r["host"], port=r["port"], tls=r["tls"]
            ),
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
