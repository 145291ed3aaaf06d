"""The DICOM index: patients, studies, series and instances, written once per instance."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import cast

import asyncpg

from storage.collection import collected_from, guarded
from storage.db import Conn, Queryable, transaction
from storage.errors import Conflict
from storage.queries import q
from storage.records import (
    CaseId,
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


#: Written in the same transaction once an instance is indexed (its audit record, say): the
#: row and what it writes commit together, or neither does.
Recorded = Callable[[Conn], Awaitable[object]]


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
    recorded: Recorded | None = None,
) -> IndexResult:
    """Commit one instance to the index, in one statement (one transaction), after its object
    is durable; ``recorded`` writes in that transaction once the instance is indexed.

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
    return await _index(
        pool,
        header=header,
        object_key=object_key,
        size_bytes=size_bytes,
        facility_id=facility_id,
        sender_ae=sender_ae,
        via=via,
        priority=priority,
        clinical_question=clinical_question,
        recorded=recorded,
    )


async def _index(
    db: Queryable,
    *,
    header: InstanceHeader,
    object_key: str,
    size_bytes: int,
    facility_id: FacilityId,
    sender_ae: str | None,
    via: ReceivedVia,
    priority: Priority,
    clinical_question: str | None,
    recorded: Recorded | None = None,
) -> IndexResult:
    """The index statement; then ``recorded``, when given, in the same transaction."""
    async with _writing(db, recorded) as conn:
        try:
            row = await conn.fetchrow(
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
        if recorded is not None:
            await recorded(cast(Conn, conn))
    return IndexResult(
        outcome=IndexOutcome(row["o_outcome"]),
        study_id=StudyId(row["o_study_id"]),
        object_key=row["o_object_key"],
        identity_conflicts=tuple(row["o_conflicts"] or ()),
        late=bool(row["o_late"]),
    )


@contextlib.asynccontextmanager
async def _writing(db: Queryable, recorded: Recorded | None) -> AsyncIterator[Queryable]:
    """``db`` itself, or (``recorded`` given, ``db`` a pool) a connection in a transaction."""
    if recorded is None or not isinstance(db, asyncpg.Pool):
        yield db
        return
    async with transaction(db) as conn:
        yield conn


@dataclass(frozen=True, kw_only=True)
class Held:
    """An instance held for the reader of its study's claimed case: stored, not indexed."""

    id: int
    case_id: CaseId
    study_id: StudyId
    #: The object it is held under (a re-sent instance: the first copy's).
    object_key: str
    #: Whether it was held just now (False: held before, sent again).
    new: bool


async def index_or_hold(
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
    recorded: Recorded | None = None,
) -> IndexResult | Held:
    """Index the instance as `index_instance` does (``recorded`` too), unless a reader has
    claimed a case of its study: then it is held for them (``held_instance``), its case's log
    and its reader told (nothing is ``recorded``). Checked and written in one transaction,
    with the study's open cases locked, so a claim is either before (held) or after (indexed,
    the reader sees it when claiming).

    Raises
    ------
    Conflict
        As `index_instance`; or a held instance of that UID has other content.
    """
    async with transaction(pool) as conn:
        open_cases = await conn.fetch(
            q("open_cases_for_hold"),
            header.study_instance_uid,
            facility_id,
            header.sop_instance_uid,
        )
        claimed = [c for c in open_cases if c["status"] == "in_progress"]
        if not claimed:
            return await _index(
                conn,
                header=header,
                object_key=object_key,
                size_bytes=size_bytes,
                facility_id=facility_id,
                sender_ae=sender_ae,
                via=via,
                priority=priority,
                clinical_question=clinical_question,
                recorded=recorded,
            )
        return await _hold(
            conn, claimed[0], header, object_key, size_bytes, facility_id, sender_ae, via
        )


@dataclass(frozen=True, kw_only=True)
class HeldInstance:
    """An instance held for a case, as its reader and administrators see it."""

    id: int
    case_id: CaseId
    study_id: StudyId
    facility_id: FacilityId
    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    object_key: str
    size_bytes: int
    sender_ae: str | None
    via: ReceivedVia
    received_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> HeldInstance:
        return cls(
            id=row["id"],
            case_id=CaseId(row["case_id"]),
            study_id=StudyId(row["study_id"]),
            facility_id=FacilityId(row["facility_id"]),
            sop_instance_uid=row["sop_instance_uid"],
            series_instance_uid=row["series_instance_uid"],
            sop_class_uid=row["sop_class_uid"],
            object_key=row["object_key"],
            size_bytes=row["size_bytes"],
            sender_ae=row["sender_ae"],
            via=ReceivedVia(row["received_via"]),
            received_at=row["received_at"],
        )


async def _hold(
    conn: Conn,
    case: asyncpg.Record,
    header: InstanceHeader,
    object_key: str,
    size_bytes: int,
    facility_id: FacilityId,
    sender_ae: str | None,
    via: ReceivedVia,
) -> Held:
    """Hold the instance for the reader who claimed `case` (see `index_or_hold`)."""
    with guarded():
        row = _one(
            await conn.fetchrow(
                q("held_instance_insert"),
                case["id"],
                case["study_id"],
                facility_id,
                header.sop_instance_uid,
                header.series_instance_uid,
                header.sop_class_uid,
                object_key,
                size_bytes,
                header.dataset_sha256,
                sender_ae,
                via.value,
            )
        )
    if row["dataset_sha256"] != header.dataset_sha256:
        raise Conflict(
            f"instance {header.sop_instance_uid} is already held with different content; "
            "the held copy is kept"
        )
    if row["inserted"]:
        await conn.execute(
            q("held_instance_told"),
            case["id"],
            facility_id,
            header.sop_instance_uid,
            header.series_instance_uid,
        )
    return Held(
        id=row["id"],
        case_id=CaseId(case["id"]),
        study_id=StudyId(case["study_id"]),
        object_key=row["object_key"],
        new=row["inserted"],
    )


async def held_of_case(db: Queryable, case_id: int) -> list[HeldInstance]:
    """The instances held for a case, first received first."""
    return [HeldInstance.from_row(r) for r in await db.fetch(q("held_of_case"), case_id)]


async def forget_held(db: Queryable, held_id: int) -> None:
    """The held instance is decided on (let in, or discarded): its row goes."""
    await db.execute(q("held_delete"), held_id)


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
    sop_class_uid: str | None = None,
) -> None:
    """Keep a refused instance's reason (and its SOP class) where administrators will see
    it."""
    await pool.execute(
        q("rejection_insert"),
        facility_id,
        sender_ae,
        sop_instance_uid,
        reason,
        object_key,
        sop_class_uid,
    )


async def mark_study_ready(pool: Queryable, study_uid: str, facility_id: FacilityId) -> bool:
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
