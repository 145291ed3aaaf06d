"""Two-way referral (双向转诊): up to the county or city hospital, and back down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.errors import InvalidState, NotFound
from storage.eventlog import notify, record_event
from storage.queries import q
from storage.records import (
    EventKind,
    FacilityId,
    NotificationKind,
    Referral,
    ReferralDirection,
    ReferralStatus,
    Role,
    Tier,
    Urgency,
    User,
)


@dataclass(frozen=True, kw_only=True)
class ReferralRequest:
    direction: ReferralDirection
    to_facility: str
    urgency: Urgency
    reason: str
    case_id: int | None = None
    in_reply_to: int | None = None
    discharge_summary: str | None = None
    follow_up_plan: str | None = None


async def create_referral(pool: asyncpg.Pool, user: User, req: ReferralRequest) -> Referral:
    """Raise a referral. Up: from the case's sending clinic to a county or city hospital
    above it. Down: from the caller's hospital to a township or village below it, with the
    discharge summary and follow-up plan.

    Raises
    ------
    NotFound
        The case, the referral replied to, or the facility is not in the caller's scope.
    InvalidState
        The target facility is not above (up) or below (down) the sender.
    """
    async with pool.acquire() as conn, conn.transaction():
        patient, case_id, clinic = None, req.case_id, None
        if req.in_reply_to is not None:
            earlier = await conn.fetchrow(q("referral_source"), req.in_reply_to, user.id)
            if earlier is None:
                raise NotFound(f"referral {req.in_reply_to} not found")
            patient, clinic = earlier["patient_ref"], earlier["from_facility_id"]
            case_id = case_id or earlier["case_id"]
        if case_id is not None:
            found = await conn.fetchrow(q("case_patient_for_user"), case_id, user.id)
            if found is None:
                raise NotFound(f"case {case_id} not found")
            patient, clinic = found["patient_ref"], found["facility_id"]
        if patient is None or clinic is None:
            raise InvalidState("attach the case (case_id) or the referral it answers")
        target = await conn.fetchrow(q("facility_by_code_tier"), req.to_facility)
        if target is None:
            raise NotFound(f"facility {req.to_facility} is not in the network")
        if req.direction is ReferralDirection.UP:
            if user.role is Role.CLINIC and user.facility_id != clinic:
                raise NotFound(f"case {case_id} not found")
            source = clinic
            above = {r["id"] for r in await conn.fetch(q("facility_chain"), source)}
            if target["id"] not in above or Tier(target["tier"]) not in (Tier.COUNTY, Tier.CITY):
                raise InvalidState(
                    f"an up-referral goes to a county or city hospital above the clinic; "
                    f"{req.to_facility} is not one"
                )
        else:
            if user.role is Role.CLINIC:
                raise InvalidState("a down-referral is sent by the hospital the patient leaves")
            source = user.facility_id
            below = {r["id"] for r in await conn.fetch(q("facility_chain"), target["id"])}
            if source not in below or target["id"] == source:
                raise InvalidState(
                    f"a down-referral goes to a facility below yours; {req.to_facility} is not"
                )
        referral_id = await conn.fetchval(
            q("referral_insert"),
            req.direction.value,
            patient,
            case_id,
            req.in_reply_to,
            source,
            target["id"],
            req.urgency.value,
            req.reason,
            req.discharge_summary,
            req.follow_up_plan,
            user.id,
        )
        detail = {"direction": req.direction.value, "urgency": req.urgency.value}
        await record_event(
            conn,
            EventKind.REFERRAL_REQUESTED,
            facility_id=source,
            case_id=case_id,
            user_id=user.id,
            referral_id=referral_id,
            detail={**detail, "to": req.to_facility},
        )
        audience = Role.CLINIC if req.direction is ReferralDirection.DOWN else Role.ADMIN
        await notify(
            conn,
            NotificationKind.REFERRAL,
            facility_id=target["id"],
            audience=audience,
            case_id=case_id,
            detail={**detail, "referral_id": referral_id},
        )
    found_referral = await referral_for_user(pool, referral_id, user)
    assert found_referral is not None
    return found_referral


async def respond(
    pool: asyncpg.Pool,
    referral_id: int,
    user: User,
    *,
    accept: bool,
    appointment_at: datetime | None = None,
    reason: str | None = None,
) -> Referral:
    """The receiving facility accepts (接诊, with a time for an up-referral) or declines."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q("referral_lock_for_user"), referral_id, user.id)
        if row is None:
            raise NotFound(f"referral {referral_id} not found")
        if row["to_facility_id"] != user.facility_id:
            raise InvalidState("only the receiving facility answers a referral")
        if row["status"] != ReferralStatus.REQUESTED.value:
            raise InvalidState(f"referral {referral_id} is already {row['status']}")
        if accept and row["direction"] == "up" and appointment_at is None:
            raise InvalidState("say when the patient is received ('appointment_at')")
        if not accept and not reason:
            raise InvalidState("say why the referral is declined ('reason')")
        status = ReferralStatus.ACCEPTED if accept else ReferralStatus.DECLINED
        await conn.execute(
            q("referral_respond"), referral_id, status.value, user.id, appointment_at, reason
        )
        kind = EventKind.REFERRAL_ACCEPTED if accept else EventKind.REFERRAL_DECLINED
        await record_event(
            conn,
            kind,
            facility_id=row["to_facility_id"],
            case_id=row["case_id"],
            user_id=user.id,
            referral_id=referral_id,
            detail={"reason": reason} if reason else None,
        )
        sender_role = Role.CLINIC if row["direction"] == "up" else Role.ADMIN
        await notify(
            conn,
            NotificationKind(kind.value),
            facility_id=row["from_facility_id"],
            audience=sender_role,
            case_id=row["case_id"],
            detail={"referral_id": referral_id},
        )
    found = await referral_for_user(pool, referral_id, user)
    assert found is not None
    return found


async def referral_for_user(pool: asyncpg.Pool, referral_id: int, user: User) -> Referral | None:
    row = await pool.fetchrow(q("referral_for_user"), referral_id, user.id)
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
