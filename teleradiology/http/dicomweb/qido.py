"""QIDO-RS (PS3.18 10.6): search studies, series and instances in the caller's scope.

The query parameters become a search in core/query.py; services/studies.py runs it in the
caller's scope and audits it; no object is read. A study answer PostgreSQL builds is passed
through as bytes.
"""

from __future__ import annotations

from aiohttp import web

from storage.search import Level
from teleradiology.core.dicomweb import DICOM_JSON, Offer
from teleradiology.core.query import parse_params, path_uid
from teleradiology.http.context import STUDIES, current_user
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
    parsed = parse_params(request.query, level, fixed=fixed)
    answer = await request.app[STUDIES].search(user, parsed, level, fixed, public_base(request))
    return web.Response(
        body=answer.body,
        headers={"Content-Type": DICOM_JSON, **_warning_header(parsed.warnings)},
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
