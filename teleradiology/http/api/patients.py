"""The county patient index under /api/v1/patients: explicit links, merge and unmerge."""

from __future__ import annotations

from aiohttp import web

from storage.records import Role
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest
from teleradiology.http.context import POOL, current_user
from teleradiology.http.params import iso, json_body, path_id, text_field
from teleradiology.services import patients


async def national_id(request: web.Request) -> web.Response:
    """Link a patient record by national ID (stored only as a keyed hash)."""
    user = current_user(request)
    require_role(user, Role.CLINIC, Role.ADMIN)
    body = await json_body(request)
    person = await patients.link_national_id(
        request.app[POOL], path_id(request), text_field(body, "national_id", max_len=32), user
    )
    return web.json_response({"person_id": person})


async def merge(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await json_body(request)
    ids = body.get("patients")
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        raise BadRequest("'patients' must be a list of patient record ids")
    person = await patients.merge(request.app[POOL], ids, user)
    return web.json_response({"person_id": person})


async def unmerge(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    await patients.unmerge(request.app[POOL], path_id(request), user)
    return web.json_response({"unlinked": True})


async def history(request: web.Request) -> web.Response:
    """The audit of a record's links (who linked, merged or unmerged it, when)."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    found = await patients.link_history(request.app[POOL], path_id(request), user)
    return web.json_response(
        {
            "links": [
                {
                    "at": iso(a.at),
                    "user_id": a.user_id,
                    "action": a.action,
                    "patient_id": a.patient_id,
                    "person_id": a.person_id,
                }
                for a in found
            ]
        }
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/patients/{id}/national-id", national_id)
    r.add_post("/api/v1/patients/merge", merge)
    r.add_post("/api/v1/patients/{id}/unmerge", unmerge)
    r.add_get("/api/v1/patients/{id}/links", history)
