"""The search model: what a QIDO-RS or C-FIND search asks for, in whose scope, and what it
finds. Plain records, shared by the query builders in core and the SQL in storage.qido."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from storage.records import FacilityId, Role, Row, StudyId, UserId


class Level(StrEnum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


@dataclass(frozen=True, kw_only=True)
class Scope:
    """Whose view of the index a search runs in.

    A user (``user_id`` set) sees what ``study_visible_to`` allows for their role. A
    workstation's AE title without a user sees its facility's own studies (``role`` CLINIC).
    """

    role: Role
    facility_id: FacilityId
    user_id: UserId | None = None

    def __post_init__(self) -> None:
        if self.user_id is None and self.role is not Role.CLINIC:
            raise ValueError(
                f"a scope without a user is a facility's own (clinic), not {self.role}"
            )


@dataclass(frozen=True)
class Text:
    """A text match: one or more DICOM patterns (``*`` and ``?`` wildcards), any may match."""

    patterns: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.patterns or any(not p for p in self.patterns):
            raise ValueError("a text match needs at least one non-empty pattern")


@dataclass(frozen=True)
class Name:
    """A person name match; ``fuzzy`` is case- and accent-insensitive, by name word prefix."""

    pattern: str
    fuzzy: bool = False

    def __post_init__(self) -> None:
        if not self.pattern:
            raise ValueError("a name match needs a non-empty pattern")


@dataclass(frozen=True)
class Range:
    """A DA or TM range; either end may be open. Values are compared as normalised text."""

    low: str | None
    high: str | None

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise ValueError("a range needs at least one end")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"range {self.low}-{self.high} ends before it starts")


@dataclass(frozen=True, kw_only=True)
class Query:
    """What to search for; unset fields match everything."""

    level: Level
    limit: int = 100
    offset: int = 0
    study_uids: tuple[str, ...] = ()
    series_uids: tuple[str, ...] = ()
    sop_uids: tuple[str, ...] = ()
    sop_classes: tuple[str, ...] = ()
    patient_id: Text | None = None
    patient_name: Name | None = None
    patient_birth_date: Range | None = None
    patient_sex: Text | None = None
    accession_number: Text | None = None
    study_description: Text | None = None
    referring_physician: Name | None = None
    study_date: Range | None = None
    study_time: Range | None = None
    modalities_in_study: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    series_number: int | None = None
    series_description: Text | None = None
    body_part: Text | None = None
    instance_number: int | None = None
    #: Also fetch a representative instance's stored DICOM JSON (for attributes the index
    #: columns do not hold); instance-level searches always fetch their own.
    with_metadata: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 100_000:
            raise ValueError(f"limit must be 1 to 100000, got {self.limit}")
        if self.offset < 0:
            raise ValueError(f"offset must not be negative, got {self.offset}")


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One search result; fields below the searched level are None."""

    study_id: StudyId | None = None
    study_instance_uid: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    accession_number: str | None = None
    study_description: str | None = None
    referring_physician: str | None = None
    modalities_in_study: tuple[str, ...] = ()
    num_study_series: int | None = None
    num_study_instances: int | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    #: The facility that issued the patient ID (IssuerOfPatientID).
    issuer: str | None = None
    num_patient_studies: int | None = None
    series_instance_uid: str | None = None
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    body_part: str | None = None
    num_series_instances: int | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    instance_number: int | None = None
    transfer_syntax_uid: str | None = None
    #: DICOM JSON of this instance (or a representative one), zlib, bulk data as placeholders.
    metadata_zlib: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Row) -> Self:
        keys = set(row.keys()) if hasattr(row, "keys") else set()

        def get(name: str) -> Any:
            return row[name] if name in keys else None

        study_id = get("study_id")
        return cls(
            study_id=StudyId(study_id) if study_id is not None else None,
            study_instance_uid=get("study_instance_uid"),
            study_date=get("study_date"),
            study_time=get("study_time"),
            accession_number=get("accession_number"),
            study_description=get("study_description"),
            referring_physician=get("referring_physician"),
            modalities_in_study=tuple(get("modalities") or ()),
            num_study_series=get("num_series"),
            num_study_instances=get("num_instances"),
            patient_id=get("patient_id"),
            patient_name=get("patient_name"),
            patient_birth_date=get("patient_birth_date"),
            patient_sex=get("patient_sex"),
            issuer=get("issuer"),
            num_patient_studies=get("num_studies"),
            series_instance_uid=get("series_instance_uid"),
            modality=get("modality"),
            series_number=get("series_number"),
            series_description=get("series_description"),
            body_part=get("body_part"),
            num_series_instances=get("series_num_instances"),
            sop_instance_uid=get("sop_instance_uid"),
            sop_class_uid=get("sop_class_uid"),
            instance_number=get("instance_number"),
            transfer_syntax_uid=get("transfer_syntax_uid"),
            metadata_zlib=get("metadata_zlib"),
        )


class Source(StrEnum):
    """A study-level value an answer element is built from (a column of ``qido_studies``)."""

    STUDY_INSTANCE_UID = "study_instance_uid"
    STUDY_DATE = "study_date"
    STUDY_TIME = "study_time"
    ACCESSION_NUMBER = "accession_number"
    STUDY_DESCRIPTION = "study_description"
    REFERRING_PHYSICIAN = "referring_physician"
    MODALITIES = "modalities"
    NUM_SERIES = "num_series"
    NUM_INSTANCES = "num_instances"
    PATIENT_ID = "patient_id"
    PATIENT_NAME = "patient_name"
    PATIENT_BIRTH_DATE = "patient_birth_date"
    PATIENT_SEX = "patient_sex"
    ISSUER = "issuer"
    #: The study's RetrieveURL: the ``retrieve_base`` given to the search, then the UID.
    RETRIEVE_URL = "retrieve_url"


PERSON_NAMES = {Source.PATIENT_NAME, Source.REFERRING_PHYSICIAN}
_KEY = re.compile(r"^[0-9A-F]{8}$")
_VR = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, kw_only=True)
class Element:
    """One attribute of each study's DICOM JSON object.

    Its value is the ``source`` column, else the fixed ``value``, else none (the attribute is
    present and empty).
    """

    key: str
    vr: str
    source: Source | None = None
    value: str | None = None

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"element key {self.key!r} is not 8 upper-case hex digits")
        if not _VR.match(self.vr):
            raise ValueError(f"element {self.key}: VR {self.vr!r} is not two capital letters")
        if self.source is not None and self.value is not None:
            raise ValueError(f"element {self.key}: a column or a fixed value, not both")
        if self.source in PERSON_NAMES and self.vr != "PN":
            raise ValueError(f"element {self.key}: a person name is PN, not {self.vr}")
