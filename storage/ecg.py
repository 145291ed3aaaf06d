"""ECG originals, automatic analyses, and readers' edits of them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from storage.collection import guarded
from storage.db import Conn
from storage.queries import q
from storage.records import StudyId, UserId

#: PS3.4 B.5 ECG waveform storage SOP classes share this prefix.
ECG_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.9.1."


@dataclass(frozen=True, kw_only=True)
class EcgOutcome:
    """What the analysis of one ECG instance gave: a JSON-ready result, or why it failed."""

    result: Mapping[str, Any] | None
    error: str | None
    suspected_stemi: bool = False

    def __post_init__(self) -> None:
        if (self.result is None) == (self.error is None):
            raise ValueError("an ECG outcome has either a result or an error")


@dataclass(frozen=True, kw_only=True)
class PendingEcg:
    """An ECG waveform instance that has no analysis yet."""

    instance_id: int
    sop_instance_uid: str
    study_id: StudyId
    object_key: str


async def next_to_analyse(conn: Conn, *, limit: int) -> list[PendingEcg]:
    """The next ECG waveform instances without an analysis (whichever way they arrived),
    locked in the caller's transaction: concurrent workers skip each other's."""
    return [
        PendingEcg(
            instance_id=r["id"],
            sop_instance_uid=r["sop_instance_uid"],
            study_id=StudyId(r["study_id"]),
            object_key=r["object_key"],
        )
        for r in await conn.fetch(q("ecg_pending_lock"), limit)
    ]


async def save_analysis(conn: Conn, instance_id: int, outcome: EcgOutcome) -> None:
    """Keep the analysis of one instance (a failed one with its reason: it is not retried)."""
    await conn.execute(
        q("ecg_analysis_insert"),
        instance_id,
        json.dumps(outcome.result, ensure_ascii=False) if outcome.result else None,
        outcome.error,
        outcome.suspected_stemi,
    )


async def record_original(
    pool: asyncpg.Pool,
    *,
    sop_instance_uid: str,
    object_key: str,
    format_name: str,
    filename: str | None,
    size_bytes: int,
) -> None:
    """Keep the cart's original file beside the DICOM waveform instance made from it."""
    with guarded():
        await pool.execute(
            q("ecg_original_insert"),
            sop_instance_uid,
            object_key,
            format_name,
            filename,
            size_bytes,
        )


@dataclass(frozen=True, kw_only=True)
class EarlierUpload:
    sop_instance_uid: str
    study_instance_uid: str
    patient_id: str


async def earlier_upload(
    pool: asyncpg.Pool, object_key: str, facility_id: int
) -> EarlierUpload | None:
    """The ECG made from the same original file (by its object key) sent by the same
    facility before, if any: a re-sent upload answers with it instead of a second copy."""
    r = await pool.fetchrow(q("ecg_original_of_facility"), object_key, facility_id)
    if r is None:
        return None
    return EarlierUpload(
        sop_instance_uid=r["sop_instance_uid"],
        study_instance_uid=r["study_instance_uid"],
        patient_id=r["patient_id"],
    )


async def made_copy_key(pool: asyncpg.Pool, sop_instance_uid: str, facility_id: int) -> str | None:
    """The object of the DICOM copy already made under this SOP Instance UID for this facility
    (an upload cut off after its copy was stored and before its original was kept), if any."""
    key: str | None = await pool.fetchval(
        q("instance_key_of_facility"), sop_instance_uid, facility_id
    )
    return key


async def ecg_instances_of_study(pool: asyncpg.Pool, study_id: StudyId) -> list[str]:
    """SOP Instance UIDs of a study's ECG waveform instances, in arrival order (the caller
    has checked the study is in scope)."""
    return [r["sop_instance_uid"] for r in await pool.fetch(q("ecg_instances_of_study"), study_id)]


