"""Two-way referral (双向转诊) as use cases: raising one (for a case or a patient, with the
results attached), answering it, recording the arrival, returning the patient down, reading
them and printing their documents, and the network's statistics.

The rules are core/referrals.py's; each step is recorded as an event and told to the other
facility in the same transaction, and reading referrals is audited, here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage import audit, patients, referrals
from storage.db import Conn, Pool, transaction
from storage.eventlog import notify, record_event
from storage.records import (
    AuditAction,
    EventKind,
    Facility,
    FacilityId,
    NotificationKind,
    Referral,
    ReferralAttachment,
    ReferralDirection,
    ReferralDocumentKind,
    ReferralId,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
    Role,
    User,
)
from storage.referrals import ClinicPatient, NewReferral
from teleradiology.core import referrals as rules
from teleradiology.core.access import require_role
from teleradiology.core.errors import NotFound
from teleradiology.core.language import N_
from teleradiology.core.referral_pdf import ReferralSheet, render_referral_pdf
from teleradiology.core.referrals import Answer, ReferralRequest, ReturnForm, StatisticsRow


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
            raise NotFound(N_("机构 %(code)s 不在网络中"), code=req.to_facility)
        source = await _source(conn, user, req.direction, about, target)
        studies, reports = await referrals.attachable(
            conn, about.patient_ref, user, studies=req.studies, reports=req.reports
        )
        studies_kept = rules.check_attachments(req.studies, studies, "study")
        reports_kept = rules.check_attachments(req.reports, reports, "report")
        referral_id = await referrals.insert_referral(conn, _new(req, about, source, target, user))
        await referrals.attach(conn, referral_id, studies=studies_kept, reports=reports_kept)
        attached = len(studies_kept) + len(reports_kept)
        await _audited(conn, user, referral_id, ReferralStatus.REQUESTED, attached)
        await _requested(conn, user, req, referral_id, source, target, about)
    return await _referral(pool, referral_id, user)


async def _subject(conn: Conn, user: User, req: ReferralRequest) -> ReferralSubject:
    earlier = None
    case_id = req.case_id
    if req.in_reply_to is not None:
        earlier = await referrals.referral_subject(conn, req.in_reply_to, user)
        if earlier is None:
            raise NotFound(N_("找不到转诊 %(id)s"), id=req.in_reply_to)
        case_id = case_id or earlier.case_id
    of_case = None
    if case_id is not None:
        of_case = await referrals.case_subject(conn, case_id, user)
        if of_case is None:
            raise NotFound(N_("找不到病例 %(id)s"), id=case_id)
    of_patient = None
    if req.patient_id is not None:
        if await patients.visible(conn, req.patient_id, user):
            of_patient = await referrals.patient_subject(conn, req.patient_id)
        if of_patient is None:
            raise NotFound(N_("找不到患者 %(id)s"), id=req.patient_id)
    return rules.subject(earlier, of_case, of_patient)


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
        preliminary_diagnosis=req.preliminary_diagnosis,
        history=req.history,
        findings=req.findings,
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


async def respond(pool: Pool, referral_id: int, user: User, answer: Answer) -> Referral:
    """The receiving facility accepts (接诊, with a time for an up-referral, the department,
    doctor and green channel) or declines (with a reason); the sender is told.

    Raises
    ------
    NotFound
        The referral is not in the user's scope.
    Forbidden
        The user's facility does not receive it.
    InvalidState
        It is answered already, or the time or the reason is missing.
    """
    async with transaction(pool) as conn:
        found = await _locked(conn, referral_id, user)
        status = rules.check_response(
            user,
            found,
            accept=answer.accept,
            appointment_at=answer.appointment_at,
            reason=answer.reason,
        )
        await referrals.set_response(
            conn,
            referral_id,
            status,
            user,
            appointment_at=answer.appointment_at,
            reason=answer.reason,
            department=answer.department,
            doctor=answer.doctor,
            green_channel=answer.green_channel,
        )
        detail: dict[str, Any] = {"green_channel": answer.green_channel} if answer.accept else {}
        if answer.reason:
            detail["reason"] = answer.reason
        await _stepped(conn, user, found, status, detail)
    return await _referral(pool, referral_id, user)


async def arrive(
    pool: Pool, referral_id: int, user: User, *, at: datetime | None = None
) -> Referral:
    """The receiving facility records that the patient arrived (到诊), at ``at`` (default:
    now); the sender is told.

    Raises
    ------
    NotFound
        The referral is not in the user's scope.
    Forbidden
        The user's facility does not receive it.
    InvalidState
        It is not accepted (or the patient arrived already), or the time is not possible.
    """
    now = datetime.now(UTC)
    async with transaction(pool) as conn:
        found = await _locked(conn, referral_id, user)
        when = at or now
        status = rules.check_arrival(user, found, when, now)
        await referrals.set_arrived(conn, referral_id, when, user)
        await _stepped(conn, user, found, status, {"arrived_at": when.isoformat()})
    return await _referral(pool, referral_id, user)


async def return_down(pool: Pool, referral_id: int, user: User, form: ReturnForm) -> Referral:
    """The receiving hospital sends the patient back down to the referring clinic with the
    return form (转回单); the clinic is told.

    Raises
    ------
    NotFound
        The referral is not in the user's scope.
    Forbidden
        The user's facility does not receive it.
    InvalidState
        The patient has not arrived (or is returned already), or the form is incomplete.
    """
    async with transaction(pool) as conn:
        found = await _locked(conn, referral_id, user)
        status = rules.check_return(user, found, form)
        await referrals.set_returned(
            conn,
            referral_id,
            user,
            kind=form.kind,
            diagnosis=form.diagnosis,
            orders=form.orders,
            follow_up=form.follow_up,
        )
        await _stepped(conn, user, found, status, {"kind": form.kind.value})
    return await _referral(pool, referral_id, user)


async def _audited(
    conn: Conn, user: User, referral_id: int, status: ReferralStatus, studies: int = 0
) -> None:
    detail: dict[str, Any] = {"status": status.value}
    if studies:
        detail["attached"] = studies
    await audit.record(
        conn,
        user_id=user.id,
        action=AuditAction.REFER,
        object_type="referral",
        object_id=referral_id,
        detail=detail,
    )


async def _locked(conn: Conn, referral_id: int, user: User) -> ReferralState:
    found = await referrals.lock_referral(conn, referral_id, user)
    if found is None:
        raise NotFound(N_("找不到转诊 %(id)s"), id=referral_id)
    return found


async def _stepped(
    conn: Conn,
    user: User,
    found: ReferralState,
    status: ReferralStatus,
    detail: dict[str, Any],
) -> None:
    """The step as an event of the receiving facility, audited, and the sender told of it."""
    event, told = rules.answered(status)
    await _audited(conn, user, found.id, status)
    await record_event(
        conn,
        event,
        facility_id=found.to_facility_id,
        case_id=found.case_id,
        user_id=user.id,
        referral_id=found.id,
        detail=detail or None,
    )
    await notify(
        conn,
        told,
        facility_id=found.from_facility_id,
        audience=rules.told_of_answer(found.direction),
        case_id=found.case_id,
        detail={"referral_id": found.id},
    )


async def _referral(pool: Pool, referral_id: int, user: User) -> Referral:
    """A referral in the user's scope; NotFound when it is not."""
    found = await referrals.referral_for_user(pool, referral_id, user)
    if found is None:
        raise NotFound(N_("找不到转诊 %(id)s"), id=referral_id)
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


