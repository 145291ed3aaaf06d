"""ECGs over HTTP: upload a cart's file, read the analysis, the standard sheet, edits, priors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import zipfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import PurePath
from typing import Any

from aiohttp import BodyPartReader, web
from pydicom.uid import generate_uid

from ecg.dicom_export import to_dicom_waveform
from ecg.errors import EcgError
from ecg.formats import read_ecg
from ecg.record import MEASUREMENT_KEYS, EcgRecord
from ecg.render import SheetFilter, SheetHeader, filter_for_sheet, render_pdf, render_png
from storage import audit, ecg, index, network
from storage.records import AuditAction, Priority, ReceivedVia, Role, User
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, NotFound
from teleradiology.core.report_pdf import CJK_FONT
from teleradiology.http.context import INGESTOR, OBJECTS, POOL, current_user, user_zone

log = logging.getLogger(__name__)

MAX_ECG_BYTES = 32 * 1024**2


@cache
def _font_bytes() -> bytes:
    """The CJK font the sheet's Chinese text is drawn with (the report PDF's), read once."""
    try:
        return CJK_FONT.read_bytes()
    except OSError:
        raise RuntimeError(
            f"the CJK font {CJK_FONT} is missing: install the Debian package fonts-noto-cjk"
        ) from None


@dataclass(frozen=True, kw_only=True)
class EcgUpload:
    data: bytes
    filename: str | None
    fields: dict[str, str]
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


async def _read_upload(request: web.Request) -> EcgUpload:
    """A multipart/form-data upload (a ``file`` part and text fields) or a raw body."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        reader = await request.multipart()
        files: list[tuple[str | None, bytes]] = []
        fields: dict[str, str] = {}
        size = 0
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("nested multipart bodies are not accepted")
            if part.name == "file":
                data = await _limited(part, MAX_ECG_BYTES - size)
                size += len(data)
                files.append((part.filename, data))
            elif part.name:
                fields[part.name] = (await part.text())[:2000]
        if not files:
            raise BadRequest("the form has no 'file' part with the ECG")
        if len(files) == 1:
            return EcgUpload(data=files[0][1], filename=files[0][0], fields=fields)
        # Several files are one WFDB record: its header (.hea) and the signal files it names.
        headers = [f for f in files if (f[0] or "").lower().endswith(".hea")]
        if len(headers) != 1 or any(not name for name, _ in files):
            raise BadRequest(
                "send one ECG file per upload; several 'file' parts (each with its file name) "
                "are only for a WFDB record: exactly one .hea header and its .dat files"
            )
        related = {str(name): data for name, data in files if (name, data) != headers[0]}
        return EcgUpload(data=headers[0][1], filename=headers[0][0], fields=fields, related=related)
    if request.content_length is not None and request.content_length > MAX_ECG_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_ECG_BYTES,
            actual_size=request.content_length,
            text=f"an ECG file may be at most {MAX_ECG_BYTES // 1024**2} MB",
        )
    body = await request.content.read(MAX_ECG_BYTES + 1)
    if len(body) > MAX_ECG_BYTES:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_ECG_BYTES,
            actual_size=len(body),
            text=f"an ECG file may be at most {MAX_ECG_BYTES // 1024**2} MB",
        )
    return EcgUpload(data=body, filename=request.query.get("filename"), fields=dict(request.query))


