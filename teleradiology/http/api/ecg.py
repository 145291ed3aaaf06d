"""ECGs over HTTP: upload a cart's file, read the analysis, the standard sheet, edits, priors.

The use cases are services/ecg.py's; these handlers parse the request and shape the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web

from ecg.render import SheetFilter
from storage.records import Priority, Role
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, TooLarge
from teleradiology.core.language import N_
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.ecg import (
    EcgEditIn,
    EcgFields,
    EcgOut,
    EcgPath,
    EcgUploaded,
    RefusedEcgOut,
    RefusedEcgsOut,
    SheetQuery,
)
from teleradiology.http.context import INGESTOR, OBJECTS, POOL, WORK_POOL, current_user, user_zone
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id, path_of, query_of, validated
from teleradiology.services import ecg
from teleradiology.services.ecg import EcgRequest, EcgUpload, SheetKind
from teleradiology.services.intake import sending_facility

#: Several files are one WFDB record, or else one file an upload.
ONE_ECG_PER_UPLOAD = N_(
    "每次上传一个心电图文件；多个 'file' 部分只用于一条 WFDB 记录：一个 .hea 头文件及其 .dat 文件"
)


MAX_ECG_BYTES = 32 * 1024**2

routes = Routes(tag="ecg")


@dataclass(frozen=True, kw_only=True)
class _Form:
    """An upload as it came: the ECG and the form's text fields."""

    upload: EcgUpload
    fields: dict[str, str]


async def _read_upload(request: web.Request) -> _Form:
    """A multipart/form-data upload (a ``file`` part and text fields) or a raw body."""
    ctype = request.content_type
    if ctype == "multipart/form-data":
        return await _read_form(request)
    if request.content_length is not None and request.content_length > MAX_ECG_BYTES:
        raise TooLarge(N_("心电图文件至多 %(mb)s MB"), mb=MAX_ECG_BYTES // 1024**2)
    body = await request.content.read(MAX_ECG_BYTES + 1)
    if len(body) > MAX_ECG_BYTES:
        raise TooLarge(N_("心电图文件至多 %(mb)s MB"), mb=MAX_ECG_BYTES // 1024**2)
    sent = EcgUpload(data=body, filename=request.query.get("filename"))
    return _Form(upload=sent, fields=dict(request.query))


async def _read_form(request: web.Request) -> _Form:
    """A multipart/form-data upload: a ``file`` part (or a WFDB record's) and text fields."""
    reader = await request.multipart()
    files: list[tuple[str | None, bytes]] = []
    fields: dict[str, str] = {}
    size = 0
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            raise BadRequest(N_("不接受嵌套的 multipart 正文"))
        if part.name == "file":
            data = await _limited(part, MAX_ECG_BYTES - size)
            size += len(data)
            # browsers and aiohttp write a name's quotes (and aiohttp every non-ASCII
            # character) percent-encoded
            files.append((unquote(part.filename) if part.filename else None, data))
        elif part.name:
            fields[part.name] = (await part.text())[:2000]
    if not files:
        raise BadRequest(N_("表单中没有装心电图的 'file' 部分"))
    if len(files) == 1:
        return _Form(upload=EcgUpload(data=files[0][1], filename=files[0][0]), fields=fields)
    # Several files are one WFDB record: its header (.hea) and the signal files it names.
    headers = [f for f in files if (f[0] or "").lower().endswith(".hea")]
    if len(headers) != 1 or any(not name for name, _ in files):
        raise BadRequest(ONE_ECG_PER_UPLOAD)
    related = {str(name): data for name, data in files if (name, data) != headers[0]}
    sent = EcgUpload(data=headers[0][1], filename=headers[0][0], related=related)
    return _Form(upload=sent, fields=fields)


async def _limited(part: BodyPartReader, allowed: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(1024 * 1024):
        size += len(chunk)
        if size > allowed:
            raise TooLarge(N_("心电图文件至多 %(mb)s MB"), mb=MAX_ECG_BYTES // 1024**2)
        chunks.append(chunk)
    return b"".join(chunks)


_ECG_FORM = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "patient_id": {"type": "string"},
                "patient_name": {"type": "string"},
                "urgency": {"enum": ["routine", "urgent"]},
                "question": {"type": "string"},
            },
        }
    },
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}
_SHEET_PNG = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
_SHEET_PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
_ORIGINAL = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


