"""ECGs: a cart's file made into a DICOM waveform and stored, the automatic analysis of every
ECG waveform (whichever way it arrived), reading one (audited), readers' edits with who changed
what, the standard 12-lead sheet, and the original file.

Reading files, building the DICOM copy, analysing and rendering are CPU work: in a thread, or
in the process pool the caller gives, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

from pydicom.uid import generate_uid

from ecg.analysis import analyze_ecg
from ecg.compare import Comparison, SerialEcg, compare_with_prior, statement_codes
from ecg.dicom_export import to_dicom_waveform
from ecg.errors import EcgError
from ecg.formats import read_ecg
from ecg.record import MEASUREMENT_KEYS, EcgRecord
from ecg.render import Language as SheetLanguage
from ecg.render import SheetFilter, SheetHeader, filter_for_sheet, render_pdf, render_png
from storage import audit, collection, ecg
from storage.db import Pool, transaction
from storage.ecg import EcgOutcome, EcgPrior, EcgView, EditedValues
from storage.objects import ObjectStore
from storage.records import (
    AuditAction,
    Facility,
    Language,
    Priority,
    ReceivedVia,
    Report,
    Role,
    StudyId,
    User,
    UserId,
)
from teleradiology.core.dicom import check_inflated_size
from teleradiology.core.errors import BadRequest, Forbidden, InvalidDicom, NotFound, QuotaExceeded
from teleradiology.core.language import N_, Phrase
from teleradiology.core.report_pdf import CJK_FONT, ReportEcg
from teleradiology.services import routing
from teleradiology.services.intake import Ingestor
from teleradiology.services.work_pool import WorkLost, WorkPool, offload

log = logging.getLogger(__name__)

#: An ECG file none of the readers could read, and why.
UNREADABLE = N_("无法读取心电图文件：%(error)s")


# --- upload ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EcgUpload:
    """What a cart sent: one file, or a WFDB record's header with its signal files."""

    data: bytes
    filename: str | None
    #: A WFDB record's other files (its ``.dat``), by file name; the header is ``data``.
    related: dict[str, bytes] = field(default_factory=dict)

    def original(self) -> tuple[bytes, str | None]:
        """The bytes to keep as the original, and their name: the file itself, or for a
        WFDB record of several files a ZIP archive holding each file unchanged (stored)."""
        if not self.related:
            return self.data, self.filename
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in [(self.filename or "record.hea", self.data), *self.related.items()]:
                info = zipfile.ZipInfo(PurePath(name).name, date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, data)
        stem = PurePath(self.filename or "record.hea").stem
        return buffer.getvalue(), f"{stem}.zip"

    def digest(self) -> str:
        """SHA-256 of the file and its related files: the same upload makes the same UIDs."""
        digest = hashlib.sha256(self.data)
        for name in sorted(self.related):
            digest.update(self.related[name])
        return digest.hexdigest()


@dataclass(frozen=True, kw_only=True)
class EcgRequest:
    """The clinic's request with the file: whose ECG, how urgent, what question."""

    patient_id: str | None = None
    patient_name: str | None = None
    priority: Priority = Priority.MEDIUM
    question: str | None = None
    #: Who sent it (kept with the file when it cannot be read).
    sent_by: UserId | None = None


@dataclass(frozen=True, kw_only=True)
class UploadedEcg:
    study_instance_uid: str
    sop_instance_uid: str
    record: EcgRecord
    #: What ingest said of the DICOM copy (`IndexOutcome`), ``duplicate`` when resent.
    outcome: str
    #: The same file from the same facility came before: this is the ECG made then.
    resent: bool = False


