"""The use cases of reading: claiming and releasing cases, escalating, returning a study to
its clinic, second reads, signing reports and addenda, the clinic's acknowledgement and
reading request, a suspected STEMI; and the audited reads of cases and reports.

Each change is one transaction: the case (or report) is locked by storage, the rules of
`core.casework` are checked on its state, then storage updates it, then the events and
notifications are written, here and nowhere else. The role is checked before anything is
read, so a role that may never act is refused whatever the case.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage import audit, cases, index, jobs, reports, templates
from storage.db import Conn, Pool, Queryable, transaction
from storage.eventlog import notify, record_event
from storage.objects import ObjectStore
from storage.records import (
    AuditAction,
    Case,
    CaseId,
    CasePlan,
    CaseStatus,
    Conclusion,
    EventKind,
    Language,
    NotificationKind,
    Priority,
    Report,
    ReportId,
    ReportStatus,
    ReturnReason,
    Role,
    Specialty,
    Study,
    StudyId,
    User,
    UserId,
)
from storage.reports import NewReport
from teleradiology.core import casework
from teleradiology.core.access import require_role
from teleradiology.core.casework import CaseAction, CaseState, ReportAction
from teleradiology.core.errors import BadRequest, Conflict, NotFound
from teleradiology.core.language import N_
from teleradiology.core.signature import report_signature
from teleradiology.services import delivery
from teleradiology.services.delivery import DELIVER_REPORT
from teleradiology.services.progress import record_step
from teleradiology.services.routing import schedule_case
from teleradiology.services.work_pool import WorkPool


def _now() -> datetime:
    return datetime.now(UTC)


async def _locked(conn: Conn, user: User, case_id: int) -> Case:
    case = await cases.lock_case(conn, case_id, user)
    if case is None:
        raise NotFound(N_("找不到病例 %(id)s"), id=case_id)
    return case


async def _case(db: Queryable, user: User, case_id: int) -> Case:
    case = await cases.case_for_user(db, case_id, user)
    if case is None:
        raise NotFound(N_("找不到病例 %(id)s"), id=case_id)
    return case


async def _report(db: Queryable, user: User, report_id: int) -> Report:
    found = await reports.report_for_user(db, report_id, user)
    if found is None:
        raise NotFound(N_("找不到报告 %(id)s"), id=report_id)
    return found


async def _read_first_read(db: Queryable, user: User, case: Case) -> bool:
    """On a second read: whether the user read the first."""
    if case.second_read_of is None or user.role is not Role.READER:
        return False
    return await cases.read_first_read(db, case.second_read_of, user.id)


# --- audited reads ---------------------------------------------------------------------


async def open_case(
    pool: Pool, user: User, case_id: int, *, specialty: Specialty | None = None
) -> Case:
    """The case in the user's scope, its reading audited.

    With ``specialty``: a case of another specialty is returned unaudited (the page asking
    sends the user on to the page of its specialty, which reads it).
    """
    case = await _case(pool, user, case_id)
    if specialty is None or case.specialty is specialty:
        await audit.record(
            pool,
            user_id=user.id,
            action=AuditAction.READ,
            object_type="case",
            object_id=case.id,
            study_ids=(case.study_id,),
        )
    return case


#: What a clinic is not shown of the readers' own steps, by event: what a preliminary
#: report concluded, and how the final one differs from it.
_CLINIC_HIDDEN_DETAIL = {
    EventKind.PRELIMINARY.value: frozenset({"conclusion"}),
    EventKind.FINAL.value: frozenset({"agreed", "discrepancy"}),
}


async def case_events(pool: Pool, user: User, case: Case) -> list[cases.Event]:
    """The case's history as the user may see it: a clinic sees that a preliminary report
    was signed, not what it concluded (only final, delivered reports are the clinic's)."""
    found = await cases.events_of_case(pool, case)
    if user.role is not Role.CLINIC:
        return found
    return [
        dataclasses.replace(
            e,
            detail={
                k: v
                for k, v in e.detail.items()
                if k not in _CLINIC_HIDDEN_DETAIL.get(e.kind, frozenset())
            },
        )
        for e in found
    ]


async def addendum_authors_below(pool: Pool, user: User, case_reports: list[Report]) -> set[UserId]:
    """The authors of ``case_reports`` the user reads above (whose final reports they may
    amend as a higher tier)."""
    if user.role is not Role.READER:
        return set()
    return {
        author
        for author in {r.author_id for r in case_reports if r.author_id != user.id}
        if await reports.reads_above_author(pool, user.id, author)
    }


async def offered_actions(
    pool: Pool, user: User, case: Case, *, now: datetime | None = None
) -> frozenset[CaseAction]:
    """The actions to offer the user on the case now, as `core.casework` decides them."""
    read_first = await _read_first_read(pool, user, case)
    state = CaseState.of(case, now or _now())
    return casework.offered_actions(user, state, read_first_read=read_first)


async def worklist(
    pool: Pool, user: User, *, limit: int = 200, listing: str = "worklist"
) -> list[Case]:
    """The open cases in the user's scope, most urgent first; the listing is audited under
    ``listing``."""
    found = await cases.worklist(pool, user, limit=limit)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.LIST,
        object_type="case",
        object_id=listing,
        detail={"count": len(found)},
        study_ids=[c.study_id for c in found],
    )
    return found


