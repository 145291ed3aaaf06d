"""The console's patient identity as the API takes and answers it: candidate duplicate pairs,
dismissing one, identity conflicts at ingest and their resolution."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from storage.identity import CandidatePair, Dismissal, IdentityConflict, PatientRecord
from storage.records import PatientRef
from teleradiology.http.models import Instant, Model, RecordRef


class PageQuery(Model):
    limit: int = Field(50, ge=1, le=500, description="how many at most")
    offset: int = Field(0, ge=0, le=1_000_000, description="how many to skip")


class DuplicatesQuery(Model):
    limit: int = Field(50, ge=1, le=500, description="how many pairs at most")
    before: str | None = Field(
        None,
        pattern=r"^[1-9][0-9]{0,17},[1-9][0-9]{0,17}$",
        description="the pairs after this one, as the last page's next_before gave it",
    )

    def cursor(self) -> tuple[int, int] | None:
        if self.before is None:
            return None
        b, a = self.before.split(",")
        return int(b), int(a)


class ConflictsQuery(PageQuery):
    status: Literal["open", "all"] = Field("open", description="open ones only, or all")


class PatientRecordOut(Model):
    id: int
    patient_id: str
    name: str | None
    sex: str | None
    birth_date: str | None
    facility: str = Field(description="the issuer: the facility's code")
    facility_name: str
    person_id: int | None = Field(description="the person the record is linked to")
    link_method: str | None
    national_id_stated: bool
    linked: list[int] = Field(description="the other records of the same person")

    @classmethod
    def of(cls, r: PatientRecord) -> PatientRecordOut:
        return cls(
            id=r.id,
            patient_id=r.patient_id,
            name=r.name,
            sex=r.sex,
            birth_date=r.birth_date,
            facility=r.facility_code,
            facility_name=r.facility_name,
            person_id=r.person_id,
            link_method=r.link_method,
            national_id_stated=r.national_id_stated,
            linked=list(r.linked),
        )


class CandidateOut(Model):
    a: PatientRecordOut
    b: PatientRecordOut
    reasons: list[Literal["national_id", "demographics"]] = Field(
        description="national_id: the same national ID was stated for both; demographics: "
        "the same folded name, sex and birth date at two facilities"
    )

    @classmethod
    def of(cls, pair: CandidatePair, records: dict[PatientRef, PatientRecord]) -> CandidateOut:
        return cls.model_validate(
            {
                "a": PatientRecordOut.of(records[pair.a]),
                "b": PatientRecordOut.of(records[pair.b]),
                "reasons": list(pair.reasons),
            }
        )


class CandidatesOut(Model):
    candidates: list[CandidateOut]
    next_before: str | None = Field(description="the next page's before, when there is one")

    @staticmethod
    def cursor(pair: tuple[int, int] | None) -> str | None:
        return None if pair is None else f"{pair[0]},{pair[1]}"


class DismissIn(Model):
    model_config = ConfigDict(extra="forbid")

    patients: list[RecordRef] = Field(
        min_length=2, max_length=2, description="the two records that are not one person"
    )
    note: str | None = Field(None, max_length=2000)


class DismissedOut(Model):
    dismissed: bool


class PairPath(Model):
    """A path naming a pair of patient records by their numbers."""

    a: int = Field(gt=0, le=2**62)
    b: int = Field(gt=0, le=2**62)


class DismissalOut(Model):
    a: PatientRecordOut
    b: PatientRecordOut
    dismissed_at: Instant
    dismissed_by: str = Field(description="the administrator who judged them two people")
    note: str | None

    @classmethod
    def of(cls, d: Dismissal, records: dict[PatientRef, PatientRecord]) -> DismissalOut:
        return cls(
            a=PatientRecordOut.of(records[d.a]),
            b=PatientRecordOut.of(records[d.b]),
            dismissed_at=d.dismissed_at,
            dismissed_by=d.dismissed_by,
            note=d.note,
        )


class DismissalsOut(Model):
    dismissals: list[DismissalOut]
    total: int


class UndismissedOut(Model):
    dismissed: Literal[False] = False


class ConflictOut(Model):
    id: int
    at: Instant
    facility: str
    facility_name: str
    study_instance_uid: str
    sop_instance_uid: str
    attribute: str = Field(description="the DICOM keyword that differed")
    stored_value: str | None = Field(description="the study's patient's value")
    received_value: str | None = Field(description="the instance's value")
    patient: int = Field(description="the study's patient record")
    resolved_at: Instant | None
    resolved_by: str | None
    resolution_note: str | None

    @classmethod
    def of(cls, c: IdentityConflict) -> ConflictOut:
        return cls(
            id=c.id,
            at=c.at,
            facility=c.facility_code,
            facility_name=c.facility_name,
            study_instance_uid=c.study_instance_uid,
            sop_instance_uid=c.sop_instance_uid,
            attribute=c.attribute,
            stored_value=c.stored_value,
            received_value=c.received_value,
            patient=c.patient_ref,
            resolved_at=c.resolved_at,
            resolved_by=c.resolved_by,
            resolution_note=c.resolution_note,
        )


class ConflictsOut(Model):
    conflicts: list[ConflictOut]
    total: int


class ResolveIn(Model):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="what was done about it")


class ResolvedOut(Model):
    resolved: bool
