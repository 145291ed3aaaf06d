"""Records that cross layers: frozen, keyword-only, valid once built."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NewType, Protocol, Self


class Row(Protocol):
    """A database row: asyncpg's Record, or any mapping by column name."""

    def __getitem__(self, key: str, /) -> Any: ...


FacilityId = NewType("FacilityId", int)
UserId = NewType("UserId", int)
StudyId = NewType("StudyId", int)
CaseId = NewType("CaseId", int)
ReportId = NewType("ReportId", int)


class Tier(StrEnum):
    VILLAGE = "village"
    TOWNSHIP = "township"
    COUNTY = "county"
    CITY = "city"


class Role(StrEnum):
    CLINIC = "clinic"
    READER = "reader"
    ADMIN = "admin"


class Specialty(StrEnum):
    RADIOLOGY = "radiology"
    ECG = "ecg"


class Priority(StrEnum):
    """UPS priorities: an urgent request is high, a routine one medium."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class StudyState(StrEnum):
    RECEIVING = "receiving"
    COMPLETE = "complete"


class CaseStatus(StrEnum):
    """The UPS procedure step states."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"


class Conclusion(StrEnum):
    NORMAL = "normal"
    ABNORMAL = "abnormal"
    CRITICAL = "critical"


class ReportStatus(StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"


class ReceivedVia(StrEnum):
    DIMSE = "dimse"
    STOW = "stow"
    UPLOAD = "upload"
    API = "api"


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True, kw_only=True)
class Facility:
    id: FacilityId
    code: str
    name: str
    tier: Tier
    parent_id: FacilityId | None

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=FacilityId(row["id"]),
            code=row["code"],
            name=row["name"],
            tier=Tier(row["tier"]),
            parent_id=FacilityId(row["parent_id"]) if row["parent_id"] is not None else None,
        )


@dataclass(frozen=True, kw_only=True)
class User:
    id: UserId
    username: str
    display_name: str
    role: Role
    facility_id: FacilityId
    specialties: frozenset[Specialty] = field(default_factory=frozenset)
    active: bool = True

    def __post_init__(self) -> None:
        if self.role is not Role.READER and self.specialties:
            raise ValueError(f"only readers have specialties, {self.username} is a {self.role}")

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=UserId(row["id"]),
            username=row["username"],
            display_name=row["display_name"],
            role=Role(row["role"]),
            facility_id=FacilityId(row["facility_id"]),
            specialties=frozenset(Specialty(s) for s in row["specialties"]),
            active=row["active"],
        )


@dataclass(frozen=True, kw_only=True)
class Study:
    id: StudyId
    study_instance_uid: str
    facility_id: FacilityId
    facility_code: str
    patient_id: str
    patient_name: str | None
    accession_number: str | None
    study_date: str | None
    description: str | None
    modalities: tuple[str, ...]
    state: StudyState
    priority: Priority
    num_series: int
    num_instances: int
    first_received_at: datetime
    last_received_at: datetime
    completed_at: datetime | None

    def __post_init__(self) -> None:
        _aware("first_received_at", self.first_received_at)
        _aware("last_received_at", self.last_received_at)
        _aware("completed_at", self.completed_at)

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=StudyId(row["id"]),
            study_instance_uid=row["study_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            facility_code=row["facility_code"],
            patient_id=row["patient_id"],
            patient_name=row["patient_name"],
            accession_number=row["accession_number"],
            study_date=row["study_date"],
            description=row["description"],
            modalities=tuple(row["modalities"]),
            state=StudyState(row["state"]),
            priority=Priority(row["priority"]),
            num_series=row["num_series"],
            num_instances=row["num_instances"],
            first_received_at=row["first_received_at"],
            last_received_at=row["last_received_at"],
            completed_at=row["completed_at"],
        )


@dataclass(frozen=True, kw_only=True)
class Case:
    id: CaseId
    study_id: StudyId
    study_instance_uid: str
    facility_id: FacilityId
    facility_code: str
    specialty: Specialty
    priority: Priority
    status: CaseStatus
    pool_facility_id: FacilityId
    escalation_facility_id: FacilityId | None
    claimed_by: UserId | None
    lease_expires_at: datetime | None
    deadline: datetime
    created_at: datetime
    modalities: tuple[str, ...]
    patient_name: str | None

    def __post_init__(self) -> None:
        _aware("deadline", self.deadline)
        _aware("created_at", self.created_at)
        _aware("lease_expires_at", self.lease_expires_at)
        if (self.status is CaseStatus.IN_PROGRESS) != (self.claimed_by is not None):
            raise ValueError(
                f"case {self.id}: status {self.status} with claimed_by={self.claimed_by}"
            )

    @classmethod
    def from_row(cls, row: Row) -> Self:
        esc = row["escalation_facility_id"]
        return cls(
            id=CaseId(row["id"]),
            study_id=StudyId(row["study_id"]),
            study_instance_uid=row["study_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            facility_code=row["facility_code"],
            specialty=Specialty(row["specialty"]),
            priority=Priority(row["priority"]),
            status=CaseStatus(row["status"]),
            pool_facility_id=FacilityId(row["pool_facility_id"]),
            escalation_facility_id=FacilityId(esc) if esc is not None else None,
            claimed_by=UserId(row["claimed_by"]) if row["claimed_by"] is not None else None,
            lease_expires_at=row["lease_expires_at"],
            deadline=row["deadline"],
            created_at=row["created_at"],
            modalities=tuple(row["modalities"]),
            patient_name=row["patient_name"],
        )


@dataclass(frozen=True, kw_only=True)
class Report:
    id: ReportId
    case_id: CaseId
    study_instance_uid: str
    facility_id: FacilityId
    author_id: UserId
    author_name: str
    status: ReportStatus
    findings: str
    impression: str
    conclusion: Conclusion
    signed_at: datetime
    signature_sha256: str
    delivered_at: datetime | None
    acknowledged_at: datetime | None

    def __post_init__(self) -> None:
        _aware("signed_at", self.signed_at)
        _aware("delivered_at", self.delivered_at)
        _aware("acknowledged_at", self.acknowledged_at)

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            id=ReportId(row["id"]),
            case_id=CaseId(row["case_id"]),
            study_instance_uid=row["study_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            author_id=UserId(row["author_id"]),
            author_name=row["author_name"],
            status=ReportStatus(row["status"]),
            findings=row["findings"],
            impression=row["impression"],
            conclusion=Conclusion(row["conclusion"]),
            signed_at=row["signed_at"],
            signature_sha256=row["signature_sha256"],
            delivered_at=row["delivered_at"],
            acknowledged_at=row["acknowledged_at"],
        )