async def open_case_overview(pool: Pool, admin: User, at: datetime) -> cases.OpenCases:
    """The open cases sent from an administrator's network, per pool and sending facility,
    and those overdue at `at`; the overdue listing is audited under ``dashboard``."""
    require_role(admin, Role.ADMIN)
    found = await cases.open_cases(pool, admin.facility_id, at)
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.LIST,
        object_type="case",
        object_id="dashboard",
        detail={"count": sum(load.open for load in found.loads), "overdue": len(found.overdue)},
        study_ids=[c.study_id for c in found.overdue],
    )
    return found


async def inbox(
    pool: Pool,
    user: User,
    *,
    unacknowledged: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    listing: str = "inbox",
) -> list[Report]:
    """Delivered reports in the user's scope, newest first; the listing is audited under
    ``listing`` (the inbox, the dashboard)."""
    found = await reports.inbox(
        pool, user, unacknowledged=unacknowledged, limit=limit, offset=offset
    )
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.LIST,
        object_type="report",
        object_id=listing,
        detail={"count": len(found)},
        studies=[r.study_instance_uid for r in found],
    )
    return found


async def open_report(pool: Pool, user: User, report_id: int) -> Report:
    """A report in the user's scope (a clinic's: once delivered), its reading audited."""
    found = await reports.report_for_user(pool, report_id, user)
    if found is None or (user.role is Role.CLINIC and found.delivered_at is None):
        raise NotFound(N_("找不到报告 %(id)s"), id=report_id)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="report",
        object_id=found.id,
        studies=(found.study_instance_uid,),
    )
    return found


async def report_pdf(
    pool: Pool, objects: ObjectStore, user: User, report_id: int, *, work: WorkPool | None = None
) -> bytes:
    """The printable report of a delivered report in the user's scope, in the user's
    language, its reading audited: the delivered PDF for a zh-CN user, made again (in
    ``work``) for another language."""
    key = await reports.pdf_key_for_user(pool, report_id, user)
    if key is None:
        raise NotFound(N_("报告 %(id)s 还没有 PDF：报告送达时生成"), id=report_id)
    if user.language is Language.ZH_CN:
        data = await objects.get(key)
    else:
        doc = await reports.report_document(pool, report_id)
        if doc is None:  # pragma: no cover - in the user's scope just now
            raise NotFound(N_("找不到报告 %(id)s"), id=report_id)
        data = await delivery.printable(pool, objects, doc, language=user.language, work=work)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="report_pdf",
        object_id=report_id,
    )
    return data


