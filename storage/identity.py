"""The console's patient identity: candidate duplicates across facilities, the records as a
merge screen compares them, pairs judged not the same person, and the identity conflicts
found at ingest with their resolution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn, Queryable
from storage.queries import q
from storage.records import FacilityId, PatientRef, StudyId, UserId


async def admin_facilities(db: Queryable, user: UserId) -> list[FacilityId]:
    """The facilities of an active administrator's network (empty for anyone else)."""
    return [FacilityId(r[0]) for r in await db.fetch(q("admin_facilities"), user)]


@dataclass(frozen=True, kw_only=True)
class CandidatePair:
    """Two records that may be one person, and why (``national_id``, ``demographics``)."""

    a: PatientRef
    b: PatientRef
    reasons: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.a >= self.b:
            raise ValueError(f"a candidate pair is ordered: {self.a} before {self.b}")


#: The cursor of the first page: before every pair.
_FIRST = (2**62, 2**62)


async def duplicate_candidates(
    db: Queryable,
    facilities: Sequence[FacilityId],
    *,
    before: tuple[int, int] | None,
    limit: int,
) -> list[CandidatePair]:
    """Up to ``limit`` candidate pairs among these facilities' records, newest first (by
    the later record, then the earlier), from the pair ``before`` (its ``(b, a)``)."""
    b, a = before or _FIRST
    rows = await db.fetch(q("duplicate_candidates"), list(facilities), b, a, limit)
    return [
        CandidatePair(a=PatientRef(r["a"]), b=PatientRef(r["b"]), reasons=tuple(r["reasons"]))
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class PatientRecord:
    """A patient record as the console shows it."""

    id: PatientRef
    patient_id: str
    name: str | None
    sex: str | None
    birth_date: str | None
    created_at: datetime
    facility_id: FacilityId
    facility_code: str
    facility_name: str
    person_id: int | None
    link_method: str | None
    national_id_stated: bool
    #: The other records linked to the same person.
    linked: tuple[PatientRef, ...]

    @property
    def shown_as(self) -> str:
        """How the audit names the record: issuer code and patient ID."""
        return f"{self.facility_code}:{self.patient_id}"


async def patient_records(db: Queryable, ids: Sequence[int]) -> dict[PatientRef, PatientRecord]:
    rows = await db.fetch(q("patient_records"), list(ids))
    return {
        PatientRef(r["id"]): PatientRecord(
            id=PatientRef(r["id"]),
            patient_id=r["patient_id"],
            name=r["name"],
            sex=r["sex"],
            birth_date=r["birth_date"],
            created_at=r["created_at"],
            facility_id=FacilityId(r["issuer_facility_id"]),
            facility_code=r["facility_code"],
            facility_name=r["facility_name"],
            person_id=r["person_id"],
            link_method=r["link_method"],
            national_id_stated=r["national_id_stated"],
            linked=tuple(PatientRef(p) for p in r["linked"]),
        )
        for r in rows
    }


@dataclass(frozen=True, kw_only=True)
class RecordStudy:
    """A study (or ECG) of a record, with its latest case and that case's latest report."""

    id: StudyId
    patient_ref: PatientRef
    study_instance_uid: str
    study_date: str | None
    modalities: tuple[str, ...]
    description: str | None
    received_at: datetime
    case_id: int | None
    specialty: str | None
    case_status: str | None
    report_status: str | None
    conclusion: str | None
    impression: str | None

    @property
    def is_ecg(self) -> bool:
        return "ECG" in self.modalities


async def record_studies(db: Queryable, ids: Sequence[int]) -> list[RecordStudy]:
    """The studies of these records, newest first (at most 200)."""
    rows = await db.fetch(q("patient_record_studies"), list(ids))
    return [
        RecordStudy(
            id=StudyId(r["id"]),
            patient_ref=PatientRef(r["patient_ref"]),
            study_instance_uid=r["study_instance_uid"],
            study_date=r["study_date"],
            modalities=tuple(r["modalities"] or ()),
            description=r["description"],
            received_at=r["first_received_at"],
            case_id=r["case_id"],
            specialty=r["specialty"],
            case_status=r["case_status"],
            report_status=r["report_status"],
            conclusion=r["conclusion"],
            impression=r["impression"],
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class PairStanding:
    """Why two records are a candidate pair (none: they are not), and whether an
    administrator judged them not the same person."""

    reasons: tuple[str, ...]
    dismissed_at: datetime | None
    dismissed_by: str | None
    note: str | None


async def pair_standing(db: Queryable, a: PatientRef, b: PatientRef) -> PairStanding:
    low, high = sorted((a, b))
    row = await db.fetchrow(q("pair_standing"), low, high)
    if row is None:
        return PairStanding(reasons=(), dismissed_at=None, dismissed_by=None, note=None)
    return PairStanding(
        reasons=tuple(row["reasons"]),
        dismissed_at=row["dismissed_at"],
        dismissed_by=row["dismissed_by"],
        note=row["note"],
    )


async def dismiss_pair(
    conn: Conn, a: PatientRef, b: PatientRef, user: UserId, note: str | None
) -> bool:
    """Remember that two records are not the same person; False when already remembered."""
    low, high = sorted((a, b))
    return await conn.fetchval(q("pair_dismiss"), low, high, user, note) is not None


@dataclass(frozen=True, kw_only=True)
class Dismissal:
    """A pair of records (a < b) an administrator judged not the same person."""

    a: PatientRef
    b: PatientRef
    dismissed_at: datetime
    dismissed_by: str
    note: str | None


async def pair_dismissals(
    db: Queryable, facilities: Sequence[FacilityId], *, limit: int, offset: int
) -> tuple[list[Dismissal], int]:
    """A page of the dismissed pairs of these facilities' records, newest first, and how
    many there are in all."""
    rows = await db.fetch(q("pair_dismissals"), list(facilities), limit, offset)
    found = [
        Dismissal(
            a=PatientRef(r["patient_a"]),
            b=PatientRef(r["patient_b"]),
            dismissed_at=r["dismissed_at"],
            dismissed_by=r["dismissed_by"],
            note=r["note"],
        )
        for r in rows
    ]
    return found, (rows[0]["total"] if rows else 0)


async def undismiss_pair(conn: Conn, a: PatientRef, b: PatientRef) -> tuple[bool, str | None]:
    """Forget that two records were judged not one person: (whether they were, its note)."""
    low, high = sorted((a, b))
    row = await conn.fetchrow(q("pair_undismiss"), low, high)
    return (False, None) if row is None else (True, row["note"])


async def state_national_id(conn: Conn, patient: int, digest: str, user: UserId) -> None:
    """Keep the national ID (its digest) a record was stated with."""
    await conn.execute(q("national_id_stated"), patient, digest, user)


@dataclass(frozen=True, kw_only=True)
class IdentityConflict:
    """An instance whose patient attribute differed from its study's patient."""

    id: int
    at: datetime
    attribute: str
    stored_value: str | None
    received_value: str | None
    sop_instance_uid: str
    facility_code: str
    facility_name: str
    study_id: StudyId
    study_instance_uid: str
    patient_ref: PatientRef
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None


def _conflict(r: asyncpg.Record) -> IdentityConflict:
    return IdentityConflict(
        id=r["id"],
        at=r["at"],
        attribute=r["attribute"],
        stored_value=r["study_value"],
        received_value=r["instance_value"],
        sop_instance_uid=r["sop_instance_uid"],
        facility_code=r["facility_code"],
        facility_name=r["facility_name"],
        study_id=StudyId(r["study_id"]),
        study_instance_uid=r["study_instance_uid"],
        patient_ref=PatientRef(r["patient_ref"]),
        resolved_at=r["resolved_at"],
        resolved_by=r["resolved_by"],
        resolution_note=r["resolution_note"],
    )


async def identity_conflicts(
    db: Queryable,
    facilities: Sequence[FacilityId],
    *,
    resolved_too: bool,
    limit: int,
    offset: int,
) -> tuple[list[IdentityConflict], int]:
    """A page of these facilities' identity conflicts, newest first, and how many in all."""
    rows = await db.fetch(q("identity_conflicts"), list(facilities), resolved_too, limit, offset)
    return [_conflict(r) for r in rows], (rows[0]["total"] if rows else 0)


@dataclass(frozen=True, kw_only=True)
class ConflictState:
    id: int
    study_id: StudyId
    resolved_at: datetime | None


async def conflict_state(
    conn: Conn, conflict: int, facilities: Sequence[FacilityId]
) -> ConflictState | None:
    row = await conn.fetchrow(q("identity_conflict_state"), conflict, list(facilities))
    if row is None:
        return None
    return ConflictState(
        id=row["id"], study_id=StudyId(row["study_id"]), resolved_at=row["resolved_at"]
    )


async def resolve_conflict(
    conn: Conn, conflict: int, facilities: Sequence[FacilityId], user: UserId, note: str
) -> datetime | None:
    """Mark an open conflict resolved; when, or None when it was not open."""
    row = await conn.fetchrow(
        q("identity_conflict_resolve"), conflict, list(facilities), user, note
    )
    return None if row is None else row["resolved_at"]