async def upload(
    pool: Pool,
    objects: ObjectStore,
    ingestor: Ingestor,
    facility: Facility,
    sent: EcgUpload,
    request: EcgRequest,
    work: WorkPool | None = None,
) -> UploadedEcg:
    """Store an ECG file from a cart (any supported format) for a clinic's facility.

    The original is kept; a DICOM ECG waveform made from it takes the one ingest path, so it
    is indexed, analyzed and routed like an ECG sent by C-STORE. The file is read in
    ``work`` (a child process with a memory and time limit).

    Raises
    ------
    BadRequest
        The file is not an ECG we read, or names no patient and none was given.
    """
    try:
        record = await _read(sent, work)
    except BadRequest as exc:
        kept = await _keep_refused(pool, objects, facility, sent, request.sent_by, str(exc))
        if kept is None:
            raise BadRequest(exc.phrase) from None
        raise BadRequest(N_("%(error)s。%(kept)s"), error=exc.phrase, kept=kept) from None
    patient_id = request.patient_id or record.patient.id
    if not patient_id:
        raise BadRequest(N_("请给出 'patient_id'：此心电图文件没有患者编号"))
    patient_name = request.patient_name or record.patient.name or None
    data, filename = await asyncio.to_thread(sent.original)
    original = _Original(data=data, filename=filename, key=await objects.put(data))
    earlier = await ecg.earlier_upload(pool, original.key, facility.id)
    if earlier is not None and earlier.patient_id == patient_id:
        # Re-sent (a retry after a broken link): the ECG made the first time, stored once.
        return UploadedEcg(
            study_instance_uid=earlier.study_instance_uid,
            sop_instance_uid=earlier.sop_instance_uid,
            record=record,
            outcome="duplicate",
            resent=True,
        )
    uids = _CopyUids.of([facility.code, await asyncio.to_thread(sent.digest), patient_id])
    made = await _made_copy(pool, objects, uids, facility)
    part10 = made or await _dicom_copy(record, patient_id, patient_name, facility, uids)
    try:
        stored = await ingestor.ingest(
            part10,
            facility=facility,
            via=ReceivedVia.API,
            priority=request.priority,
            clinical_question=request.question,
        )
    except QuotaExceeded:
        # Past the facility's daily limit nothing is kept: not even the original.
        await collection.collect(pool, objects, original.key)
        raise
    await _keep_original(pool, objects, stored.sop_instance_uid, original, record)
    # Our own client sent the whole ECG: the study is complete now.
    await routing.mark_ready(pool, stored.study_instance_uid, facility.id)
    log.info("ECG from %s stored (%s)", facility.code, record.source_format.value)
    return UploadedEcg(
        study_instance_uid=stored.study_instance_uid,
        sop_instance_uid=stored.sop_instance_uid,
        record=record,
        outcome=stored.outcome.value,
        resent=made is not None,
    )


@dataclass(frozen=True, kw_only=True)
class _Original:
    """The file as the cart sent it, and where it is kept."""

    data: bytes
    filename: str | None
    key: str


async def _keep_original(
    pool: Pool, objects: ObjectStore, sop_uid: str, original: _Original, record: EcgRecord
) -> None:
    async def write() -> None:
        await ecg.record_original(
            pool,
            sop_instance_uid=sop_uid,
            object_key=original.key,
            format_name=record.source_format.value,
            filename=original.filename,
            size_bytes=len(original.data),
        )

    await collection.referring(
        pool, objects, [original.key], write, rewrite=lambda: objects.put(original.data)
    )


#: Refused files kept per facility and UTC day (a cart sending garbage in a loop must not
#: fill the store); past it, refusals are answered and not kept.
REFUSED_KEPT_PER_DAY = 50


async def _keep_refused(
    pool: Pool,
    objects: ObjectStore,
    facility: Facility,
    sent: EcgUpload,
    sent_by: UserId | None,
    reason: str,
) -> Phrase | None:
    """Keep the original of a file that could not be read, with why; what to add to the
    refusal (where it is kept), or None when it was not kept."""
    data, filename = await asyncio.to_thread(sent.original)
    key = await objects.put(data)

    async def write() -> int | None:
        return await ecg.keep_refused(
            pool,
            facility_id=facility.id,
            user_id=sent_by,
            filename=filename,
            size_bytes=len(data),
            object_key=key,
            reason=reason,
            most_per_day=REFUSED_KEPT_PER_DAY,
        )

    kept = await collection.referring(
        pool, objects, [key], write, rewrite=lambda: objects.put(data)
    )
    if kept is None:
        await collection.collect(pool, objects, key)
        log.warning("ECG file from %s refused; not kept (the day's limit)", facility.code)
        return None
    log.info("ECG file from %s refused; kept as refused ECG %d", facility.code, kept)
    return Phrase(
        N_("文件已作为被拒心电图 %(id)s 保留：管理员可查看，或发给心电图机厂家"), {"id": kept}
    )


