"""The administrator's console: the facilities of their network (add, rename, move in the
tree, deactivate, their workstations' titles and what binds each), the DICOM nodes (readers'
desktop viewers, move destinations), and the network written back as its file.

Each change is audited here, once, with the values before and after. The DICOM listener
reads titles and nodes again every few seconds (``DicomListener`` refreshes its rules every
5 s, the intake's title cache lives 5 s), so a change is seen without a restart.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage import console, network
from storage.console import ManagedFacility, ManagedNode
from storage.db import Conn, Pool, transaction
from storage.qido import DicomNode
from storage.records import AePeer, FacilityId, Role, Tier, User, UserId
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, ConfigError, Conflict, Forbidden, NotFound
from teleradiology.core.language import N_
from teleradiology.core.network_file import check_placement, format_network
from teleradiology.core.peers import check_peer_host, fingerprint
from teleradiology.services.accounts import record_change

log = logging.getLogger(__name__)


# --- facilities ------------------------------------------------------------------------------


async def facilities(pool: Pool, admin: User) -> list[ManagedFacility]:
    """The administrator's facility and every facility below it."""
    require_role(admin, Role.ADMIN)
    return await console.facilities_in_scope(pool, admin.id)


@dataclass(frozen=True, kw_only=True)
class FacilityChange:
    """What an administrator changes of a facility; None leaves a value as it is.
    ``workstations`` replaces every title (each with its binding, or none)."""

    name: str | None = None
    tier: Tier | None = None
    parent: str | None = None
    active: bool | None = None
    workstations: tuple[AePeer, ...] | None = None


def _shown(f: ManagedFacility) -> dict[str, Any]:
    """A facility as its audit record keeps it."""
    return {
        "code": f.code,
        "name": f.name,
        "tier": f.tier.value,
        "parent": f.parent,
        "active": f.active,
        "workstations": [dataclasses.asdict(w) for w in f.workstations],
    }


async def _one(conn: Conn, admin: User, code: str) -> ManagedFacility:
    for f in await console.facilities_in_scope(conn, admin.id):
        if f.code == code:
            return f
    raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=code)


async def _parent_in_scope(conn: Conn, admin: User, code: str) -> tuple[FacilityId, Tier]:
    for f in await console.facilities_in_scope(conn, admin.id):
        if f.code == code:
            return f.id, f.tier
    raise NotFound(N_("上级 %(code)s 不是您网络中的机构"), code=code)


async def _titles_free(conn: Conn, code: str, peers: Sequence[AePeer]) -> None:
    titles = [p.ae_title for p in peers]
    if len(set(titles)) != len(titles):
        raise BadRequest(N_("同一个 AE 标题写了两次"))
    for ae in titles:
        owner = await network.ae_title_owner(conn, ae)
        if owner is not None and owner != code:
            raise Conflict(N_("AE 标题 %(ae)s 已属于机构 %(owner)s"), ae=ae, owner=owner)


async def create_facility(
    pool: Pool,
    admin: User,
    *,
    code: str,
    name: str,
    tier: Tier,
    parent: str,
    workstations: Sequence[AePeer] = (),
) -> ManagedFacility:
    """Add a facility under one of the administrator's network, with its workstations'
    titles; audited.

    Raises
    ------
    NotFound
        The parent is not in the network; Conflict: the code or a title is taken;
        ConfigError: the tier cannot stand under the parent's.
    """
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        parent_id, parent_tier = await _parent_in_scope(conn, admin, parent)
        if await network.facility_id_by_code(conn, code) is not None:
            raise Conflict(N_("机构代码 %(code)s 已被使用"), code=code)
        check_placement(code, tier, (parent, parent_tier))
        await _titles_free(conn, code, workstations)
        fid = await console.insert_facility(
            conn, code=code, name=name, tier=tier, parent_id=parent_id
        )
        await network.set_ae_titles(conn, fid, [w.ae_title for w in workstations], workstations)
        created = await _one(conn, admin, code)
        await _audit(conn, admin, "facility", code, None, _shown(created))
    log.info("administrator %s added facility %s", admin.id, code)
    return created


