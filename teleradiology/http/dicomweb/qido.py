"""QIDO-RS (PS3.18 10.6): search studies, series and instances in the caller's scope.

The query parameters become a search and its hits DICOM JSON in core/query.py; no object is
read. A study answer PostgreSQL builds is passed through as bytes.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from storage import audit, qido
from storage.records import AuditAction
from storage.search import Level
from teleradiology.core.dicomweb import DICOM_JSON, Offer
from teleradiology.core.errors import NotFound
from teleradiology.core.query import encoded, parse_params, path_uid, scope_of, study_elements
from teleradiology.http.context import POOL, current_user
from teleradiology.http.dicomweb.common import base_url as public_base
from teleradiology.http.dicomweb.common import negotiate


def _warning_header(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    # RFC 7234 warn-code 299 (miscellaneous persistent warning), as PS3.18 uses it.
    text = "; ".join(warnings).replace('"', "'")
    return {"Warning": f'299 telemed "{text}"'}


_QIDO_OFFERS = (Offer(DICOM_JSON), Offer("application/json"))


async def _search(request: web.Request, level: Level, fixed: dict[str, str]) -> web.Response:
    negotiate(request, _QIDO_OFFERS)
    user = current_user(request)
    pool = request.app[POOL]
    parsed = parse_params(request.query, level, fixed=fixed)
    scope = scope_of(user)
    if (
        "StudyInstanceUID" in fixed
        and await qido.study_in_scope(pool, fixed["StudyInstanceUID"], scope) is None
    ):
        raise NotFound(f"study {fixed['StudyInstanceUID']} not found")
    base = public_base(request)
    elements = study_elements(parsed) if level is Level.STUDY else None
    if elements is not None:
        count, body = await qido.search_studies_json(
            pool, parsed.query, scope, elements, retrieve_base=f"{base}/dicomweb/studies/"
        )
    else:
        hits = await qido.search(pool, parsed.query, scope)
        count = len(hits)
        in_study = "StudyInstanceUID" in fixed
        in_series = "SeriesInstanceUID" in fixed

        def build() -> bytes:
            return encoded(hits, level, parsed, base, in_study=in_study, in_series=in_series)

        body = await asyncio.to_thread(build) if len(hits) > 50 else build()
    await audit.record(
        pool,
        user_id=user.id,
        action=AuditAction.QIDO,
        object_type=level.value.lower(),
        object_id=fixed.get("StudyInstanceUID", "query"),
        detail={"count": count},
    )
    return web.Response(
        body=body, headers={"Content-Type": DICOM_JSON, **_warning_header(parsed.warnings)}
    )


def _fixed(request: web.Request) -> dict[str, str]:
    fixed = {}
    if "study" in request.match_info:
        fixed["StudyInstanceUID"] = path_uid(request.match_info["study"])
    if "series" in request.match_info:
        fixed["SeriesInstanceUID"] = path_uid(request.match_info["series"])
    return fixed


async def search_studies(request: web.Request) -> web.Response:
    return await _search(request, Level.STUDY, {})


async def search_series(request: web.Request) -> web.Response:
    return await _search(request, Level.SERIES, _fixed(request))


async def search_instances(request: web.Request) -> web.Response:
    return await _search(request, Level.IMAGE, _fixed(request))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/dicomweb/studies", search_studies)
    r.add_get("/dicomweb/series", search_series)
    r.add_get("/dicomweb/instances", search_instances)
    r.add_get("/dicomweb/studies/{study}/series", search_series)
    r.add_get("/dicomweb/studies/{study}/instances", search_instances)
    r.add_get("/dicomweb/studies/{study}/series/{series}/instances", search_instances)
