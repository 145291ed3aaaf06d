"""The audit as administrators search and export it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from storage.audit import Filters, Record
from storage.records import AuditAction, AuditResult
from teleradiology.http.models import Instant, Model, Moment


class AuditQuery(Model):
    """Narrow the records of the administrator's network (all given must hold)."""

    since: Moment | None = Field(None, description="from (ISO 8601)")
    until: Moment | None = Field(None, description="before (ISO 8601)")
    username: str | None = Field(None, max_length=200, description="who acted")
    action: AuditAction | None = Field(None, description="what was done")
    patient: str | None = Field(
        None, max_length=200, description="a patient named, as ISSUER-CODE:PATIENT-ID"
    )
    study: str | None = Field(None, max_length=64, description="a Study Instance UID named")
    result: AuditResult | None = Field(None, description="ok, denied or failed")
    before: int | None = Field(
        None, ge=1, le=2**62, description="records before this one (the next page's cursor)"
    )
    limit: int = Field(100, ge=1, le=1000, description="how many at most")

    def filters(self) -> Filters:
        return Filters(
            since=self.since,
            until=self.until,
            username=self.username,
            action=self.action,
            patient=self.patient,
            study=self.study,
            result=self.result,
            before_seq=self.before,
        )


class AuditExportQuery(AuditQuery):
    format: Literal["csv", "jsonl"] = Field("jsonl", description="CSV or JSON lines")
    limit: int = Field(10_000, ge=1, le=10_000, description="how many at most")


class AuditRecordOut(Model):
    seq: int = Field(description="its place in the chain")
    at: Instant
    username: str | None
    role: str | None
    facility: str | None = Field(description="the code of the actor's facility")
    action: str
    object_type: str
    object_id: str
    patients: list[str] = Field(description="patients disclosed, ISSUER-CODE:PATIENT-ID")
    studies: list[str] = Field(description="Study Instance UIDs disclosed")
    address: str | None = Field(description="the caller's network address")
    result: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: Record) -> AuditRecordOut:
        return cls(
            seq=record.seq,
            at=record.at,
            username=record.username,
            role=record.role,
            facility=record.facility,
            action=record.action,
            object_type=record.object_type,
            object_id=record.object_id,
            patients=list(record.patients),
            studies=list(record.studies),
            address=record.address,
            result=record.result,
            detail=record.detail,
        )


class AuditPageOut(Model):
    records: list[AuditRecordOut]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")
