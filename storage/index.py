"""The DICOM index: patients, studies, series and instances, written once per instance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from storage import audit
from storage.collection import collected_from, guarded
from storage.db import Conn, Queryable, transaction
from storage.errors import Conflict, ObjectCollected, Unavailable, is_unavailable
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


class Refused(StrEnum):
    """Why the index refused an instance (its record keeps the index's own words)."""

    #: The SOP Instance UID was sent by another facility.
    INSTANCE_OF_ANOTHER_FACILITY = "instance_of_another_facility"
    #: The SOP Instance UID is stored with other content; the stored copy is kept.
    STORED_OTHERWISE = "stored_otherwise"
    #: The SOP Instance UID is held for a reader with other content; the held copy is kept.
    HELD_OTHERWISE = "held_otherwise"
    #: The study was sent by another facility.
    STUDY_OF_ANOTHER_FACILITY = "study_of_another_facility"
    #: The series belongs to another study.
    SERIES_OF_ANOTHER_STUDY = "series_of_another_study"


#: How ``ingest_instance`` words each refusal (TM409): the start and the words that tell it.
_REFUSED_WORDS = (
    ("instance ", "was sent by another facility", Refused.INSTANCE_OF_ANOTHER_FACILITY),
    ("instance ", "is already stored with different content", Refused.STORED_OTHERWISE),
    ("study ", "was sent by another facility", Refused.STUDY_OF_ANOTHER_FACILITY),
    ("series ", "already belongs to another study", Refused.SERIES_OF_ANOTHER_STUDY),
)


class IndexRefusal(Conflict):
    """The index refused an instance for what is already stored; ``kind`` says why (None:
    a refusal this code does not know, said in the index's words)."""

    def __init__(self, message: str, kind: Refused | None) -> None:
        super().__init__(message)
        self.kind = kind


def _refusal(message: str) -> IndexRefusal:
    for begins, words, kind in _REFUSED_WORDS:
        if message.startswith(begins) and words in message:
            return IndexRefusal(message, kind)
    return IndexRefusal(message, None)


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
    write = Write(
        header=header,
        object_key=object_key,
        size_bytes=size_bytes,
        facility_id=facility_id,
        sender_ae=sender_ae,
        via=via,
        priority=priority,
        clinical_question=clinical_question,
    )
    return await _index(pool, write)


async def _index(db: Queryable, w: Write) -> IndexResult:
    """The index statement of one instance."""
    try:
        row = await db.fetchrow(q("ingest_instance"), *_ingest_args(w))
    except asyncpg.PostgresError as exc:
        raise _refused_or_collected(exc) from None
    return _indexed(_one(row))


#: SQLSTATE of ``ingest_instance_alone`` when the receipt could not be written.
_UNRECORDED = "TM503"


async def _alone(pool: asyncpg.Pool, w: Write, receipt: audit.Entry) -> IndexResult | None:
    """One instance indexed with its receipt in one statement, its own transaction
    (migration 0075); None when it is to be held for its study's reader (nothing written:
    hold it in a transaction)."""
    try:
        row = _one(
            await pool.fetchrow(
                q("ingest_instance_alone"), w.hold_for_reader, *_ingest_args(w), *receipt.args
            )
        )
    except asyncpg.PostgresError as exc:
        if getattr(exc, "sqlstate", None) == _UNRECORDED:
            raise audit.unwritten(receipt.action, exc) from exc
        raise _refused_or_collected(exc) from None
    if row["o_outcome"] == "hold":
        return None
    return _indexed(row)


def _ingest_args(w: Write) -> tuple[object, ...]:
    """The arguments of ``ingest_instance`` (migration 0030), in its order."""
    header = w.header
    return (
        w.facility_id,
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
        w.object_key,
        w.size_bytes,
        header.dataset_sha256,
        w.sender_ae,
        w.via.value,
        header.metadata_zlib,
        w.priority.value,
        w.clinical_question,
    )


def _refused_or_collected(exc: asyncpg.PostgresError) -> Exception:
    """The index's refusal (TM409) or a collected object (TM410) as storage names them; any
    other error as it is."""
    if getattr(exc, "sqlstate", None) == _REFUSED:
        return _refusal(str(exc))
    return collected_from(exc) or exc


def _indexed(row: asyncpg.Record) -> IndexResult:
    return IndexResult(
        outcome=IndexOutcome(row["o_outcome"]),
        study_id=StudyId(row["o_study_id"]),
        object_key=row["o_object_key"],
        identity_conflicts=tuple(row["o_conflicts"] or ()),
        late=bool(row["o_late"]),
    )


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


@dataclass(frozen=True, kw_only=True)
class Write:
    """One instance's index write, its object durable: what `IndexGroups.write` commits."""

    header: InstanceHeader
    object_key: str
    size_bytes: int
    facility_id: FacilityId
    sender_ae: str | None
    via: ReceivedVia
    priority: Priority = Priority.MEDIUM
    clinical_question: str | None = None
    #: Held for the reader of its study's claimed case instead of indexed (a C-STORE: the
    #: calling AE title's word does not change a case under its reader).
    hold_for_reader: bool = False
    #: Its audit record, committed with its row when it is indexed (not when held).
    receipt: audit.Entry | None = None


async def _apply(conn: Conn, w: Write) -> IndexResult | Held:
    """Index the instance, or hold it when ``hold_for_reader`` and a reader has claimed a case
    of its study: held for them (``held_instance``), its case's log and its reader told.
    Checked and written in the caller's transaction, with the study's open cases locked, so a
    claim is either before (held) or after (indexed, the reader sees it when claiming)."""
    if w.hold_for_reader:
        open_cases = await conn.fetch(
            q("open_cases_for_hold"),
            w.header.study_instance_uid,
            w.facility_id,
            w.header.sop_instance_uid,
        )
        claimed = [c for c in open_cases if c["status"] == "in_progress"]
        if claimed:
            return await _hold(conn, claimed[0], w)
    return await _index(conn, w)


#: SQLSTATEs of a transaction the server gave up to let another one on (a deadlock, a
#: serialization failure): run again, it changed nothing.
_RUN_AGAIN = frozenset({"40P01", "40001"})
#: How many times a group whose transaction the server gave up is run again.
GROUP_RETRIES = 3


def _run_again(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) in _RUN_AGAIN


class IndexGroups:
    """The index writes of instances arriving together in one process, committed together.

    A write waits while the group before it commits; the writes that arrived meanwhile (up to
    ``most``) are the next group: one transaction, a savepoint per instance (a bad instance
    fails alone), the receipts' audit records appended after every row is written (the audit
    chain's lock is taken last, so groups of several processes cannot wait on each other in a
    circle), one commit. A write returns only after its group's commit: nothing is
    acknowledged before its row is durable. One write alone waits for nothing and is one
    statement (its hold check, its row and its receipt), its own transaction.
    """

    def __init__(self, pool: asyncpg.Pool, *, most: int = 64) -> None:
        self._pool = pool
        self._most = most
        self._waiting: list[tuple[Write, asyncio.Future[IndexResult | Held]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def write(self, w: Write) -> IndexResult | Held:
        """Index (or hold) one instance and commit it with its group.

        Raises
        ------
        Conflict
            As `index_instance`; or a held instance of that UID has other content.
        ObjectCollected
            Its object was collected meanwhile (see `storage.collection.referring`).
        """
        done: asyncio.Future[IndexResult | Held] = asyncio.get_running_loop().create_future()
        self._waiting.append((w, done))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain())
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._most]
                del self._waiting[: self._most]
                await self._commit(group)
        finally:
            self._draining = None
            for _, done in self._waiting:  # cancelled while draining (the process stops)
                if not done.done():
                    done.set_exception(Unavailable("the index writer stopped"))
            self._waiting.clear()

    async def _commit(self, group: list[tuple[Write, asyncio.Future[IndexResult | Held]]]) -> None:
        """One group's transaction, run again if the server gave it up for another."""
        writes = [w for w, _ in group]
        for attempt in range(GROUP_RETRIES + 1):
            try:
                outcomes = await _commit_group(self._pool, writes)
            except Exception as exc:
                if _run_again(exc) and attempt < GROUP_RETRIES:
                    continue
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                return
            except BaseException:
                for _, done in group:
                    if not done.done():
                        done.set_exception(Unavailable("the index writer stopped"))
                raise
            break
        for (_, done), outcome in zip(group, outcomes, strict=True):
            if done.done():
                continue
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)