async def studies(
    pool: Pool,
    user: User,
    *,
    study_uid: str | None = None,
    patient_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
    listing: str = "query",
) -> list[Study]:
    """The studies in the user's scope; the listing is audited under ``listing``."""
    found = await index.studies_for_user(
        pool, user.id, study_uid=study_uid, patient_id=patient_id, limit=limit, offset=offset
    )
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.LIST,
        object_type="study",
        object_id=listing,
        detail={"count": len(found)},
        study_ids=[s.id for s in found],
    )
    return found


# --- claims ----------------------------------------------------------------------------


async def claim(pool: Pool, user: User, case_id: int, *, lease: timedelta) -> Case:
    """Take the case for ``lease``, or renew the lease the reader holds."""
    casework.check_role(user, CaseAction.CLAIM)
    async with transaction(pool) as conn:
        case = await _locked(conn, user, case_id)
        await _claim(conn, user, case, lease)
        return await _case(conn, user, case.id)


async def claim_next(pool: Pool, user: User, *, lease: timedelta) -> Case | None:
    """Claim the most urgent case the reader may claim in their pools; None when there is
    none. Concurrent readers skip each other's cases, so none is handed out twice."""
    casework.check_role(user, CaseAction.CLAIM)
    async with transaction(pool) as conn:
        case = await cases.lock_next_claimable(conn, user)
        if case is None:
            return None
        await _claim(conn, user, case, lease)
        return await _case(conn, user, case.id)


async def _claim(conn: Conn, user: User, case: Case, lease: timedelta) -> None:
    state = CaseState.of(case, _now())
    read_first = await _read_first_read(conn, user, case)
    casework.check(user, state, CaseAction.CLAIM, read_first_read=read_first)
    await cases.claim(conn, case.id, user.id, lease)
    if not state.held_by(user):  # a renewal is the same claim
        await record_step(
            conn,
            EventKind.CLAIMED,
            facility_id=case.facility_id,
            study_id=case.study_id,
            case_id=case.id,
            user_id=user.id,
        )


async def release(pool: Pool, user: User, case_id: int) -> Case:
    """Give the case back to its pool: the reader holding it, or an administrator
    force-releasing any claim (the event names the holder)."""
    casework.check_role(user, CaseAction.RELEASE)
    async with transaction(pool) as conn:
        case = await _locked(conn, user, case_id)
        casework.check(user, CaseState.of(case, _now()), CaseAction.RELEASE)
        await cases.release(conn, case.id)
        forced = user.role is Role.ADMIN
        await record_step(
            conn,
            EventKind.RELEASED,
            facility_id=case.facility_id,
            study_id=case.study_id,
            case_id=case.id,
            user_id=user.id,
            detail={"forced": True, "holder": case.claimed_by} if forced else None,
        )
        return await _case(conn, user, case.id)


# --- escalation, return, second read --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ReportDraft:
    """What a reader signs: the text (or a template's, for what is left empty), the
    conclusion and status, and on an escalated case whether they agree with the first
    reader (None: judged from the conclusions) and what they changed."""

    findings: str
    impression: str
    conclusion: Conclusion
    status: ReportStatus = ReportStatus.FINAL
    template_id: int | None = None
    agreed: bool | None = None
    discrepancy: str | None = None


async def escalate(
    pool: Pool, user: User, case_id: int, *, question: str, draft: ReportDraft | None = None
) -> Case:
    """Send the case the reader holds, with their question, to its escalation pool; a
    draft goes with it signed as their preliminary report. The deadline stays the
    patient's."""
    casework.check_role(user, CaseAction.ESCALATE)
    async with transaction(pool) as conn:
        case = await _locked(conn, user, case_id)
        state = CaseState.of(case, _now())
        casework.check(user, state, CaseAction.ESCALATE)
        if draft is not None:
            casework.check(user, state, CaseAction.REPORT)
            preliminary = dataclasses.replace(draft, status=ReportStatus.PRELIMINARY)
            await _sign(conn, user, case, preliminary)
        await escalate_locked(conn, case, by=user.id, question=question, reason="reader")
        return await _case(conn, user, case.id)


