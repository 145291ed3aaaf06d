"""Two-way referrals (双向转诊) and the county patient index, as /api/v1 takes and answers them."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from storage.records import (
    AttachmentKind,
    Referral,
    ReferralAttachment,
    ReferralDirection,
    ReferralDocumentKind,
    ReferralStatus,
    ReturnKind,
    Urgency,
)
from storage.referrals import ReferralStats
from teleradiology.core.errors import WrongValue
from teleradiology.core.language import N_
from teleradiology.core.referrals import StatisticsRow
from teleradiology.http.models import (
    Flag,
    Instant,
    Model,
    Moment,
    OptionalShortText,
    OptionalText,
    RecordRef,
    Text,
)


class ReferralOut(Model):
    id: int
    direction: ReferralDirection
    status: ReferralStatus
    urgency: Urgency
    reason: str
    case_id: int | None
    in_reply_to: int | None
    from_: str = Field(serialization_alias="from", description="the sending facility's code")
    to: str = Field(description="the receiving facility's code")
    patient_name: str | None
    discharge_summary: str | None
    follow_up_plan: str | None
    created_at: Instant
    responded_at: Instant | None
    appointment_at: Instant | None
    decline_reason: str | None
    preliminary_diagnosis: str | None = None
    history: str | None = None
    findings: str | None = None
    department: str | None = None
    doctor: str | None = None
    green_channel: bool = False
    arrived_at: Instant | None = None
    return_kind: ReturnKind | None = None
    return_diagnosis: str | None = None
    return_orders: str | None = None
    return_follow_up: str | None = None
    returned_at: Instant | None = None

    @classmethod
    def of(cls, r: Referral) -> ReferralOut:
        names = {"from_": r.from_facility_code, "to": r.to_facility_code}
        return cls.model_validate({**dataclasses.asdict(r), **names})


class AttachmentOut(Model):
    kind: AttachmentKind = Field(description="study, ecg (a study of ECGs) or report")
    study_id: int | None
    report_id: int | None
    study_instance_uid: str
    modalities: list[str]
    study_date: str | None
    description: str | None
    conclusion: str | None
    impression: str | None
    href: str = Field(description="where the receiver opens it: the viewer, the ECG, the report")

    @classmethod
    def of(cls, a: ReferralAttachment) -> AttachmentOut:
        if a.report_id is not None:
            href = f"/api/v1/reports/{a.report_id}"
        elif a.ecg_sop_instance_uid is not None:
            href = f"/api/v1/ecg/{a.ecg_sop_instance_uid}"
        else:
            href = f"/viewer?StudyInstanceUIDs={a.study_instance_uid}"
        return cls.model_validate({**dataclasses.asdict(a), "href": href})


class ReferralDetailOut(ReferralOut):
    """A referral with the results attached to its form and its printable documents."""

    attachments: list[AttachmentOut] = Field(default_factory=list)
    documents: dict[ReferralDocumentKind, str] = Field(
        default_factory=dict, description="each document's PDF"
    )


class AttachmentsOut(Model):
    results: list[AttachmentOut]


class ReferralsOut(Model):
    referrals: list[ReferralOut]


class ReferralCount(Model):
    facility: str
    direction: ReferralDirection
    status: ReferralStatus
    count: int
    median_response_minutes: float | None

    @classmethod
    def of(cls, r: ReferralStats) -> ReferralCount:
        median = r.median_response_s
        return cls(
            facility=r.facility_code,
            direction=r.direction,
            status=r.status,
            count=r.count,
            median_response_minutes=round(median / 60, 2) if median is not None else None,
        )


class ReferralStatsOut(Model):
    since: Instant
    until: Instant
    referrals: list[ReferralCount]


class ReferralIn(Model):
    """An up-referral (上转) or a down-referral (下转, with the discharge summary and plan),
    for a patient (a record of the patient index), a case, or in answer to a referral; with
    the referral form's fields and the results attached."""

    direction: ReferralDirection = ReferralDirection.UP
    to: Annotated[Text, StringConstraints(max_length=64)] = Field(description="facility code")
    urgency: Urgency = Urgency.ROUTINE
    reason: Annotated[Text, StringConstraints(max_length=4000)]
    case_id: RecordRef | None = None
    in_reply_to: RecordRef | None = None
    discharge_summary: OptionalText | None = None
    follow_up_plan: OptionalText | None = None
    patient_id: RecordRef | None = Field(None, description="the patient record's id")
    preliminary_diagnosis: OptionalShortText | None = None
    history: OptionalText | None = None
    findings: OptionalText | None = None
    studies: list[RecordRef] = Field(
        default_factory=list, max_length=100, description="the patient's studies and ECGs"
    )
    reports: list[RecordRef] = Field(
        default_factory=list, max_length=100, description="the patient's reports"
    )

    @model_validator(mode="after")
    def _down_has_its_papers(self) -> ReferralIn:
        if self.direction is ReferralDirection.DOWN:
            for name in ("discharge_summary", "follow_up_plan"):
                if not (getattr(self, name) or "").strip():
                    raise WrongValue(N_("下转转诊须填写 '%(name)s'（文本）"), name=name)
        return self


