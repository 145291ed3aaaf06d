"""The two-way referral pages: the list of the facility's referrals (sent and received) with
their state, the clinic's form to raise one for a patient with the results attached, and a
referral's page with its documents, where the receiving hospital answers, records the
arrival and returns the patient down."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from storage import network
from storage.records import (
    AttachmentKind,
    Language,
    Referral,
    ReferralAttachment,
    ReferralDirection,
    ReferralStatus,
    ReturnKind,
    Role,
    Tier,
    Urgency,
    User,
)
from teleradiology.core.access import require_role
from teleradiology.core.language import word
from teleradiology.http.context import POOL, user_zone
from teleradiology.http.params import path_id
from teleradiology.http.web.common import (
    base_context,
    facility_names,
    local_time,
    page_language,
    person,
    render,
    signed_in,
    study_date,
)
from teleradiology.services import referrals


def _row(
    r: Referral, user: User, zone: ZoneInfo, names: dict[str, str], language: Language
) -> dict[str, Any]:
    return {
        "id": r.id,
        "href": f"/referrals/{r.id}",
        "direction": word(r.direction, language),
        "status": r.status.value,
        "status_word": word(r.status, language),
        "urgency": word(r.urgency, language),
        "patient": person(r.patient_name),
        "from": names.get(r.from_facility_code, r.from_facility_code),
        "to": names.get(r.to_facility_code, r.to_facility_code),
        "incoming": r.to_facility_id == user.facility_id,
        "reason": r.reason,
        "created_at": local_time(r.created_at, zone),
        "green_channel": r.green_channel,
    }


async def referrals_page(request: web.Request) -> web.Response:
    """The referrals the user's facility sent or received, newest first."""
    user = await signed_in(request)
    pool = request.app[POOL]
    zone = await user_zone(request, user)
    found = await referrals.listed(pool, user, limit=200, offset=0, listing="referrals page")
    names = await facility_names(request)
    language = page_language(request, user)
    rows = [_row(r, user, zone, names, language) for r in found]
    context = await base_context(request, user)
    context.update(
        title=context["_"]("双向转诊"),
        live_after="",
        incoming=[r for r in rows if r["incoming"]],
        outgoing=[r for r in rows if not r["incoming"]],
        may_raise=user.role is Role.CLINIC,
    )
    return render("referrals.html", context)


def _result(a: ReferralAttachment, language: Language) -> dict[str, Any]:
    value = f"report:{a.report_id}" if a.report_id is not None else f"study:{a.study_id}"
    if a.kind is AttachmentKind.REPORT:
        href = f"/reports/{a.report_id}/pdf"
    elif a.ecg_sop_instance_uid is not None:
        href = f"/ecg/{a.ecg_sop_instance_uid}/sheet.pdf"
    else:
        href = f"/viewer?StudyInstanceUIDs={a.study_instance_uid}"
    return {
        "value": value,
        "kind": a.kind.value,
        "kind_word": word(a.kind, language),
        "study_id": a.study_id,
        "report_id": a.report_id,
        "uid": a.study_instance_uid,
        "modalities": "/".join(a.modalities),
        "date": study_date(a.study_date),
        "description": a.description or "",
        "impression": a.impression or "",
        "href": href,
    }


async def new_referral_page(request: web.Request) -> web.Response:
    """The clinic's referral form: choose the patient, then fill the form and tick the
    results to attach."""
    user = await signed_in(request)
    require_role(user, Role.CLINIC)
    pool = request.app[POOL]
    patients = await referrals.patients_to_refer(pool, user)
    chosen = None
    results: list[dict[str, Any]] = []
    language = page_language(request, user)
    asked = request.query.get("patient", "")
    if asked.isdigit():
        chosen = int(asked)
        results = [_result(a, language) for a in await referrals.attachable(pool, user, chosen)]
    chain = await network.facility_chain(pool, user.facility_id)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("申请转诊"),
        patients=[
            {"id": p.id, "label": f"{person(p.name)} · {p.patient_id}", "chosen": p.id == chosen}
            for p in patients
        ],
        chosen=chosen,
        results=results,
        targets=[
            {"code": f.code, "name": f.name} for f in chain if f.tier in (Tier.COUNTY, Tier.CITY)
        ],
        urgencies=[{"value": u.value, "label": word(u, language)} for u in Urgency],
    )
    return render("referral_new.html", context)


def _detail(
    r: Referral, user: User, zone: ZoneInfo, names: dict[str, str], language: Language
) -> dict[str, Any]:
    return {
        **_row(r, user, zone, names, language),
        **{k: getattr(r, k) or "" for k in _TEXTS},
        "up": r.direction is ReferralDirection.UP,
        "responded_at": local_time(r.responded_at, zone),
        "appointment_at": local_time(r.appointment_at, zone),
        "arrived_at": local_time(r.arrived_at, zone),
        "returned_at": local_time(r.returned_at, zone),
        "return_kind": word(r.return_kind, language) if r.return_kind else "",
    }


_TEXTS = (
    "reason",
    "preliminary_diagnosis",
    "history",
    "findings",
    "department",
    "doctor",
    "decline_reason",
    "discharge_summary",
    "follow_up_plan",
    "return_diagnosis",
    "return_orders",
    "return_follow_up",
)


async def referral_page(request: web.Request) -> web.Response:
    """One referral: its form with the attached results, the answer, the arrival, the return
    down, each document's PDF, and the receiving facility's next action."""
    user = await signed_in(request)
    pool = request.app[POOL]
    found = await referrals.detail(pool, user, path_id(request))
    r = found.referral
    zone = await user_zone(request, user)
    receiver = r.to_facility_id == user.facility_id
    language = page_language(request, user)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("转诊 #%s") % r.id,
        r=_detail(r, user, zone, await facility_names(request), language),
        results=[_result(a, language) for a in found.attachments],
        documents=[
            {
                "kind": k.value,
                "label": word(k, language),
                "href": f"/referrals/{r.id}/documents/{k.value}",
            }
            for k in found.documents
        ],
        may_answer=receiver and r.status is ReferralStatus.REQUESTED,
        may_arrive=receiver and r.status is ReferralStatus.ACCEPTED,
        may_return=receiver
        and r.status is ReferralStatus.ARRIVED
        and r.direction is ReferralDirection.UP,
        return_kinds=[{"value": k.value, "label": word(k, language)} for k in ReturnKind],
    )
    return render("referral.html", context)
