"""DICOMweb's rules without a web server: content negotiation (``Accept`` with several media
ranges, parameters and q-values), multipart/related framing, and DICOM JSON values."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from teleradiology.core.errors import BadRequest, NotAcceptable
from teleradiology.core.language import N_

DICOM_JSON = "application/dicom+json"

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
            raise BadRequest(N_("Accept 头部的媒体范围 %(item)r 格式有误"), item=item)
        params: dict[str, str] = {}
        quality = 1.0
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').strip()
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    raise BadRequest(
                        N_("Accept 头部的 q 值 %(value)r 格式有误"), value=value
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
    accept: str | None, offers: Sequence[Offer], *, default_part: str | None = None
) -> Choice:
    """The first offer the client accepts, in the client's order of preference.

    A multipart/related range without ``type`` means ``default_part``. Raises 406 listing
    what this resource supports when nothing matches (406).
    """
    for media_range in parse_accept(accept):
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
    raise NotAcceptable(
        N_("本服务器无法提供 Accept 头部中的任何媒体类型；支持的有：%(supported)s"),
        supported=supported,
    )


def _accepts(media_range: MediaRange, offer: Offer, default_part: str | None) -> bool:
    if offer.part is None:
        return media_range.matches(offer.media_type)
    if media_range.type == "multipart/related":
        part = media_range.params.get("type") or default_part or offer.part
        return MediaRange(part).matches(offer.part)
    # */*, multipart/*, or the bare part type (image/jpeg for a rendered series).
    return media_range.matches(offer.media_type) or media_range.matches(offer.part)


# --- multipart/related framing ------------------------------------------------------------


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
