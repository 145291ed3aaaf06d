"""Administration: the network (facilities, users, their tokens), routing as data (policies,
routing rules, report destinations, duty rosters) and the DICOM nodes that query us.

An administrator's change is audited here, once, with what it set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage import accounts, audit, channels, jobs, network, qido, quotas, rosters
from storage.db import Conn, Pool, transaction
from storage.jobs import FailedDelivery, FailedKind
from storage.network import PlacedRoute
from storage.qido import DicomNode
from storage.records import (
    AuditAction,
    Destination,
    DutyShift,
    FacilityId,
    FacilitySpec,
    NetworkPolicy,
    Role,
    RouteSpec,
    TokenKind,
    User,
    UserId,
    UserSpec,
)
from teleradiology.core.access import require_role
from teleradiology.core.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    NotFound,
    ServiceError,
)
from teleradiology.core.language import N_, Phrase
from teleradiology.core.network_file import parse_network
from teleradiology.core.peers import check_peer_host, fingerprint
from teleradiology.services import accounts as accounts_service
from teleradiology.services import notices, signin
from teleradiology.services.delivery import DELIVER_REPORT

log = logging.getLogger(__name__)

#: A report destination that names no DICOM node the service can send to, and its remedy.
NOT_A_NODE = N_("%(ae_title)s 不是机构 %(code)s 有主机和端口的 DICOM 节点：%(fix)s")
ADD_THE_NODE = N_(
    "请运维人员先将节点（ae_title、facility、host、port）写入 TELEMED_DICOM_NODES 文件"
)

# --- the network -----------------------------------------------------------------------------


async def import_network_file(pool: Pool, path: Path) -> NetworkImported:
    """Add or update the facilities and users a network file (TOML) declares.

    Raises
    ------
    ServiceError
        The file cannot be read; ConfigError: it is not a network file.
    """
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
    except OSError as exc:
        raise ServiceError(
            N_("无法读取 %(path)s：%(reason)s"), path=str(path), reason=exc.strerror
        ) from None
    facilities, users = parse_network(text)
    return await import_network(pool, facilities, users)


@dataclass(frozen=True, kw_only=True)
class NetworkImported:
    """What an import did: how many facilities and users, and the one-time links of the
    users who have no password yet (username → link secret, valid ``FIRST_LINK_LIFETIME``)."""

    facilities: int
    users: int
    first_links: dict[str, str]


#: How long the one-time link of a user imported without a password works.
FIRST_LINK_LIFETIME = accounts_service.FIRST_LINK_LIFETIME


async def import_network(
    pool: Pool, facilities: Sequence[FacilitySpec], users: Sequence[UserSpec]
) -> NetworkImported:
    """Add or update facilities (parents first) and users, all in one transaction; then
    each facility's policy, routing rules and report destination. A user whose given hash
    is of the public demo password is marked so (the service then serves only as the demo);
    a user left without a password gets a one-time link to set one.

    Raises
    ------
    NotFound
        A parent, a user's facility or a facility a route names is not in the network.
    Conflict
        An AE title already belongs to another facility.
    """
    users = [await _marked_demo(u) for u in users]
    first_links: dict[str, str] = {}
    expires = datetime.now(UTC) + FIRST_LINK_LIFETIME
    async with transaction(pool) as conn:
        for f in facilities:
            await _import_facility(conn, f)
        for u in users:
            user_id, needs_password = await _import_user(conn, u)
            if needs_password:
                first_links[u.username] = await accounts.create_password_link(
                    conn, user_id, expires_at=expires, created_by=None
                )
        for f in facilities:
            fid = await _facility_id(conn, f.code, f"facility {f.code}")
            await _write_rules(
                conn,
                fid,
                f.code,
                policy=f.policy,
                routes=f.routes,
                destination=f.report_destination,
            )
            for spec in f.channels or ():
                await channels.upsert(conn, fid, None, spec)
    return NetworkImported(facilities=len(facilities), users=len(users), first_links=first_links)


async def _marked_demo(u: UserSpec) -> UserSpec:
    """The user, marked when the hash the file gives is of the public demo password."""
    if u.password_hash is None or u.demo_password:
        return u
    if await signin.is_demo_hash(u.username, u.password_hash):
        return dataclasses.replace(u, demo_password=True)
    return u


async def _import_facility(conn: Conn, f: FacilitySpec) -> None:
    if f.parent is not None and await network.facility_id_by_code(conn, f.parent) is None:
        raise NotFound(
            N_("机构 %(code)s：上级 %(parent)s 不在网络中"), code=f.code, parent=f.parent
        )
    fid = await network.upsert_facility(conn, f)
    for ae in f.ae_titles:
        owner = await network.ae_title_owner(conn, ae)
        if owner is not None and owner != f.code:
            raise Conflict(N_("AE 标题 %(ae)s 已属于机构 %(owner)s"), ae=ae, owner=owner)
    await network.set_ae_titles(conn, fid, f.ae_titles, f.workstations)


async def _import_user(conn: Conn, u: UserSpec) -> tuple[UserId, bool]:
    if await network.facility_id_by_code(conn, u.facility) is None:
        raise NotFound(
            N_("用户 %(username)s：机构 %(code)s 不在网络中"), username=u.username, code=u.facility
        )
    user_id, needs_password = await network.upsert_user(conn, u)
    if u.duty is not None:
        await network.replace_duty(conn, user_id, u.duty)
    if u.active is False:
        await accounts.revoke_user_tokens(conn, user_id)
    return user_id, needs_password


async def _facility_id(conn: Conn, code: str, where: str, admin: User | None = None) -> FacilityId:
    """A facility a rule names: any (an import file's), or for an administrator one of their
    network or above it."""
    if admin is None:
        found = await network.facility_id_by_code(conn, code)
    else:
        found = await network.facility_in_admin_reach(conn, code, admin)
    if found is None:
        raise NotFound(N_("%(where)s：机构 %(code)s 不在网络中"), where=where, code=code)
    return found


async def _write_rules(
    conn: Conn,
    fid: int,
    code: str,
    *,
    policy: NetworkPolicy | None,
    routes: Sequence[RouteSpec] | None,
    destination: Destination | None,
    admin: User | None = None,
) -> None:
    """A facility's policy, routing rules (each facility they name must exist) and report
    destination, those that are given."""
    if policy is not None:
        await network.write_policy(conn, fid, policy)
    if routes is not None:
        where = f"facility {code}: route"
        placed = [await _place_route(conn, r, where, admin) for r in routes]
        await network.replace_routes(conn, fid, placed)
    if destination is not None:
        await network.write_destination(conn, fid, destination)


async def _place_route(conn: Conn, r: RouteSpec, where: str, admin: User | None) -> PlacedRoute:
    """A rule with the facilities (and the reading pool) it names found; a pool an
    administrator names must be of their network."""
    escalation_id = await _facility_id(conn, r.escalation, where, admin) if r.escalation else None
    if r.pool is None:
        assert r.first_read is not None  # a route names one or the other
        first = await _facility_id(conn, r.first_read, where, admin)
        return PlacedRoute(spec=r, first_read_id=first, escalation_id=escalation_id)
    found = await rosters.pool_by_code(conn, r.pool)
    if found is None or (
        admin is not None and not await rosters.pools_in_scope(conn, admin.id, r.pool)
    ):
        raise NotFound(N_("%(where)s：阅片组 %(pool)s 不在网络中"), where=where, pool=r.pool)
    if r.specialty is not None and r.specialty is not found.specialty:
        raise BadRequest(
            N_("%(where)s：阅片组 %(pool)s 是%(reads)s阅片组，不是%(asked)s阅片组"),
            where=where,
            pool=r.pool,
            reads=found.specialty,
            asked=r.specialty,
        )
    if (
        r.first_read is not None
        and await _facility_id(conn, r.first_read, where, admin) != found.facility_id
    ):
        raise BadRequest(
            N_("%(where)s：阅片组 %(pool)s 不在 %(code)s 阅片"),
            where=where,
            pool=r.pool,
            code=r.first_read,
        )
    return PlacedRoute(
        spec=dataclasses.replace(r, specialty=found.specialty),
        first_read_id=found.facility_id,
        escalation_id=escalation_id,
        pool_id=found.id,
    )


#: The lifetime of a ``telemed token create`` token when none is asked for, and the longest.
CLI_TOKEN_DAYS = 30
CLI_TOKEN_MAX_DAYS = 366
#: The demo's tokens, printed at each start (those of the start before are revoked).
DEMO_TOKEN_LIFETIME = timedelta(hours=24)


async def issue_token(
    pool: Pool, username: str, *, lifetime: timedelta = timedelta(days=CLI_TOKEN_DAYS)
) -> tuple[str, datetime]:
    """A new bearer token for an active user and when it expires (only its SHA-256 is
    kept).

    Raises
    ------
    NotFound
        No user of that name; BadRequest: the user is deactivated, or the lifetime is not
        between a minute and ``CLI_TOKEN_MAX_DAYS``.
    """
    if not timedelta(minutes=1) <= lifetime <= timedelta(days=CLI_TOKEN_MAX_DAYS):
        raise BadRequest(N_("令牌的有效期须在一分钟到 %(days)s 天之间"), days=CLI_TOKEN_MAX_DAYS)
    user = await network.user_by_username(pool, username)
    if user is None:
        raise NotFound(N_("没有名为 %(username)r 的用户"), username=username)
    if not user.active:
        raise BadRequest(N_("用户 %(username)s 已停用"), username=username)
    expires = datetime.now(UTC) + lifetime
    return await network.create_token(pool, user.id, expires_at=expires), expires


async def issue_demo_tokens(pool: Pool) -> list[tuple[User, str]]:
    """A new demo token for every active user, expiring in ``DEMO_TOKEN_LIFETIME`` (the demo
    prints them at start); the demo tokens printed before are revoked."""
    await accounts.revoke_demo_tokens(pool)
    expires = datetime.now(UTC) + DEMO_TOKEN_LIFETIME
    return [
        (u, await network.create_token(pool, u.id, expires_at=expires, kind=TokenKind.DEMO))
        for u in await network.list_users(pool)
        if u.active
    ]


# --- routing as data, configured by administrators -------------------------------------------


async def configure_facility(
    pool: Pool,
    admin: User,
    code: str,
    *,
    policy: NetworkPolicy | None = None,
    routes: Sequence[RouteSpec] | None = None,
    destination_ae: str | None = None,
) -> Destination | None:
    """An administrator sets a facility's policy, replaces its routing rules (``routes``,
    empty: the defaults), or names which of its configured DICOM nodes takes its reports
    back (``destination_ae``); audited with what was set. The report destination it set.

    A destination's host and port are the node's (the operator's DICOM nodes file), never
    the request's, so a report goes only where the operator configured the clinic to be.

    Raises
    ------
    NotFound
        The facility is not in the administrator's network, or a rule names an unknown
        facility.
    BadRequest
        No DICOM node of that AE title, with a host and port, belongs to the facility.
    """
    async with transaction(pool) as conn:
        fid = await network.facility_in_admin_scope(conn, code, admin)
        if fid is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=code)
        destination = None
        if destination_ae is not None:
            destination = await _node_of(conn, fid, code, destination_ae)
        old_policy, old_routes = await network.facility_rules(conn, fid)
        await _write_rules(
            conn, fid, code, policy=policy, routes=routes, destination=destination, admin=admin
        )
        await audit.record(
            conn,
            user_id=admin.id,
            action=AuditAction.CONFIGURE,
            object_type="facility_routing",
            object_id=code,
            detail=_configured(policy, routes, destination)
            | {
                "before": _configured(
                    old_policy if policy is not None else None,
                    old_routes if routes is not None else None,
                    None,
                )
            },
        )
    return destination


async def _node_of(conn: Conn, fid: FacilityId, code: str, ae_title: str) -> Destination:
    """The report destination a configured DICOM node of the facility is."""
    node = await qido.dicom_node(conn, ae_title)
    if node is None or node.facility_id != fid or node.host is None or node.port is None:
        raise BadRequest(NOT_A_NODE, ae_title=ae_title, code=code, fix=Phrase(ADD_THE_NODE))
    return Destination(ae_title=node.ae_title, host=node.host, port=node.port, tls=node.tls)


def _configured(
    policy: NetworkPolicy | None,
    routes: Sequence[RouteSpec] | None,
    destination: Destination | None,
) -> dict[str, object]:
    """What an administrator set, as the audit keeps it."""
    detail: dict[str, object] = {}
    if policy is not None:
        detail["policy"] = {
            "deadlines": {k.value: v for k, v in policy.deadlines.items()},
            "stemi": policy.stemi_deadline,
            "critical_ack": policy.critical_ack,
            "at_risk_share": policy.at_risk_share,
            "timezone": policy.timezone,
        }
    if routes is not None:
        detail["routes"] = [dataclasses.asdict(r) for r in routes]
    if destination is not None:
        detail["report_destination"] = dataclasses.asdict(destination)
    return detail


async def set_duty(pool: Pool, admin: User, username: str, shifts: Sequence[DutyShift]) -> None:
    """An administrator replaces a user's on-duty schedule (empty: always on duty); audited.

    Raises
    ------
    NotFound
        The user does not work in the administrator's network.
    """
    await change_duty(pool, admin, username, lambda _: list(shifts))


def _shift_values(shifts: Sequence[DutyShift]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(s) | {"weekdays": sorted(s.weekdays)} for s in shifts]


async def change_duty(
    pool: Pool,
    admin: User,
    username: str,
    change: Callable[[list[DutyShift]], list[DutyShift]],
) -> list[DutyShift]:
    """Change a user's weekly shifts as ``change`` makes them from the present ones, in one
    transaction; audited with the shifts before and after. The shifts now.

    Raises
    ------
    NotFound
        The user does not work in the administrator's network.
    """
    async with transaction(pool) as conn:
        user_id = await network.user_in_admin_scope(conn, username, admin)
        if user_id is None:
            raise NotFound(N_("用户 %(username)s 不在您的网络中工作"), username=username)
        before = [s for u in await rosters.roster_users(conn, [username]) for s in u.shifts]
        after = change(before)
        await network.replace_duty(conn, user_id, after)
        await audit.record(
            conn,
            user_id=admin.id,
            action=AuditAction.CONFIGURE,
            object_type="duty",
            object_id=username,
            detail={"duty": _shift_values(after), "before": _shift_values(before)},
        )
    return after


# --- DICOM nodes -----------------------------------------------------------------------------


async def import_dicom_nodes(pool: Pool, path: Path) -> int:
    """Add or update the DICOM nodes a TOML file declares (``[[dicom_node]]`` with
    ``ae_title``, ``user`` or ``facility``, optional ``host``, ``port``,
    ``move_destination``, ``may_query``, and what binds it as a caller: ``peer_host`` (an
    address, CIDR block or host name; ``host`` when absent) and ``certificate_sha256``);
    how many were saved.

    Raises
    ------
    ConfigError
        The file cannot be read, or a node in it is incomplete or names nobody we know.
    """
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
        declared = tomllib.loads(text).get("dicom_node", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"DICOM nodes file {path}: {exc}") from None
    for entry in declared:
        await qido.save_dicom_node(pool, await _dicom_node(pool, path, entry))
    return len(declared)


async def _dicom_node(pool: Pool, path: Path, entry: dict[str, Any]) -> DicomNode:
    ae = str(entry.get("ae_title", "")).strip()
    if not ae or len(ae) > 16:
        raise ConfigError(f"{path}: every dicom_node needs an ae_title of 1 to 16 characters")
    user_id: UserId | None = None
    facility_id: FacilityId | None = None
    if "user" in entry:
        user = await network.user_by_username(pool, str(entry["user"]))
        if user is None:
            raise ConfigError(f"{path}: dicom_node {ae}: no user {entry['user']}")
        user_id = user.id
    if "facility" in entry:
        found = [f for f in await network.list_facilities(pool) if f.code == entry["facility"]]
        if not found:
            raise ConfigError(f"{path}: dicom_node {ae}: no facility {entry['facility']}")
        facility_id = found[0].id
    try:
        return DicomNode(
            ae_title=ae,
            user_id=user_id,
            facility_id=facility_id,
            host=entry.get("host"),
            port=entry.get("port"),
            may_query=bool(entry.get("may_query", True)),
            move_destination=bool(entry.get("move_destination", False)),
            tls=bool(entry.get("tls", False)),
            peer_host=check_peer_host(str(entry["peer_host"])) if "peer_host" in entry else None,
            cert_sha256=(
                fingerprint(str(entry["certificate_sha256"]))
                if "certificate_sha256" in entry
                else None
            ),
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: dicom_node {ae}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# --- deliveries given up ---------------------------------------------------------------------


async def failed_deliveries(pool: Pool, admin: User) -> list[FailedDelivery]:
    """Report deliveries, DICOM copies and notification messages given up after their last
    attempt, in the administrator's network, the latest first."""
    require_role(admin, Role.ADMIN)
    return await jobs.failed_deliveries(pool, admin.id, DELIVER_REPORT)


async def retry_delivery(pool: Pool, admin: User, kind: FailedKind, item_id: int) -> None:
    """Try a given-up delivery again from its first attempt.

    Raises
    ------
    NotFound
        No such failed delivery in the administrator's network (or it was retried already).
    """
    require_role(admin, Role.ADMIN)
    if kind is FailedKind.NOTICE:
        retried = await notices.retry(pool, admin.id, item_id)
    else:
        retried = await jobs.retry_failed(pool, admin.id, DELIVER_REPORT, kind, item_id)
    if not retried:
        raise NotFound(N_("您的网络中没有投递失败的%(kind)s %(id)s"), kind=kind.value, id=item_id)
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.CONFIGURE,
        object_type=f"failed_{kind.value}",
        object_id=item_id,
        detail={"retried": True},
    )
    log.info("administrator %s retried failed %s %d", admin.id, kind.value, item_id)


async def set_intake_limits(
    pool: Pool,
    admin: User,
    code: str,
    *,
    bytes_per_day: int | None,
    instances_per_day: int | None,
) -> quotas.Intake:
    """An administrator sets a facility's own daily intake limits (None: the service's
    default, 0: none); audited. Returns what the facility sent today, with its limits.

    Raises
    ------
    NotFound
        The facility is not in the administrator's network.
    """
    async with transaction(pool) as conn:
        fid = await network.facility_in_admin_scope(conn, code, admin)
        if fid is None:
            raise NotFound(N_("机构 %(code)s 不在您的网络中"), code=code)
        await quotas.set_quota(
            conn, fid, bytes_per_day=bytes_per_day, instances_per_day=instances_per_day
        )
        await audit.record(
            conn,
            user_id=admin.id,
            action=AuditAction.CONFIGURE,
            object_type="facility_quota",
            object_id=code,
            detail={"bytes_per_day": bytes_per_day, "instances_per_day": instances_per_day},
        )
    return await quotas.today(pool, fid)