@dataclass(frozen=True, kw_only=True)
class ReferralDetail:
    """A referral with the results attached to its form and the documents it has."""

    referral: Referral
    attachments: list[ReferralAttachment]
    documents: tuple[ReferralDocumentKind, ...]


async def detail(pool: Pool, user: User, referral_id: int) -> ReferralDetail:
    """One referral in the user's scope with its attachments; audited (with the studies
    attached).

    Raises
    ------
    NotFound
        Not in the user's scope.
    """
    found = await _referral(pool, referral_id, user)
    attached = await referrals.attachments(pool, found.id)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="referral",
        object_id=found.id,
        studies={a.study_instance_uid for a in attached},
    )
    return ReferralDetail(
        referral=found,
        attachments=attached,
        documents=rules.documents(found.status, found.direction),
    )


async def document_pdf(
    pool: Pool, user: User, referral_id: int, kind: ReferralDocumentKind
) -> bytes:
    """One printable document of a referral in the user's scope (转诊单, 接诊单, 转回单), in
    the user's language; its reading audited.

    Raises
    ------
    NotFound
        Not in the user's scope, or the referral has no such document yet.
    """
    found = await _referral(pool, referral_id, user)
    papers = await referrals.papers(pool, referral_id, user)
    if papers is None:  # pragma: no cover - in the user's scope just now
        raise NotFound(N_("找不到转诊 %(id)s"), id=referral_id)
    rules.check_document(found.status, found.direction, kind)
    sheet = ReferralSheet(
        referral=found, papers=papers, attachments=await referrals.attachments(pool, found.id)
    )
    pdf = await asyncio.to_thread(render_referral_pdf, sheet, kind, language=user.language)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="referral_pdf",
        object_id=found.id,
        detail={"document": kind.value},
    )
    return pdf


async def attachable(pool: Pool, user: User, patient: int) -> list[ReferralAttachment]:
    """The results a referral form for ``patient`` may attach; audited.

    Raises
    ------
    NotFound
        The patient is not in the user's scope.
    """
    if not await patients.visible(pool, patient, user):
        raise NotFound(N_("找不到患者 %(id)s"), id=patient)
    found = await referrals.results_of_patient(pool, patient, user)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.LIST,
        object_type="referral_results",
        object_id=patient,
        studies={a.study_instance_uid for a in found},
    )
    return found


async def patients_to_refer(pool: Pool, user: User) -> list[ClinicPatient]:
    """The clinic's own patient records a referral may be raised for; audited."""
    found = await referrals.clinic_patients(pool, user.facility_id)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.LIST,
        object_type="patient",
        object_id="referral",
        detail={"count": len(found)},
    )
    return found


async def statistics(
    pool: Pool, user: User, since: datetime, until: datetime, zone: str
) -> tuple[list[StatisticsRow], StatisticsRow]:
    """The referral statistics of the administrator's network: per facility and month, and
    the total.

    Raises
    ------
    Forbidden
        The user is not an administrator.
    """
    require_role(user, Role.ADMIN)
    months = await referrals.referral_months(pool, user.facility_id, since, until, zone)
    return rules.statistics(months)
