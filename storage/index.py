"""The DICOM index: patients, studies, series and instances, written once per instance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg

from storage.db import Conn
from storage.errors import Conflict
from storage.queries import q
from storage.records import FacilityId, Priority, ReceivedVia, Study, StudyId, UserId


@dataclass(frozen=True, kw_only=True)
class InstanceHeader:
    """What the index keeps of one instance's header (parsed by the service, not here)."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    patient_name: str | None
    patient_birth_date: str | None
    patient_sex: str | None
    accession_number: str | None
    study_date: str | None
    study_time: str | None
    study_description: str | None
    referring_physician: str | None
    modality: str | None
    series_number: int | None
    series_description: str | None
    body_part: str | None
    instance_number: int | None
    dataset_sha256: str
    #: The instance's DICOM JSON (PS3.18 F.2) without bulk data, zlib-compressed.
    metadata_zlib: bytes | None = None

    def __post_init__(self) -> None:
        for name in (
            "sop_instance_uid",
            "sop_class_uid",
            "study_instance_uid",
            "series_instance_uid",
        ):
            if not getattr(self, name):
                raise ValueError(f"{name} is empty")
        if len(self.dataset_sha256) != 64:
            raise ValueError("dataset_sha256 must be 64 hex characters")


class IndexOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, kw_only=True)
class IndexResult:
    outcome: IndexOutcome
    study_id: StudyId
    #: The object this instance was already stored under (DUPLICATE), else the new key.
    object_key: str


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
    """Commit one instance to the index, in one transaction, after its object is durable.

    Re-sending an instance with the same data set is a duplicate and changes nothing.

    Raises
    ------
    Conflict
        The SOP Instance UID is stored with other content, or the study, series or instance
        belongs to another facility. The first copy is left untouched.
    """
    async with pool.acquire() as conn, conn.transaction():
        existing = await conn.fetchrow(q("instance_existing"), header.sop_instance_uid)
        if existing is not None:
            return _duplicate_or_conflict(existing, header, facility_id)

        patient_ref = await conn.fetchval(
            q("patient_upsert"),
            facility_id,
            header.patient_id,
            header.patient_name,
            header.patient_birth_date,
            header.patient_sex,
        )
        study = _one(
            await conn.fetchrow(
                q("study_upsert"),
                header.study_instance_uid,
                facility_id,
                patient_ref,
                header.accession_number,
                header.study_date,
                header.study_time,
                header.study_description,
                header.referring_physician,
                priority.value,
                clinical_question,
            )
        )
        if study["facility_id"] != facility_id:
            raise Conflict(
                f"study {header.study_instance_uid} was sent by another facility; "
                "a study belongs to one facility"
            )
        study_id = StudyId(study["id"])
        if study["inserted"]:
            await _event(conn, "received", facility_id=facility_id, study_id=study_id)
        series = _one(
            await conn.fetchrow(
                q("series_upsert"),
                study_id,
                header.series_instance_uid,
                header.modality,
                header.series_number,
                header.series_description,
                header.body_part,
            )
        )
        if series["study_id"] != study_id:
            raise Conflict(f"series {header.series_instance_uid} already belongs to another study")
        inserted = await conn.fetchval(
            q("instance_insert"),
            series["id"],
            header.sop_instance_uid,
            header.sop_class_uid,
            header.transfer_syntax_uid,
            header.instance_number,
            object_key,
            size_bytes,
            header.dataset_sha256,
            sender_ae,
            via.value,
            header.metadata_zlib,
        )
        if inserted is None:
            # A concurrent sender committed the same UID between our check and insert.
            raced = await conn.fetchrow(q("instance_existing"), header.sop_instance_uid)
            return _duplicate_or_conflict(_one(raced), header, facility_id)
        await conn.execute(q("series_count_instance"), series["id"])
        await conn.execute(
            q("study_count_instance"), study_id, 1 if series["inserted"] else 0, header.modality
        )
        if study["state"] == "complete":
            await _event(
                conn,
                "late_instance",
                facility_id=facility_id,
                study_id=study_id,
                detail={"series_instance_uid": header.series_instance_uid},
            )
    return IndexResult(outcome=IndexOutcome.STORED, study_id=study_id, object_key=object_key)


def _one(row: asyncpg.Record | None) -> asyncpg.Record:
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def _duplicate_or_conflict(
    existing: Any, header: InstanceHeader, facility_id: FacilityId
) -> IndexResult:
    if existing["facility_id"] != facility_id:
        raise Conflict(f"instance {header.sop_instance_uid} was sent by another facility")
    if existing["dataset_sha256"] != header.dataset_sha256:
        raise Conflict(
            f"instance {header.sop_instance_uid} is already stored with different content; "
            "the stored copy is kept"
        )
    return IndexResult(
        outcome=IndexOutcome.DUPLICATE, study_id=StudyId(0), object_key=existing["object_key"]
    )


async def _event(
    conn: Conn,
    kind: str,
    *,
    facility_id: FacilityId | None = None,
    study_id: StudyId | None = None,
    case_id: int | None = None,
    report_id: int | None = None,
    user_id: UserId | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        q("event_insert"),
        kind,
        facility_id,
        study_id,
        case_id,
        report_id,
        user_id,
        json.dumps(detail) if detail is not None else None,
    )


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


async def object_key_referenced(pool: asyncpg.Pool, object_key: str) -> bool:
    """Whether any indexed instance points at this object (else it may be collected)."""
    found: bool = await pool.fetchval(q("object_key_referenced"), object_key)
    return found


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
