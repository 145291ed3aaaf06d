"""Cases, reports, studies and the signed-in user, as /api/v1 takes and answers them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from storage.cases import Event
from storage.index import HeldInstance
from storage.network import PoolReader
from storage.orders import StepSummary
from storage.patients import Prior
from storage.records import (
    Case,
    CaseStatus,
    Conclusion,
    Priority,
    Report,
    ReportStatus,
    ReturnReason,
    Role,
    Specialty,
    StepStatus,
    Study,
    StudyState,
    User,
)
from storage.turnaround import SegmentRow, TurnaroundRow
from teleradiology.core.errors import WrongValue
from teleradiology.core.language import N_
from teleradiology.http.api.models.notices import MessageOut
from teleradiology.http.models import (
    Flag,
    Instant,
    Json,
    Model,
    Moment,
    OptionalShortText,
    OptionalText,
    PageQuery,
    RecordRef,
    ShortText,
    Text,
)

# --- answers ----------------------------------------------------------------------------------


class UserOut(Model):
    id: int
    username: str
    display_name: str
    role: Role
    facility_id: int
    specialties: list[Specialty]

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            facility_id=user.facility_id,
            specialties=sorted(user.specialties),
        )


class LoginOut(Model):
    token: str
    expires_at: Instant
    user: UserOut


class CaseOut(Model):
    """A case: one study (or ECG) to be read by a pool, with its deadline."""

    id: int
    study_instance_uid: str
    facility: str
    specialty: Specialty
    priority: Priority
    status: CaseStatus
    deadline: Instant
    created_at: Instant
    claimed_by: int | None
    lease_expires_at: Instant | None
    modalities: list[str]
    patient_name: str | None
    pool: str | None
    question: str | None
    clinical_question: str | None
    escalated_at: Instant | None
    stemi: bool
    second_read_of: int | None
    return_reason: str | None

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        return cls(**_case_fields(case))


def _case_fields(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "study_instance_uid": case.study_instance_uid,
        "facility": case.facility_code,
        "specialty": case.specialty,
        "priority": case.priority,
        "status": case.status,
        "deadline": case.deadline,
        "created_at": case.created_at,
        "claimed_by": case.claimed_by,
        "lease_expires_at": case.lease_expires_at,
        "modalities": list(case.modalities),
        "patient_name": case.patient_name,
        "pool": case.pool_code,
        "question": case.question,
        "clinical_question": case.clinical_question,
        "escalated_at": case.escalated_at,
        "stemi": case.stemi,
        "second_read_of": case.second_read_of,
        "return_reason": case.return_code,
    }


class WorklistCase(CaseOut):
    #: the first on-duty reader of the pool (readers come least loaded first)
    suggested_reader: str | None

    @classmethod
    def listed(cls, case: Case, readers: list[PoolReader]) -> WorklistCase:
        candidates = [
            r
            for r in readers
            if r.facility_id == case.pool_facility_id
            and r.specialty is case.specialty
            and r.on_duty
        ]
        suggested = candidates[0].username if candidates else None
        return cls(**_case_fields(case), suggested_reader=suggested)


class ReaderOut(Model):
    username: str
    display_name: str
    specialty: Specialty
    on_duty: bool
    open_cases: int


class WorklistOut(Model):
    cases: list[WorklistCase]
    readers: list[ReaderOut]


class ReportOut(Model):
    """A signed report (a version; addenda amend an earlier one)."""

    id: int
    case_id: int
    study_instance_uid: str
    status: ReportStatus
    findings: str
    impression: str
    conclusion: Conclusion
    author: str
    signed_at: Instant
    signature_sha256: str | None
    delivered_at: Instant | None
    acknowledged_at: Instant | None
    acknowledged_by_name: str | None
    acknowledged_read_back: str | None = Field(
        None, description="what the person who took a critical result repeated back (复述)"
    )
    version: int
    amends_report_id: int | None
    agreed: bool | None
    discrepancy: str | None
    pdf: str | None = Field(description="the printable report's path, once it is made")
    critical_due_at: Instant | None

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        return cls(
            id=report.id,
            case_id=report.case_id,
            study_instance_uid=report.study_instance_uid,
            status=report.status,
            findings=report.findings,
            impression=report.impression,
            conclusion=report.conclusion,
            author=report.author_name,
            signed_at=report.signed_at,
            signature_sha256=report.signature_sha256,
            delivered_at=report.delivered_at,
            acknowledged_at=report.acknowledged_at,
            acknowledged_by_name=report.acknowledged_name,
            acknowledged_read_back=report.acknowledged_read_back,
            version=report.version,
            amends_report_id=report.amends_report_id,
            agreed=report.agreed,
            discrepancy=report.discrepancy,
            pdf=f"/api/v1/reports/{report.id}/pdf" if report.has_pdf else None,
            critical_due_at=report.critical_due_at,
        )


class ReportsOut(Model):
    reports: list[ReportOut]


class PriorOut(Model):
    study_instance_uid: str
    facility: str
    study_date: str | None
    modalities: list[str]
    description: str | None
    received_at: Instant
    conclusion: str | None
    impression: str | None
    linked_record: bool = Field(description="from another patient record linked to this one")

    @classmethod
    def of(cls, p: Prior, patient_ref: int) -> PriorOut:
        return cls(
            study_instance_uid=p.study_instance_uid,
            facility=p.facility_code,
            study_date=p.study_date,
            modalities=list(p.modalities),
            description=p.description,
            received_at=p.received_at,
            conclusion=p.conclusion,
            impression=p.impression,
            linked_record=p.patient_ref != patient_ref,
        )


class CaseEventOut(Model):
    kind: str
    at: Instant
    user_id: int | None
    case_id: int | None
    detail: Json


class PerformedStepOut(Model):
    """What the modality said of the study (MPPS): a step discontinued, with its reason
    (a coded one when it sent it), means the study may be partial."""

    status: StepStatus
    reason_code: str | None
    reason: str | None
    at: Instant

    @classmethod
    def of(cls, step: StepSummary) -> PerformedStepOut:
        return cls(
            status=step.status,
            reason_code=step.reason_code,
            reason=step.reason_meaning,
            at=step.updated_at,
        )


class CaseDetailOut(CaseOut):
    """A case with its reports, the patient's priors and what happened to it."""

    reports: list[ReportOut]
    patient_ref: int
    priors: list[PriorOut]
    events: list[CaseEventOut]
    #: Instances sent by C-STORE while the case was claimed, held for a decision
    #: (``/api/v1/cases/{id}/held``).
    held_instances: int = 0
    #: The modality's procedure steps for the study (MPPS), oldest first.
    performed_steps: list[PerformedStepOut] = Field(default_factory=list)

    @classmethod
    def detailed(
        cls,
        case: Case,
        reports: list[Report],
        patient_ref: int,
        priors: list[Prior],
        events: list[Event],
        held: int = 0,
        steps: Sequence[StepSummary] = (),
    ) -> CaseDetailOut:
        return cls(
            **_case_fields(case),
            reports=[ReportOut.of(r) for r in reports],
            patient_ref=patient_ref,
            priors=[PriorOut.of(p, patient_ref) for p in priors],
            events=[CaseEventOut.from_record(e) for e in events],
            held_instances=held,
            performed_steps=[PerformedStepOut.of(s) for s in steps],
        )


