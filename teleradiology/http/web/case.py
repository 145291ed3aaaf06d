"""The radiology case page: the study, the viewer, priors, history and the reading actions."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from storage import (
    audit,
    cases,
    index,
    network,
    patients,
    reports,
    templates,
)
from storage.records import (
    AuditAction,
    CaseStatus,
    Conclusion,
    EventKind,
    ReportStatus,
    ReturnReason,
    Role,
    Specialty,
)
from teleradiology.core.errors import NotFound
from teleradiology.core.words import both, both_of
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.params import path_id
from teleradiology.http.web.common import (
    base_context,
    event_detail,
    facility_names,
    local_time,
    person,
    render,
    report_context,
    signed_in,
    study_date,
    time_left,
)
from teleradiology.http.web.viewer import viewer_url


async def case_page(request: web.Request) -> web.StreamResponse:
    """A radiology case for its reader: patient, sender, question, the study and a link to
    the viewer, the patient's priors, the case's history, and the reading actions."""
    user = await signed_in(request)
    pool = request.app[POOL]
    case = await cases.case_for_user(pool, path_id(request), user)
    if case is None:
        raise NotFound(f"case {request.match_info['id']} not found")
    if case.specialty is Specialty.ECG:
        raise web.HTTPSeeOther(f"/ecg/cases/{case.id}")
    await audit.record(
        pool, user_id=user.id, action=AuditAction.READ, object_type="case", object_id=case.id
    )
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    study = await index.study_for_user(pool, case.study_instance_uid, user.id)
    case_reports = await reports.reports_of_case(pool, case.id)
    priors = await patients.priors(pool, case.study_id, user)
    events = await cases.events_of_case(pool, case)
    pools = {case.pool_facility_id, case.facility_id}
    for fid in (case.escalation_facility_id, case.first_pool_facility_id):
        if fid is not None:
            pools.add(fid)
    readers = await network.pool_readers(pool, sorted(pools), now)
    names = {r.user_id: f"{r.display_name} ({r.username})" for r in readers}
    for r in case_reports:
        names.setdefault(r.author_id, r.author_name)
    unknown = {e.user_id for e in events if e.user_id is not None} - names.keys()
    if case.claimed_by is not None and case.claimed_by not in names:
        unknown.add(case.claimed_by)
    if unknown:  # a clinic's operator or an administrator acted on the case
        for u in await network.list_users(pool):
            if u.id in unknown:
                names[u.id] = f"{u.display_name} ({u.username})"
    facilities = await facility_names(request)
    left, overdue = time_left(case.deadline, now)
    is_reader = user.role is Role.READER
    open_case = case.status in (CaseStatus.SCHEDULED, CaseStatus.IN_PROGRESS)
    holder = is_reader and case.claimed_by == user.id and case.status is CaseStatus.IN_PROGRESS
    lease_over = case.lease_expires_at is not None and case.lease_expires_at < now
    can_claim = (
        is_reader
        and not holder
        and (case.status is CaseStatus.SCHEDULED or (open_case and lease_over))
    )
    preliminary = [r for r in case_reports if r.status is ReportStatus.PRELIMINARY]
    draft = preliminary[-1] if preliminary else None
    # the city reader of an escalated case: the county draft and the question, agree or amend
    consult = (
        case.escalated_at is not None
        and is_reader
        and user.facility_id == case.pool_facility_id
        and draft is not None
        and draft.author_id != user.id
    )
    modalities = list(study.modalities if study else case.modalities)
    found_templates: dict[int, templates.Template] = {}
    wanted: list[str | None] = list(modalities) or [None]
    for modality in wanted:
        for t in await templates.list_templates(
            pool, specialty=Specialty.RADIOLOGY.value, modality=modality, language=None
        ):
            found_templates.setdefault(t.id, t)
    report_items = [report_context(r, zone) for r in case_reports]
    context = await base_context(request, user)
    context.update(
        title=f"影像病例 (case) #{case.id}",
        case=case,
        patient=person(case.patient_name),
        patient_id=study.patient_id if study else "",
        facility=facilities.get(case.facility_code, case.facility_code),
        pool_name=facilities.get(case.pool_code or "", case.pool_code or ""),
        priority_zh=both(case.priority),
        status_zh=both(case.status),
        deadline=local_time(case.deadline, zone),
        left=left if open_case else "",
        overdue=overdue and open_case,
        claimed_by=names.get(case.claimed_by, f"#{case.claimed_by}") if case.claimed_by else "",
        lease_expires=local_time(case.lease_expires_at, zone),
        escalated_at=local_time(case.escalated_at, zone),
        study={
            "modalities": ", ".join(modalities),
            "description": (study.description if study else "") or "",
            "study_date": study_date(study.study_date if study else None),
            "accession": (study.accession_number if study else "") or "",
            "series": study.num_series if study else 0,
            "instances": study.num_instances if study else 0,
            "received": local_time(study.first_received_at if study else None, zone),
            "completed": local_time(study.completed_at if study else None, zone),
        },
        viewer=viewer_url(case.study_instance_uid),
        priors=[
            {
                "date": study_date(p.study_date) or local_time(p.received_at, zone),
                "modalities": ", ".join(p.modalities),
                "description": p.description or "",
                "facility": facilities.get(p.facility_code, p.facility_code),
                "conclusion": both_of(Conclusion, p.conclusion or ""),
                "impression": p.impression or "",
                "viewer": viewer_url(p.study_instance_uid),
            }
            for p in priors
        ],
        events=[
            {
                "at": local_time(e.at, zone),
                "kind": both_of(EventKind, e.kind),
                "by": names.get(e.user_id, f"#{e.user_id}") if e.user_id else "",
                "detail": event_detail(e.kind, e.detail),
                "earlier_case": e.case_id is not None and e.case_id != case.id,
            }
            for e in events
        ],
        reports=report_items,
        draft=report_context(draft, zone) if draft else None,
        consult=consult,
        is_reader=is_reader,
        holder=holder,
        can_claim=can_claim,
        can_release=open_case
        and case.claimed_by is not None
        and (holder or user.role is Role.ADMIN),
        can_escalate=holder and case.escalated_at is None and case.escalation_facility_id,
        can_second_read=(is_reader or user.role is Role.ADMIN)
        and case.second_read_of is None
        and case.status is not CaseStatus.CANCELED,
        addendum_to=[
            r["id"]
            for r in report_items
            if r["status"] == "final" and r["author_id"] == user.id and is_reader
        ],
        templates=[
            {
                "id": t.id,
                "name": t.name,
                "modality": t.modality or "",
                "findings": t.findings,
                "impression": t.impression,
            }
            for t in found_templates.values()
        ],
        return_reasons=[{"value": r.value, "label": both(r)} for r in ReturnReason],
        conclusions=[{"value": c.value, "label": both(c)} for c in Conclusion],
    )
    return render("case.html", context)
