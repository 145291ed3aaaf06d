"""DICOMweb (PS3.18) under /dicomweb: what every resource shares.

Content negotiation (``Accept`` with several media ranges, parameters and q-values), the
public base URL that every RetrieveURL and BulkDataURI is built from, multipart/related
bodies, DICOM JSON responses, CORS and the cross-origin headers. QIDO-RS is in qido.py,
WADO-RS in wado.py, STOW-RS in stow.py.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from teleradiology.context import SETTINGS

DICOM_JSON = "application/dicom+json"
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
    """The public origin clients reach us at: configured, or from X-Forwarded-*, or Host."""
    configured = request.app[SETTINGS].public_base_url
    if configured:
        return configured.rstrip("/")
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    return f"{proto}://{host}"


# --- content negotiation -------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header."""

    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        main, _, sub = self.type.partition("/")
        want_main, _, want_sub = media_type.partition("/")
        return (main in ("*", want_main)) and (sub in ("*", want_sub))


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an Accept header, most preferred first; q=0 ranges are dropped.

    Parameter values may be quoted or not (OHIF sends ``type=application/octet-stream``
    unquoted). A missing or empty header accepts anything.
    """
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges: list[tuple[float, int, MediaRange]] = []
    for position, item in enumerate(_split_outside_quotes(header, ",")):
        pieces = _split_outside_quotes(item, ";")
        media_type = pieces[0].strip().lower()
        if not media_type:
            continue
        if "/" not in media_type:
            raise web.HTTPBadRequest(text=f"the Accept header has a malformed media range {item!r}")
        params: dict[str, str] = {}
        quality = 1.0
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').strip()
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    raise web.HTTPBadRequest(
                        text=f"the Accept header has a malformed q-value {value!r}"
                    ) from None
            elif name:
                params[name] = value if name == "transfer-syntax" else value.lower()
        if quality > 0:
            ranges.append((quality, position, MediaRange(media_type, params, quality)))
    # Higher q first; at equal q, the more specific range, then the order given.
    ranges.sort(key=lambda t: (-t[0], t[2].type.count("*"), t[1]))
    return [r for _, _, r in ranges]


@dataclass(frozen=True)
class Offer:
    """A representation a resource can produce.

    ``part`` is the media type of each part for multipart/related offers (None for a single
    part); ``transfer_syntaxes`` the transfer syntaxes it can be produced in ("*" for "as
    stored"), empty where the notion does not apply.
    """

    media_type: str
    part: str | None = None
    transfer_syntaxes: tuple[str, ...] = ()

    def describe(self) -> str:
        text = self.media_type
        if self.part:
            text += f'; type="{self.part}"'
        if self.transfer_syntaxes:
            text += f"; transfer-syntax={'|'.join(self.transfer_syntaxes)}"
        return text


@dataclass(frozen=True)
class Choice:
    offer: Offer
    #: The transfer syntax asked for ("*": as stored), or None when the range named none.
    transfer_syntax: str | None


def negotiate(
    request: web.Request, offers: Sequence[Offer], *, default_part: str | None = None
) -> Choice:
    """The first offer the client accepts, in the client's order of preference.

    A multipart/related range without ``type`` means ``default_part``. Raises 406 listing
    what this resource supports when nothing matches.
    """
    for media_range in parse_accept(request.headers.get("Accept")):
        asked_ts = media_range.params.get("transfer-syntax")
        for offer in offers:
            if not _accepts(media_range, offer, default_part):
                continue
            if asked_ts is not None and offer.transfer_syntaxes:
                if asked_ts != "*" and asked_ts not in offer.transfer_syntaxes:
                    continue
                if asked_ts == "*" and "*" not in offer.transfer_syntaxes:
                    continue
            return Choice(offer, asked_ts)
    supported = ", ".join(o.describe() for o in offers)
    raise web.HTTPNotAcceptable(
        text=f"none of the media types in the Accept header can be produced here; "
        f"supported: {supported}"
    )


def _accepts(media_range: MediaRange, offer: Offer, default_part: str | None) -> bool:
    if offer.part is None:
        return media_range.matches(offer.media_type)
    if media_range.type == "multipart/related":
        part = media_range.params.get("type") or default_part or offer.part
        return MediaRange(part).matches(offer.part)
    # */*, multipart/*, or the bare part type (image/jpeg for a rendered series).
    return media_range.matches(offer.media_type) or media_range.matches(offer.part)


# --- multipart -----------------------------------------------------------------------------


def new_boundary() -> str:
    return f"telemed-{secrets.token_hex(12)}"


def multipart_content_type(
    part_type: str, boundary: str, transfer_syntax: str | None = None
) -> str:
    value = f'multipart/related; type="{part_type}"; boundary={boundary}'
    if transfer_syntax:
        value += f"; transfer-syntax={transfer_syntax}"
    return value


def part_header(boundary: str, content_type: str, location: str | None = None) -> bytes:
    lines = [f"--{boundary}", f"Content-Type: {content_type}"]
    if location:
        lines.append(f"Content-Location: {location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def part_separator() -> bytes:
    return b"\r\n"


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode()


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


# --- DICOM JSON values -----------------------------------------------------------------------


def pn(value: str | None) -> dict[str, Any]:
    """A PN value: its component groups as Alphabetic, Ideographic and Phonetic."""
    if not value:
        return {"vr": "PN"}
    groups = value.split("=")
    name: dict[str, str] = {}
    for key, group in zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False):
        if group:
            name[key] = group
    return {"vr": "PN", "Value": [name]} if name else {"vr": "PN"}


def element(vr: str, value: Any) -> dict[str, Any]:
    """A DICOM JSON element; None or empty is present with no value."""
    if value is None or value == "" or value == []:
        return {"vr": vr}
    values = value if isinstance(value, list) else [value]
    return {"vr": vr, "Value": values}


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