async def change_facility(
    pool: Pool, admin: User, code: str, change: FacilityChange
) -> ManagedFacility:
    """Rename a facility of the administrator's network, change its tier, move it under
    another parent of the network, deactivate or reactivate it, or replace its titles;
    audited with the values before and after. The administrator's own facility is moved,
    retiered and deactivated only by an administrator above it.

    Raises
    ------
    NotFound
        The facility or the new parent is not in the network; Forbidden: the
        administrator's own facility; ConfigError: the tier order or the tree would break;
        Conflict: a title is another facility's.
    """
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        before = await _one(conn, admin, code)
        placed = await console.lock_facility(conn, before.id)
        moves = change.parent is not None and change.parent != before.parent
        structural = moves or change.tier not in (None, before.tier) or change.active is False
        if placed.id == admin.facility_id and structural:
            raise Forbidden(N_("您自己的机构由上级管理员移动、改级或停用"))
        after = dataclasses.replace(
            placed,
            name=change.name or placed.name,
            tier=change.tier or placed.tier,
            active=placed.active if change.active is None else change.active,
        )
        after = await _placed(conn, admin, before, after, change.parent if moves else None)
        await console.update_facility(conn, after)
        if change.workstations is not None:
            await _titles_free(conn, code, change.workstations)
            titles = [w.ae_title for w in change.workstations]
            await network.set_ae_titles(conn, placed.id, titles, change.workstations)
        changed = await _one(conn, admin, code)
        await _audit(conn, admin, "facility", code, _shown(before), _shown(changed))
    log.info("administrator %s changed facility %s", admin.id, code)
    return changed


async def _placed(
    conn: Conn,
    admin: User,
    before: ManagedFacility,
    after: console.PlacedFacility,
    new_parent: str | None,
) -> console.PlacedFacility:
    """The facility's row with its new parent, checked: in the network, not below itself,
    and the tier order kept with its parent and its children."""
    parent_code = new_parent or before.parent
    parent: tuple[str, Tier] | None = None
    if new_parent is not None:
        parent_id, parent_tier = await _parent_in_scope(conn, admin, new_parent)
        if await console.in_subtree(conn, before.id, parent_id):
            itself = parent_id == before.id
            raise ConfigError(
                N_("机构 %(code)s 不能移到 %(parent)s 之下：那就是它自己")
                if itself
                else N_("机构 %(code)s 不能移到 %(parent)s 之下：%(parent)s 在它之下"),
                code=before.code,
                parent=new_parent,
            )
        after = dataclasses.replace(after, parent_id=parent_id)
        parent = (new_parent, parent_tier)
    elif after.parent_id is not None and parent_code is not None:
        top = await network.facility_by_id(conn, after.parent_id)  # type: ignore[arg-type]
        assert top is not None
        parent = (top.code, top.tier)
    check_placement(after.code, after.tier, parent, await console.children(conn, after.id))
    return after


# --- DICOM nodes -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NodeSpec:
    """A DICOM node as the console declares it: bound to a reader (``username``: their
    viewer queries as them) or to a facility (its pool, or a move destination)."""

    ae_title: str
    username: str | None = None
    facility: str | None = None
    host: str | None = None
    port: int | None = None
    tls: bool = False
    may_query: bool = True
    move_destination: bool = False
    peer_host: str | None = None
    cert_sha256: str | None = None


async def dicom_nodes(pool: Pool, admin: User) -> list[ManagedNode]:
    """The DICOM nodes of the administrator's network: its facilities' and its users'."""
    require_role(admin, Role.ADMIN)
    return await console.nodes_in_scope(pool, admin.id)


async def _node(conn: Conn, admin: User, node_id: int) -> ManagedNode:
    found = await console.nodes_in_scope(conn, admin.id, node_id)
    if not found:
        raise NotFound(N_("DICOM 节点 %(id)s 不在您的网络中"), id=node_id)
    return found[0]


