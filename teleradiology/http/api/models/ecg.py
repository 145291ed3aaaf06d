"""ECGs and the resumable upload, as /api/v1 takes and answers them."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator

from ecg.compare import Change, ChangeCode, Comparison
from ecg.render import SheetFilter
from storage.ecg import EcgEdit, EcgPrior, RefusedEcg
from storage.records import Priority, UploadState
from teleradiology.core.uploads import MAX_QUESTION_CHARS
from teleradiology.http.models import Instant, InstantOffset, Json, Model
from teleradiology.services.ecg import (
    EcgReading,
    UploadedEcg,
    cart_findings,
    current_measurements,
    current_statements,
)
from teleradiology.services.uploads import Received, SessionView

# --- ECG ------------------------------------------------------------------------------------


class EcgPath(Model):
    sop: str = Field(description="the ECG's SOP Instance UID")


class EcgFields(Model):
    """The upload form's text fields (or the query string of a raw upload)."""

    patient_id: str | None = None
    patient_name: str | None = None
    urgency: Literal["routine", "urgent"] = "routine"
    question: str | None = None
    filename: str | None = Field(None, description="of a raw body (query string only)")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unsent(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("urgency", mode="before")
    @classmethod
    def _routine_by_default(cls, value: Any) -> Any:
        return "routine" if value is None else value


class EcgUploaded(Model):
    study_instance_uid: str
    sop_instance_uid: str
    format: str
    leads: list[str]
    sampling_rate_hz: float
    duration_s: float
    warnings: list[str]
    outcome: str

    @classmethod
    def of(cls, stored: UploadedEcg) -> EcgUploaded:
        record = stored.record
        return cls(
            study_instance_uid=stored.study_instance_uid,
            sop_instance_uid=stored.sop_instance_uid,
            format=record.source_format.value,
            leads=list(record.leads),
            sampling_rate_hz=record.sampling_rate_hz,
            duration_s=round(record.duration_s, 3),
            warnings=list(record.warnings),
            outcome=stored.outcome,
        )


class RefusedEcgOut(Model):
    """An ECG file that could not be read, kept as it came."""

    id: int
    received_at: Instant
    facility: str
    filename: str | None
    size_bytes: int
    reason: str

    @classmethod
    def of(cls, r: RefusedEcg) -> RefusedEcgOut:
        return cls(
            id=r.id,
            received_at=r.received_at,
            facility=r.facility,
            filename=r.filename,
            size_bytes=r.size_bytes,
            reason=r.reason,
        )


class RefusedEcgsOut(Model):
    refused: list[RefusedEcgOut]


class EcgEditOut(Model):
    at: Instant
    field: str
    old: Json
    new: Json
    by: str

    @classmethod
    def of(cls, e: EcgEdit) -> EcgEditOut:
        return cls(at=e.at, field=e.field, old=e.old_value, new=e.new_value, by=e.username)


class EcgPriorOut(Model):
    sop_instance_uid: str
    study_instance_uid: str
    received_at: InstantOffset
    facility: str = Field(description="code of the facility that took it")
    facility_name: str
    earlier: bool = Field(description="received before this ECG")
    measurements: dict[str, Json]
    sheet: str

    @classmethod
    def of(cls, p: EcgPrior) -> EcgPriorOut:
        return cls(
            sop_instance_uid=p.sop_instance_uid,
            study_instance_uid=p.study_instance_uid,
            received_at=p.received_at,
            facility=p.facility_code,
            facility_name=p.facility_name,
            earlier=p.earlier,
            measurements={
                **dict((p.result or {}).get("measurements", {})),
                **p.edited_measurements,
            },
            sheet=f"/api/v1/ecg/{p.sop_instance_uid}/sheet.png",
        )


class EcgChangeOut(Model):
    code: ChangeCode
    text_zh: str
    text_en: str
    statement_codes: list[str] = Field(description="the statement codes newly named")
    values: dict[str, float] = Field(description="the values compared, e.g. prior_ms")

    @classmethod
    def of(cls, c: Change) -> EcgChangeOut:
        return cls(
            code=c.code,
            text_zh=c.text_zh,
            text_en=c.text_en,
            statement_codes=list(c.statement_codes),
            values=dict(c.values),
        )


class EcgComparisonOut(Model):
    """What changed since the last prior ECG (the newest analysed one received before)."""

    prior_sop_instance_uid: str
    prior_date: date | None = Field(description="received, in the network's time zone")
    prior_facility: str
    heading_zh: str
    heading_en: str
    changes: list[EcgChangeOut]

    @classmethod
    def of(cls, c: Comparison, prior: EcgPrior) -> EcgComparisonOut:
        zh, en = c.heading()
        return cls(
            prior_sop_instance_uid=prior.sop_instance_uid,
            prior_date=c.prior_date,
            prior_facility=c.prior_facility,
            heading_zh=zh,
            heading_en=en,
            changes=[EcgChangeOut.of(x) for x in c.changes],
        )


class EcgOriginal(Model):
    format: str | None
    filename: str | None


class EcgLinks(Model):
    sheet_png: str
    sheet_pdf: str
    original: str | None


class EcgCartSpikeOut(Model):
    """A pacemaker stimulus the cart detected and stored in its file."""

    time_ms: float = Field(description="from the start of the recording")
    sample: int = Field(description="the sample it falls on, at the analysis' sampling rate")
    amplitude_uv: float | None = Field(None, description="null when the cart did not say")
    pulse_width_us: float | None = None
    triggers: str | None = Field(None, description='"QRS", "P", "neither"; null when unknown')


class EcgCartOut(Model):
    """What the cart wrote into its file besides its global measurements (those are in
    the analysis' ``device_measurements``, beside ours in ``device_comparison``)."""

    statements: list[str] = Field(description="its interpretation statements, in file order")
    lead_measurements: dict[str, dict[str, float]] = Field(
        description="by lead, then by key (p_ms, qrs_ms, r_uv, st_j60_uv, …; ms and µV)"
    )
    pacemaker_spikes: list[EcgCartSpikeOut]

    @classmethod
    def of(cls, reading: EcgReading) -> EcgCartOut:
        found = cart_findings(reading.view)
        return cls(
            statements=found.statements,
            lead_measurements=found.lead_measurements,
            pacemaker_spikes=[EcgCartSpikeOut.model_validate(s) for s in found.pacemaker_spikes],
        )


class EcgOut(Model):
    """An ECG: the automatic analysis, the current measurements and statements (as readers
    changed them), who changed what, the person's prior ECGs at every linked facility the
    caller may see, what changed since the last of them, and links."""

    sop_instance_uid: str
    study_instance_uid: str
    facility: str
    patient_id: str
    patient_name: str | None
    analyzed: bool
    analysis_error: str | None
    suspected_stemi: bool
    automatic: dict[str, Json] | None
    cart: EcgCartOut = Field(
        description="the cart's own statements, per-lead measurements and pacemaker stimuli, "
        "as its file states them (empty when it states none, or before the analysis)"
    )
    measurements: dict[str, Json]
    statements: list[Json]
    edits: list[EcgEditOut]
    priors: list[EcgPriorOut]
    comparison: EcgComparisonOut | None = Field(
        description="what changed since the last prior; null without an analysed prior"
    )
    original: EcgOriginal | None
    links: EcgLinks

    @classmethod
    def of(cls, reading: EcgReading) -> EcgOut:
        view = reading.view
        base = f"/api/v1/ecg/{view.sop_instance_uid}"
        kept = bool(view.original_key)
        return cls(
            sop_instance_uid=view.sop_instance_uid,
            study_instance_uid=view.study_instance_uid,
            facility=view.facility_code,
            patient_id=view.patient_id,
            patient_name=view.patient_name,
            analyzed=view.analysis_id is not None,
            analysis_error=view.error,
            suspected_stemi=view.suspected_stemi,
            automatic=view.result,
            cart=EcgCartOut.of(reading),
            measurements=current_measurements(view),
            statements=current_statements(view),
            edits=[EcgEditOut.of(e) for e in reading.edits],
            priors=[EcgPriorOut.of(p) for p in reading.priors],
            comparison=(
                EcgComparisonOut.of(reading.comparison, reading.compared_with)
                if reading.comparison and reading.compared_with
                else None
            ),
            original=(
                EcgOriginal(format=view.original_format, filename=view.original_filename)
                if kept
                else None
            ),
            links=EcgLinks(
                sheet_png=f"{base}/sheet.png",
                sheet_pdf=f"{base}/sheet.pdf",
                original=f"{base}/original" if kept else None,
            ),
        )


class EcgEditIn(Model):
    """A reader's change: measurements by name (null removes a change), or the statements."""

    measurements: dict[str, float | None] | None = Field(
        None, description="names to numbers (null removes a change)"
    )
    statements: list[dict[str, Json]] | None = None


class SheetQuery(Model):
    filter: SheetFilter = Field(
        SheetFilter.DIAGNOSTIC,
        description="The traces' filter, printed on the sheet: diagnostic (0.67-100 Hz and "
        "the mains notch; the default), muscle (0.67-40 Hz and the notch) or none",
    )


# --- the resumable upload ---------------------------------------------------------------------


class ManifestLine(Model):
    sop_instance_uid: str
    size: int = Field(description="bytes of the file")
    sha256: str = Field(description="of the file as sent")


class UploadIn(Model):
    key: str | None = Field(
        None, max_length=200, description="resume key; default: the SHA-256 of the manifest"
    )
    study_instance_uid: str
    urgency: Literal["routine", "urgent"] | None = "routine"
    question: str | None = Field(None, max_length=MAX_QUESTION_CHARS)
    instances: list[ManifestLine]

    @field_validator("urgency", mode="before")
    @classmethod
    def _empty_is_routine(cls, value: Any) -> Any:
        return "routine" if value in (None, "") else value


class MissingOut(Model):
    sop_instance_uid: str
    size: int
    sha256: str
    received: list[list[int]] = Field(
        description="byte ranges held, [start, end): the end byte is the first not held"
    )


class SessionLinks(Model):
    self: str
    instances: str
    commit: str


class SessionOut(Model):
    id: str
    key: str
    study_instance_uid: str
    state: UploadState
    urgency: Literal["routine", "urgent"]
    question: str | None
    instances: int
    stored: int
    total_bytes: int
    bodies_received: int
    missing: list[MissingOut]
    created_at: Instant
    updated_at: Instant
    committed_at: Instant | None
    links: SessionLinks

    @classmethod
    def of(cls, found: SessionView) -> SessionOut:
        session, done = found.session, found.progress
        base = f"/api/v1/uploads/{session.public_id}"
        return cls(
            id=str(session.public_id),
            key=session.client_key,
            study_instance_uid=session.study_instance_uid,
            state=session.state,
            urgency="urgent" if session.priority is Priority.HIGH else "routine",
            question=session.clinical_question,
            instances=done.total,
            stored=done.stored,
            total_bytes=done.total_bytes,
            bodies_received=done.bodies_received,
            missing=[
                MissingOut(
                    sop_instance_uid=m.sop_instance_uid,
                    size=m.size_bytes,
                    sha256=m.sha256,
                    received=[list(r) for r in m.received],
                )
                for m in done.missing
            ],
            created_at=session.created_at,
            updated_at=session.updated_at,
            committed_at=session.committed_at,
            links=SessionLinks(
                self=base,
                instances=f"{base}/instances/{{sop_instance_uid}}",
                commit=f"{base}/commit",
            ),
        )


class UploadListed(Model):
    id: str
    key: str
    study_instance_uid: str
    state: UploadState
    updated_at: Instant


class UploadsOut(Model):
    uploads: list[UploadListed]


class UploadsQuery(Model):
    state: UploadState | None = Field(None, description="open or committed")

    @field_validator("state", mode="before")
    @classmethod
    def _empty_is_unsent(cls, value: Any) -> Any:
        return None if value == "" else value


class SessionPath(Model):
    id: str = Field(description="the session's id")


class InstancePath(SessionPath):
    sop: str = Field(description="the instance's SOP Instance UID")


class InstanceReceived(Model):
    sop_instance_uid: str
    outcome: str
    received: list[list[int]] | None = Field(
        None, description="byte ranges held of an instance sent in parts (partial only)"
    )

    @classmethod
    def of(cls, sop: str, received: Received) -> InstanceReceived:
        partial = received.outcome.value == "partial"
        return cls(
            sop_instance_uid=sop,
            outcome=received.outcome.value,
            received=[list(r) for r in received.held] if partial else None,
        )
