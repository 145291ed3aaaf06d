"""STOW-RS (PS3.18 10.5): store instances over HTTP, each committed before it is listed."""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from multidict import CIMultiDictProxy

from storage import network
from storage.records import ReceivedVia, Role
from teleradiology.auth import require_role
from teleradiology.context import INGESTOR, POOL, SETTINGS, current_user
from teleradiology.dicomweb import base_url, dicom_json
from teleradiology.errors import DuplicateConflict, InvalidDicom, NotFound

log = logging.getLogger(__name__)


class FailureReason(IntEnum):
    """STOW-RS FailureReason (0008,1197) values, from PS3.4's storage statuses."""

    DUPLICATE_SOP_INSTANCE = 0x0111
    OUT_OF_RESOURCES = 0xA700
    STUDY_MISMATCH = 0xA900
    CANNOT_UNDERSTAND = 0xC000


def _ref(sop_class: str, sop_instance: str, url: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "00081150": {"vr": "UI", "Value": [sop_class]},
        "00081155": {"vr": "UI", "Value": [sop_instance]},
    }
    if url:
        item["00081190"] = {"vr": "UR", "Value": [url]}
    return item


def _failed(
    sop_class: str | None, sop_instance: str | None, reason: FailureReason
) -> dict[str, Any]:
    item: dict[str, Any] = {"00081197": {"vr": "US", "Value": [int(reason)]}}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_instance:
        item["00081155"] = {"vr": "UI", "Value": [sop_instance]}
    return item


def _check_content_type(request: web.Request) -> None:
    ctype = request.headers.get("Content-Type", "")
    main = ctype.split(";")[0].strip().lower()
    if main != "multipart/related":
        raise web.HTTPUnsupportedMediaType(
            text=(
                "STOW-RS takes 'multipart/related; type=\"application/dicom\"' "
                f"bodies; this request sent {main or 'no Content-Type'}"
            )
        )
    params = {
        k.strip().lower(): v.strip().strip('"').lower()
        for k, _, v in (p.partition("=") for p in ctype.split(";")[1:])
    }
    if params.get("type", "application/dicom") != "application/dicom":
        raise web.HTTPUnsupportedMediaType(
            text=f"only application/dicom parts are stored, not {params['type']}"
        )
    if "boundary" not in params:
        raise web.HTTPBadRequest(text="the multipart body has no boundary parameter")


async def stow(request: web.Request) -> web.Response:
    """Store the instances of a multipart/related body, each committed before it is listed."""
    user = current_user(request)
    require_role(user, Role.CLINIC)
    _check_content_type(request)
    settings = request.app[SETTINGS]
    ingestor = request.app[INGESTOR]
    pool = request.app[POOL]
    facility = await network.facility_by_id(pool, user.facility_id)
    if facility is None:
        raise NotFound("your facility is no longer in the network")
    study_in_path = request.match_info.get("study")
    base = base_url(request)
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    total = 0
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError) as exc:
        raise web.HTTPBadRequest(text=f"the multipart body cannot be read: {exc}") from None
    while True:
        try:
            part = await reader.next()
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"the multipart body is malformed: {exc}") from None
        if part is None:
            break
        if isinstance(part, MultipartReader):
            raise web.HTTPBadRequest(text="nested multipart bodies are not accepted")
        data = await _read_part(part, settings.max_upload_bytes - total)
        total += len(data)
        part_type = _part_type(part.headers)
        if part_type not in ("application/dicom", ""):
            failed.append(_failed(None, None, FailureReason.CANNOT_UNDERSTAND))
            continue
        try:
            result = await ingestor.ingest(data, facility=facility, via=ReceivedVia.STOW)
        except InvalidDicom as exc:
            log.info("STOW part refused from %s: %s", facility.code, exc)
            failed.append(_failed(None, None, FailureReason.CANNOT_UNDERSTAND))
            continue
        except DuplicateConflict:
            failed.append(_failed(None, None, FailureReason.DUPLICATE_SOP_INSTANCE))
            continue
        if study_in_path and result.study_instance_uid != study_in_path:
            # Stored (it is valid and durable), but reported as not part of the named study.
            failed.append(
                _failed(result.sop_class_uid, result.sop_instance_uid, FailureReason.STUDY_MISMATCH)
            )
            continue
        stored.append(
            _ref(
                result.sop_class_uid,
                result.sop_instance_uid,
                f"{base}/dicomweb/studies/{result.study_instance_uid}",
            )
        )
    body: dict[str, Any] = {}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": stored}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if stored and failed:
        status = 202
    elif failed:
        status = 409
    elif not stored:
        raise web.HTTPBadRequest(text="the multipart body holds no DICOM instance")
    else:
        status = 200
    return dicom_json(body, status=status)


def _part_type(headers: CIMultiDictProxy[str]) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


async def _read_part(part: BodyPartReader, budget: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(1024 * 1024)
        if not chunk:
            break
        size += len(chunk)
        if size > budget:
            raise web.HTTPRequestEntityTooLarge(
                max_size=budget,
                actual_size=size,
                text="the upload is larger than this server accepts in one request",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/dicomweb/studies", stow)
    app.router.add_post("/dicomweb/studies/{study}", stow)