async def refused(pool: Pool, user: User, *, limit: int = 200) -> list[ecg.RefusedEcg]:
    """The refused ECG files of the clinic's facility, or of the administrator's network."""
    if user.role not in (Role.CLINIC, Role.ADMIN):
        raise Forbidden(N_("被拒的心电图文件只供其诊所及管理员查看"))
    return await ecg.refused_for_user(pool, user.id, limit=limit)


async def refused_original(
    pool: Pool, objects: ObjectStore, user: User, refused_id: int
) -> tuple[bytes, str]:
    """A refused file as it was received, and its name; audited.

    Raises
    ------
    NotFound
        No refused file by that number in the user's scope.
    """
    found = await ecg.refused_file(pool, user.id, refused_id)
    if found is None:
        raise NotFound(N_("没有被拒心电图文件 %(id)s"), id=refused_id)
    data = await objects.get(found.object_key)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.ORIGINAL,
        object_type="refused_ecg",
        object_id=str(refused_id),
    )
    return data, found.filename or f"refused-ecg-{refused_id}.bin"


async def _read(sent: EcgUpload, work: WorkPool | None) -> EcgRecord:
    try:
        check_inflated_size(sent.data)
    except InvalidDicom as exc:
        raise BadRequest(UNREADABLE, error=exc.phrase) from None
    try:
        return await offload(work, read_ecg, sent.data, sent.filename, related_files=sent.related)
    except MemoryError:
        raise BadRequest(N_("无法读取心电图文件：所需内存超出本服务器的限制")) from None
    except EcgError as exc:
        raise BadRequest(UNREADABLE, error=str(exc)) from None


@dataclass(frozen=True, kw_only=True)
class _CopyUids:
    """The UIDs of the DICOM copy: the same file from the same facility for the same patient
    makes the same UIDs, so a retry finds what the first attempt made."""

    study: str
    series: str
    instance: str

    @classmethod
    def of(cls, seed: list[str]) -> _CopyUids:
        def uid(kind: str) -> str:
            return str(generate_uid(entropy_srcs=[*seed, kind]))

        return cls(study=uid("study"), series=uid("series"), instance=uid("instance"))


async def _made_copy(
    pool: Pool, objects: ObjectStore, uids: _CopyUids, facility: Facility
) -> bytes | None:
    """The copy an earlier attempt stored, byte for byte (it carries the time of that attempt
    when the file has none), so that the retry is a duplicate and not a conflict."""
    key = await ecg.made_copy_key(pool, uids.instance, facility.id)
    return None if key is None else await objects.get(key)


async def _dicom_copy(
    record: EcgRecord,
    patient_id: str,
    patient_name: str | None,
    facility: Facility,
    uids: _CopyUids,
) -> bytes:
    try:
        return await asyncio.to_thread(
            _to_dicom, record, patient_id, patient_name, facility.name, uids
        )
    except EcgError as exc:
        raise BadRequest(N_("心电图无法存为 DICOM 波形：%(reason)s"), reason=str(exc)) from None


def _to_dicom(
    record: EcgRecord,
    patient_id: str,
    patient_name: str | None,
    institution: str,
    uids: _CopyUids,
) -> bytes:
    """The DICOM General ECG copy of the cart's record."""
    return to_dicom_waveform(
        record,
        patient_id=patient_id,
        patient_name=patient_name or "",
        study_instance_uid=uids.study,
        series_instance_uid=uids.series,
        sop_instance_uid=uids.instance,
        institution_name=institution,
        # A file without its acquisition time (CSV, some carts): the time we received it.
        fallback_acquired_at=datetime.now(UTC),
    )


# --- analysis --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AnalyzedEcg:
    instance_id: int
    sop_instance_uid: str
    study_id: StudyId
    suspected_stemi: bool