class StudyOut(Model):
    study_instance_uid: str
    facility: str
    patient_id: str
    patient_name: str | None
    accession_number: str | None
    study_date: str | None
    description: str | None
    modalities: list[str]
    state: StudyState
    priority: Priority
    num_series: int
    num_instances: int
    received_at: Instant
    completed_at: Instant | None

    @classmethod
    def of(cls, study: Study) -> StudyOut:
        return cls(
            study_instance_uid=study.study_instance_uid,
            facility=study.facility_code,
            patient_id=study.patient_id,
            patient_name=study.patient_name,
            accession_number=study.accession_number,
            study_date=study.study_date,
            description=study.description,
            modalities=list(study.modalities),
            state=study.state,
            priority=study.priority,
            num_series=study.num_series,
            num_instances=study.num_instances,
            received_at=study.first_received_at,
            completed_at=study.completed_at,
        )


class StudiesOut(Model):
    studies: list[StudyOut]


class FacilityTurnaround(Model):
    facility: str
    name: str
    reports: int
    median_minutes: float
    p90_minutes: float
    mean_minutes: float
    max_minutes: float

    @classmethod
    def of(cls, r: TurnaroundRow) -> FacilityTurnaround:
        return cls(
            facility=r.facility_code,
            name=r.facility_name,
            reports=r.reports,
            median_minutes=round(r.median_s / 60, 2),
            p90_minutes=round(r.p90_s / 60, 2),
            mean_minutes=round(r.mean_s / 60, 2),
            max_minutes=round(r.max_s / 60, 2),
        )


class SegmentTurnaround(Model):
    cases: int
    median_minutes: float
    p90_minutes: float
    max_minutes: float

    @classmethod
    def of(cls, s: SegmentRow) -> SegmentTurnaround:
        return cls(
            cases=s.cases,
            median_minutes=round(s.median_s / 60, 3),
            p90_minutes=round(s.p90_s / 60, 3),
            max_minutes=round(s.max_s / 60, 3),
        )


class TurnaroundOut(Model):
    """Received-to-final-report turnaround per sending facility, and each workflow segment."""

    since: Instant
    until: Instant
    segment: str = Field(description="the segment the facility rows measure")
    facilities: list[FacilityTurnaround]
    segments: dict[str, SegmentTurnaround]