@routes.post(
    "/api/v1/ecg",
    body_media=_ECG_FORM,
    query=EcgFields,
    answer=EcgUploaded,
    status=201,
    also=(200,),
    problems=(400, 401, 403, 404, 409, 413),
    summary="Upload an ECG file from a cart (DICOM waveform, HL7 aECG, SCP-ECG, Philips XML, "
    "GE MUSE XML, Contec, CSV; a WFDB record as its .hea and signal files): stored, converted "
    "to a DICOM ECG waveform, analyzed and routed to an ECG reading pool; a re-sent file "
    "answers 200",
)
async def upload_ecg(request: web.Request) -> web.Response:
    """Store an ECG file from a cart (any supported format) for the clinic's facility."""
    user = current_user(request)
    pool = request.app[POOL]
    facility = await sending_facility(pool, user)
    form = await _read_upload(request)
    fields = validated(EcgFields, form.fields)
    asked = EcgRequest(
        patient_id=fields.patient_id,
        patient_name=fields.patient_name,
        priority=Priority.HIGH if fields.urgency == "urgent" else Priority.MEDIUM,
        question=fields.question,
        sent_by=user.id,
    )
    stored = await ecg.upload(
        pool,
        request.app[OBJECTS],
        request.app[INGESTOR],
        facility,
        form.upload,
        asked,
        request.app[WORK_POOL],
    )
    return reply(EcgUploaded.of(stored), status=200 if stored.resent else 201)


@routes.get(
    "/api/v1/ecg/{sop}",
    path=EcgPath,
    answer=EcgOut,
    summary="An ECG: automatic analysis, current measurements and statements, who changed "
    "what, the patient's prior ECGs at every linked facility, what changed since the last, "
    "links to the sheet and original",
)
async def get_ecg(request: web.Request) -> web.Response:
    user = current_user(request)
    sop = path_of(request, EcgPath).sop
    zone = await user_zone(request, user)
    return reply(EcgOut.of(await ecg.read(request.app[POOL], user, sop, zone=zone)))


@routes.patch(
    "/api/v1/ecg/{sop}",
    path=EcgPath,
    body=EcgEditIn,
    answer=EcgOut,
    summary="A reader's change to measurements (null removes it) or statements",
)
async def edit_ecg(request: web.Request) -> web.Response:
    """A reader corrects measurements or statements; who changed what is kept."""
    user = current_user(request)
    require_role(user, Role.READER)
    pool = request.app[POOL]
    sop = path_of(request, EcgPath).sop
    view = await ecg.analyzed(pool, user, sop)
    body = await body_of(request, EcgEditIn)
    statements = [dict(s) for s in body.statements] if body.statements is not None else None
    measurements = dict(body.measurements) if body.measurements is not None else None
    await ecg.edit(pool, user, view, measurements=measurements, statements=statements)
    zone = await user_zone(request, user)
    return reply(EcgOut.of(await ecg.read(pool, user, sop, zone=zone)))


def sheet_filter(request: web.Request) -> SheetFilter:
    """The sheet filter a request asks for (``?filter=``), diagnostic by default."""
    return query_of(request, SheetQuery).filter


@routes.get(
    "/api/v1/ecg/{sop}/sheet.png",
    path=EcgPath,
    query=SheetQuery,
    media=_SHEET_PNG,
    summary="The standard 12-lead sheet at 300 dpi (PNG)",
)
@routes.get(
    "/api/v1/ecg/{sop}/sheet.pdf",
    path=EcgPath,
    query=SheetQuery,
    media=_SHEET_PDF,
    summary="The standard 12-lead sheet on one A4 page (PDF)",
)
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
        work=request.app[WORK_POOL],
    )
    media = "image/png" if kind is SheetKind.PNG else "application/pdf"
    return web.Response(body=body, content_type=media)


@routes.get(
    "/api/v1/ecg/{sop}/original",
    path=EcgPath,
    media=_ORIGINAL,
    summary="The cart's original file, unchanged",
)
async def original(request: web.Request) -> web.Response:
    sop = path_of(request, EcgPath).sop
    user = current_user(request)
    view = await ecg.find(request.app[POOL], user, sop)
    data, name = await ecg.original(request.app[POOL], request.app[OBJECTS], user, view)
    return _attachment(data, name)


@routes.get(
    "/api/v1/refused-ecgs",
    answer=RefusedEcgsOut,
    summary="ECG files that could not be read, kept as they came, with why (the clinic's own, "
    "or the administrator's network's), newest first",
)
async def refused(request: web.Request) -> web.Response:
    found = await ecg.refused(request.app[POOL], current_user(request))
    return reply(RefusedEcgsOut(refused=[RefusedEcgOut.of(r) for r in found]))


@routes.get(
    "/api/v1/refused-ecgs/{id}/original",
    path=RecordPath,
    media=_ORIGINAL,
    summary="A refused ECG file as it came",
)
async def refused_original(request: web.Request) -> web.Response:
    data, name = await ecg.refused_original(
        request.app[POOL], request.app[OBJECTS], current_user(request), path_id(request)
    )
    return _attachment(data, name)


def _attachment(data: bytes, name: str) -> web.Response:
    """A file to save, under the name the cart or the clinic gave it (which may hold any
    character: quoted for the header, with a plain ASCII fallback)."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120] or "ecg"
    disposition = f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name[:200])}"
    return web.Response(
        body=data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": disposition},
    )


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
