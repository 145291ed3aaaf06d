"""The radiology case page: the study, the viewer, priors, history and the reading actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from storage import (
    index,
    network,
    patients,
    reports,
    templates,
)
from storage.cases import Event
from storage.db import Pool
from storage.orders import StepSummary
from storage.records import (
    Case,
    CaseStatus,
    Conclusion,
    EventKind,
    Report,
    ReturnReason,
    Role,
    Specialty,
    Study,
    User,
    UserId,
)
from teleradiology.core.language import N_
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.params import path_id
from teleradiology.http.web.common import (
    base_context,
    event_detail,
    facility_names,
    local_time,
    page_language,
    person,
    render,
    report_context,
    signed_in,
    stored_word,
    study_date,
    time_left,
)
from teleradiology.http.web.offers import case_actions, latest_draft
from teleradiology.http.web.viewer import viewer_url
from teleradiology.services import orders, reading


async def _names(
    pool: Pool, case: Case, case_reports: list[Report], events: list[Event], now: datetime
) -> dict[UserId, str]:
    """The names of the people on the page: the readers of the case's pools, the reports'
    authors, and whoever else acted on the case (a clinic's operator, an administrator)."""
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
    if unknown:
        for u in await network.list_users(pool):
            if u.id in unknown:
                names[u.id] = f"{u.display_name} ({u.username})"
    return names


async def _templates(pool: Pool, user: User, modalities: list[str]) -> list[dict[str, object]]:
    """The user's radiology templates of the study's modalities (all of them without one)."""
    found: dict[int, templates.Template] = {}
    wanted: list[str | None] = list(modalities) or [None]
    for modality in wanted:
        for t in await templates.list_templates(
            pool, user.id, specialty=Specialty.RADIOLOGY.value, modality=modality, language=None
        ):
            found.setdefault(t.id, t)
    return [
        {
            "id": t.id,
            "name": t.name,
            "modality": t.modality or "",
            "findings": t.findings,
            "impression": t.impression,
        }
        for t in found.values()
    ]


def _study_context(study: Study | None, modalities: list[str], zone: ZoneInfo) -> dict[str, Any]:
    return {
        "modalities": ", ".join(modalities),
        "description": (study.description if study else "") or "",
        "study_date": study_date(study.study_date if study else None),
        "accession": (study.accession_number if study else "") or "",
        "series": study.num_series if study else 0,
        "instances": study.num_instances if study else 0,
        "received": local_time(study.first_received_at if study else None, zone),
        "completed": local_time(study.completed_at if study else None, zone),
    }


def _steps(steps: list[StepSummary], zone: ZoneInfo) -> list[dict[str, str]]:
    """The modality's procedure steps of the study, as the case page shows them."""
    return [
        {
            "status": s.status.value,
            "reason": " ".join(filter(None, (s.reason_meaning, _coded(s.reason_code)))),
            "at": local_time(s.updated_at, zone),
        }
        for s in steps
    ]


def _coded(code: str | None) -> str:
    return f"[{code}]" if code else ""


async def case_page(request: web.Request) -> web.StreamResponse:
    """A radiology case for its reader: patient, sender, question, the study and a link to
    the viewer, the patient's priors, the case's history, and the reading actions."""
    user = await signed_in(request)
    pool = request.app[POOL]
    case = await reading.open_case(pool, user, path_id(request), specialty=Specialty.RADIOLOGY)
    if case.specialty is Specialty.ECG:
        raise web.HTTPSeeOther(f"/ecg/cases/{case.id}")
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    study = await index.study_for_user(pool, case.study_instance_uid, user.id)
    case_reports = await reports.reports_of_case(pool, case.id, user)
    priors = await patients.priors(pool, case.study_id, user)
    events = await reading.case_events(pool, user, case)
    names = await _names(pool, case, case_reports, events, now)
    facilities = await facility_names(request)
    language = page_language(request, user)
    left, overdue = time_left(case.deadline, now, language)
    is_reader = user.role is Role.READER
    open_case = case.status in (CaseStatus.SCHEDULED, CaseStatus.IN_PROGRESS)
    offered = await reading.offered_actions(pool, user, case, now=now)
    draft = latest_draft(case_reports)
    modalities = list(study.modalities if study else case.modalities)
    report_items = [report_context(r, zone, language) for r in case_reports]
    context = await base_context(request, user)
    heading = context["_"](N_("影像病例"))
    context.update(
        title=f"{heading} #{case.id}",
        case=case,
        patient=person(case.patient_name),
        patient_id=study.patient_id if study else "",
        facility=facilities.get(case.facility_code, case.facility_code),
        pool_name=facilities.get(case.pool_code or "", case.pool_code or ""),
        deadline=local_time(case.deadline, zone),
        left=left if open_case else "",
        overdue=overdue and open_case,
        claimed_by=names.get(case.claimed_by, f"#{case.claimed_by}") if case.claimed_by else "",
        lease_expires=local_time(case.lease_expires_at, zone),
        escalated_at=local_time(case.escalated_at, zone),
        study=_study_context(study, modalities, zone),
        viewer=viewer_url(case.study_instance_uid),
        priors=[
            {
                "date": study_date(p.study_date) or local_time(p.received_at, zone),
                "modalities": ", ".join(p.modalities),
                "description": p.description or "",
                "facility": facilities.get(p.facility_code, p.facility_code),
                "conclusion": stored_word(Conclusion, p.conclusion or "", language),
                "impression": p.impression or "",
                "viewer": viewer_url(p.study_instance_uid),
            }
            for p in priors
        ],
        events=[
            {
                "at": local_time(e.at, zone),
                "kind": stored_word(EventKind, e.kind, language),
                "by": names.get(e.user_id, f"#{e.user_id}") if e.user_id else "",
                "detail": event_detail(e.kind, e.detail, language),
                "earlier_case": e.case_id is not None and e.case_id != case.id,
            }
            for e in events
        ],
        reports=report_items,
        draft=report_context(draft, zone, language) if draft else None,
        is_reader=is_reader,
        steps=_steps(await orders.performed_steps(pool, case), zone),
        **case_actions(
            user,
            case,
            offered,
            case_reports,
            now=now,
            authors_below=await reading.addendum_authors_below(pool, user, case_reports),
        ),
        templates=await _templates(pool, user, modalities),
        return_reasons=list(ReturnReason),
        conclusions=list(Conclusion),
    )
    return render("case.html", context)