class ReferralAnswer(Model):
    """Accept (接诊, with a time) or decline (with a reason)."""

    accept: Flag
    appointment_at: Moment | None = None
    reason: OptionalShortText | None = None
    department: Annotated[str, StringConstraints(max_length=200)] | None = None
    doctor: Annotated[str, StringConstraints(max_length=200)] | None = None
    green_channel: Flag = Field(False, description="绿色通道: received without the queue")


class ReferralArrivalIn(Model):
    """The patient arrived (到诊); by default now."""

    arrived_at: Moment | None = None


class ReferralReturnIn(Model):
    """The return down to the referring clinic (转回单)."""

    kind: ReturnKind = Field(description="outpatient or discharge summary")
    diagnosis: Annotated[Text, StringConstraints(max_length=8000)] = Field(
        description="diagnosis and treatment"
    )
    orders: OptionalText | None = Field(None, description="orders and prescriptions")
    follow_up: Annotated[Text, StringConstraints(max_length=8000)] = Field(
        description="follow-up guidance for the clinic"
    )


class DocumentPath(Model):
    id: int = Field(gt=0, le=2**62)
    kind: ReferralDocumentKind = Field(
        description="form (转诊单), answer (接诊单), return (转回单)"
    )


class StatisticsQuery(Model):
    """A period of local dates, both included (by default the twelve months to today)."""

    from_: date | None = Field(None, alias="from", description="first day (YYYY-MM-DD)")
    to: date | None = Field(None, description="last day (YYYY-MM-DD)")


class StatisticsRowOut(Model):
    facility: str | None = Field(description="the facility's code; null on the total")
    facility_name: str
    month: str | None = Field(description="YYYY-MM in the network's time zone; null on the total")
    up: int = Field(description="up-referrals raised (上转)")
    accepted: int
    declined: int
    arrived: int = Field(description="accepted up-referrals whose patient arrived (到诊)")
    arrival_rate: float | None = Field(description="到位率 = arrived / accepted")
    returned: int = Field(description="up-referrals returned down (转回)")
    down: int = Field(description="down-referrals and returns down sent (下转)")

    @classmethod
    def of(cls, r: StatisticsRow) -> StatisticsRowOut:
        rate = round(r.arrival_rate, 4) if r.arrival_rate is not None else None
        fields = {**dataclasses.asdict(r), "arrival_rate": rate}
        return cls.model_validate({**fields, "facility": r.facility_code})


class StatisticsOut(Model):
    since: date
    until: date
    time_zone: str
    rows: list[StatisticsRowOut]
    total: StatisticsRowOut


class PersonOut(Model):
    person_id: int


class UnlinkedOut(Model):
    unlinked: bool


class LinkOut(Model):
    at: Instant
    user_id: int | None
    action: str
    patient_id: int
    person_id: int | None


class LinksOut(Model):
    links: list[LinkOut]


class NationalIdIn(Model):
    national_id: Annotated[Text, StringConstraints(max_length=32)]


class MergeIn(Model):
    patients: list[RecordRef] = Field(description="the patient record ids that are one person")
