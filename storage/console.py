"""The administrator's console: the facilities of a network with their workstations' titles,
the DICOM nodes, and the whole network as the network file declares it (its export)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from storage.db import Conn, Queryable
from storage.network import routes_by_sender
from storage.qido import DicomNode, dicom_node_values
from storage.queries import q
from storage.records import (
    AePeer,
    Destination,
    DutyShift,
    FacilityId,
    FacilitySpec,
    NetworkPolicy,
    Role,
    RouteSpec,
    Specialty,
    Tier,
    UserId,
    UserSpec,
)


@dataclass(frozen=True, kw_only=True)
class ManagedFacility:
    """A facility as its administrator manages it."""

    id: FacilityId
    code: str
    name: str
    tier: Tier
    parent: str | None
    active: bool
    #: Every calling AE title of its workstations, with what binds it.
    workstations: tuple[AePeer, ...]
    report_destination: Destination | None


@dataclass(frozen=True, kw_only=True)
class PlacedFacility:
    """A facility's row as a change reads it (locked)."""

    id: FacilityId
    code: str
    name: str
    tier: Tier
    parent_id: FacilityId | None
    active: bool


def _destination(row: asyncpg.Record) -> Destination | None:
    if row["destination_ae"] is None:
        return None
    return Destination(
        ae_title=row["destination_ae"],
        host=row["destination_host"],
        port=row["destination_port"],
        tls=row["destination_tls"],
    )


async def _titles(db: Queryable, query: str, *args: object) -> dict[int, list[AePeer]]:
    found: dict[int, list[AePeer]] = {}
    for r in await db.fetch(q(query), *args):
        found.setdefault(r["facility_id"], []).append(
            AePeer(ae_title=r["ae_title"], host=r["peer_host"], cert_sha256=r["cert_sha256"])
        )
    return found


async def facilities_in_scope(db: Queryable, admin_id: UserId) -> list[ManagedFacility]:
    """The administrator's facility and every facility below it, in the order they were
    added (parents before their children)."""
    rows = await db.fetch(q("console_facilities_in_scope"), admin_id)
    titles = await _titles(db, "console_titles_of", [r["id"] for r in rows])
    return [
        ManagedFacility(
            id=FacilityId(r["id"]),
            code=r["code"],
            name=r["name"],
            tier=Tier(r["tier"]),
            parent=r["parent"],
            active=r["active"],
            workstations=tuple(titles.get(r["id"], ())),
            report_destination=_destination(r),
        )
        for r in rows
    ]


async def lock_facility(conn: Conn, facility_id: FacilityId) -> PlacedFacility:
    r = await conn.fetchrow(q("console_facility_lock"), facility_id)
    assert r is not None  # the caller found it in scope, and nothing deletes facilities
    return PlacedFacility(
        id=FacilityId(r["id"]),
        code=r["code"],
        name=r["name"],
        tier=Tier(r["tier"]),
        parent_id=FacilityId(r["parent_id"]) if r["parent_id"] is not None else None,
        active=r["active"],
    )


async def insert_facility(
    conn: Conn, *, code: str, name: str, tier: Tier, parent_id: FacilityId
) -> FacilityId:
    fid: int = await conn.fetchval(q("console_facility_insert"), code, name, tier.value, parent_id)
    return FacilityId(fid)


async def update_facility(conn: Conn, f: PlacedFacility) -> None:
    await conn.execute(
        q("console_facility_update"), f.id, f.name, f.tier.value, f.parent_id, f.active
    )


async def children(conn: Conn, facility_id: FacilityId) -> list[tuple[str, Tier]]:
    """The code and tier of each facility directly under this one."""
    return [
        (r["code"], Tier(r["tier"])) for r in await conn.fetch(q("console_children"), facility_id)
    ]


async def in_subtree(conn: Conn, root: FacilityId, facility_id: FacilityId) -> bool:
    """Whether ``facility_id`` is ``root`` or below it."""
    found: bool = await conn.fetchval(q("console_in_subtree"), root, facility_id)
    return found


