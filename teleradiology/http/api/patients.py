"""The county patient index under /api/v1/patients: explicit links, merge and unmerge."""

from __future__ import annotations

from aiohttp import web

from storage.records import Role
from teleradiology.core.access import require_role
from teleradiology.http.api.endpoints import PROBLEMS, Routes, reply
from teleradiology.http.api.models.referrals import (
    LinkOut,
    LinksOut,
    MergeIn,
    NationalIdIn,
    PersonOut,
    UnlinkedOut,
)
from teleradiology.http.context import POOL, SETTINGS, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id
from teleradiology.services import patients

routes = Routes(tag="patients")


@routes.post(
    "/api/v1/patients/{id}/national-id",
    path=RecordPath,
    body=NationalIdIn,
    answer=PersonOut,
    problems=(*PROBLEMS, 501),
    summary="Link a patient record by national ID (kept as a keyed hash)",
)
async def national_id(request: web.Request) -> web.Response:
    """Link a patient record by national ID (stored only as a keyed hash)."""
    user = current_user(request)
    require_role(user, Role.CLINIC, Role.ADMIN)
    body = await body_of(request, NationalIdIn)
    person = await patients.link_national_id(
        request.app[POOL],
        path_id(request),
        body.national_id,
        user,
        key=request.app[SETTINGS].national_id_key,
    )
    return reply(PersonOut(person_id=person))


@routes.post(
    "/api/v1/patients/merge",
    body=MergeIn,
    answer=PersonOut,
    summary="Merge patient records into one person",
)
async def merge(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    body = await body_of(request, MergeIn)
    person = await patients.merge(request.app[POOL], body.patients, user)
    return reply(PersonOut(person_id=person))


@routes.post(
    "/api/v1/patients/{id}/unmerge",
    path=RecordPath,
    answer=UnlinkedOut,
    summary="Unlink a patient record",
)
async def unmerge(request: web.Request) -> web.Response:
    user = current_user(request)
    require_role(user, Role.ADMIN)
    await patients.unmerge(request.app[POOL], path_id(request), user)
    return reply(UnlinkedOut(unlinked=True))


@routes.get(
    "/api/v1/patients/{id}/links",
    path=RecordPath,
    answer=LinksOut,
    summary="The audit of a record's links",
)
async def history(request: web.Request) -> web.Response:
    """The audit of a record's links (who linked, merged or unmerged it, when)."""
    user = current_user(request)
    require_role(user, Role.ADMIN)
    found = await patients.link_history(request.app[POOL], path_id(request), user)
    return reply(LinksOut(links=[LinkOut.from_record(a) for a in found]))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