async def ecgs_of_studies(
    pool: asyncpg.Pool, study_instance_uids: Sequence[str], user_id: UserId
) -> dict[str, list[str]]:
    """The ECG waveform instances (SOP Instance UIDs, in arrival order) of the studies the
    user may see, by Study Instance UID; a study without one is left out."""
    found: dict[str, list[str]] = {}
    rows = await pool.fetch(q("ecg_sheets_of_studies"), list(study_instance_uids), user_id)
    for r in rows:
        found.setdefault(r["study_instance_uid"], []).append(r["sop_instance_uid"])
    return found


@dataclass(frozen=True, kw_only=True)
class EcgView:
    """One ECG instance in a user's scope, with its analysis and current edits."""

    instance_id: int
    sop_instance_uid: str
    object_key: str
    study_id: StudyId
    study_instance_uid: str
    patient_ref: int
    patient_id: str
    patient_name: str | None
    facility_code: str
    facility_name: str
    analysis_id: int | None
    analyzed_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    suspected_stemi: bool
    edited_measurements: dict[str, Any]
    edited_statements: list[Any] | None
    edited_at: datetime | None
    original_key: str | None
    original_format: str | None
    original_filename: str | None


def _json(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


async def ecg_for_user(
    pool: asyncpg.Pool, sop_instance_uid: str, user_id: UserId
) -> EcgView | None:
    """An ECG waveform instance, only when its study is in the user's scope."""
    r = await pool.fetchrow(q("ecg_for_user"), sop_instance_uid, user_id)
    return None if r is None else _view(r)


def _view(r: asyncpg.Record) -> EcgView:
    return EcgView(
        instance_id=r["instance_id"],
        sop_instance_uid=r["sop_instance_uid"],
        object_key=r["object_key"],
        study_id=StudyId(r["study_id"]),
        study_instance_uid=r["study_instance_uid"],
        patient_ref=r["patient_ref"],
        patient_id=r["patient_id"],
        patient_name=r["patient_name"],
        facility_code=r["facility_code"],
        facility_name=r["facility_name"],
        analysis_id=r["analysis_id"],
        analyzed_at=r["analyzed_at"],
        result=_json(r["result"]),
        error=r["error"],
        suspected_stemi=bool(r["suspected_stemi"]),
        edited_measurements=_json(r["edited_measurements"]) or {},
        edited_statements=_json(r["edited_statements"]),
        edited_at=r["edited_at"],
        original_key=r["original_key"],
        original_format=r["original_format"],
        original_filename=r["original_filename"],
    )


@dataclass(frozen=True, kw_only=True)
class EcgPrior:
    """Another ECG of the same person, at any linked facility; ``earlier`` when it was
    received before the ECG it is a prior of."""

    sop_instance_uid: str
    study_id: StudyId
    study_instance_uid: str
    received_at: datetime
    facility_code: str
    facility_name: str
    earlier: bool
    result: dict[str, Any] | None
    edited_measurements: dict[str, Any]
    edited_statements: list[Any] | None


async def editable_by(pool: asyncpg.Pool, sop_instance_uid: str, user_id: UserId) -> bool:
    """Whether the user reads the ECG: holds a claim on its ECG case, or signed a report on
    one (a reader who sees it only as a prior does not)."""
    return bool(await pool.fetchval(q("ecg_editable_by"), sop_instance_uid, user_id))


async def priors(
    pool: asyncpg.Pool, ecg: EcgView, user_id: UserId, *, limit: int = 5
) -> list[EcgPrior]:
    """The other ECGs of the patient and of every record linked to it in the county patient
    index, at any facility, that the user may see (as imaging priors), newest first."""
    rows = await pool.fetch(q("ecg_priors"), ecg.instance_id, user_id, limit)
    return [
        EcgPrior(
            sop_instance_uid=r["sop_instance_uid"],
            study_id=StudyId(r["study_id"]),
            study_instance_uid=r["study_instance_uid"],
            received_at=r["first_received_at"],
            facility_code=r["facility_code"],
            facility_name=r["facility_name"],
            earlier=bool(r["earlier"]),
            result=_json(r["result"]),
            edited_measurements=_json(r["edited_measurements"]) or {},
            edited_statements=_json(r["edited_statements"]),
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class EditedValues:
    """The readers' overrides of one analysis: measurements by name, the statement list."""

    measurements: dict[str, Any]
    statements: list[Any] | None


async def lock_edits(conn: Conn, analysis_id: int) -> EditedValues | None:
    """The current overrides of an analysis, locked in the caller's transaction."""
    row = await conn.fetchrow(q("ecg_analysis_lock"), analysis_id)
    if row is None:
        return None
    return EditedValues(
        measurements=json.loads(row["edited_measurements"]),
        statements=_json(row["edited_statements"]),
    )


async def save_edits(
    conn: Conn,
    analysis_id: int,
    user_id: UserId,
    values: EditedValues,
    changes: Sequence[tuple[str, Any, Any]],
) -> None:
    """Keep the new overrides, and each change (field, old value, new value) in the history."""
    await conn.execute(
        q("ecg_analysis_edit"),
        analysis_id,
        json.dumps(values.measurements, ensure_ascii=False),
        json.dumps(values.statements, ensure_ascii=False)
        if values.statements is not None
        else None,
        user_id,
    )
    for field, old, new in changes:
        await conn.execute(
            q("ecg_edit_insert"),
            analysis_id,
            user_id,
            field,
            json.dumps(old, ensure_ascii=False),
            json.dumps(new, ensure_ascii=False),
        )


@dataclass(frozen=True, kw_only=True)
class EcgEdit:
    at: datetime
    field: str
    old_value: Any
    new_value: Any
    username: str
    display_name: str


async def edits(pool: asyncpg.Pool, analysis_id: int) -> list[EcgEdit]:
    rows = await pool.fetch(q("ecg_edits"), analysis_id)
    return [
        EcgEdit(
            at=r["at"],
            field=r["field"],
            old_value=_json(r["old_value"]),
            new_value=_json(r["new_value"]),
            username=r["username"],
            display_name=r["display_name"],
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class RefusedEcg:
    """A file a clinic sent that could not be read, kept with why."""

    id: int
    received_at: datetime
    filename: str | None
    size_bytes: int
    reason: str
    facility: str


@dataclass(frozen=True, kw_only=True)
class RefusedFile:
    object_key: str
    filename: str | None
    facility_id: int


async def keep_refused(
    pool: asyncpg.Pool,
    *,
    facility_id: int,
    user_id: UserId | None,
    filename: str | None,
    size_bytes: int,
    object_key: str,
    reason: str,
    most_per_day: int,
) -> int | None:
    """Keep a refused file's row; its id, or None when the facility has kept ``most_per_day``
    today already (the object is then left for the collector)."""
    with guarded():
        row = await pool.fetchrow(
            q("refused_ecg_insert"),
            facility_id,
            user_id,
            filename,
            size_bytes,
            object_key,
            reason,
            most_per_day,
        )
    return int(row["id"]) if row is not None else None


async def refused_for_user(pool: asyncpg.Pool, user_id: UserId, *, limit: int) -> list[RefusedEcg]:
    """The refused files the user may see (their facility's, or their network's)."""
    rows = await pool.fetch(q("refused_ecg_for_user"), user_id, limit)
    return [
        RefusedEcg(
            id=r["id"],
            received_at=r["received_at"],
            filename=r["filename"],
            size_bytes=r["size_bytes"],
            reason=r["reason"],
            facility=r["facility"],
        )
        for r in rows
    ]


async def refused_file(pool: asyncpg.Pool, user_id: UserId, refused_id: int) -> RefusedFile | None:
    """Where a refused file the user may see is kept; None: no such file in their scope."""
    row = await pool.fetchrow(q("refused_ecg_of_user"), user_id, refused_id)
    if row is None:
        return None
    return RefusedFile(
        object_key=row["object_key"], filename=row["filename"], facility_id=row["facility_id"]
    )
