"""The DICOM index: patients, studies, series and instances, written once per instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from storage.collection import collected_from
from storage.errors import Conflict
from storage.queries import q
from storage.records import (
    FacilityId,
    InstanceHeader,
    Priority,
    ReceivedVia,
    Study,
    StudyId,
    UserId,
)


class IndexOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


#: SQLSTATE raised by ``ingest_instance`` (migration 0030) for a refusal.
_REFUSED = "TM409"


@dataclass(frozen=True, kw_only=True)
class IndexResult:
    outcome: IndexOutcome
    study_id: StudyId
    #: The object this instance was already stored under (DUPLICATE), else the new key.
    object_key: str
    #: Patient attributes that differ from the study's (recorded in ingest_identity_conflict).
    identity_conflicts: tuple[str, ...] = ()
    #: The study was already complete: a late instance (its open cases were told).
    late: bool = False


async def index_instance(
    pool: asyncpg.Pool,
    *,
    header: InstanceHeader,
    object_key: str,
    size_bytes: int,
    facility_id: FacilityId,
    sender_ae: str | None,
    via: ReceivedVia,
    priority: Priority = Priority.MEDIUM,
    clinical_question: str | None = None,
) -> IndexResult:
    """Commit one instance to the index, in one statement (one transaction), after its object
    is durable.

    Re-sending an instance with the same data set is a duplicate and changes nothing. Patient
    data that differs from the study's is recorded (``ingest_identity_conflict``), not merged;
    the instance is indexed under its study. A late instance of a complete study is an event
    on each open case and a notification to its readers.

    Raises
    ------
    Conflict
        The SOP Instance UID is stored with other content, or the study, series or instance
        belongs to another facility. The first copy is left untouched.
    """
    try:
        row = await pool.fetchrow(
            q("ingest_instance"),
            facility_id,
            header.sop_instance_uid,
            header.sop_class_uid,
            header.transfer_syntax_uid,
            header.study_instance_uid,
            header.series_instance_uid,
            header.patient_id,
            header.patient_name,
            header.patient_birth_date,
            header.patient_sex,
            header.accession_number,
            header.study_date,
            header.study_time,
            header.study_description,
            header.referring_physician,
            header.modality,
            header.series_number,
            header.series_description,
            header.body_part,
            header.instance_number,
            object_key,
            size_bytes,
            header.dataset_sha256,
            sender_ae,
            via.value,
            header.metadata_zlib,
            priority.value,
            clinical_question,
        )
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == _REFUSED:
            raise Conflict(str(exc)) from None
        collected = collected_from(exc)
        if collected is not None:
            raise collected from None
        raise
    row = _one(row)
    return IndexResult(
        outcome=IndexOutcome(row["o_outcome"]),
        study_id=StudyId(row["o_study_id"]),
        object_key=row["o_object_key"],
        identity_conflicts=tuple(row["o_conflicts"] or ()),
        late=bool(row["o_late"]),
    )


def _one(row: asyncpg.Record | None) -> asyncpg.Record:
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


async def record_rejection(
    pool: asyncpg.Pool,
    *,
    facility_id: FacilityId | None,
    sender_ae: str | None,
    sop_instance_uid: str | None,
    reason: str,
    object_key: str | None = None,
) -> None:
    """Keep a refused instance's reason where administrators will see it."""
    await pool.execute(
        q("rejection_insert"), facility_id, sender_ae, sop_instance_uid, reason, object_key
    )


async def mark_study_ready(pool: asyncpg.Pool, study_uid: str, facility_id: FacilityId) -> bool:
    """The sender's manifest is satisfied: the study completes at the next sweep, without
    waiting for the stable age. False when no receiving study of that facility has the UID."""
    found = await pool.fetchval(q("study_mark_ready"), study_uid, facility_id)
    return found is not None


@dataclass(frozen=True, kw_only=True)
class IdentityConflict:
    """Patient data of one instance that differs from its study's (for administrators)."""

    at: datetime
    sop_instance_uid: str
    attribute: str
    study_value: str | None
    instance_value: str | None


async def identity_conflicts(pool: asyncpg.Pool, study_id: StudyId) -> list[IdentityConflict]:
    """What differed between a study's patient and the instances sent for it, oldest first."""
    rows = await pool.fetch(q("identity_conflicts_of_study"), study_id)
    return [IdentityConflict(**dict(r)) for r in rows]


async def ae_facility_codes(pool: asyncpg.Pool) -> dict[str, str]:
    """Each configured calling AE title and the code of the facility it belongs to."""
    return {r["ae_title"]: r["code"] for r in await pool.fetch(q("ae_facility_codes"))}


async def study_for_user(pool: asyncpg.Pool, study_uid: str, user_id: UserId) -> Study | None:
    """A study by UID, only when the user's scope includes it."""
    row = await pool.fetchrow(q("study_by_uid_for_user"), study_uid, user_id)
    return Study.from_row(row) if row else None


async def studies_for_user(
    pool: asyncpg.Pool,
    user_id: UserId,
    *,
    study_uid: str | None = None,
    patient_id: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Study]:
    """The studies in a user's scope, newest first."""
    rows = await pool.fetch(q("studies_for_user"), user_id, study_uid, patient_id, limit, offset)
    return [Study.from_row(r) for r in rows]


@dataclass(frozen=True, kw_only=True)
class StoredInstance:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    series_instance_uid: str
    object_key: str
    size_bytes: int


async def instances_of_study(pool: asyncpg.Pool, study_id: StudyId) -> list[StoredInstance]:
    rows = await pool.fetch(q("instances_of_study"), study_id)
    return [
        StoredInstance(
            sop_instance_uid=r["sop_instance_uid"],
            sop_class_uid=r["sop_class_uid"],
            transfer_syntax_uid=r["transfer_syntax_uid"],
            series_instance_uid=r["series_instance_uid"],
            object_key=r["object_key"],
            size_bytes=r["size_bytes"],
        )
        for r in rows
    ]
