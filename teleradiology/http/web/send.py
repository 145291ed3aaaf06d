"""The clinic's send page: choose a folder or files, see what will be sent, send it.

The page reads the DICOM headers in the browser (dicom-parser, fetched by ``make viewer``
into the viewer's cache beside OHIF and served from there) and groups the instances by
study; ECG files of the formats the service reads are listed apart. It sends studies by the
resumable upload and ECG files one request each, through the page routes below, which run
the JSON API's own handlers for the signed-in clinic operator (session cookie and the
pages' header).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ecg.record import Sex
from storage.records import Role, Urgency
from teleradiology.core.access import require_role
from teleradiology.core.language import word
from teleradiology.core.uploads import MAX_BODY_BYTES, MAX_QUESTION_CHARS
from teleradiology.http.api import ecg as ecg_api
from teleradiology.http.api import uploads as uploads_api
from teleradiology.http.web.common import (
    PageHandler,
    base_context,
    page,
    page_action,
    page_language,
    render,
    signed_in,
)
from teleradiology.http.web.viewer import viewer_dir

DICOM_PARSER_VERSION = "1.8.21"
DICOM_PARSER_ROUTE = "/send/dicom-parser.js"
#: The upload routes of the page, beside it: (method, path, the API handler it runs).
UPLOAD_ROUTES: tuple[tuple[str, str, PageHandler], ...] = (
    ("POST", "/send/uploads", uploads_api.open_upload),
    ("GET", "/send/uploads/{id}", uploads_api.get_upload),
    ("PUT", "/send/uploads/{id}/instances/{sop}", uploads_api.put_instance),
    ("DELETE", "/send/uploads/{id}/instances/{sop}", uploads_api.delete_instance),
    ("POST", "/send/uploads/{id}/commit", uploads_api.commit_upload),
    ("POST", "/send/ecg", ecg_api.upload_ecg),
)
#: The page's text fields share the upload's one clinical-question field.
QUESTION_CHARS = 1200
HISTORY_CHARS = MAX_QUESTION_CHARS - QUESTION_CHARS - 40
_PARTIAL_OR_CONDITIONAL = ("Range", "If-Modified-Since", "If-None-Match", "If-Range")


def dicom_parser_file() -> Path:
    """dicom-parser's browser build, in the viewer's cache (beside OHIF's folder)."""
    cache = viewer_dir().parents[1]
    return cache / f"dicom-parser-{DICOM_PARSER_VERSION}" / "dicomParser.min.js"


async def send_page(request: web.Request) -> web.StreamResponse:
    """The clinic operator's page to send studies and ECG files."""
    user = await signed_in(request)
    require_role(user, Role.CLINIC)
    language = page_language(request, user)
    context = await base_context(request, user)
    context.update(
        title=context["_"]("发送检查"),
        sexes={s.value: word(s, language) for s in Sex},
        urgencies=[Urgency.ROUTINE, Urgency.URGENT],
        question_chars=QUESTION_CHARS,
        history_chars=HISTORY_CHARS,
        part_bytes=min(MAX_BODY_BYTES, 1024**2),
        reader_ready=dicom_parser_file().is_file(),
    )
    response = render("send.html", context)
    if request.method == "GET":
        response.enable_compression()
    return response


async def dicom_parser(request: web.Request) -> web.StreamResponse:
    """dicom-parser's browser build (404 until ``make viewer`` fetched it)."""
    path = dicom_parser_file()
    if not path.is_file():
        raise web.HTTPNotFound(text="the DICOM reader is not installed: run 'make viewer'")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


@web.middleware
async def compress_assets(request: web.Request, handler: PageHandler) -> web.StreamResponse:
    """The pages' scripts and styles go gzip-compressed to a browser that accepts it: a
    village link is slow."""
    response = await handler(request)
    path = request.path
    if (
        (path.startswith("/static/") or path == DICOM_PARSER_ROUTE)
        and isinstance(response, web.FileResponse)
        # a whole answer with a body: not HEAD, not a 304 or a range (aiohttp would write
        # a compressed empty body after them)
        and request.method == "GET"
        and not any(h in request.headers for h in _PARTIAL_OR_CONDITIONAL)
    ):
        response.enable_compression()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/send", page(send_page))
    app.router.add_get(DICOM_PARSER_ROUTE, dicom_parser)
    for method, path, handler in UPLOAD_ROUTES:
        app.router.add_route(method, path, page_action(handler))
