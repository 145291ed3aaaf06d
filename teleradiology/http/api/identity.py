"""The console's patient identity under /api/v1/admin: candidate duplicates across
facilities (and dismissing a pair), and the identity conflicts at ingest (and resolving
one). Merging and unmerging are /api/v1/patients'."""

from __future__ import annotations

from aiohttp import web

from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.identity import (
    CandidateOut,
    CandidatesOut,
    ConflictOut,
    ConflictsOut,
    ConflictsQuery,
    DismissalOut,
    DismissalsOut,
    DismissedOut,
    DismissIn,
    DuplicatesQuery,
    PairPath,
    ResolvedOut,
    ResolveIn,
    UndismissedOut,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.models import PageQuery, RecordPath
from teleradiology.http.params import body_of, path_id, path_of, query_of
from teleradiology.services import identity

routes = Routes(tag="admin")


@routes.get(
    "/api/v1/admin/patients/duplicates",
    query=DuplicatesQuery,
    answer=CandidatesOut,
    summary="Candidate duplicate records of your network, newest first: the same national ID "
    "not yet one person, or the same name, sex and birth date at two facilities",
)
async def duplicates(request: web.Request) -> web.Response:
    asked = query_of(request, DuplicatesQuery)
    found = await identity.duplicates(
        request.app[POOL], current_user(request), before=asked.cursor(), limit=asked.limit
    )
    return reply(
        CandidatesOut(
            candidates=[CandidateOut.of(p, found.records) for p in found.pairs],
            next_before=CandidatesOut.cursor(found.next_before),
        )
    )


@routes.post(
    "/api/v1/admin/patients/duplicates/dismiss",
    body=DismissIn,
    answer=DismissedOut,
    summary="Judge two records not the same person: the pair leaves the candidates",
)
async def dismiss(request: web.Request) -> web.Response:
    body = await body_of(request, DismissIn)
    a, b = body.patients
    await identity.dismiss(request.app[POOL], current_user(request), a, b, note=body.note)
    return reply(DismissedOut(dismissed=True))


@routes.get(
    "/api/v1/admin/patients/dismissals",
    query=PageQuery,
    answer=DismissalsOut,
    summary="The pairs of records of your network judged not the same person, newest first",
)
async def dismissals(request: web.Request) -> web.Response:
    asked = query_of(request, PageQuery)
    found = await identity.dismissals(
        request.app[POOL], current_user(request), limit=asked.limit, offset=asked.offset
    )
    return reply(
        DismissalsOut(
            dismissals=[DismissalOut.of(d, found.records) for d in found.dismissals],
            total=found.total,
        )
    )


@routes.delete(
    "/api/v1/admin/patients/dismissals/{a}/{b}",
    path=PairPath,
    answer=UndismissedOut,
    summary="Undo a dismissal: the pair is a candidate again while its records agree",
)
async def undismiss(request: web.Request) -> web.Response:
    pair = path_of(request, PairPath)
    await identity.undismiss(request.app[POOL], current_user(request), pair.a, pair.b)
    return reply(UndismissedOut())


@routes.get(
    "/api/v1/admin/identity-conflicts",
    query=ConflictsQuery,
    answer=ConflictsOut,
    summary="Instances of your network whose patient differed from their study's, newest first",
)
async def conflicts(request: web.Request) -> web.Response:
    asked = query_of(request, ConflictsQuery)
    found = await identity.conflicts(
        request.app[POOL],
        current_user(request),
        resolved_too=asked.status == "all",
        limit=asked.limit,
        offset=asked.offset,
    )
    return reply(
        ConflictsOut(conflicts=[ConflictOut.of(c) for c in found.conflicts], total=found.total)
    )


@routes.post(
    "/api/v1/admin/identity-conflicts/{id}/resolve",
    path=RecordPath,
    body=ResolveIn,
    answer=ResolvedOut,
    summary="Mark an identity conflict resolved, with a note",
)
async def resolve(request: web.Request) -> web.Response:
    body = await body_of(request, ResolveIn)
    await identity.resolve_conflict(
        request.app[POOL], current_user(request), path_id(request), body.note
    )
    return reply(ResolvedOut(resolved=True))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
