"""The document describes exactly the routes the application serves under /api/v1, and what
they answer is what it says."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store


def _served(api: Api) -> set[tuple[str, str]]:
    found = set()
    for route in api.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if path.startswith("/api/v1") and route.method != "HEAD":
            found.add((route.method.lower(), path))
    return found


async def _document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/api/v1/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def test_the_document_names_exactly_the_routes_served(api: Api) -> None:
    document = await _document(api)
    described = {(m, path) for path, ops in document["paths"].items() for m in ops}
    assert _served(api) == described
    assert len(described) > 40


async def _checked(
    api: Api,
    document: dict[str, Any],
    user: str,
    method: str,
    path: str,
    template: str,
    body: object = None,
    status: int = 200,
) -> Any:
    response = await api.client.request(method, path, json=body, headers=api.auth(user))
    answer = await response.json()
    assert response.status == status, answer
    op = document["paths"][template][method.lower()]
    schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": document["components"]}).validate(answer)
    return answer


async def test_real_answers_validate_against_their_documented_schemas(api: Api) -> None:
    document = await _document(api)
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id="P-9"))
    await route_all(api)
    reader, clinic, admin = "wang.reader", "xlwd.clinic", "hb.admin"
    await _checked(api, document, reader, "GET", "/api/v1/me", "/api/v1/me")
    worklist = await _checked(api, document, reader, "GET", "/api/v1/worklist", "/api/v1/worklist")
    case_id = next(c["id"] for c in worklist["cases"] if c["study_instance_uid"] == uid)
    for key in ("id", "study_instance_uid", "priority", "status", "deadline"):
        assert key in worklist["cases"][0]
    case_path = "/api/v1/cases/{id}"
    await _checked(
        api, document, reader, "POST", f"/api/v1/cases/{case_id}/claim", case_path + "/claim"
    )
    report = await _checked(
        api,
        document,
        reader,
        "POST",
        f"/api/v1/cases/{case_id}/report",
        case_path + "/report",
        {"findings": "双肺纹理清晰", "impression": "未见异常", "conclusion": "normal"},
        201,
    )
    assert {"id", "case_id", "study_instance_uid", "conclusion"} <= set(report)
    await _checked(api, document, reader, "GET", f"/api/v1/cases/{case_id}", case_path)
    await _checked(api, document, clinic, "GET", "/api/v1/reports", "/api/v1/reports")
    await _checked(api, document, clinic, "GET", "/api/v1/studies", "/api/v1/studies")
    await _checked(
        api, document, admin, "GET", "/api/v1/stats/turnaround", "/api/v1/stats/turnaround"
    )
    await _checked(api, document, admin, "GET", "/api/v1/admin/routing", "/api/v1/admin/routing")
    failed = "/api/v1/admin/deliveries/failed"
    await _checked(api, document, admin, "GET", failed, failed)
    await _checked(api, document, reader, "GET", "/api/v1/templates", "/api/v1/templates")
    await _checked(api, document, clinic, "GET", "/api/v1/referrals", "/api/v1/referrals")
    await _checked(
        api,
        document,
        reader,
        "GET",
        f"/api/v1/reports/{report['id']}/notifications",
        "/api/v1/reports/{id}/notifications",
    )


async def test_a_wrong_body_is_a_problem_that_names_the_field(api: Api) -> None:
    async def detail() -> str:
        response = await api.client.post(
            "/api/v1/referrals",
            json={"to": "XY-CITY", "reason": "胸痛", "urgency": "soon"},
            headers=api.auth("xlwd.clinic"),
        )
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        return str((await response.json())["detail"])

    # in the caller's language: zh-CN by default, English once they chose it
    chinese = await detail()
    assert chinese == "urgency：须为以下之一：routine, urgent, emergency，而非 'soon'", chinese
    changed = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth("xlwd.clinic")
    )
    assert changed.status == 200
    english = await detail()
    assert english == "urgency: must be one of routine, urgent, emergency, not 'soon'", english
