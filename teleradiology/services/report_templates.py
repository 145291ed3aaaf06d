"""Report templates as a network's administrator keeps them: the network's own, and the
shared ones (shipped with the service) it reads until it copies them. Only an administrator
of the network's top facility (the city) changes them; every change is audited with the
template before and after. Readers are offered the active ones on their report form.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from storage import audit, network, templates
from storage import errors as storage_errors
from storage.db import Conn, Pool, transaction
from storage.records import AuditAction, FacilityId, Role, User
from storage.templates import Template, TemplateText
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, Conflict, Forbidden, NotFound
from teleradiology.core.language import N_

log = logging.getLogger(__name__)

#: A template's name the network uses already.
TEMPLATE_TAKEN = N_("网络中已有名为 %(name)r 的模板")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TemplateChange:
    """What an administrator changes of a template (None: as it is)."""

    name: str | None = None
    modality: str | None = None
    findings: str | None = None
    impression: str | None = None
    active: bool | None = None
    #: True when ``modality`` was sent (null: the template serves every modality)
    modality_given: bool = False


def _shown(t: Template) -> dict[str, Any]:
    return {
        "name": t.name,
        "specialty": t.specialty.value,
        "modality": t.modality,
        "language": t.language,
        "findings": t.findings,
        "impression": t.impression,
        "active": t.active,
    }


async def _record(conn: Conn, admin: User, t: Template, **detail: Any) -> None:
    await audit.record(
        conn,
        user_id=admin.id,
        action=AuditAction.CONFIGURE,
        object_type="report_template",
        object_id=t.id,
        detail=detail,
    )


async def network_templates(pool: Pool, admin: User) -> list[Template]:
    """The templates of the administrator's network as its readers see them, with those
    set aside."""
    require_role(admin, Role.ADMIN)
    return await templates.list_templates(
        pool, admin.id, specialty=None, modality=None, language=None, inactive=True
    )


async def may_change(pool: Pool, admin: User) -> bool:
    """Whether the administrator changes their network's templates (one of its top)."""
    facility = await network.facility_by_id(pool, admin.facility_id)
    return admin.role is Role.ADMIN and facility is not None and facility.parent_id is None


async def _network_top(pool: Pool, admin: User) -> tuple[FacilityId, str]:
    require_role(admin, Role.ADMIN)
    facility = await network.facility_by_id(pool, admin.facility_id)
    if facility is None or facility.parent_id is not None:
        raise Forbidden(N_("报告模板属于整个网络：只有最高一级机构（市级）的管理员能修改"))
    return facility.id, facility.code


async def create_template(pool: Pool, admin: User, text: TemplateText) -> Template:
    """A new template of the administrator's network, offered to its readers at once.

    Raises
    ------
    Forbidden
        Not an administrator of the network's top facility.
    Conflict
        The network has a template of that name, specialty and modality already.
    """
    network_id, code = await _network_top(pool, admin)
    async with transaction(pool) as conn:
        made = await templates.create_for_network(conn, network_id, text, user_id=admin.id)
        if made is None:
            raise Conflict(TEMPLATE_TAKEN, name=text.name)
        await _record(conn, admin, made, network=code, before=None, after=_shown(made))
    log.info("administrator %s added report template %d", admin.id, made.id)
    return made


def _changed(before: Template, change: TemplateChange) -> Template:
    return dataclasses.replace(
        before,
        name=change.name if change.name is not None else before.name,
        modality=change.modality if change.modality_given else before.modality,
        findings=change.findings if change.findings is not None else before.findings,
        impression=change.impression if change.impression is not None else before.impression,
        active=change.active if change.active is not None else before.active,
    )


async def _as_the_network_reads_it(conn: Conn, template_id: int, admin: User) -> Template:
    """The template, locked; a shared one the network has copied: the network's copy."""
    try:
        found = await templates.lock_template_for_user(conn, template_id, admin.id)
    except storage_errors.NotFound:
        raise NotFound(N_("找不到模板 %(id)s"), id=template_id) from None
    if found.network_id is None:
        read = await templates.template_for_user(conn, template_id, admin.id)
        if read is not None and read.network_id is not None:
            found = await templates.lock_template_for_user(conn, read.id, admin.id)
    return found


async def change_template(
    pool: Pool, admin: User, template_id: int, change: TemplateChange
) -> Template:
    """Change a template for the administrator's network, or set it aside (``active``
    false) or take it back. A shared template is changed as the network's copy (made the
    first time; the shared one and other networks' stay as they are), and keeps its name
    and modality, so that the copy stands in its place.

    Raises
    ------
    Forbidden
        Not an administrator of the network's top facility.
    NotFound
        No such template, or another network's.
    BadRequest
        A shared template's name or modality changed.
    Conflict
        Another of the network's templates has the new name.
    """
    network_id, code = await _network_top(pool, admin)
    async with transaction(pool) as conn:
        before = await _as_the_network_reads_it(conn, template_id, admin)
        wanted = _changed(before, change)
        in_place = before.network_id is None or await templates.copies_shared(conn, before.id)
        if in_place and (wanted.name, wanted.modality) != (before.name, before.modality):
            raise BadRequest(N_("共享模板的名称和检查类型不变：请另加一个本网络自己的模板"))
        if before.network_id is None:
            after = await templates.save_for_network(
                conn,
                network_id,
                before,
                findings=wanted.findings,
                impression=wanted.impression,
                user_id=admin.id,
                active=wanted.active,
            )
        else:
            found = await templates.update_own(conn, wanted, user_id=admin.id)
            if found is None:
                raise Conflict(TEMPLATE_TAKEN, name=wanted.name)
            after = found
        await _record(
            conn,
            admin,
            after,
            network=code,
            from_template=before.id,
            before=_shown(before),
            after=_shown(after),
        )
    log.info("administrator %s changed report template %d", admin.id, after.id)
    return after


async def edit_template(
    pool: Pool, admin: User, template_id: int, *, findings: str, impression: str
) -> Template:
    """The text of a template changed for the administrator's network (as
    ``change_template``)."""
    return await change_template(
        pool, admin, template_id, TemplateChange(findings=findings, impression=impression)
    )