async def escalate_locked(
    conn: Conn, case: Case, *, by: UserId | None, question: str | None, reason: str
) -> None:
    """Escalate a case the caller holds locked (by a reader, or by the deadline watch with
    ``by`` None), and tell the readers of the pool above."""
    target = case.escalation_facility_id
    if target is None:
        raise ValueError(f"case {case.id} has no escalation pool")
    to_code = await cases.escalate(conn, case.id, to=target, question=question, by=by)
    await record_step(
        conn,
        EventKind.ESCALATED,
        facility_id=case.facility_id,
        study_id=case.study_id,
        case_id=case.id,
        user_id=by,
        detail={"from": case.pool_code, "to": to_code, "question": question, "reason": reason},
    )
    await notify(
        conn,
        NotificationKind.ESCALATED,
        facility_id=target,
        audience=Role.READER,
        case_id=case.id,
        detail={"from": case.pool_code, "reason": reason},
    )


async def return_to_clinic(
    pool: Pool, user: User, case_id: int, *, reason: ReturnReason, note: str
) -> Case:
    """Return the case the reader holds to the clinic for poor quality: canceled with the
    coded reason, the clinic told; the study is routed again once it re-sends."""
    casework.check_role(user, CaseAction.RETURN)
    async with transaction(pool) as conn:
        case = await _locked(conn, user, case_id)
        casework.check(user, CaseState.of(case, _now()), CaseAction.RETURN)
        await cases.return_to_clinic(conn, case, reason=reason, note=note)
        detail = {"reason": reason.value, "note": note}
        await record_event(
            conn,
            EventKind.RETURNED,
            facility_id=case.facility_id,
            study_id=case.study_id,
            case_id=case.id,
            user_id=user.id,
            detail=detail,
        )
        await notify(
            conn,
            NotificationKind.RETURNED,
            facility_id=case.facility_id,
            audience=Role.CLINIC,
            case_id=case.id,
            detail=detail,
        )
        return await _case(conn, user, case.id)


async def request_second_read(pool: Pool, user: User, case_id: int) -> Case:
    """Open a second, independent read of the case in its pool (double reading), due when
    the first is; the new case."""
    casework.check_role(user, CaseAction.SECOND_READ)
    async with transaction(pool) as conn:
        case = await _locked(conn, user, case_id)
        casework.check(user, CaseState.of(case, _now()), CaseAction.SECOND_READ)
        plan = CasePlan(
            specialty=case.specialty,
            priority=case.priority,
            pool_facility_id=case.pool_facility_id,
            escalation_facility_id=case.escalation_facility_id,
            due_in=max(case.deadline - _now(), timedelta(minutes=1)),
            stemi=case.stemi,
        )
        second = await schedule_case(
            conn, case.study_id, case.facility_id, plan, second_read_of=case.id
        )
        if second is None:
            raise Conflict(N_("病例 %(id)s 已有一个未完成的复核阅片"), id=case.id)
        await record_event(
            conn,
            EventKind.SECOND_READ,
            facility_id=case.facility_id,
            study_id=case.study_id,
            case_id=second,
            user_id=user.id,
            detail={"first_read": case.id},
        )
        return await _case(conn, user, second)


# --- reports ---------------------------------------------------------------------------


async def submit_report(pool: Pool, user: User, case_id: int, draft: ReportDraft) -> Report:
    """Sign and store the report of the reader holding the case.

    A final report completes the case and queues its delivery to the sending clinic in the
    same transaction; on an escalated case it records whether the reader agreed with the
    first reader's preliminary report, and the discrepancy if not.
    """
    casework.check_role(user, CaseAction.REPORT)
    template = None
    if draft.template_id is not None:
        template = await templates.template_for_user(pool, draft.template_id, user.id)
    async with transaction(pool) as conn:
        case = await _locked(conn, user, case_id)
        casework.check(user, CaseState.of(case, _now()), CaseAction.REPORT)
        if draft.template_id is not None:
            draft = _from_template(draft, template, case)
        report_id = await _sign(conn, user, case, draft)
        after = casework.next_status(case.status, CaseAction.REPORT, report_status=draft.status)
        if after is CaseStatus.COMPLETED:
            await cases.complete(conn, case.id)
            await jobs.enqueue(conn, DELIVER_REPORT, {"report_id": report_id})
        return await _report(conn, user, report_id)


