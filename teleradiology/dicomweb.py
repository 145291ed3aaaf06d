"""DICOMweb (PS3.18) under /dicomweb: the read side (QIDO-RS; STOW-RS is in stow.py)."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from storage import audit, index
from storage.records import Study
from teleradiology.context import POOL, SETTINGS, current_user

log = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"


def dicom_json(body: Any, *, status: int = 200) -> web.Response:
    """A DICOM JSON response; its media type carries no charset (PS3.18: always UTF-8)."""
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": DICOM_JSON},
    )


def base_url(request: web.Request) -> str:
    configured = request.app[SETTINGS].public_base_url
    if configured:
        return configured.rstrip("/")
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    return f"{proto}://{host}"


def _pn(value: str | None) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": value}]} if value else {"vr": "PN"}


def _str(vr: str, value: str | None) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]} if value else {"vr": vr}


def study_dicom_json(study: Study, base: str) -> dict[str, Any]:
    return {
        "00080020": _str("DA", study.study_date),
        "00080050": _str("SH", study.accession_number),
        "00080061": {"vr": "CS", "Value": list(study.modalities)}
        if study.modalities
        else {"vr": "CS"},
        "00081030": _str("LO", study.description),
        "00081190": _str("UR", f"{base}/dicomweb/studies/{study.study_instance_uid}"),
        "00100010": _pn(study.patient_name),
        "00100020": _str("LO", study.patient_id),
        "0020000D": _str("UI", study.study_instance_uid),
        "00201206": {"vr": "IS", "Value": [study.num_series]},
        "00201208": {"vr": "IS", "Value": [study.num_instances]},
    }


async def qido_studies(request: web.Request) -> web.Response:
    """Search studies in the caller's scope by StudyInstanceUID or PatientID."""
    user = current_user(request)
    pool = request.app[POOL]
    q = request.query
    try:
        limit = int(q.get("limit", "100"))
        offset = int(q.get("offset", "0"))
    except ValueError:
        raise web.HTTPBadRequest(text="limit and offset must be whole numbers") from None
    if not (1 <= limit <= 1000) or offset < 0:
        raise web.HTTPBadRequest(text="limit must be 1 to 1000 and offset not negative")
    found = await index.studies_for_user(
        pool,
        user.id,
        study_uid=q.get("StudyInstanceUID") or q.get("0020000D"),
        patient_id=q.get("PatientID") or q.get("00100020"),
        limit=limit,
        offset=offset,
    )
    await audit.record(
        pool,
        user_id=user.id,
        action="qido",
        object_type="study",
        object_id="query",
        detail={"count": len(found)},
    )
    base = base_url(request)
    return dicom_json([study_dicom_json(s, base) for s in found])


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/dicomweb/studies", qido_studies)