class TemplateOut(Model):
    id: int
    specialty: Specialty
    modality: str | None
    name: str
    language: str
    findings: str
    impression: str
    updated_at: Instant


class TemplatesOut(Model):
    templates: list[TemplateOut]


class TemplateSaved(Model):
    id: int
    name: str
    updated_at: Instant


class ReadingRequested(Model):
    study_instance_uid: str
    priority: Priority
    cases: list[int] = Field(description="the cases whose priority and question changed")


class NotificationOut(Model):
    id: int
    at: Instant
    kind: str
    facility_id: int
    audience: Role
    user_id: int | None
    detail: Json


class DicomSendOut(Model):
    """A DICOM copy of the report sent to the clinic's workstation."""

    sop_class_uid: str
    sop_instance_uid: str
    ae_title: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: Instant | None


class ReportNotificationsOut(Model):
    notifications: list[NotificationOut]
    dicom: list[DicomSendOut]
    messages: list[MessageOut] = Field(
        default_factory=list,
        description="the messages on notification channels (e-mail, robots, webhooks), each "
        "attempt with its answer code",
    )


# --- requests ---------------------------------------------------------------------------------


class LoginIn(Model):
    username: str
    password: str


class WorklistQuery(Model):
    limit: int = Field(200, ge=1, le=1000, description="how many at most")


class ReportsQuery(PageQuery):
    acknowledged: str | None = Field(
        None, description="false (or 0, no): only reports not yet acknowledged"
    )

    @property
    def unacknowledged(self) -> bool | None:
        flag = self.acknowledged
        return None if flag is None else flag.lower() in ("false", "0", "no")


class StudiesQuery(PageQuery):
    study_instance_uid: str | None = None
    patient_id: str | None = None


class TurnaroundQuery(Model):
    since: Moment | None = Field(None, description="from (ISO 8601); default: 30 days before")
    until: Moment | None = Field(None, description="until (ISO 8601); default: now")
    case_id: int = Field(0, ge=0, le=2**62, description="one case's segments only")


class ReportIn(Model):
    """Findings and impression, or a template_id to start from (what is left out is the
    template's)."""

    template_id: RecordRef | None = Field(None, description="a template id from /api/v1/templates")
    findings: OptionalText | None = None
    impression: OptionalText | None = None
    conclusion: Conclusion
    status: ReportStatus = ReportStatus.FINAL
    agreed: Flag | None = Field(None, description="a second read agrees with the first")
    discrepancy: OptionalText | None = None

    @model_validator(mode="after")
    def _written(self) -> ReportIn:
        if self.template_id is None:
            for name in ("findings", "impression"):
                if not (getattr(self, name) or "").strip():
                    raise WrongValue(N_("须填写 '%(name)s'（文本，或给出 template_id）"), name=name)
        return self


class AcknowledgeIn(Model):
    name: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        None, description="who took it (required for critical results)"
    )
    read_back: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        None,
        description="what the person who took a critical result repeated back (复述; "
        "required for critical results)",
    )


class EscalateIn(Model):
    question: ShortText
    findings: OptionalText | None = Field(None, description="a draft, signed as preliminary")
    impression: OptionalText | None = None
    conclusion: Conclusion = Conclusion.ABNORMAL


class ReturnIn(Model):
    reason: ReturnReason
    note: OptionalShortText = ""


class AddendumIn(Model):
    text: Text


class ReadingRequestIn(Model):
    urgency: Literal["urgent", "routine", "low"] = "routine"
    question: OptionalShortText | None = None


class StudyPath(Model):
    uid: str = Field(description="the Study Instance UID")


class TemplatesQuery(Model):
    specialty: str | None = None
    modality: str | None = None
    language: str | None = None


class TemplateIn(Model):
    findings: Text
    impression: Text


class HeldInstanceOut(Model):
    """An instance sent by C-STORE into the study while its case was claimed: stored, held
    for the reader's decision, not yet part of the study."""

    id: int
    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    size_bytes: int
    sender_ae: str | None
    received_at: Instant

    @classmethod
    def of(cls, h: HeldInstance) -> HeldInstanceOut:
        return cls(
            id=h.id,
            sop_instance_uid=h.sop_instance_uid,
            series_instance_uid=h.series_instance_uid,
            sop_class_uid=h.sop_class_uid,
            size_bytes=h.size_bytes,
            sender_ae=h.sender_ae,
            received_at=h.received_at,
        )


class HeldOut(Model):
    """The instances held for a case."""

    case_id: int
    instances: list[HeldInstanceOut]


class HeldDecisionOut(Model):
    """What was decided on a case's held instances, and on how many."""

    case_id: int
    decision: Literal["let_in", "discard"]
    count: int
