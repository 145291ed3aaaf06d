"""Reading request bodies, query strings and path parameters through their models, with errors
a person can act on."""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from teleradiology.core.errors import BadRequest, NotFound
from teleradiology.http.models import RecordPath, iso

__all__ = ["body_of", "iso", "parse_time", "path_id", "path_of", "query_of", "readable"]

M = TypeVar("M", bound=BaseModel)


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


async def body_of(request: web.Request, model: type[M]) -> M:
    """The JSON body as ``model``; 400 naming each wrong field and what it may be."""
    return validated(model, await _json_body(request))


def query_of(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``."""
    return validated(model, dict(request.query))


def _has_nul(value: Any) -> bool:
    """Whether text anywhere in a JSON value holds a NUL character (PostgreSQL text
    cannot)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    if _has_nul(data):
        raise BadRequest("text may not hold a NUL character (\\u0000)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(readable(exc, model)) from None


def path_of(request: web.Request, model: type[M]) -> M:
    """The path's parameters as ``model``; a value that cannot name a record is 404."""
    if _has_nul(dict(request.match_info)):
        raise NotFound("no such record: a name with a NUL character")
    try:
        return model.model_validate(dict(request.match_info))
    except ValidationError:
        shown = ", ".join(repr(v) for v in request.match_info.values())
        raise NotFound(f"no such record: {shown}") from None


def path_id(request: web.Request) -> int:
    """The record number of a ``/{id}`` path."""
    return path_of(request, RecordPath).id


def parse_time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}={text!r} is not an ISO 8601 time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- errors a person reads ---------------------------------------------------------------------

_PHRASES = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "datetime_type": "must be an ISO 8601 time like 2026-03-01T08:00:00Z",
    "datetime_parsing": "must be an ISO 8601 time like 2026-03-01T08:00:00Z",
    "datetime_from_date_parsing": "must be an ISO 8601 time like 2026-03-01T08:00:00Z",
    "string_too_short": "must not be empty",
}

_BOUNDS = {
    "greater_than": ("gt", "must be greater than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than": ("lt", "must be below {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "string_too_long": ("max_length", "is longer than {} characters"),
    "too_long": ("max_length", "may have at most {} items"),
}


def readable(exc: ValidationError, model: type[BaseModel]) -> str:
    """One sentence per wrong field, e.g. "priority: must be one of routine, urgent, stat"."""
    return "; ".join(_sentence(error, model) for error in exc.errors(include_url=False))


def _sentence(error: ErrorDetails, model: type[BaseModel]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    phrase = _phrase(error, model)
    value = error.get("input")
    if error["type"] != "missing" and isinstance(value, str | int | float) and len(str(value)) < 80:
        phrase += f", not {value!r}"
    return f"{where}: {phrase}" if where else phrase


def _phrase(error: ErrorDetails, model: type[BaseModel]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        allowed = _allowed(model, error["loc"])
        return f"is required (one of {allowed})" if allowed else "is required"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        return "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    if kind in _BOUNDS:
        key, text = _BOUNDS[kind]
        if kind == "greater_than" and ctx.get(key) == 0:
            return "must be positive (greater than 0)"
        return text.format(ctx.get(key))
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return _PHRASES.get(kind, error["msg"])


def _allowed(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The values a missing top-level field may take, when they are a fixed few."""
    field = model.model_fields.get(str(loc[0])) if len(loc) == 1 else None
    if field is None:
        return None
    for kind in (field.annotation, *typing.get_args(field.annotation)):
        if isinstance(kind, type) and issubclass(kind, Enum):
            return ", ".join(str(e.value) for e in kind)
        if typing.get_origin(kind) is typing.Literal:
            return ", ".join(str(v) for v in typing.get_args(kind))
    return None
