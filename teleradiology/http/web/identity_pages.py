"""The console's patient identity pages: the candidate duplicates of the administrator's
network, the merge screen (two records side by side, merge, unmerge, "not the same person"),
and the identity conflicts at ingest with their resolution."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field

from storage.identity import PairStanding, PatientRecord, RecordStudy
from storage.records import Conclusion, Language, ReportStatus, User
from teleradiology.core.language import N_, word
from teleradiology.http.api.models.identity import CandidatesOut, ConflictsQuery, DuplicatesQuery
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.models import Model
from teleradiology.http.params import query_of
from teleradiology.http.web.common import (
    base_context,
    local_time,
    page_language,
    person,
    render,
    signed_in,
    study_date,
)
from teleradiology.services import identity

#: What each reason of a candidate pair is called.
REASONS = {
    "national_id": N_("身份证号相同"),
    "demographics": N_("姓名、性别、出生日期相同"),
}


class MergeQuery(Model):
    a: int = Field(gt=0, le=2**62, description="a patient record")
    b: int | None = Field(None, gt=0, le=2**62, description="the record to compare it with")


def _record(r: PatientRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "patient_id": r.patient_id,
        "name": person(r.name),
        "sex": r.sex or "",
        "birth_date": study_date(r.birth_date),
        "facility": r.facility_name,
        "facility_code": r.facility_code,
        "person_id": r.person_id,
        "link_method": r.link_method or "",
        "national_id_stated": r.national_id_stated,
        "linked": list(r.linked),
    }


def _case_link(s: RecordStudy) -> str:
    if s.case_id is None:
        return ""
    return f"/ecg/cases/{s.case_id}" if s.specialty == "ecg" else f"/cases/{s.case_id}"


def _stored_word(
    kind: type[ReportStatus] | type[Conclusion], value: str | None, language: Language
) -> str:
    """A stored value's word in `language`; one that names no member (an older release's)
    as it is."""
    if not value:
        return ""
    try:
        return word(kind(value), language)
    except ValueError:
        return value


def _study(s: RecordStudy, zone: ZoneInfo, language: Language) -> dict[str, Any]:
    return {
        "uid": s.study_instance_uid,
        "date": study_date(s.study_date) or local_time(s.received_at, zone),
        "modalities": ", ".join(s.modalities),
        "description": s.description or "",
        "case": _case_link(s),
        "report": _stored_word(ReportStatus, s.report_status, language),
        "conclusion": _stored_word(Conclusion, s.conclusion, language),
        "impression": s.impression or "",
    }


def _summary(studies: list[RecordStudy], zone: ZoneInfo) -> dict[str, Any]:
    """Counts, dates and modalities of a record's studies and ECGs."""
    dates = sorted(study_date(s.study_date) or local_time(s.received_at, zone) for s in studies)
    return {
        "studies": sum(not s.is_ecg for s in studies),
        "ecgs": sum(s.is_ecg for s in studies),
        "reports": sum(s.report_status is not None for s in studies),
        "first": dates[0] if dates else "",
        "last": dates[-1] if dates else "",
        "modalities": ", ".join(sorted({m for s in studies for m in s.modalities})),
    }


def _standing(standing: PairStanding | None, zone: ZoneInfo) -> dict[str, Any] | None:
    if standing is None:
        return None
    return {
        "reasons": [REASONS[r] for r in standing.reasons],
        "dismissed_at": local_time(standing.dismissed_at, zone),
        "dismissed_by": standing.dismissed_by or "",
        "note": standing.note or "",
    }


async def duplicates_page(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    asked = query_of(request, DuplicatesQuery)
    found = await identity.duplicates(
        request.app[POOL], user, before=asked.cursor(), limit=asked.limit
    )
    context = await base_context(request, user)
    context.update(
        title=context["_"]("疑似重复患者"),
        pairs=[
            {
                "a": _record(found.records[p.a]),
                "b": _record(found.records[p.b]),
                "reasons": [REASONS[r] for r in p.reasons],
            }
            for p in found.pairs
        ],
        next_before=CandidatesOut.cursor(found.next_before),
        first_page=asked.before is None,
        limit=asked.limit,
        dismissals=await _dismissals(request, user),
    )
    return render("patient_duplicates.html", context)


async def _dismissals(request: web.Request, user: User) -> list[dict[str, Any]]:
    """The network's latest pairs judged not one person, for the duplicates page."""
    found = await identity.dismissals(request.app[POOL], user, limit=50, offset=0)
    zone = await user_zone(request, user)
    return [
        {
            "a": _record(found.records[d.a]),
            "b": _record(found.records[d.b]),
            "at": local_time(d.dismissed_at, zone),
            "by": d.dismissed_by,
            "note": d.note or "",
        }
        for d in found.dismissals
    ]


async def merge_page(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    asked = query_of(request, MergeQuery)
    named = [asked.a] if asked.b is None or asked.b == asked.a else [asked.a, asked.b]
    compared = await identity.compare(request.app[POOL], user, named)
    zone = await user_zone(request, user)
    language = page_language(request, user)
    records = [
        _record(r)
        | {
            "summary": _summary(compared.studies[r.id], zone),
            "studies": [_study(s, zone, language) for s in compared.studies[r.id]],
        }
        for r in compared.records
    ]
    persons = {r.person_id for r in compared.records}
    context = await base_context(request, user)
    context.update(
        title=context["_"]("患者合并"),
        records=records,
        pair=len(records) == 2,
        one_person=len(records) == 2 and None not in persons and len(persons) == 1,
        ids=[r.id for r in compared.records],
        standing=_standing(compared.standing, zone),
    )
    return render("patient_merge.html", context)


async def conflicts_page(request: web.Request) -> web.StreamResponse:
    user = await signed_in(request)
    asked = query_of(request, ConflictsQuery)
    found = await identity.conflicts(
        request.app[POOL],
        user,
        resolved_too=asked.status == "all",
        limit=asked.limit,
        offset=asked.offset,
    )
    zone = await user_zone(request, user)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("身份冲突"),
        conflicts=[
            {
                "id": c.id,
                "at": local_time(c.at, zone),
                "facility": c.facility_name,
                "study": c.study_instance_uid,
                "attribute": c.attribute,
                "stored": c.stored_value or "",
                "received": c.received_value or "",
                "patient": c.patient_ref,
                "resolved_at": local_time(c.resolved_at, zone),
                "resolved_by": c.resolved_by or "",
                "note": c.resolution_note or "",
            }
            for c in found.conflicts
        ],
        total=found.total,
        status=asked.status,
        offset=asked.offset,
        limit=asked.limit,
    )
    return render("identity_conflicts.html", context)
