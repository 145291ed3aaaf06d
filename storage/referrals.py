"""Two-way referral (双向转诊): up to the county or city hospital, and back down."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn
from storage.queries import q
from storage.records import (
    CaseId,
    Facility,
    FacilityId,
    PatientRef,
    Referral,
    ReferralAttachment,
    ReferralDirection,
    ReferralId,
    ReferralMonth,
    ReferralPapers,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
    ReturnKind,
    Urgency,
    User,
    UserId,
)


async def referral_subject(conn: Conn, referral_id: int, user: User) -> ReferralSubject | None:
    """Whom a referral in the user's scope is about; its sender stands as the clinic."""
    row = await conn.fetchrow(q("referral_source"), referral_id, user.id)
    if row is None:
        return None
    return ReferralSubject(
        patient_ref=PatientRef(row["patient_ref"]),
        clinic_id=FacilityId(row["from_facility_id"]),
        case_id=CaseId(row["case_id"]) if row["case_id"] is not None else None,
    )


async def case_subject(conn: Conn, case_id: int, user: User) -> ReferralSubject | None:
    """Whom a case in the user's scope is about, and the clinic that sent it."""
    row = await conn.fetchrow(q("case_patient_for_user"), case_id, user.id)
    if row is None:
        return None
    return ReferralSubject(
        patient_ref=PatientRef(row["patient_ref"]),
        clinic_id=FacilityId(row["facility_id"]),
        case_id=CaseId(case_id),
    )


async def facility_by_code(conn: Conn, code: str) -> Facility | None:
    row = await conn.fetchrow(q("facility_by_code"), code)
    return Facility.from_row(row) if row else None


async def chain_ids(conn: Conn, facility_id: int) -> frozenset[int]:
    """The facility and every facility above it."""
    return frozenset(r["id"] for r in await conn.fetch(q("facility_chain"), facility_id))


@dataclass(frozen=True, kw_only=True)
class NewReferral:
    direction: ReferralDirection
    patient_ref: PatientRef
    case_id: CaseId | None
    in_reply_to: int | None
    from_facility_id: FacilityId
    to_facility_id: FacilityId
    urgency: Urgency
    reason: str
    discharge_summary: str | None
    follow_up_plan: str | None
    created_by: UserId
    preliminary_diagnosis: str | None = None
    history: str | None = None
    findings: str | None = None


async def insert_referral(conn: Conn, new: NewReferral) -> ReferralId:
    referral_id: int = await conn.fetchval(
        q("referral_insert"),
        new.direction.value,
        new.patient_ref,
        new.case_id,
        new.in_reply_to,
        new.from_facility_id,
        new.to_facility_id,
        new.urgency.value,
        new.reason,
        new.discharge_summary,
        new.follow_up_plan,
        new.created_by,
        new.preliminary_diagnosis,
        new.history,
        new.findings,
    )
    return ReferralId(referral_id)


async def lock_referral(conn: Conn, referral_id: int, user: User) -> ReferralState | None:
    """A referral in the user's scope, locked in the caller's transaction."""
    row = await conn.fetchrow(q("referral_lock_for_user"), referral_id, user.id)
    return ReferralState.from_row(row) if row else None


async def set_response(
    conn: Conn,
    referral_id: int,
    status: ReferralStatus,
    user: User,
    *,
    appointment_at: datetime | None,
    reason: str | None,
    department: str | None = None,
    doctor: str | None = None,
    green_channel: bool = False,
) -> None:
    """Keep the receiving facility's answer (the decline reason only on a decline)."""
    await conn.execute(
        q("referral_respond"),
        referral_id,
        status.value,
        user.id,
        appointment_at,
        reason,
        department,
        doctor,
        green_channel,
    )


async def set_arrived(conn: Conn, referral_id: int, at: datetime, user: User) -> None:
    await conn.execute(q("referral_arrive"), referral_id, at, user.id)


async def set_returned(
    conn: Conn,
    referral_id: int,
    user: User,
    *,
    kind: ReturnKind,
    diagnosis: str,
    orders: str | None,
    follow_up: str,
) -> None:
    await conn.execute(
        q("referral_return"), referral_id, user.id, kind.value, diagnosis, orders, follow_up
    )


async def patient_subject(conn: Conn, patient: int) -> ReferralSubject | None:
    """Whom a referral raised for a patient record is about: the record's issuer stands as
    the clinic (the caller checks the user may see the record)."""
    row = await conn.fetchrow(q("referral_patient"), patient)
    if row is None:
        return None
    return ReferralSubject(
        patient_ref=PatientRef(row["id"]),
        clinic_id=FacilityId(row["issuer_facility_id"]),
        case_id=None,
    )


