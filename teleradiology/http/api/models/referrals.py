"""Two-way referrals (双向转诊) and the county patient index, as /api/v1 takes and answers them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from storage.records import Referral, ReferralDirection, ReferralStatus, Urgency
from storage.referrals import ReferralStats
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

    @classmethod
    def of(cls, r: Referral) -> ReferralOut:
        return cls(
            id=r.id,
            direction=r.direction,
            status=r.status,
            urgency=r.urgency,
            reason=r.reason,
            case_id=r.case_id,
            in_reply_to=r.in_reply_to,
            from_=r.from_facility_code,
            to=r.to_facility_code,
            patient_name=r.patient_name,
            discharge_summary=r.discharge_summary,
            follow_up_plan=r.follow_up_plan,
            created_at=r.created_at,
            responded_at=r.responded_at,
            appointment_at=r.appointment_at,
            decline_reason=r.decline_reason,
        )


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
    """An up-referral (上转) or a down-referral (下转, with the discharge summary and plan)."""

    direction: ReferralDirection = ReferralDirection.UP
    to: Annotated[Text, StringConstraints(max_length=64)] = Field(description="facility code")
    urgency: Urgency = Urgency.ROUTINE
    reason: Annotated[Text, StringConstraints(max_length=4000)]
    case_id: RecordRef | None = None
    in_reply_to: RecordRef | None = None
    discharge_summary: OptionalText | None = None
    follow_up_plan: OptionalText | None = None

    @model_validator(mode="after")
    def _down_has_its_papers(self) -> ReferralIn:
        if self.direction is ReferralDirection.DOWN:
            for name in ("discharge_summary", "follow_up_plan"):
                if not (getattr(self, name) or "").strip():
                    raise ValueError(f"'{name}' is required and must be text for a down-referral")
        return self


class ReferralAnswer(Model):
    """Accept (接诊, with a time) or decline (with a reason)."""

    accept: Flag
    appointment_at: Moment | None = None
    reason: OptionalShortText | None = None


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