async def _bound(conn: Conn, admin: User, spec: NodeSpec) -> DicomNode:
    """The node to write: its user or facility found in the network, its values checked."""
    if (spec.username is None) == (spec.facility is None):
        raise BadRequest(N_("DICOM 节点绑定一位阅片医生（username）或一个机构，二者取一"))
    user_id: UserId | None = None
    facility_id: FacilityId | None = None
    if spec.username is not None:
        user_id = await network.user_in_admin_scope(conn, spec.username, admin)
        if user_id is None:
            raise NotFound(N_("用户 %(username)s 不在您的网络中工作"), username=spec.username)
    if spec.facility is not None:
        facility_id = await network.facility_in_admin_scope(conn, spec.facility, admin)
        if facility_id is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=spec.facility)
    if spec.port is not None and not 1 <= spec.port <= 65535:
        raise BadRequest(
            N_("DICOM 节点 %(ae)s：端口 %(port)s 不在 1 到 65535 之间"),
            ae=spec.ae_title,
            port=spec.port,
        )
    try:
        return DicomNode(
            ae_title=spec.ae_title,
            user_id=user_id,
            facility_id=facility_id,
            host=spec.host,
            port=spec.port,
            may_query=spec.may_query,
            move_destination=spec.move_destination,
            peer_host=check_peer_host(spec.peer_host) if spec.peer_host else None,
            cert_sha256=fingerprint(spec.cert_sha256) if spec.cert_sha256 else None,
            tls=spec.tls,
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _node_shown(node: DicomNode, bound_to: str | None) -> dict[str, Any]:
    shown = dataclasses.asdict(node)
    shown.pop("owner_facility_id", None)
    return shown | {"bound_to": bound_to}


async def create_node(pool: Pool, admin: User, spec: NodeSpec) -> ManagedNode:
    """Add a DICOM node to the administrator's network; audited.

    Raises
    ------
    NotFound
        Its user or facility is not in the network; Conflict: the AE title is a node's
        already; BadRequest: it is bound to neither or both, or a move destination lacks
        its host and port.
    """
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        node = await _bound(conn, admin, spec)
        if await console.node_title_taken(conn, node.ae_title, None):
            raise Conflict(N_("AE 标题 %(ae)s 已是一个 DICOM 节点"), ae=node.ae_title)
        node_id = await console.insert_node(conn, node)
        created = await _node(conn, admin, node_id)
        await _audit(conn, admin, "dicom_node", node_id, None, _node_shown(node, spec.username))
    return created


async def change_node(pool: Pool, admin: User, node_id: int, spec: NodeSpec) -> ManagedNode:
    """Replace a DICOM node of the network by ``spec``; a report destination naming it
    follows its title, host, port and TLS; audited with the values before and after."""
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        before = await _node(conn, admin, node_id)
        node = await _bound(conn, admin, spec)
        if await console.node_title_taken(conn, node.ae_title, node_id):
            raise Conflict(N_("AE 标题 %(ae)s 属于另一个 DICOM 节点"), ae=node.ae_title)
        await console.update_node(conn, node_id, node, was=before.node.ae_title)
        after = await _node(conn, admin, node_id)
        await _audit(
            conn,
            admin,
            "dicom_node",
            node_id,
            _node_shown(before.node, before.username),
            _node_shown(node, spec.username),
        )
    return after


async def delete_node(pool: Pool, admin: User, node_id: int) -> None:
    """Remove a DICOM node of the network (not while it takes a facility's reports);
    audited with what it was."""
    require_role(admin, Role.ADMIN)
    async with transaction(pool) as conn:
        before = await _node(conn, admin, node_id)
        taker = await console.destination_of_node(conn, before.node.ae_title)
        if taker is not None:
            raise Conflict(
                N_("%(ae)s 接收机构 %(taker)s 的报告：请先另选报告目的地"),
                ae=before.node.ae_title,
                taker=taker,
            )
        await console.delete_node(conn, node_id)
        await _audit(
            conn, admin, "dicom_node", node_id, _node_shown(before.node, before.username), None
        )


# --- the network file, written back -----------------------------------------------------------


async def export_network(pool: Pool) -> str:
    """The whole network as its TOML file (``telemed network import`` of it gives the same
    network): facilities, titles with their bindings, policies, routing rules, report
    destinations, users with their duty rosters. No password, no token."""
    facilities_found, users = await console.export_network(pool)
    return format_network(facilities_found, users)


async def _audit(
    conn: Conn,
    admin: User,
    object_type: str,
    object_id: str | int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    await record_change(conn, admin, object_type, object_id, {"before": before, "after": after})