def analyze_bytes(data: bytes) -> EcgOutcome:
    """Read a stored ECG waveform object and analyze it (CPU-bound: runs in a process pool)."""
    try:
        record = read_ecg(data, None)
        analysis = analyze_ecg(record)
    except (EcgError, ValueError) as exc:
        return EcgOutcome(result=None, error=str(exc)[:500])
    except Exception as exc:
        # Kept as a failed analysis, so one bad ECG is not retried forever ahead of the rest.
        log.exception("ECG analysis failed unexpectedly")
        return EcgOutcome(result=None, error=f"the analysis failed ({type(exc).__name__})")
    return EcgOutcome(
        result=analysis.to_dict(), error=None, suspected_stemi=bool(analysis.suspected_stemi)
    )


async def analyze_pending(
    pool: Pool,
    objects: ObjectStore,
    executor: WorkPool | None,
    *,
    limit: int = 8,
    analyze: Callable[[bytes], EcgOutcome] = analyze_bytes,
) -> list[AnalyzedEcg]:
    """Analyze up to ``limit`` ECG waveform instances that have no analysis yet, each in
    ``executor`` (a process pool; None: a thread). Concurrent workers skip each other's
    instances; a failed analysis is kept with its reason, so it is not retried forever."""
    done: list[AnalyzedEcg] = []
    async with transaction(pool) as conn:
        for pending in await ecg.next_to_analyse(conn, limit=limit):
            data = await objects.get(pending.object_key)
            outcome = await _analysis(executor, analyze, data)
            await ecg.save_analysis(conn, pending.instance_id, outcome)
            done.append(
                AnalyzedEcg(
                    instance_id=pending.instance_id,
                    sop_instance_uid=pending.sop_instance_uid,
                    study_id=pending.study_id,
                    suspected_stemi=outcome.suspected_stemi,
                )
            )
    return done


async def _analysis(
    executor: WorkPool | None, analyze: Callable[[bytes], EcgOutcome], data: bytes
) -> EcgOutcome:
    try:
        return await offload(executor, analyze, data)
    except (WorkLost, MemoryError) as exc:
        # Kept as a failed analysis: an ECG that kills its process is not retried forever.
        log.warning("ECG analysis stopped (%s)", type(exc).__name__)
        reason = "out of memory" if isinstance(exc, MemoryError) else str(exc)
        return EcgOutcome(result=None, error=f"the analysis was stopped: {reason}"[:500])


# --- reading and editing ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EcgReading:
    """One ECG as its reader sees it: the analysis and edits, their history, the priors and
    what changed since the last of them."""

    view: EcgView
    edits: list[ecg.EcgEdit]
    priors: list[ecg.EcgPrior]
    comparison: Comparison | None = None
    #: The prior compared with (the newest analysed one received before).
    compared_with: ecg.EcgPrior | None = None


async def find(pool: Pool, user: User, sop_instance_uid: str) -> EcgView:
    """An ECG in the user's scope.

    Raises
    ------
    NotFound
        No such ECG, or not in the user's scope.
    """
    found = await ecg.ecg_for_user(pool, sop_instance_uid, user.id)
    if found is None:
        raise NotFound(N_("找不到心电图 %(uid)s"), uid=sop_instance_uid)
    return found


async def read(pool: Pool, user: User, sop_instance_uid: str, *, zone: ZoneInfo) -> EcgReading:
    """An ECG with its edit history, the person's prior ECGs at every facility the user may
    see them of, and what changed since the last one (its date in ``zone``); audited.

    Raises
    ------
    NotFound
        No such ECG in the user's scope.
    """
    view = await find(pool, user, sop_instance_uid)
    priors = await ecg.priors(pool, view, user.id)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="ecg",
        object_id=view.sop_instance_uid,
        study_ids=(view.study_id, *sorted({p.study_id for p in priors})),
    )
    history = await ecg.edits(pool, view.analysis_id) if view.analysis_id else []
    last = last_prior(priors)
    comparison = serial_comparison(view, last, zone)
    return EcgReading(
        view=view,
        edits=history,
        priors=priors,
        comparison=comparison,
        compared_with=last if comparison else None,
    )


def _serial(
    result: Mapping[str, Any] | None,
    edited_measurements: Mapping[str, Any],
    edited_statements: list[Any] | None,
) -> SerialEcg:
    """An analysis as compared: its measurements and statements as the readers left them."""
    automatic = dict((result or {}).get("measurements", {}))
    statements = edited_statements
    if statements is None:
        statements = list((result or {}).get("statements", []))
    return SerialEcg(
        measurements={**automatic, **edited_measurements}, codes=statement_codes(statements)
    )


