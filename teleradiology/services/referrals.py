"""Two-way referral (双向转诊) as use cases: raising one, answering it, reading them.

The rules are core/referrals.py's; each step is recorded as an event and told to the other
facility in the same transaction, and reading referrals is audited, here.
"""

from __future__ import annotations

from datetime import datetime

from storage import audit, referrals
from storage.db import Conn, Pool, transaction
from storage.eventlog import notify, record_event
from storage.records import (
    AuditAction,
    EventKind,
    Facility,
    FacilityId,
    NotificationKind,
    Referral,
    ReferralDirection,
    ReferralId,
    ReferralSubject,
    User,
)
from storage.referrals import NewReferral
from teleradiology.core import referrals as rules
from teleradiology.core.errors import NotFound
from teleradiology.core.referrals import ReferralRequest


async def create(pool: Pool, user: User, req: ReferralRequest) -> Referral:
    """Raise a referral about a case (or in answer to a referral): up from the case's clinic
    to a county or city hospital above it, down from the user's hospital to a facility below
    it. The receiving facility is told.

    Raises
    ------
    NotFound
        The case, the referral answered, or the facility is not in the user's scope.
    InvalidState
        The target is not above (up) or below (down) the sender, or nothing is attached.
    """
    async with transaction(pool) as conn:
        about = await _subject(conn, user, req)
        target = await referrals.facility_by_code(conn, req.to_facility)
        if target is None:
            raise NotFound(f"facility {req.to_facility} is not in the network")
        source = await _source(conn, user, req.direction, about, target)
        referral_id = await referrals.insert_referral(conn, _new(req, about, source, target, user))
        await _requested(conn, user, req, referral_id, source, target, about)
    return await _referral(pool, referral_id, user)


async def _subject(conn: Conn, user: User, req: ReferralRequest) -> ReferralSubject:
    earlier = None
    case_id = req.case_id
    if req.in_reply_to is not None:
        earlier = await referrals.referral_subject(conn, req.in_reply_to, user)
        if earlier is None:
            raise NotFound(f"referral {req.in_reply_to} not found")
        case_id = case_id or earlier.case_id
    of_case = None
    if case_id is not None:
        of_case = await referrals.case_subject(conn, case_id, user)
        if of_case is None:
            raise NotFound(f"case {case_id} not found")
    return rules.subject(earlier, of_case)


async def _source(
    conn: Conn,
    user: User,
    direction: ReferralDirection,
    about: ReferralSubject,
    target: Facility,
) -> FacilityId:
    if direction is ReferralDirection.UP:
        above = await referrals.chain_ids(conn, about.clinic_id)
        return rules.up_source(user, about, target, above)
    return rules.down_source(user, target, await referrals.chain_ids(conn, target.id))


def _new(
    req: ReferralRequest,
    about: ReferralSubject,
    source: FacilityId,
    target: Facility,
    user: User,
) -> NewReferral:
    return NewReferral(
        direction=req.direction,
        patient_ref=about.patient_ref,
        case_id=about.case_id,
        in_reply_to=req.in_reply_to,
        from_facility_id=source,
        to_facility_id=target.id,
        urgency=req.urgency,
        reason=req.reason,
        discharge_summary=req.discharge_summary,
        follow_up_plan=req.follow_up_plan,
        created_by=user.id,
    )


async def _requested(
    conn: Conn,
    user: User,
    req: ReferralRequest,
    referral_id: ReferralId,
    source: FacilityId,
    target: Facility,
    about: ReferralSubject,
) -> None:
    detail = {"direction": req.direction.value, "urgency": req.urgency.value}
    await record_event(
        conn,
        EventKind.REFERRAL_REQUESTED,
        facility_id=source,
        case_id=about.case_id,
        user_id=user.id,
        referral_id=referral_id,
        detail={**detail, "to": req.to_facility},
    )
    await notify(
        conn,
        NotificationKind.REFERRAL,
        facility_id=target.id,
        audience=rules.told_of_request(req.direction),
        case_id=about.case_id,
        detail={**detail, "referral_id": referral_id},
    )


async def respond(
    pool: Pool,
    referral_id: int,
    user: User,
    *,
    accept: bool,
    appointment_at: datetime | None = None,
    reason: str | None = None,
) -> Referral:
    """The receiving facility accepts (接诊, with a time for an up-referral) or declines
    (with a reason); the sender is told.

    Raises
    ------
    NotFound
        The referral is not in the user's scope.
    InvalidState
        The user's facility does not receive it, it is answered already, or the time or the
        reason is missing.
    """
    async with transaction(pool) as conn:
        found = await referrals.lock_referral(conn, referral_id, user)
        if found is None:
            raise NotFound(f"referral {referral_id} not found")
        status = rules.check_response(
            user, found, accept=accept, appointment_at=appointment_at, reason=reason
        )
        await referrals.set_response(
            conn, referral_id, status, user, appointment_at=appointment_at, reason=reason
        )
        event, told = rules.answered(status)
        await record_event(
            conn,
            event,
            facility_id=found.to_facility_id,
            case_id=found.case_id,
            user_id=user.id,
            referral_id=found.id,
            detail={"reason": reason} if reason else None,
        )
        await notify(
            conn,
            told,
            facility_id=found.from_facility_id,
            audience=rules.told_of_answer(found.direction),
            case_id=found.case_id,
            detail={"referral_id": found.id},
        )
    return await _referral(pool, referral_id, user)


async def _referral(pool: Pool, referral_id: int, user: User) -> Referral:
    found = await referrals.referral_for_user(pool, referral_id, user)
    if found is None:  # pragma: no cover - written in the user's scope just now
        raise NotFound(f"referral {referral_id} not found")
    return found


async def read(pool: Pool, user: User, referral_id: int) -> Referral:
    """One referral in the user's scope; audited.

    Raises
    ------
    NotFound
        Not in the user's scope.
    """
    found = await referrals.referral_for_user(pool, referral_id, user)
    if found is None:
        raise NotFound(f"referral {referral_id} not found")
    await audit.record(
        pool, user_id=user.id, action=AuditAction.READ, object_type="referral", object_id=found.id
    )
    return found


async def listed(
    pool: Pool, user: User, *, limit: int, offset: int, listing: str = "query"
) -> list[Referral]:
    """The referrals the user's facility sent or received, newest first; audited as a
    ``listing`` (the API's query, the inbox page)."""
    found = await referrals.referrals_for_user(pool, user, limit=limit, offset=offset)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.LIST,
        object_type="referral",
        object_id=listing,
        detail={"count": len(found)},
    )
    return found
