"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"$ref": "#/components/responses/Problem"}


def _op(summary: str, *, body: str | None = None, ok: str = "200", tag: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok: {"description": "success", "content": {"application/json": {}}},
            "400": _PROBLEM,
            "401": _PROBLEM,
            "403": _PROBLEM,
            "404": _PROBLEM,
            "409": _PROBLEM,
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Telemed remote diagnosis network API",
            "version": "1",
            "description": (
                "Worklists, cases and reports of the county–township–village diagnosis "
                "network. Every call but login needs 'Authorization: Bearer <token>'. "
                "Errors are application/problem+json (RFC 9457)."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/login": {
                "post": {
                    **_op("Sign in; returns a bearer token", body="Login", tag="auth"),
                    "security": [],
                }
            },
            "/api/v1/me": {"get": _op("The signed-in user", tag="auth")},
            "/api/v1/worklist": {
                "get": _op("Open cases of the reader's pools, most urgent first", tag="reading")
            },
            "/api/v1/cases/{id}": {
                "parameters": _ID,
                "get": _op("One case with its reports and events", tag="reading"),
            },
            "/api/v1/cases/{id}/claim": {
                "parameters": _ID,
                "post": _op("Claim (or renew the lease on) a case", tag="reading"),
            },
            "/api/v1/cases/{id}/release": {
                "parameters": _ID,
                "post": _op("Give a claimed case back to its pool", tag="reading"),
            },
            "/api/v1/cases/{id}/report": {
                "parameters": _ID,
                "post": _op(
                    "Sign a report on a claimed case", body="ReportIn", ok="201", tag="reading"
                ),
            },
            "/api/v1/reports": {"get": _op("The clinic's report inbox", tag="clinic")},
            "/api/v1/reports/{id}": {
                "parameters": _ID,
                "get": _op("One delivered report", tag="clinic"),
            },
            "/api/v1/reports/{id}/acknowledge": {
                "parameters": _ID,
                "post": _op("The clinic confirms it received the report", tag="clinic"),
            },
            "/api/v1/studies": {"get": _op("Studies in the caller's scope", tag="clinic")},
            "/api/v1/stats/turnaround": {
                "get": _op("Received-to-report turnaround per sending facility", tag="admin")
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                "Problem": {
                    "description": "an RFC 9457 problem",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                },
                "Login": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string"},
                    },
                },
                "ReportIn": {
                    "type": "object",
                    "required": ["findings", "impression", "conclusion"],
                    "properties": {
                        "findings": {"type": "string"},
                        "impression": {"type": "string"},
                        "conclusion": {"enum": ["normal", "abnormal", "critical"]},
                        "status": {"enum": ["preliminary", "final"], "default": "final"},
                    },
                },
            },
        },
    }