def _from_template(
    draft: ReportDraft, template: templates.Template | None, case: Case
) -> ReportDraft:
    """The draft with the template's text where the reader left it empty: a reader starts
    from the zh-CN template of the modality and edits it."""
    if template is None or template.specialty is not case.specialty:
        raise BadRequest(
            N_("模板 %(id)s 不是%(specialty)s模板"), id=draft.template_id, specialty=case.specialty
        )
    return dataclasses.replace(
        draft,
        findings=draft.findings or template.findings,
        impression=draft.impression or template.impression,
    )


async def _earlier_read(conn: Conn, case: Case) -> reports.EarlierRead | None:
    """What a final report of the case is compared with: on an escalated case the first
    reader's latest preliminary report, on a second read the first read's final report."""
    if case.escalated:
        return await reports.latest_preliminary(conn, case.id)
    assert case.second_read_of is not None
    return await reports.first_final(conn, case.second_read_of)


async def _sign(conn: Conn, user: User, case: Case, draft: ReportDraft) -> ReportId:
    """Store the draft signed by the user now, and its event."""
    final = draft.status is ReportStatus.FINAL
    agreed, discrepancy, earlier = None, None, None
    if final and (case.escalated or case.second_read_of is not None):
        earlier = await _earlier_read(conn, case)
        if case.escalated or earlier is not None:
            agreed, discrepancy = casework.agreement(
                earlier.conclusion if earlier else None,
                draft.conclusion,
                agreed=draft.agreed,
                discrepancy=draft.discrepancy,
            )
    signed_at = _now()
    fields = {
        "findings": draft.findings,
        "impression": draft.impression,
        "conclusion": draft.conclusion.value,
        "status": draft.status.value,
    }
    report_id = await reports.insert_report(
        conn,
        NewReport(
            case_id=case.id,
            author_id=user.id,
            status=draft.status,
            findings=draft.findings,
            impression=draft.impression,
            conclusion=draft.conclusion,
            signature_sha256=report_signature(case, user, fields, signed_at),
            signed_at=signed_at,
            agreed=agreed,
            discrepancy=discrepancy,
            compared_report_id=earlier.report_id if earlier and agreed is not None else None,
        ),
    )
    detail: dict[str, object] = {"conclusion": draft.conclusion.value}
    if agreed is not None:
        detail.update(agreed=agreed, discrepancy=discrepancy)
    await record_event(
        conn,
        EventKind.FINAL if final else EventKind.PRELIMINARY,
        facility_id=case.facility_id,
        study_id=case.study_id,
        case_id=case.id,
        report_id=report_id,
        user_id=user.id,
        detail=detail,
    )
    return report_id


async def add_addendum(pool: Pool, user: User, report_id: int, *, text: str) -> Report:
    """Add an addendum to a final report: the author's, or a higher-tier reader's above the
    author (`core.casework.check_addendum`); a new version, delivered like the report."""
    casework.check_role(user, ReportAction.ADDENDUM)
    async with transaction(pool) as conn:
        original = await _report(conn, user, report_id)
        above = original.author_id != user.id and await reports.reads_above_author(
            conn, user.id, original.author_id
        )
        casework.check_addendum(
            user, original.id, original.status, original.author_id, above_author=above
        )
        case = await _locked(conn, user, original.case_id)
        root = original.amends_report_id or original.id
        signed_at = _now()
        fields = {"addendum_to": str(original.id), "text": text}
        new_id = await reports.insert_report(
            conn,
            NewReport(
                case_id=case.id,
                author_id=user.id,
                status=ReportStatus.FINAL,
                findings=text,
                impression=original.impression,
                conclusion=original.conclusion,
                signature_sha256=report_signature(case, user, fields, signed_at),
                signed_at=signed_at,
                amends_report_id=root,
            ),
        )
        await record_event(
            conn,
            EventKind.ADDENDUM,
            facility_id=case.facility_id,
            study_id=case.study_id,
            case_id=case.id,
            report_id=new_id,
            user_id=user.id,
            detail={"amends": root},
        )
        await jobs.enqueue(conn, DELIVER_REPORT, {"report_id": new_id})
        return await _report(conn, user, new_id)


