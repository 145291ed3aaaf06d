"""The operations page's JSON (refused instances, studies returned for quality, failed jobs,
health), the network's report templates as administrators keep them, and a channel's test."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, StringConstraints

from storage.operations import FailedJob, QueueDepth, Rejection, ReturnedCase, Sizes
from storage.records import Specialty
from storage.templates import Template
from teleradiology.core.operations import Light, Measure
from teleradiology.http.api.models.reading import TemplateOut
from teleradiology.http.models import Flag, Instant, Model, PageQuery, Text
from teleradiology.services.operations import Health, Reading

#: A facility's code, as the network file writes it.
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: A DICOM modality code (CR, DX, CT, US, ECG...).
Modality = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{1,16}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class RejectionsQuery(PageQuery):
    facility: Code | None = Field(None, description="one facility of the network (its code)")
    day: date | None = Field(None, description="one day (YYYY-MM-DD), in the network's zone")


class RejectionOut(Model):
    id: int
    at: Instant
    facility: str
    facility_name: str
    calling_ae: str | None
    sop_class_uid: str | None
    reason: str

    @classmethod
    def of(cls, r: Rejection) -> RejectionOut:
        return cls(
            id=r.id,
            at=r.at,
            facility=r.facility_code,
            facility_name=r.facility_name,
            calling_ae=r.sender_ae,
            sop_class_uid=r.sop_class_uid,
            reason=r.reason,
        )


class RejectionsOut(Model):
    total: int
    limit: int
    offset: int
    rejections: list[RejectionOut]


class ReturnedOut(Model):
    case_id: int
    facility: str
    facility_name: str
    specialty: Specialty
    modalities: list[str]
    reason: str = Field(description="the reader's coded reason (motion, positioning, ...)")
    note: str | None
    returned_at: Instant
    resent: bool = Field(description="the clinic sent the study again since")

    @classmethod
    def of(cls, r: ReturnedCase) -> ReturnedOut:
        return cls(
            case_id=r.case_id,
            facility=r.facility_code,
            facility_name=r.facility_name,
            specialty=r.specialty,
            modalities=list(r.modalities),
            reason=r.return_code,
            note=r.return_note,
            returned_at=r.returned_at,
            resent=r.resent,
        )


class ReturnedListOut(Model):
    total: int
    limit: int
    offset: int
    returned: list[ReturnedOut]


class FailedJobOut(Model):
    id: int
    kind: str = Field(description="the job's entrypoint (deliver_report, send_notice)")
    attempts: int
    created_at: Instant
    failed_at: Instant
    report_id: int
    case_id: int
    facility: str
    error: str | None = Field(description="the last attempt's exception and message")

    @classmethod
    def of(cls, j: FailedJob) -> FailedJobOut:
        error = None
        if j.error_type:
            error = f"{j.error_type}: {j.error_message or ''}".strip(": ")[:500]
        return cls(
            id=j.id,
            kind=j.entrypoint,
            attempts=j.attempts,
            created_at=j.created,
            failed_at=j.failed_at,
            report_id=j.report_id,
            case_id=j.case_id,
            facility=j.facility_code,
            error=error,
        )


class FailedJobsOut(Model):
    jobs: list[FailedJobOut]


class JobRetriedOut(Model):
    id: int
    kind: str
    retried: bool


class ReadingOut(Model):
    measure: Measure
    value: float | None
    light: Light
    thresholds: str
    error: str | None

    @classmethod
    def of(cls, r: Reading) -> ReadingOut:
        value = round(r.value, 1) if r.value is not None else None
        return cls(
            measure=r.measure,
            value=value,
            light=r.light,
            thresholds=r.thresholds,
            error=r.error,
        )


class QueueOut(Model):
    kind: str
    queued: int
    oldest_due_s: float | None
    picked: int
    stale: int
    failed: int

    @classmethod
    def of(cls, q: QueueDepth) -> QueueOut:
        oldest = round(q.oldest_due_s, 1) if q.oldest_due_s is not None else None
        return cls(
            kind=q.entrypoint,
            queued=q.queued,
            oldest_due_s=oldest,
            picked=q.picked,
            stale=q.stale,
            failed=q.failed,
        )


class SizesOut(Model):
    database_bytes: int | None
    instances_estimate: int | None
    disk_free_bytes: int | None
    disk_total_bytes: int | None

    @classmethod
    def of(cls, s: Sizes) -> SizesOut:
        return cls.from_record(s)


class HealthOut(Model):
    light: Light = Field(description="the worst of the readings")
    readings: list[ReadingOut]
    queue: list[QueueOut] = Field(description="the job queue per kind (every network's)")
    sizes: SizesOut

    @classmethod
    def of(cls, h: Health) -> HealthOut:
        return cls(
            light=h.light,
            readings=[ReadingOut.of(r) for r in h.readings],
            queue=[QueueOut.of(q) for q in h.queue],
            sizes=SizesOut.of(h.sizes),
        )


class NetworkTemplateOut(TemplateOut):
    """A template as readers get it, with whether it is offered and whose it is."""

    active: bool
    own: bool = Field(description="the network's own (or its copy); false: a shared template")

    @classmethod
    def of(cls, t: Template) -> NetworkTemplateOut:
        return cls.model_validate(
            TemplateOut.from_record(t).model_dump()
            | {"active": t.active, "own": t.network_id is not None}
        )


class NetworkTemplatesOut(Model):
    may_change: bool = Field(description="whether the caller changes them (the network's top)")
    templates: list[NetworkTemplateOut]


class NewTemplateIn(Model):
    specialty: Specialty
    modality: Modality | None = Field(None, description="none: every modality of the specialty")
    name: Name
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "zh-CN"
    findings: Text
    impression: Text


class TemplateChangeIn(Model):
    name: Name | None = None
    modality: Modality | None = None
    findings: Text | None = None
    impression: Text | None = None
    active: Flag | None = None


class TrialOut(Model):
    """How the channel's receiver answered the test message."""

    id: int
    ok: bool
    code: str
    answer: str
    show: str = Field(description="the outcome in words, for the page")
