"""The clinic's inbox: reports (critical results first), returned studies, its studies and
their state, and its referrals.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from storage import (
    cases,
    ecg,
    network,
    notifications,
)
from storage.db import Pool
from storage.records import (
    Case,
    Conclusion,
    Facility,
    FacilityId,
    Language,
    Referral,
    Report,
    ReportStatus,
    ReturnReason,
    Study,
    Tier,
    UploadState,
    User,
)
from teleradiology.core.language import word
from teleradiology.core.progress import StudyProgress, study_progress
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.web.common import (
    base_context,
    facility_names,
    local_time,
    page_language,
    person,
    render,
    report_context,
    study_date,
)
from teleradiology.services import reading, uploads
from teleradiology.services import referrals as referral_service


def _study_label(study: Study | None) -> str:
    if study is None:
        return ""
    parts = [", ".join(study.modalities), study.description or "", study_date(study.study_date)]
    return " · ".join(p for p in parts if p)


def _report_items(
    found: list[Report],
    by_uid: dict[str, Study],
    zone: ZoneInfo,
    now: datetime,
    language: Language,
) -> tuple[list[dict[str, Any]], set[str]]:
    """The reports, each with its addenda under it, critical results first; and the studies
    with a final report."""
    items: dict[int, dict[str, Any]] = {}
    addenda: list[dict[str, Any]] = []
    reported: set[str] = set()
    for r in found:
        item = report_context(r, zone)
        study = by_uid.get(r.study_instance_uid)
        item.update(
            patient=person(study.patient_name) if study else "",
            patient_id=study.patient_id if study else "",
            study=_study_label(study),
            conclusion_word=word(r.conclusion, language),
            status_word=word(r.status, language),
            case_id=r.case_id,
            study_uid=r.study_instance_uid,
            critical_open=r.conclusion is Conclusion.CRITICAL and r.acknowledged_at is None,
            overdue=r.critical_due_at is not None
            and r.acknowledged_at is None
            and r.critical_due_at < now,
            addenda=[],
        )
        if r.status is ReportStatus.FINAL:
            reported.add(r.study_instance_uid)
        if r.amends_report_id is not None:
            addenda.append(item)
        else:
            items[r.id] = item
    for a in addenda:
        original = items.get(a["amends"]) if a["amends"] is not None else None
        if original is not None:
            original["addenda"].append(a)
        else:
            items[a["id"]] = a
    return sorted(items.values(), key=lambda i: not i["critical_open"]), reported


async def _link_ecg_sheets(pool: Pool, user: User, items: list[dict[str, Any]]) -> None:
    """Give each report of an ECG the links to its ECGs' 12-lead sheets (PNG to look at,
    PDF to print at true scale); each opening is audited."""
    sheets = await ecg.ecgs_of_studies(pool, [i["study_uid"] for i in items], user.id)
    for item in items:
        base = f"/ecg/cases/{item['case_id']}/sheets"
        item["ecg_sheets"] = [
            {"png": f"{base}/{sop}.png", "pdf": f"{base}/{sop}.pdf"}
            for sop in sheets.get(item["study_uid"], [])
        ]


def _return_reason(code: str | None, language: Language) -> str:
    """A return's reason in words; a code no reason names (an older release's) as it is."""
    try:
        return word(ReturnReason(code or ReturnReason.OTHER), language)
    except ValueError:
        return code or ""


async def _returned(
    pool: Pool, user: User, zone: ZoneInfo, resent: set[str], language: Language
) -> list[dict[str, Any]]:
    """The studies returned for quality, and whether the clinic sent them again."""
    returned: list[dict[str, Any]] = []
    for back in await cases.returned_to_clinic(pool, user):
        case = back.case
        returned.append(
            {
                "case_id": case.id,
                "at": local_time(back.returned_at, zone),
                "patient": person(case.patient_name),
                "study": ", ".join(case.modalities),
                "uid": case.study_instance_uid,
                "reason": _return_reason(case.return_code, language),
                "note": back.note,
                "resent": case.study_instance_uid in resent,
            }
        )
    return returned


def _progress_label(
    progress: StudyProgress,
    case: Case | None,
    pools: dict[FacilityId, Facility],
    language: Language,
) -> str:
    """The progress in words; a case's with the pool (and its tier) it waits in or is read in."""
    label = word(progress, language)
    pool = pools.get(case.pool_facility_id) if case is not None else None
    if progress in (StudyProgress.WAITING, StudyProgress.READING) and pool is not None:
        label += f" · {pool.name} · {word(pool.tier, language)}"
    return label