# --- DICOM nodes -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ManagedNode:
    """A DICOM node of an administrator's network, with the names it is bound by."""

    id: int
    node: DicomNode
    username: str | None
    facility: str


async def nodes_in_scope(
    db: Queryable, admin_id: UserId, node_id: int | None = None
) -> list[ManagedNode]:
    """The DICOM nodes of the administrator's network (one, when ``node_id`` is given)."""
    return [
        ManagedNode(
            id=r["id"],
            node=DicomNode.from_row(r),
            username=r["username"],
            facility=r["facility"],
        )
        for r in await db.fetch(q("console_nodes_in_scope"), admin_id, node_id)
    ]


async def insert_node(conn: Conn, node: DicomNode) -> int:
    node_id: int = await conn.fetchval(q("console_node_insert"), *dicom_node_values(node))
    return node_id


async def update_node(conn: Conn, node_id: int, node: DicomNode, *, was: str) -> None:
    """Change a node (``was``: its AE title before); a report destination that names it
    follows it (its title, host, port and TLS)."""
    await conn.execute(q("console_node_update"), node_id, *dicom_node_values(node))
    if node.host is not None and node.port is not None:
        await conn.execute(
            q("console_destination_follow"), was, node.ae_title, node.host, node.port, node.tls
        )


async def destination_of_node(conn: Conn, ae_title: str) -> str | None:
    """The code of the facility whose report destination is this node, if any."""
    code: str | None = await conn.fetchval(q("console_destination_named"), ae_title)
    return code


async def delete_node(conn: Conn, node_id: int) -> None:
    await conn.execute(q("console_node_delete"), node_id)


async def node_title_taken(conn: Conn, ae_title: str, other_than: int | None) -> bool:
    taken: bool = await conn.fetchval(q("console_node_ae_taken"), ae_title, other_than)
    return taken


# --- the network as its file declares it -----------------------------------------------------


async def export_network(pool: asyncpg.Pool) -> tuple[list[FacilitySpec], list[UserSpec]]:
    """Every facility (parents first) and user, as the network file declares them: titles
    with their bindings, policies, routing rules, report destinations, duty rosters, who is
    deactivated. No password, no token."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        rows = await conn.fetch(q("export_facilities"))
        titles = await _titles(conn, "export_titles")
        routes = routes_by_sender(await conn.fetch(q("export_routes")))
        users = await conn.fetch(q("export_users"))
        duty: dict[int, list[DutyShift]] = {}
        for d in await conn.fetch(q("export_duty")):
            duty.setdefault(d["user_id"], []).append(
                DutyShift(weekdays=frozenset(d["weekdays"]), starts=d["starts"], ends=d["ends"])
            )
    facilities = [_facility_spec(r, titles.get(r["id"], []), routes) for r in rows]
    return facilities, [_user_spec(u, duty) for u in users]


def _facility_spec(
    r: asyncpg.Record, titles: Sequence[AePeer], routes: dict[str, list[RouteSpec]]
) -> FacilitySpec:
    return FacilitySpec(
        code=r["code"],
        name=r["name"],
        tier=Tier(r["tier"]),
        parent=r["parent"],
        ae_titles=tuple(t.ae_title for t in titles),
        workstations=tuple(t for t in titles if t.host or t.cert_sha256),
        policy=NetworkPolicy.from_row(r) if r["deadline_high"] is not None else None,
        routes=tuple(routes[r["code"]]) if r["code"] in routes else None,
        report_destination=_destination(r),
        active=r["active"],
    )


def _user_spec(u: asyncpg.Record, duty: dict[int, list[DutyShift]]) -> UserSpec:
    return UserSpec(
        username=u["username"],
        display_name=u["display_name"],
        role=Role(u["role"]),
        facility=u["facility"],
        specialties=tuple(sorted(Specialty(s) for s in u["specialties"])),
        password_hash=None,
        duty=tuple(duty.get(u["id"], ())) if u["has_duty"] else None,
        active=u["active"],
    )
