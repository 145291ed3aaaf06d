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

from teleradiology.core.errors import BadRequest, NotFound, WrongValue
from teleradiology.core.language import N_, Phrase
from teleradiology.http.models import RecordPath, iso

__all__ = [
    "body_of",
    "invalid",
    "iso",
    "parse_time",
    "path_id",
    "path_of",
    "query_of",
    "readable",
]

M = TypeVar("M", bound=BaseModel)


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(N_("请求正文不是有效的 JSON")) from None
    if not isinstance(body, dict):
        raise BadRequest(N_("请求正文须为 JSON 对象"))
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
        raise BadRequest(N_("文本不能含 NUL 字符（U+0000）"))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc, model) from None


def path_of(request: web.Request, model: type[M]) -> M:
    """The path's parameters as ``model``; a value that cannot name a record is 404."""
    if _has_nul(dict(request.match_info)):
        raise NotFound(N_("没有这条记录：名称含 NUL 字符"))
    try:
        return model.model_validate(dict(request.match_info))
    except ValidationError:
        shown = ", ".join(repr(v) for v in request.match_info.values())
        raise NotFound(N_("没有这条记录：%(shown)s"), shown=shown) from None


def path_id(request: web.Request) -> int:
    """The record number of a ``/{id}`` path."""
    return path_of(request, RecordPath).id


def parse_time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(N_("%(name)s=%(text)r 不是 ISO 8601 时间"), name=name, text=text) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- errors a person reads ---------------------------------------------------------------------

_PHRASES = {
    "string_type": N_("须为文本"),
    "int_type": N_("须为整数"),
    "int_parsing": N_("须为整数"),
    "int_from_float": N_("须为整数"),
    "float_type": N_("须为数字"),
    "float_parsing": N_("须为数字"),
    "bool_type": N_("须为 true 或 false"),
    "bool_parsing": N_("须为 true 或 false"),
    "list_type": N_("须为列表"),
    "dict_type": N_("须为 JSON 对象"),
    "model_type": N_("须为 JSON 对象"),
    "model_attributes_type": N_("须为 JSON 对象"),
    "datetime_type": N_("须为 ISO 8601 时间，如 2026-03-01T08:00:00Z"),
    "datetime_parsing": N_("须为 ISO 8601 时间，如 2026-03-01T08:00:00Z"),
    "datetime_from_date_parsing": N_("须为 ISO 8601 时间，如 2026-03-01T08:00:00Z"),
    "string_too_short": N_("不能为空"),
}

_BOUNDS = {
    "greater_than": ("gt", N_("须大于 %(n)s")),
    "greater_than_equal": ("ge", N_("须不小于 %(n)s")),
    "less_than": ("lt", N_("须小于 %(n)s")),
    "less_than_equal": ("le", N_("须不大于 %(n)s")),
    "string_too_long": ("max_length", N_("超过 %(n)s 个字符")),
    "too_long": ("max_length", N_("至多可有 %(n)s 项")),
}


def invalid(exc: ValidationError, model: type[BaseModel]) -> BadRequest:
    """The refusal of values that do not fit ``model``: each wrong field named."""
    return BadRequest(Phrase("%(errors)s", {"errors": readable(exc, model)}))


def readable(exc: ValidationError, model: type[BaseModel]) -> list[Phrase]:
    """One sentence per wrong field, e.g. "priority: must be one of routine, urgent, stat",
    said in the caller's language at the problem edge."""
    return [_sentence(error, model) for error in exc.errors(include_url=False)]


def _sentence(error: ErrorDetails, model: type[BaseModel]) -> Phrase:
    where = ".".join(str(part) for part in error["loc"])
    phrase = _phrase(error, model)
    value = error.get("input")
    if error["type"] != "missing" and isinstance(value, str | int | float) and len(str(value)) < 80:
        phrase = Phrase(N_("%(what)s，而非 %(value)r"), {"what": phrase, "value": value})
    return Phrase(N_("%(where)s：%(what)s"), {"where": where, "what": phrase}) if where else phrase


def _phrase(error: ErrorDetails, model: type[BaseModel]) -> Phrase:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        allowed = _allowed(model, error["loc"])
        if allowed:
            return Phrase(N_("必填（可选：%(allowed)s）"), {"allowed": allowed})
        return Phrase(N_("必填"))
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return Phrase(N_("须为以下之一：%(allowed)s"), {"allowed": expected})
    if kind in _BOUNDS:
        key, text = _BOUNDS[kind]
        if kind == "greater_than" and ctx.get(key) == 0:
            return Phrase(N_("须为正数（大于 0）"))
        return Phrase(text, {"n": ctx.get(key)})
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        wrong = ctx["error"]
        return wrong.phrase if isinstance(wrong, WrongValue) else Phrase(str(wrong))
    return Phrase(_PHRASES.get(kind, error["msg"]))


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