def _study_rows(
    studies: list[Study],
    open_cases: list[Case],
    reported: set[str],
    returned: list[dict[str, Any]],
    sending: set[str],
    pools: dict[FacilityId, Facility],
    zone: ZoneInfo,
    language: Language,
) -> list[dict[str, Any]]:
    case_by_uid = {c.study_instance_uid: c for c in open_cases}
    returned_open = {r["uid"]: r for r in returned if not r["resent"]}
    rows = []
    for s in studies:
        uid = s.study_instance_uid
        open_case = case_by_uid.get(uid)
        progress = study_progress(
            study_state=s.state,
            uploading=uid in sending,
            open_case=open_case.status if open_case else None,
            reported=uid in reported,
            returned=uid in returned_open,
        )
        back = returned_open.get(uid) if progress is StudyProgress.RETURNED else None
        rows.append(
            {
                "uid": uid,
                "patient": person(s.patient_name),
                "patient_id": s.patient_id,
                "study": _study_label(s),
                "series": s.num_series,
                "instances": s.num_instances,
                "received": local_time(s.first_received_at, zone),
                "state": progress.value,
                "label": _progress_label(progress, open_case, pools, language),
                "returned_reason": back["reason"] if back else "",
                "priority": word(open_case.priority, language) if open_case else "",
                "deadline": local_time(open_case.deadline, zone) if open_case else "",
            }
        )
    return rows


def _referable(ordered: list[dict[str, Any]], open_cases: list[Case]) -> list[dict[str, Any]]:
    """The cases a referral can be raised for: the clinic's reported and open cases."""
    referable: dict[int, str] = {}
    for i in ordered:
        referable.setdefault(i["case_id"], f"{i['patient']} · {i['study']} · #{i['case_id']}")
    for c in open_cases:
        referable.setdefault(
            c.id, f"{person(c.patient_name)} · {', '.join(c.modalities)} · #{c.id}"
        )
    return [{"id": k, "label": v} for k, v in referable.items()]


async def inbox_page(request: web.Request, user: User) -> web.Response:
    """The clinic's reports (critical results first, to acknowledge by name), returned
    studies with the reason, its studies with their status, and its referrals."""
    pool = request.app[POOL]
    language = page_language(request, user)
    live_after = str(await notifications.now(pool))
    zone = await user_zone(request, user)
    now = datetime.now(UTC)
    found = await reading.inbox(pool, user, limit=200)
    studies = await reading.studies(pool, user, limit=200, listing="inbox")
    by_uid = {s.study_instance_uid: s for s in studies}
    open_cases = await reading.worklist(pool, user, limit=500, listing="inbox")
    ordered, reported = _report_items(found, by_uid, zone, now, language)
    await _link_ecg_sheets(pool, user, ordered)
    resent = {c.study_instance_uid for c in open_cases} | reported
    returned = await _returned(pool, user, zone, resent, language)
    sending = {u.study_instance_uid for u in await uploads.recent(pool, user, UploadState.OPEN)}
    pools = {f.id: f for f in await network.list_facilities(pool)}
    study_rows = _study_rows(
        studies, open_cases, reported, returned, sending, pools, zone, language
    )
    found_referrals = await referral_service.listed(
        pool, user, limit=100, offset=0, listing="inbox"
    )
    chain = await network.facility_chain(pool, user.facility_id)
    facilities = await facility_names(request)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("报告收件箱"),
        live_after=live_after,
        reports=ordered,
        critical_count=sum(1 for i in ordered if i["critical_open"]),
        returned=returned,
        studies=study_rows,
        referrals=[_referral_context(r, zone, facilities, language) for r in found_referrals],
        referable=_referable(ordered, open_cases),
        targets=[
            {"code": f.code, "name": f.name} for f in chain if f.tier in (Tier.COUNTY, Tier.CITY)
        ],
    )
    return render("inbox.html", context)


def _referral_context(
    r: Referral, zone: ZoneInfo, names: dict[str, str], language: Language
) -> dict[str, Any]:
    return {
        "id": r.id,
        "direction": word(r.direction, language),
        "status": r.status.value,
        "status_word": word(r.status, language),
        "urgency": word(r.urgency, language),
        "reason": r.reason,
        "patient": person(r.patient_name),
        "case_id": r.case_id,
        "from": names.get(r.from_facility_code, r.from_facility_code),
        "to": names.get(r.to_facility_code, r.to_facility_code),
        "created_at": local_time(r.created_at, zone),
        "responded_at": local_time(r.responded_at, zone),
        "appointment_at": local_time(r.appointment_at, zone),
        "decline_reason": r.decline_reason or "",
        "follow_up_plan": r.follow_up_plan or "",
    }
