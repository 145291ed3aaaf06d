"""Every protected call needs a valid token; a valid token outside its scope gets no data."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from teleradiology.http.app import PROTECTED_PREFIXES
from tests.integration.conftest import Api

#: The one-time link's secret, in the body, is what lets /api/v1/password/link in.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/api/v1/login",
    "/api/v1/password/link",
}


def _protected_routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        # CORS preflights answer anyone; the viewer's files and pages are outside the API.
        if not path or path in PUBLIC or route.method in ("HEAD", "OPTIONS"):
            continue
        if not path.startswith(PROTECTED_PREFIXES):
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", path.replace("{tail:.*}", "anything"))
        found.append((route.method if route.method != "*" else "GET", concrete))
    return found


async def test_every_protected_route_answers_401_problem_json_without_a_valid_token(
    api: Api,
) -> None:
    routes = _protected_routes(api.app)
    assert len(routes) >= 15  # the API and DICOMweb routes are all registered
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        for method, path in routes:
            response = await api.client.request(method, path, headers=headers)
            assert response.status == 401, (method, path, headers)
            assert response.content_type == "application/problem+json"
            body = await response.json()
            assert body["status"] == 401
            assert body["detail"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_expired_or_revoked_token_is_refused(api: Api) -> None:
    await api.pool.execute("update api_token set expires_at = now() - interval '1 second'")
    response = await api.client.get("/api/v1/me", headers=api.auth("xl.clinic"))
    assert response.status == 401


async def test_public_routes_answer_without_a_token(api: Api) -> None:
    assert (await api.client.get("/healthz")).status == 200
    assert (await api.client.get("/readyz")).status == 200
    spec = await (await api.client.get("/api/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/worklist" in spec["paths"]


async def test_login_with_the_password_gives_a_working_token(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/login", json={"username": "wang.reader", "password": "demo-wang.reader"}
    )
    assert response.status == 200
    token = (await response.json())["token"]
    me = await api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["username"] == "wang.reader"
    wrong = await api.client.post(
        "/api/v1/login", json={"username": "wang.reader", "password": "guess-guess"}
    )
    assert wrong.status == 401


@pytest.mark.parametrize(
    ("username", "path", "status"),
    [
        ("xl.clinic", "/api/v1/worklist", 403),  # a clinic has no worklist
        ("wang.reader", "/api/v1/stats/turnaround", 403),
        ("xl.clinic", "/api/v1/cases/1/claim", 403),
    ],
)
async def test_a_role_that_may_not_act_gets_403(
    api: Api, username: str, path: str, status: int
) -> None:
    method = "POST" if path.endswith("claim") else "GET"
    response = await api.client.request(method, path, headers=api.auth(username))
    assert response.status == status
    assert response.content_type == "application/problem+json"


async def test_stow_by_a_reader_is_refused(api: Api) -> None:
    response = await api.client.post(
        "/dicomweb/studies",
        data=b"--x--",
        headers={
            **api.auth("wang.reader"),
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=x',
        },
    )
    assert response.status == 403


async def test_every_api_route_is_in_the_openapi_document(api: Api) -> None:
    spec = await (await api.client.get("/api/v1/openapi.json")).json()
    missing = []
    for route in api.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if not path or not path.startswith("/api/v1/") or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        if path != "/api/v1/openapi.json" and route.method.lower() not in spec["paths"].get(
            path, {}
        ):
            missing.append((route.method, path))
    assert missing == []
    assert "put" in spec["paths"]["/api/v1/admin/facilities/{code}/routes"]
