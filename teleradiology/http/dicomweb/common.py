"""DICOMweb (PS3.18) under /dicomweb: what every resource shares.

The public base URL that every RetrieveURL and BulkDataURI is built from, negotiation on the
request's Accept header (the rules are in core/dicomweb.py), multipart/related and DICOM JSON
responses, CORS and the cross-origin headers. QIDO-RS is in qido.py,
WADO-RS in wado.py, STOW-RS in stow.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from teleradiology.core.dicomweb import (
    DICOM_JSON,
    Choice,
    Offer,
    closing,
    multipart_content_type,
    new_boundary,
    part_header,
    part_separator,
)
from teleradiology.core.dicomweb import negotiate as choose
from teleradiology.http.context import SETTINGS

PREFIX = "/dicomweb"


def dicom_json(
    body: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A DICOM JSON response; its media type carries no charset (PS3.18: always UTF-8)."""
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": DICOM_JSON, **(headers or {})},
    )


def base_url(request: web.Request) -> str:
    """The public address clients reach us at: configured (with its path), else the origin of
    this request (as a trusted proxy forwarded it, never a client's own X-Forwarded-*)."""
    configured = request.app[SETTINGS].public_base_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def negotiate(
    request: web.Request, offers: Sequence[Offer], *, default_part: str | None = None
) -> Choice:
    """The first of ``offers`` the request's Accept header takes (406 when none)."""
    return choose(request.headers.get("Accept"), offers, default_part=default_part)


def multipart_body(
    parts: Sequence[tuple[str, bytes, str | None]],
    part_type: str,
    *,
    transfer_syntax: str | None = None,
) -> web.Response:
    """A whole multipart/related response from (content type, bytes, location) parts."""
    boundary = new_boundary()
    chunks: list[bytes] = []
    for content_type, data, location in parts:
        chunks += [part_header(boundary, content_type, location), data, part_separator()]
    chunks.append(closing(boundary))
    return web.Response(
        body=b"".join(chunks),
        headers={"Content-Type": multipart_content_type(part_type, boundary, transfer_syntax)},
    )


# --- CORS and cross-origin isolation ----------------------------------------------------------

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Type, Content-Length, Content-Location, Warning",
    # Other origins' isolated pages (COEP require-corp) may embed our responses.
    "Cross-Origin-Resource-Policy": "cross-origin",
}


async def _cross_origin_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CORS on DICOMweb responses. Only bearer-token calls work across origins: the session
    cookie is SameSite=Strict and credentials are never allowed cross-origin."""
    if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
        for name, value in _CORS.items():
            response.headers.setdefault(name, value)


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for any DICOMweb resource."""
    return web.Response(
        status=204,
        headers={
            **_CORS,
            "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Accept, Content-Type, Range",
            "Access-Control-Max-Age": "600",
        },
    )


def add_routes(app: web.Application) -> None:
    app.router.add_route("OPTIONS", PREFIX + "/{tail:.*}", preflight)
    app.on_response_prepare.append(_cross_origin_headers)
