"""Two-way referral (双向转诊): up to the county or city hospital, and back down."""

from __future__ import annotations

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
    ReferralDirection,
    ReferralId,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
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
) -> None:
    """Keep the receiving facility's answer (the decline reason only on a decline)."""
    await conn.execute(
        q("referral_respond"), referral_id, status.value, user.id, appointment_at, reason
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
