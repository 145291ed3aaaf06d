"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json, made from the
routes' declarations (``endpoints.Routes``) and their models' JSON schemas."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from teleradiology.http.api import (
    accounts,
    admin,
    audit,
    cases,
    casework,
    console,
    dashboard,
    ecg,
    events,
    identity,
    notices,
    operations,
    orders,
    patients,
    referrals,
    rosters,
    uploads,
)
from teleradiology.http.api.endpoints import Endpoint, Routes
from teleradiology.http.models import Problem

REF = "#/components/schemas/{model}"
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_PATH_NAME = re.compile(r"\{([^}:]+)\}")

routes = Routes(tag="auth")


class Schemas:
    """``components/schemas``: each model's JSON schema and the models it refers to."""

    def __init__(self) -> None:
        self.found: dict[str, Any] = {}

    def add(self, model: type[BaseModel], mode: str) -> dict[str, Any]:
        """The model's schema (its own $defs moved into the components)."""
        schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, sub in schema.pop("$defs", {}).items():
            self._put(name, sub)
        return schema

    def ref(self, model: type[BaseModel], mode: str) -> dict[str, str]:
        self._put(model.__name__, self.add(model, mode))
        return {"$ref": REF.format(model=model.__name__)}

    def _put(self, name: str, schema: dict[str, Any]) -> None:
        if self.found.setdefault(name, schema) != schema:
            raise ValueError(f"two schemas are named {name}: give one model another name")


def _parameters(e: Endpoint, schemas: Schemas) -> list[dict[str, Any]]:
    names = _PATH_NAME.findall(e.path)
    declared = schemas.add(e.path_params, "validation") if e.path_params else {}
    props = declared.get("properties", {})
    if e.path_params and sorted(props) != sorted(names):
        raise ValueError(f"{e.path}: the path model names {sorted(props)}, the path {names}")
    found = [
        _parameter(name, "path", props.get(name, {"type": "string"}), required=True)
        for name in names
    ]
    if e.query:
        query = schemas.add(e.query, "validation")
        required = set(query.get("required", ()))
        for name, prop in query.get("properties", {}).items():
            found.append(_parameter(name, "query", prop, required=name in required))
    return found


def _parameter(name: str, where: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    schema = dict(schema)
    schema.pop("title", None)
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if "description" in schema:
        param["description"] = schema.pop("description")
    return param


def _responses(e: Endpoint, schemas: Schemas) -> dict[str, Any]:
    if e.answer is not None:
        content: Any = {"application/json": {"schema": schemas.ref(e.answer, "serialization")}}
    else:
        content = dict(e.media or {"application/json": {}})
    ok: dict[str, Any] = {"description": "success", "content": content}
    if e.headers:
        ok["headers"] = dict(e.headers)
    answers: dict[str, Any] = {str(status): ok for status in (e.status, *e.also)}
    answers.update({str(status): _PROBLEM for status in e.problems})
    return answers


def _operation(e: Endpoint, schemas: Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": e.summary,
        "tags": [e.tag],
        "operationId": e.handler.__name__ + ("" if e.method == "GET" else f"_{e.method.lower()}"),
    }
    if e.handler.__doc__:
        op["description"] = " ".join(e.handler.__doc__.split())
    parameters = _parameters(e, schemas)
    if parameters:
        op["parameters"] = parameters
    if e.body is not None:
        content: Any = {"application/json": {"schema": schemas.ref(e.body, "validation")}}
        op["requestBody"] = {"required": True, "content": content}
    elif e.body_media is not None:
        op["requestBody"] = {"required": True, "content": dict(e.body_media)}
    op["responses"] = _responses(e, schemas)
    if e.public:
        op["security"] = []
    return op


def api_routes() -> tuple[Routes, ...]:
    """Every module's routes under /api/v1."""
    return (
        routes,
        cases.routes,
        casework.routes,
        referrals.routes,
        orders.routes,
        patients.routes,
        identity.routes,
        admin.routes,
        dashboard.routes,
        console.routes,
        rosters.routes,
        notices.routes,
        operations.routes,
        accounts.routes,
        audit.routes,
        ecg.routes,
        uploads.routes,
        events.routes,
    )


def openapi_document(tables: Iterable[Routes] | None = None) -> dict[str, Any]:
    schemas = Schemas()
    schemas.ref(Problem, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for table in tables if tables is not None else api_routes():
        for e in table.endpoints:
            operation = _operation(e, schemas)
            operation["operationId"] = _unique(operation["operationId"], e, paths)
            paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Telemed remote diagnosis network API",
            "version": "1",
            "description": (
                "Worklists, cases and reports of the county–township–village diagnosis "
                "network. Every call but login needs 'Authorization: Bearer <token>'. "
                "Errors are application/problem+json (RFC 9457): their 'detail' is in the "
                "caller's language (the user's own, else Accept-Language's: zh-CN or en), "
                "their 'type', 'title' and 'status' the same in every language."
            ),
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Problem": {
                    "description": "an RFC 9457 problem",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": REF.format(model="Problem")}
                        }
                    },
                }
            },
            "schemas": dict(sorted(schemas.found.items())),
        },
    }


def _unique(name: str, e: Endpoint, paths: dict[str, dict[str, Any]]) -> str:
    taken = {op["operationId"] for ops in paths.values() for op in ops.values()}
    if name not in taken:
        return name
    return name + "_" + re.sub(r"\W+", "_", e.path.rsplit("/", 1)[-1]).strip("_")


_DOCUMENT: dict[str, Any] = {}


@routes.get(
    "/api/v1/openapi.json",
    media={"application/json": {"schema": {"type": "object"}}},
    summary="This document (OpenAPI 3.1)",
    public=True,
)
async def openapi(request: web.Request) -> web.Response:
    if not _DOCUMENT:
        _DOCUMENT.update(openapi_document())
    return web.json_response(_DOCUMENT)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