def last_prior(priors: Sequence[EcgPrior]) -> EcgPrior | None:
    """The newest analysed ECG received before the one these are the priors of."""
    return next((p for p in priors if p.earlier and p.result is not None), None)


def serial_comparison(view: EcgView, last: EcgPrior | None, zone: ZoneInfo) -> Comparison | None:
    """What changed since the prior ``last`` (None when there is none, or this ECG is not
    analysed)."""
    if view.result is None or last is None:
        return None
    now = _serial(view.result, view.edited_measurements, view.edited_statements)
    then = _serial(last.result, last.edited_measurements, last.edited_statements)
    return compare_with_prior(
        now,
        then,
        prior_date=last.received_at.astimezone(zone).date(),
        prior_facility=last.facility_name,
    )


async def analyzed(pool: Pool, user: User, sop_instance_uid: str) -> EcgView:
    """An ECG in the user's scope whose analysis is done (what a reader edits).

    Raises
    ------
    NotFound
        No such ECG in the user's scope.
    BadRequest
        It has not been analyzed yet.
    """
    view = await find(pool, user, sop_instance_uid)
    _analysis_of(view)
    return view


def _analysis_of(view: EcgView) -> int:
    if view.analysis_id is None:
        raise BadRequest(N_("此心电图尚未分析；请稍后再试"))
    return view.analysis_id


