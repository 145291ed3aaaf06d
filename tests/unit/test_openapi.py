"""The OpenAPI document is made from the routes' declarations, and is valid OpenAPI 3.1."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from storage.records import Language, Priority
from teleradiology.core.errors import BadRequest
from teleradiology.http.api.models.admin import PolicyIn
from teleradiology.http.api.models.ecg import SheetQuery
from teleradiology.http.api.models.reading import ReportIn
from teleradiology.http.api.openapi import openapi_document
from teleradiology.http.params import validated


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_reference_resolves_and_every_operation_answers() -> None:
    document = openapi_document()
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert node, ref
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            assert op["responses"], (method, path)
            assert op["summary"], (method, path)
            assert op["tags"], (method, path)


def test_only_signing_in_a_one_time_link_and_the_document_need_no_token() -> None:
    document = openapi_document()
    public = sorted(
        path for path, ops in document["paths"].items() for op in ops.values() if "security" in op
    )
    assert public == ["/api/v1/login", "/api/v1/openapi.json", "/api/v1/password/link"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


class _Asked(BaseModel):
    priority: Priority
    limit: int = Field(10, ge=1, le=100)


@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        (_Asked, {"priority": "soon"}, "priority: must be one of high, medium, low, not 'soon'"),
        (_Asked, {}, "priority: is required (one of high, medium, low)"),
        (_Asked, {"priority": "low", "limit": "x"}, "limit: must be a whole number, not 'x'"),
        (_Asked, {"priority": "low", "limit": 500}, "limit: must be at most 100, not 500"),
        (SheetQuery, {"filter": "hum"}, "filter: must be one of diagnostic, muscle, none"),
        (
            PolicyIn,
            {"deadline_minutes": {"urgent": -5}},
            "deadline_minutes.urgent: must be positive",
        ),
        (ReportIn, {"conclusion": "normal"}, "'findings' is required and must be text"),
        (
            ReportIn,
            {"conclusion": "normal", "agreed": "yes", "template_id": 1},
            "agreed: must be true or false",
        ),
    ],
)
def test_a_wrong_value_is_named_with_what_is_allowed(
    model: type[BaseModel], data: dict[str, Any], expected: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        validated(model, data)
    assert expected in str(refused.value)
    assert "pydantic" not in str(refused.value)
    assert "Input should" not in str(refused.value)


@pytest.mark.parametrize(
    ("data", "chinese", "english"),
    [
        ({"priority": "soon"}, "priority：须为以下之一：high, medium, low，而非 'soon'",
         "priority: must be one of high, medium, low, not 'soon'"),
        ({"priority": "low", "limit": 500}, "limit：须不大于 100，而非 500",
         "limit: must be at most 100, not 500"),
    ],
)  # fmt: skip
def test_a_wrong_value_is_named_in_the_callers_language(
    data: dict[str, Any], chinese: str, english: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        validated(_Asked, data)
    assert refused.value.say(Language.ZH_CN) == chinese
    assert refused.value.say(Language.EN) == english == str(refused.value)


def test_a_models_own_check_is_said_in_the_callers_language() -> None:
    with pytest.raises(BadRequest) as refused:
        validated(ReportIn, {"conclusion": "normal", "impression": "无异常"})
    assert refused.value.say(Language.ZH_CN) == "须填写 'findings'（文本，或给出 template_id）"
    assert "'findings' is required and must be text" in refused.value.say(Language.EN)