async def acknowledge(
    pool: Pool, user: User, report_id: int, *, name: str | None, read_back: str | None = None
) -> Report:
    """The clinic confirms it has the delivered report (a critical result: ``name``, the
    person who took it, and ``read_back``, what they repeated back); acknowledging twice
    keeps the first time."""
    casework.check_role(user, ReportAction.ACKNOWLEDGE)
    async with transaction(pool) as conn:
        found = await reports.report_for_user(conn, report_id, user)
        if found is None or found.delivered_at is None:
            raise NotFound(N_("找不到报告 %(id)s"), id=report_id)
        casework.check_acknowledgement(user, found.id, found.conclusion, name, read_back)
        place = await reports.acknowledge(conn, found.id, user.id, name=name, read_back=read_back)
        if place is not None:
            await record_event(
                conn,
                EventKind.ACKNOWLEDGED,
                facility_id=place.facility_id,
                study_id=place.study_id,
                case_id=place.case_id,
                report_id=found.id,
                user_id=user.id,
                detail={"name": name, "read_back": bool(read_back)} if name else None,
            )
        return await _report(conn, user, found.id)


# --- the clinic's request, the ECG analysis --------------------------------------------


async def request_reading(
    pool: Pool, user: User, study_uid: str, *, priority: Priority, question: str | None
) -> list[CaseId]:
    """The clinic asks for a reading of its study with a priority (and a clinical
    question): the study and its open cases take it, with that priority's deadline when
    sooner. The cases raised."""
    require_role(user, Role.CLINIC)
    found = await index.studies_for_user(
        pool, user.id, study_uid=study_uid, patient_id=None, limit=1, offset=0
    )
    if not found:
        raise NotFound(N_("找不到检查 %(uid)s：请先发送"), uid=study_uid)
    study_id = found[0].id
    async with transaction(pool) as conn:
        facility_id = await cases.lock_study(conn, study_id, user)
        if facility_id is None:
            raise NotFound(N_("找不到检查 %(id)s"), id=study_id)
        changed = await cases.set_priority(
            conn, study_id, facility_id, priority=priority, question=question
        )
        await record_event(
            conn,
            EventKind.PRIORITY,
            facility_id=facility_id,
            study_id=study_id,
            user_id=user.id,
            detail={"priority": priority.value},
        )
    return changed


async def raise_to_stemi(pool: Pool, study_id: StudyId | int) -> list[CaseId]:
    """Suspected STEMI on a study's ECG: high priority and the network's STEMI deadline
    (10 minutes by default) for its open ECG cases, and for cases routed later; their
    readers are told. The cases whose deadline was brought forward."""
    async with transaction(pool) as conn:
        raised = await cases.raise_to_stemi(conn, study_id)
        if raised is None:
            raise NotFound(N_("找不到检查 %(id)s"), id=study_id)
        for case in raised.cases:
            await record_event(
                conn,
                EventKind.STEMI_SUSPECTED,
                facility_id=raised.facility_id,
                study_id=study_id,
                case_id=case.case_id,
                detail={"deadline": case.deadline.isoformat()},
            )
            await notify(
                conn,
                NotificationKind.STEMI,
                facility_id=case.pool_facility_id,
                audience=Role.READER,
                case_id=case.case_id,
            )
    return [c.case_id for c in raised.cases]