async def edit(
    pool: Pool,
    user: User,
    view: EcgView,
    *,
    measurements: Mapping[str, float | None] | None = None,
    statements: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """A reader corrects measurements (None removes a correction) or the statement list of
    an analyzed ECG (`analyzed`); every changed field is kept with its old and new value.

    Raises
    ------
    Forbidden
        The user does not read this ECG: only the reader holding its case, or who signed a
        report on it, changes it.
    """
    if not await ecg.editable_by(pool, view.sop_instance_uid, user.id):
        raise Forbidden(N_("只有领取此心电图病例或签发其报告的阅片医生能修改测量值：请先领取病例"))
    await edit_analysis(
        pool,
        _analysis_of(view),
        user.id,
        measurements=measurements,
        statements=statements,
        study_id=view.study_id,
    )


async def edit_analysis(
    pool: Pool,
    analysis_id: int,
    user_id: UserId,
    *,
    measurements: Mapping[str, float | None] | None = None,
    statements: Sequence[Mapping[str, Any]] | None = None,
    study_id: StudyId | None = None,
) -> None:
    """Apply a reader's changes to one analysis, keeping who changed what, audited in the
    same transaction; no change, no history line."""
    async with transaction(pool) as conn:
        current = await ecg.lock_edits(conn, analysis_id)
        if current is None:
            raise NotFound(N_("找不到心电图分析 %(id)s"), id=analysis_id)
        values, changes = edited(current, measurements=measurements, statements=statements)
        if changes:
            await ecg.save_edits(conn, analysis_id, user_id, values, changes)
            await audit.record(
                conn,
                user_id=user_id,
                action=AuditAction.EDIT,
                object_type="ecg_analysis",
                object_id=analysis_id,
                detail={"fields": [field for field, _, _ in changes]},
                study_ids=() if study_id is None else (study_id,),
            )


def edited(
    current: EditedValues,
    *,
    measurements: Mapping[str, float | None] | None,
    statements: Sequence[Mapping[str, Any]] | None,
) -> tuple[EditedValues, list[tuple[str, Any, Any]]]:
    """The overrides after a reader's changes, and each change as (field, old, new)."""
    values = dict(current.measurements)
    changes: list[tuple[str, Any, Any]] = []
    for key, value in (measurements or {}).items():
        if values.get(key) != value:
            changes.append((f"measurements.{key}", values.get(key), value))
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
    listed = current.statements
    if statements is not None and list(statements) != listed:
        changes.append(("statements", listed, list(statements)))
        listed = list(statements)
    return EditedValues(measurements=values, statements=listed), changes


def current_measurements(view: EcgView) -> dict[str, Any]:
    """The automatic measurements with the readers' changes over them."""
    automatic = dict((view.result or {}).get("measurements", {}))
    automatic.update(view.edited_measurements)
    return automatic


@dataclass(frozen=True, kw_only=True)
class CartFindings:
    """What the cart wrote into its file beside its measurements, as the stored analysis
    keeps it (empty for an analysis stored before it was kept)."""

    statements: list[str]
    lead_measurements: dict[str, dict[str, float]]
    pacemaker_spikes: list[dict[str, Any]]


def cart_findings(view: EcgView) -> CartFindings:
    """The cart's statements, per-lead measurements and pacemaker stimuli of an ECG."""
    result = view.result or {}
    per_lead = result.get("device_lead_measurements") or {}
    return CartFindings(
        statements=[str(s) for s in result.get("device_statements") or []],
        lead_measurements={
            str(lead): {k: float(v) for k, v in values.items() if isinstance(v, int | float)}
            for lead, values in per_lead.items()
            if isinstance(values, dict)
        },
        pacemaker_spikes=[s for s in result.get("device_pacemaker_spikes") or [] if s],
    )


def current_statements(view: EcgView) -> list[Any]:
    """The statements: the readers' list when they changed it, else the automatic one."""
    if view.edited_statements is not None:
        return list(view.edited_statements)
    return list((view.result or {}).get("statements", []))


# --- the sheet and the original --------------------------------------------------------------


class SheetKind(StrEnum):
    PNG = "png"
    PDF = "pdf"


@cache
def _font_bytes() -> bytes:
    """The CJK font the sheet's Chinese text is drawn with (the report PDF's), read once."""
    try:
        return CJK_FONT.read_bytes()
    except OSError:
        raise RuntimeError(
            f"the CJK font {CJK_FONT} is missing: install the Debian package fonts-noto-cjk"
        ) from None


async def sheet(
    pool: Pool,
    objects: ObjectStore,
    user: User,
    view: EcgView,
    *,
    kind: SheetKind,
    choice: SheetFilter,
    zone: ZoneInfo,
    work: WorkPool | None = None,
) -> bytes:
    """The standard 12-lead sheet of an ECG (`find`) with its current measurements and what
    changed since the last prior the user may see, its traces filtered as ``choice`` says
    (printed on it), times in ``zone``, its words in the user's language; audited.

    Raises
    ------
    BadRequest
        The stored ECG cannot be read back.
    """
    last = last_prior(await ecg.priors(pool, view, user.id))
    comparison = serial_comparison(view, last, zone)
    fields = _sheet_fields(view, zone, user.language, comparison)
    body = await _drawn(objects, view, kind, choice, fields, work)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.SHEET,
        object_type="ecg",
        object_id=view.sop_instance_uid,
        study_ids=(view.study_id, *([last.study_id] if comparison and last else [])),
    )
    return body


def _sheet_fields(
    view: EcgView, zone: ZoneInfo, language: Language, comparison: Comparison | None = None
) -> dict[str, Any]:
    """What the sheet's header prints of an ECG (see `SheetHeader.from_record`), its words
    in `language`."""
    sheet_language: SheetLanguage = "en" if language is Language.EN else "zh"
    return {
        "facility": view.facility_name,
        "patient_name": (view.patient_name or "").replace("^", " ").strip(),
        "patient_id": view.patient_id,
        "measurements": sheet_measurements(current_measurements(view)),
        "statements": [
            *(statement_line(s, language) for s in current_statements(view)),
            *([comparison.summary(sheet_language)] if comparison else []),
        ],
        "timezone": zone,
        "language": sheet_language,
    }


async def _drawn(
    objects: ObjectStore,
    view: EcgView,
    kind: SheetKind,
    choice: SheetFilter,
    fields: dict[str, Any],
    work: WorkPool | None,
) -> bytes:
    """The stored ECG drawn on the sheet, in ``work``."""
    spikes = [int(p) for p in (view.result or {}).get("pacer_spikes", [])]
    data = await objects.get(view.object_key)
    try:
        return await offload(work, draw_sheet, data, kind, choice, fields, spikes)
    except EcgError as exc:
        raise BadRequest(N_("已存储的心电图无法绘制：%(reason)s"), reason=str(exc)) from None


