"""The administrator's console under /api/v1/admin: the facilities of their network and the
DICOM nodes (their own network only; every change audited with the values before and
after)."""

from __future__ import annotations

from aiohttp import web

from storage.records import AePeer
from teleradiology.core.errors import ConfigError
from teleradiology.core.language import N_
from teleradiology.core.peers import check_peer_host, fingerprint
from teleradiology.http.api.endpoints import Routes, reply
from teleradiology.http.api.models.admin import FacilityPath
from teleradiology.http.api.models.console import (
    FacilitiesOut,
    FacilityChangeIn,
    FacilityIn,
    FacilityOut,
    NodeDeleted,
    NodeIn,
    NodeOut,
    NodesOut,
    WorkstationIn,
)
from teleradiology.http.context import POOL, current_user
from teleradiology.http.models import RecordPath
from teleradiology.http.params import body_of, path_id, path_of
from teleradiology.services import console
from teleradiology.services.console import FacilityChange, NodeSpec

routes = Routes(tag="admin")


def _peers(given: list[WorkstationIn]) -> tuple[AePeer, ...]:
    """The workstations as the network file's bindings, each checked as the file's are."""
    try:
        return tuple(
            AePeer(
                ae_title=w.ae_title,
                host=check_peer_host(w.host) if w.host else None,
                cert_sha256=fingerprint(w.certificate_sha256) if w.certificate_sha256 else None,
            )
            for w in given
        )
    except ConfigError as exc:
        raise ConfigError(N_("workstations：%(error)s"), error=exc.phrase) from None


@routes.get(
    "/api/v1/admin/facilities",
    answer=FacilitiesOut,
    summary="The facilities of the administrator's network, with their workstations' titles "
    "(and what binds each) and report destination",
)
async def list_facilities(request: web.Request) -> web.Response:
    found = await console.facilities(request.app[POOL], current_user(request))
    return reply(FacilitiesOut(facilities=[FacilityOut.of(f) for f in found]))


@routes.post(
    "/api/v1/admin/facilities",
    body=FacilityIn,
    answer=FacilityOut,
    status=201,
    summary="Add a facility under one of the network (the tier order kept), with its "
    "workstations' titles",
)
async def create_facility(request: web.Request) -> web.Response:
    body = await body_of(request, FacilityIn)
    created = await console.create_facility(
        request.app[POOL],
        current_user(request),
        code=body.code,
        name=body.name,
        tier=body.tier,
        parent=body.parent,
        workstations=_peers(body.workstations),
    )
    return reply(FacilityOut.of(created), status=201)


@routes.patch(
    "/api/v1/admin/facilities/{code}",
    path=FacilityPath,
    body=FacilityChangeIn,
    answer=FacilityOut,
    summary="Rename, retier, move under another parent (no cycle, the tier order kept), "
    'deactivate ({"active": false}) or reactivate a facility, or replace its titles',
)
async def change_facility(request: web.Request) -> web.Response:
    body = await body_of(request, FacilityChangeIn)
    change = FacilityChange(
        name=body.name,
        tier=body.tier,
        parent=body.parent,
        active=body.active,
        workstations=_peers(body.workstations) if body.workstations is not None else None,
    )
    code = path_of(request, FacilityPath).code
    changed = await console.change_facility(request.app[POOL], current_user(request), code, change)
    return reply(FacilityOut.of(changed))


def _node_spec(body: NodeIn) -> NodeSpec:
    return NodeSpec(
        ae_title=body.ae_title,
        username=body.username,
        facility=body.facility,
        host=body.host,
        port=body.port,
        tls=body.tls,
        may_query=body.may_query,
        move_destination=body.move_destination,
        peer_host=body.peer_host,
        cert_sha256=body.certificate_sha256,
    )


@routes.get(
    "/api/v1/admin/dicom-nodes",
    answer=NodesOut,
    summary="The DICOM nodes of the network: readers' desktop viewers, facilities' nodes "
    "(move and report destinations)",
)
async def list_nodes(request: web.Request) -> web.Response:
    found = await console.dicom_nodes(request.app[POOL], current_user(request))
    return reply(NodesOut(dicom_nodes=[NodeOut.of(n) for n in found]))


@routes.post(
    "/api/v1/admin/dicom-nodes",
    body=NodeIn,
    answer=NodeOut,
    status=201,
    summary="Add a DICOM node, bound to a reader or a facility of the network",
)
async def create_node(request: web.Request) -> web.Response:
    body = await body_of(request, NodeIn)
    created = await console.create_node(request.app[POOL], current_user(request), _node_spec(body))
    return reply(NodeOut.of(created), status=201)


@routes.patch(
    "/api/v1/admin/dicom-nodes/{id}",
    path=RecordPath,
    body=NodeIn,
    answer=NodeOut,
    summary="Replace a DICOM node (a report destination naming it follows it)",
)
async def change_node(request: web.Request) -> web.Response:
    body = await body_of(request, NodeIn)
    changed = await console.change_node(
        request.app[POOL], current_user(request), path_id(request), _node_spec(body)
    )
    return reply(NodeOut.of(changed))


@routes.delete(
    "/api/v1/admin/dicom-nodes/{id}",
    path=RecordPath,
    answer=NodeDeleted,
    summary="Remove a DICOM node (not while it takes a facility's reports)",
)
async def delete_node(request: web.Request) -> web.Response:
    node_id = path_id(request)
    await console.delete_node(request.app[POOL], current_user(request), node_id)
    return reply(NodeDeleted(id=node_id, deleted=True))


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
