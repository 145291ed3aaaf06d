"""Reading request parameters and bodies of the JSON API, with errors a person can act on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from aiohttp import web

from teleradiology.core.errors import BadRequest, NotFound

_E = TypeVar("_E", bound=StrEnum)


def iso(value: datetime | None) -> str | None:
    """A UTC time as ISO 8601 with a trailing Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


async def json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def int_param(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def path_id(request: web.Request, name: str = "id") -> int:
    text = request.match_info[name]
    try:
        value = int(text)
    except ValueError:
        raise NotFound(f"no such record: {text!r}") from None
    if value <= 0 or value > 2**62:
        raise NotFound(f"no such record: {text!r}")
    return value


def text_field(
    body: dict[str, Any], name: str, *, required: bool = True, max_len: int = 20000
) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"'{name}' is required and must be text")
    if len(value) > max_len:
        raise BadRequest(f"'{name}' is longer than {max_len} characters")
    return value


def choice(body: dict[str, Any], name: str, kind: type[_E], default: _E | None = None) -> _E:
    value = body.get(name)
    if value is None and default is not None:
        return default
    allowed = ", ".join(e.value for e in kind)
    try:
        return kind(str(value))
    except ValueError:
        raise BadRequest(f"'{name}' must be one of: {allowed}") from None


def parse_time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def time_param(request: web.Request, name: str, default: datetime) -> datetime:
    text = request.query.get(name)
    return default if text is None else parse_time(text, name)


def optional_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise BadRequest(f"'{name}' must be true or false")