#: The most ECGs of one study a report prints with their sheets (a study holds one or two).
REPORT_ECGS = 4


async def report_ecgs(
    pool: Pool,
    objects: ObjectStore,
    report: Report,
    *,
    zone: ZoneInfo,
    work: WorkPool | None = None,
    language: Language = Language.ZH_CN,
) -> list[ReportEcg]:
    """The ECGs an ECG report prints, as its author sees them: each one's measurements and
    statements as the readers left them, and its standard sheet (PNG, 300 dpi, diagnostic
    filter; none when it cannot be drawn), in `language`. Not audited: the report is made
    for the clinic; each reading of it is."""
    author = report.author_id
    sops = (await ecg.ecgs_of_studies(pool, [report.study_instance_uid], author)).get(
        report.study_instance_uid, []
    )
    parts: list[ReportEcg] = []
    for sop in sops[:REPORT_ECGS]:
        view = await ecg.ecg_for_user(pool, sop, author)
        if view is None:
            continue
        fields = _sheet_fields(view, zone, language)
        try:
            png: bytes | None = await _drawn(
                objects, view, SheetKind.PNG, SheetFilter.DIAGNOSTIC, fields, work
            )
        except BadRequest:
            log.warning("ECG %s cannot be drawn for its report", view.sop_instance_uid)
            png = None
        parts.append(
            ReportEcg(
                measurements=sheet_measurements(current_measurements(view)),
                statements=tuple(fields["statements"]),
                sheet_png=png,
            )
        )
    return parts


def sheet_measurements(current: dict[str, Any]) -> dict[str, float]:
    """The measurements the sheet's header prints: QTc is Bazett's (as 12-lead carts print
    it) unless a reader set ``qtc_ms`` itself."""
    values = dict(current)
    if "qtc_ms" not in values and isinstance(values.get("qtc_bazett_ms"), int | float):
        values["qtc_ms"] = values["qtc_bazett_ms"]
    return {
        k: float(v)
        for k, v in values.items()
        if k in MEASUREMENT_KEYS and isinstance(v, int | float) and not isinstance(v, bool)
    }


def statement_line(statement: Any, language: Language = Language.ZH_CN) -> str:
    """A stored statement's text in `language` (in the other when it has none in this
    one; a reader's own line as written)."""
    if isinstance(statement, dict):
        zh, en = statement.get("text_zh"), statement.get("text_en")
        first, second = (en, zh) if language is Language.EN else (zh, en)
        return str(first or second or statement.get("text") or statement.get("code", ""))
    return str(statement)


def draw_sheet(
    data: bytes,
    kind: SheetKind,
    choice: SheetFilter,
    fields: dict[str, Any],
    pacer_spikes: list[int],
) -> bytes:
    """In the work pool: a stored ECG read, filtered as ``choice`` says and drawn on the
    sheet, whose header has ``fields`` (see `SheetHeader.from_record`)."""
    record, filters = filter_for_sheet(
        read_ecg(data, None), choice, language=fields.get("language", "zh")
    )
    header = replace(SheetHeader.from_record(record, **fields), filters=filters)
    return _render_sheet(kind, record, header, pacer_spikes)


def _render_sheet(
    kind: SheetKind, record: EcgRecord, header: SheetHeader, pacer_spikes: list[int]
) -> bytes:
    """Off the event loop: the font's first read (about 20 MB) too."""
    render = render_png if kind is SheetKind.PNG else render_pdf
    return render(record, header=header, font_bytes=_font_bytes(), pacer_spikes=pacer_spikes)


async def original(
    pool: Pool, objects: ObjectStore, user: User, view: EcgView
) -> tuple[bytes, str]:
    """The file the cart sent for an ECG (`find`), and its name; audited.

    Raises
    ------
    NotFound
        The ECG arrived as DICOM: there is no other original.
    """
    if view.original_key is None:
        raise NotFound(N_("此心电图以 DICOM 到达；没有其他原始文件"))
    data = await objects.get(view.original_key)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.ORIGINAL,
        object_type="ecg",
        object_id=view.sop_instance_uid,
        study_ids=(view.study_id,),
    )
    return data, view.original_filename or f"{view.sop_instance_uid}.{view.original_format}"