async def _limited(part: BodyPartReader, allowed: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(1024 * 1024):
        size += len(chunk)
        if size > allowed:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_ECG_BYTES,
                actual_size=MAX_ECG_BYTES - allowed + size,
                text=f"an ECG file may be at most {MAX_ECG_BYTES // 1024**2} MB",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _priority(text: str | None) -> Priority:
    if text in (None, "", "routine"):
        return Priority.MEDIUM
    if text == "urgent":
        return Priority.HIGH
    raise BadRequest(f"urgency must be 'routine' or 'urgent', not {text!r}")


async def upload_ecg(request: web.Request) -> web.Response:
    """Store an ECG file from a cart (any supported format) for the clinic's facility.

    The original is kept; a DICOM ECG waveform made from it takes the one ingest path, so it
    is indexed, analyzed and routed like an ECG sent by C-STORE.
    """
    user = current_user(request)
    require_role(user, Role.CLINIC)
    pool, objects = request.app[POOL], request.app[OBJECTS]
    facility = await network.facility_by_id(pool, user.facility_id)
    if facility is None:
        raise NotFound("your facility is no longer in the network")
    upload = await _read_upload(request)
    priority = _priority(upload.fields.get("urgency"))
    try:
        record = await asyncio.to_thread(
            read_ecg, upload.data, upload.filename, related_files=upload.related
        )
    except EcgError as exc:
        raise BadRequest(f"the ECG file cannot be read: {exc}") from None
    patient_id = upload.fields.get("patient_id") or record.patient.id
    if not patient_id:
        raise BadRequest("give 'patient_id': the ECG file does not carry one")
    patient_name = upload.fields.get("patient_name") or record.patient.name or None
    original_bytes, original_name = upload.original()
    original_key = await objects.put(original_bytes)
    earlier = await ecg.earlier_upload(pool, original_key, facility.id)
    if earlier is not None and earlier.patient_id == patient_id:
        # Re-sent (a retry after a broken link): the ECG made the first time, stored once.
        return _upload_answer(
            earlier.study_instance_uid, earlier.sop_instance_uid, record, "duplicate", 200
        )
    # The same file from the same facility always makes the same UIDs.
    digest = hashlib.sha256(upload.data)
    for name in sorted(upload.related):
        digest.update(upload.related[name])
    seed = [facility.code, digest.hexdigest(), patient_id]
    try:
        part10 = await asyncio.to_thread(
            _to_dicom, record, patient_id, patient_name, facility.name, seed
        )
    except EcgError as exc:
        raise BadRequest(f"the ECG cannot be stored as a DICOM waveform: {exc}") from None
    stored = await request.app[INGESTOR].ingest(
        part10,
        facility=facility,
        via=ReceivedVia.API,
        priority=priority,
        clinical_question=upload.fields.get("question") or None,
    )
    await ecg.record_original(
        pool,
        sop_instance_uid=stored.sop_instance_uid,
        object_key=original_key,
        format_name=record.source_format.value,
        filename=original_name,
        size_bytes=len(original_bytes),
    )
    # Our own client sent the whole ECG: the study is complete now.
    await index.mark_study_ready(pool, stored.study_instance_uid, facility.id)
    log.info("ECG from %s stored (%s)", facility.code, record.source_format.value)
    return _upload_answer(
        stored.study_instance_uid, stored.sop_instance_uid, record, stored.outcome.value, 201
    )


def _upload_answer(
    study_uid: str, sop_uid: str, record: EcgRecord, outcome: str, status: int
) -> web.Response:
    return web.json_response(
        {
            "study_instance_uid": study_uid,
            "sop_instance_uid": sop_uid,
            "format": record.source_format.value,
            "leads": list(record.leads),
            "sampling_rate_hz": record.sampling_rate_hz,
            "duration_s": round(record.duration_s, 3),
            "warnings": list(record.warnings),
            "outcome": outcome,
        },
        status=status,
    )


def _to_dicom(
    record: EcgRecord,
    patient_id: str,
    patient_name: str | None,
    institution: str,
    seed: list[str],
) -> bytes:
    def uid(kind: str) -> str:
        return str(generate_uid(entropy_srcs=[*seed, kind]))

    return to_dicom_waveform(
        record,
        patient_id=patient_id,
        patient_name=patient_name or "",
        study_instance_uid=uid("study"),
        series_instance_uid=uid("series"),
        sop_instance_uid=uid("instance"),
        institution_name=institution,
        # A file without its acquisition time (CSV, some carts): the time we received it.
        fallback_acquired_at=datetime.now(UTC),
    )


async def _ecg(request: web.Request, user: User) -> ecg.EcgView:
    found = await ecg.ecg_for_user(request.app[POOL], request.match_info["sop"], user.id)
    if found is None:
        raise NotFound(f"ECG {request.match_info['sop']} not found")
    return found


def current_measurements(view: ecg.EcgView) -> dict[str, Any]:
    """The automatic measurements with the readers' changes over them."""
    automatic = dict((view.result or {}).get("measurements", {}))
    automatic.update(view.edited_measurements)
    return automatic


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


def current_statements(view: ecg.EcgView) -> list[Any]:
    if view.edited_statements is not None:
        return list(view.edited_statements)
    return list((view.result or {}).get("statements", []))


async def get_ecg(request: web.Request) -> web.Response:
    user = current_user(request)
    pool = request.app[POOL]
    view = await _ecg(request, user)
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.READ,
        object_type="ecg",
        object_id=view.sop_instance_uid,
    )
    history = await ecg.edits(pool, view.analysis_id) if view.analysis_id else []
    prior = await ecg.priors(pool, view)
    base = f"/api/v1/ecg/{view.sop_instance_uid}"
    return web.json_response(
        {
            "sop_instance_uid": view.sop_instance_uid,
            "study_instance_uid": view.study_instance_uid,
            "facility": view.facility_code,
            "patient_id": view.patient_id,
            "patient_name": view.patient_name,
            "analyzed": view.analysis_id is not None,
            "analysis_error": view.error,
            "suspected_stemi": view.suspected_stemi,
            "automatic": view.result,
            "measurements": current_measurements(view),
            "statements": current_statements(view),
            "edits": [
                {
                    "at": e.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    "field": e.field,
                    "old": e.old_value,
                    "new": e.new_value,
                    "by": e.username,
                }
                for e in history
            ],
            "priors": [
                {
                    "sop_instance_uid": p.sop_instance_uid,
                    "study_instance_uid": p.study_instance_uid,
                    "received_at": p.received_at.astimezone(UTC).isoformat(),
                    "measurements": {
                        **dict((p.result or {}).get("measurements", {})),
                        **p.edited_measurements,
                    },
                    "sheet": f"/api/v1/ecg/{p.sop_instance_uid}/sheet.png",
                }
                for p in prior
            ],
            "original": {"format": view.original_format, "filename": view.original_filename}
            if view.original_key
            else None,
            "links": {
                "sheet_png": f"{base}/sheet.png",
                "sheet_pdf": f"{base}/sheet.pdf",
                "original": f"{base}/original" if view.original_key else None,
            },
        }
    )