async def _commit_group(
    pool: asyncpg.Pool, writes: list[Write]
) -> list[IndexResult | Held | BaseException]:
    """Write every instance of a group in one transaction and commit it; each instance's
    outcome, or the error it alone failed with. Written in study UID order (rows are locked
    in one order by every group); the audit records last."""
    order = sorted(range(len(writes)), key=lambda i: _lock_order(writes[i]))
    outcomes: list[IndexResult | Held | BaseException] = [Unavailable("not written")] * len(writes)
    if len(writes) == 1 and writes[0].receipt is not None:
        alone = await _alone(pool, writes[0], writes[0].receipt)
        if alone is not None:
            return [alone]
    async with transaction(pool) as conn:
        if len(writes) == 1:
            outcomes[0] = await _apply(conn, writes[0])
        else:
            for i in order:
                outcomes[i] = await _in_savepoint(conn, writes[i])
        receipts = [
            w.receipt
            for w, o in zip(writes, outcomes, strict=True)
            if w.receipt is not None and isinstance(o, IndexResult)
        ]
        await audit.record_all(conn, receipts)
    return outcomes


async def _in_savepoint(conn: Conn, w: Write) -> IndexResult | Held | BaseException:
    """One instance of a group, undone alone when it fails. A deadlock, or the connection
    gone, fails the whole group: the server gave up the transaction (run again), or it is
    away (every instance of the group is answered "not now")."""
    savepoint = conn.transaction()
    await savepoint.start()
    try:
        outcome = await _apply(conn, w)
    except (Conflict, ObjectCollected, asyncpg.PostgresError) as exc:
        if _run_again(exc) or is_unavailable(exc):
            raise
        await savepoint.rollback()
        return exc
    await savepoint.commit()
    return outcome


def _lock_order(w: Write) -> str:
    """Studies in UID order, every group alike (the study's row is locked first); within a
    study the instances keep the order they arrived in (the first names the study)."""
    return w.header.study_instance_uid


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


async def _hold(conn: Conn, case: asyncpg.Record, w: Write) -> Held:
    """Hold the instance for the reader who claimed `case` (see `_apply`)."""
    header, facility_id = w.header, w.facility_id
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
                w.object_key,
                w.size_bytes,
                header.dataset_sha256,
                w.sender_ae,
                w.via.value,
            )
        )
    if row["dataset_sha256"] != header.dataset_sha256:
        raise IndexRefusal(
            f"instance {header.sop_instance_uid} is already held with different content; "
            "the held copy is kept",
            Refused.HELD_OTHERWISE,
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
