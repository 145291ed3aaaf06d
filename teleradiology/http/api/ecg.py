"""ECGs over HTTP: upload a cart's file, read the analysis, the standard sheet, edits, priors.

The use cases are services/ecg.py's; these handlers parse the request and shape the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from ecg.render import SheetFilter
from storage.records import Priority, Role
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest
from teleradiology.http.context import INGESTOR, OBJECTS, POOL, current_user, user_zone
from teleradiology.services import ecg
from teleradiology.services.ecg import (
    EcgReading,
    EcgRequest,
    EcgUpload,
    SheetKind,
    UploadedEcg,
    current_measurements,
    current_statements,
)
from teleradiology.services.intake import sending_facility

MAX_ECG_BYTES = 32 * 1024**2


@dataclass(frozen=True, kw_only=True)
class _Form:
    """An upload as it came: the ECG and the form's text fields."""

    upload: EcgUpload
    fields: dict[str, str]


async def _read_upload(request: web.Request) -> _Form:
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
            return _Form(upload=EcgUpload(data=files[0][1], filename=files[0][0]), fields=fields)
        # Several files are one WFDB record: its header (.hea) and the signal files it names.
        headers = [f for f in files if (f[0] or "").lower().endswith(".hea")]
        if len(headers) != 1 or any(not name for name, _ in files):
            raise BadRequest(
                "send one ECG file per upload; several 'file' parts (each with its file name) "
                "are only for a WFDB record: exactly one .hea header and its .dat files"
            )
        related = {str(name): data for name, data in files if (name, data) != headers[0]}
        sent = EcgUpload(data=headers[0][1], filename=headers[0][0], related=related)
        return _Form(upload=sent, fields=fields)
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
    sent = EcgUpload(data=body, filename=request.query.get("filename"))
    return _Form(upload=sent, fields=dict(request.query))


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
    """Store an ECG file from a cart (any supported format) for the clinic's facility."""
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    form = await _read_upload(request)
    asked = EcgRequest(
        patient_id=form.fields.get("patient_id") or None,
        patient_name=form.fields.get("patient_name") or None,
        priority=_priority(form.fields.get("urgency")),
        question=form.fields.get("question") or None,
    )
    stored = await ecg.upload(
        pool, request.app[OBJECTS], request.app[INGESTOR], facility, form.upload, asked
    )
    return web.json_response(_upload_json(stored), status=200 if stored.resent else 201)


def _upload_json(stored: UploadedEcg) -> dict[str, Any]:
    record = stored.record
    return {
        "study_instance_uid": stored.study_instance_uid,
        "sop_instance_uid": stored.sop_instance_uid,
        "format": record.source_format.value,
        "leads": list(record.leads),
        "sampling_rate_hz": record.sampling_rate_hz,
        "duration_s": round(record.duration_s, 3),
        "warnings": list(record.warnings),
        "outcome": stored.outcome,
    }


async def get_ecg(request: web.Request) -> web.Response:
    reading = await ecg.read(request.app[POOL], current_user(request), request.match_info["sop"])
    return web.json_response(_ecg_json(reading))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _ecg_json(reading: EcgReading) -> dict[str, Any]:
    view = reading.view
    base = f"/api/v1/ecg/{view.sop_instance_uid}"
    return {
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
                "at": _iso(e.at).replace("+00:00", "Z"),
                "field": e.field,
                "old": e.old_value,
                "new": e.new_value,
                "by": e.username,
            }
            for e in reading.edits
        ],
        "priors": [
            {
                "sop_instance_uid": p.sop_instance_uid,
                "study_instance_uid": p.study_instance_uid,
                "received_at": _iso(p.received_at),
                "measurements": {
                    **dict((p.result or {}).get("measurements", {})),
                    **p.edited_measurements,
                },
                "sheet": f"/api/v1/ecg/{p.sop_instance_uid}/sheet.png",
            }
            for p in reading.priors
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


async def edit_ecg(request: web.Request) -> web.Response:
    """A reader corrects measurements or statements; who changed what is kept."""
    user = current_user(request)
    require_role(user, Role.READER)
    pool = request.app[POOL]
    view = await ecg.analyzed(pool, user, request.match_info["sop"])
    measurements, statements = _edits(await _json_object(request))
    await ecg.edit(pool, user, view, measurements=measurements, statements=statements)
    return await get_ecg(request)


async def _json_object(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None


def _edits(body: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
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
    return measurements, statements


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
    pool = request.app[POOL]
    view = await ecg.find(pool, user, request.match_info["sop"])
    kind = SheetKind.PDF if request.path.endswith(".pdf") else SheetKind.PNG
    choice = sheet_filter(request)
    body = await ecg.sheet(
        pool,
        request.app[OBJECTS],
        user,
        view,
        kind=kind,
        choice=choice,
        zone=await user_zone(request, user),
    )
    media = "image/png" if kind is SheetKind.PNG else "application/pdf"
    return web.Response(body=body, content_type=media)


async def original(request: web.Request) -> web.Response:
    view = await ecg.find(request.app[POOL], current_user(request), request.match_info["sop"])
    data, name = await ecg.original(request.app[OBJECTS], view)
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