async def attachable(
    conn: Conn, patient: PatientRef, user: User, *, studies: Sequence[int], reports: Sequence[int]
) -> tuple[frozenset[int], frozenset[int]]:
    """Of the studies and reports asked, those of ``patient`` (or a record linked to them)
    the user may see."""
    found_studies = await conn.fetch(
        q("referral_attachable_studies"), list(studies), patient, user.id
    )
    found_reports = await conn.fetch(
        q("referral_attachable_reports"), list(reports), patient, user.id
    )
    return (
        frozenset(r["id"] for r in found_studies),
        frozenset(r["id"] for r in found_reports),
    )


async def attach(
    conn: Conn, referral_id: int, *, studies: Sequence[int], reports: Sequence[int]
) -> None:
    await conn.execute(q("referral_attach"), referral_id, list(studies), list(reports))


async def attachments(db: asyncpg.Pool | Conn, referral_id: int) -> list[ReferralAttachment]:
    """The results attached to a referral's form, studies first."""
    rows = await db.fetch(q("referral_attachments"), referral_id)
    return [ReferralAttachment.from_row(r) for r in rows]


async def results_of_patient(
    pool: asyncpg.Pool, patient: int, user: User
) -> list[ReferralAttachment]:
    """What a referral form for ``patient`` may attach: their studies and reports the user
    may see, newest first."""
    rows = await pool.fetch(q("referral_results_of_patient"), patient, user.id)
    return [ReferralAttachment.from_row(r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class ClinicPatient:
    id: PatientRef
    patient_id: str
    name: str | None
    sex: str | None
    birth_date: str | None


async def clinic_patients(
    pool: asyncpg.Pool, facility: FacilityId, *, limit: int = 200
) -> list[ClinicPatient]:
    """A facility's own patient records, those with the newest studies first."""
    rows = await pool.fetch(q("referral_clinic_patients"), facility, limit)
    return [
        ClinicPatient(
            id=PatientRef(r["id"]),
            patient_id=r["patient_id"],
            name=r["name"],
            sex=r["sex"],
            birth_date=r["birth_date"],
        )
        for r in rows
    ]


async def papers(pool: asyncpg.Pool, referral_id: int, user: User) -> ReferralPapers | None:
    row = await pool.fetchrow(q("referral_papers"), referral_id, user.id)
    if row is None:
        return None
    return ReferralPapers(
        patient_id=row["patient_id"],
        patient_sex=row["sex"],
        patient_birth_date=row["birth_date"],
        issuer_name=row["issuer_name"],
        national_id_digest=row["national_id_digest"],
        from_name=row["from_name"],
        to_name=row["to_name"],
        created_by_name=row["created_by_name"],
        responded_by_name=row["responded_by_name"],
        arrived_by_name=row["arrived_by_name"],
        returned_by_name=row["returned_by_name"],
    )


async def referral_for_user(
    db: asyncpg.Pool | Conn, referral_id: int, user: User
) -> Referral | None:
    row = await db.fetchrow(q("referral_for_user"), referral_id, user.id)
    return Referral.from_row(row) if row else None


async def referrals_for_user(
    pool: asyncpg.Pool, user: User, *, limit: int = 100, offset: int = 0
) -> list[Referral]:
    rows = await pool.fetch(q("referrals_for_user"), user.id, limit, offset)
    return [Referral.from_row(r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class ReferralStats:
    facility_id: FacilityId
    facility_code: str
    direction: ReferralDirection
    status: ReferralStatus
    count: int
    median_response_s: float | None


async def referral_stats(
    pool: asyncpg.Pool, root: FacilityId, since: datetime, until: datetime
) -> list[ReferralStats]:
    """Referrals raised in the window by facilities below ``root``, per sender, direction
    and status, with the median time to an answer."""
    rows = await pool.fetch(q("referral_stats"), root, since, until)
    return [
        ReferralStats(
            facility_id=FacilityId(r["from_facility_id"]),
            facility_code=r["code"],
            direction=ReferralDirection(r["direction"]),
            status=ReferralStatus(r["status"]),
            count=r["n"],
            median_response_s=float(r["median_s"]) if r["median_s"] is not None else None,
        )
        for r in rows
    ]


async def referral_months(
    pool: asyncpg.Pool, root: FacilityId, since: datetime, until: datetime, zone: str
) -> list[ReferralMonth]:
    """Referral steps per facility below ``root`` and month (in ``zone``), of the referrals
    raised in ``[since, until)``: up-referrals with how many were accepted, declined,
    arrived and returned down at their sender; down-referrals and returns down at the
    facility that sent the patient down."""
    rows = await pool.fetch(q("referral_statistics"), root, since, until, zone)
    return [
        ReferralMonth(
            facility_code=r["code"],
            facility_name=r["name"],
            month=r["month"],
            up=r["up"],
            accepted=r["accepted"],
            declined=r["declined"],
            arrived=r["arrived"],
            returned=r["returned"],
            down=r["down"],
        )
        for r in rows
    ]