async def edit_ecg(request: web.Request) -> web.Response:
    """A reader corrects measurements or statements; who changed what is kept."""
    user = current_user(request)
    require_role(user, Role.READER)
    view = await _ecg(request, user)
    if view.analysis_id is None:
        raise BadRequest("this ECG has not been analyzed yet; try again in a moment")
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object with 'measurements' and/or 'statements'")
    measurements = body.get("measurements")
    statements = body.get("statements")
    if measurements is not None and (
        not isinstance(measurements, dict)
        or not all(v is None or isinstance(v, int | float) for v in measurements.values())
    ):
        raise BadRequest("'measurements' maps names to numbers (null removes a change)")
    if statements is not None and (
        not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements)
    ):
        raise BadRequest("'statements' is a list of objects")
    await ecg.edit_analysis(
        request.app[POOL],
        view.analysis_id,
        user.id,
        measurements=measurements,
        statements=statements,
    )
    return await get_ecg(request)


async def _record_of(request: web.Request, view: ecg.EcgView) -> EcgRecord:
    data = await request.app[OBJECTS].get(view.object_key)
    try:
        return await asyncio.to_thread(read_ecg, data, None)
    except EcgError as exc:
        raise BadRequest(f"the stored ECG cannot be drawn: {exc}") from None


def _render_sheet(
    kind: str, record: EcgRecord, header: SheetHeader, pacer_spikes: list[int]
) -> bytes:
    """In a worker thread: the font's first read (about 20 MB) stays off the event loop."""
    render = render_png if kind == "png" else render_pdf
    return render(record, header=header, font_bytes=_font_bytes(), pacer_spikes=pacer_spikes)


def sheet_filter(request: web.Request) -> SheetFilter:
    """The sheet filter a request asks for (``?filter=``), diagnostic by default."""
    text = request.query.get("filter", SheetFilter.DIAGNOSTIC.value)
    try:
        return SheetFilter(text)
    except ValueError:
        choices = ", ".join(f.value for f in SheetFilter)
        raise BadRequest(f"filter must be one of {choices}, not {text!r}") from None


async def sheet(request: web.Request) -> web.Response:
    """The standard 12-lead sheet, PNG or PDF, with the current measurements; its traces
    filtered as ``?filter=`` says (diagnostic by default, muscle, or none), printed on it."""
    user = current_user(request)
    view = await _ecg(request, user)
    kind = "pdf" if request.path.endswith(".pdf") else "png"
    choice = sheet_filter(request)
    record, filters = await asyncio.to_thread(
        filter_for_sheet, await _record_of(request, view), choice
    )
    measurements = sheet_measurements(current_measurements(view))
    statements = [
        str(s.get("text_zh") or s.get("text") or s.get("code", ""))
        if isinstance(s, dict)
        else str(s)
        for s in current_statements(view)
    ]
    header = SheetHeader.from_record(
        record,
        facility=view.facility_name,
        patient_name=(view.patient_name or "").replace("^", " ").strip(),
        patient_id=view.patient_id,
        measurements=measurements,
        statements=statements,
        timezone=await user_zone(request, user),
    )
    header = replace(header, filters=filters)
    spikes = [int(p) for p in (view.result or {}).get("pacer_spikes", [])]
    body = await asyncio.to_thread(_render_sheet, kind, record, header, spikes)
    await audit.record(
        request.app[POOL],
        user_id=user.id,
        action=AuditAction.SHEET,
        object_type="ecg",
        object_id=view.sop_instance_uid,
    )
    return web.Response(body=body, content_type="image/png" if kind == "png" else "application/pdf")


async def original(request: web.Request) -> web.Response:
    user = current_user(request)
    view = await _ecg(request, user)
    if view.original_key is None:
        raise NotFound("this ECG arrived as DICOM; there is no other original file")
    data = await request.app[OBJECTS].get(view.original_key)
    name = view.original_filename or f"{view.sop_instance_uid}.{view.original_format}"
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/ecg", upload_ecg)
    r.add_get("/api/v1/ecg/{sop}", get_ecg)
    r.add_patch("/api/v1/ecg/{sop}", edit_ecg)
    # One route per kind, as the OpenAPI document describes them.
    r.add_get("/api/v1/ecg/{sop}/sheet.png", sheet)
    r.add_get("/api/v1/ecg/{sop}/sheet.pdf", sheet)
    r.add_get("/api/v1/ecg/{sop}/original", original)
