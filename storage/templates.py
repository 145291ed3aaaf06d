"""Report templates per specialty and modality (zh-CN first): the shared ones, and each
network's own copies, edited by its administrator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn, Queryable
from storage.errors import NotFound
from storage.queries import q
from storage.records import FacilityId, Specialty, UserId


@dataclass(frozen=True, kw_only=True)
class Template:
    id: int
    specialty: Specialty
    modality: str | None
    name: str
    language: str
    findings: str
    impression: str
    updated_at: datetime
    #: The network (its top facility) whose copy this is; None: shared by every network.
    network_id: FacilityId | None = None
    #: False: set aside by the network's administrator, no longer offered to readers.
    active: bool = True


def _template(r: asyncpg.Record) -> Template:
    return Template(
        id=r["id"],
        specialty=Specialty(r["specialty"]),
        modality=r["modality"],
        name=r["name"],
        language=r["language"],
        findings=r["findings"],
        impression=r["impression"],
        updated_at=r["updated_at"],
        network_id=FacilityId(r["network_id"]) if r["network_id"] is not None else None,
        active=r["active"],
    )


async def list_templates(
    pool: asyncpg.Pool,
    user_id: UserId,
    *,
    specialty: str | None,
    modality: str | None,
    language: str | None,
    inactive: bool = False,
) -> list[Template]:
    """The templates the user reads from: their network's copies, and the shared ones their
    network has not copied (those set aside too, when ``inactive``)."""
    rows = await pool.fetch(q("templates_list"), specialty, modality, language, user_id, inactive)
    return [_template(r) for r in rows]


async def lock_template_for_user(conn: Conn, template_id: int, user_id: UserId) -> Template:
    """A template the user reads from, locked until the caller's transaction ends.

    Raises
    ------
    NotFound
        No such template, or another network's.
    """
    row = await conn.fetchrow(q("template_lock_for_user"), template_id, user_id)
    if row is None:
        raise NotFound(f"template {template_id} not found")
    return _template(row)


async def save_for_network(
    conn: Conn,
    network_id: FacilityId,
    of: Template,
    *,
    findings: str,
    impression: str,
    user_id: UserId,
    active: bool = True,
) -> Template:
    """The network's copy of template ``of`` (made, or replaced) with this text, noting who
    changed it; the shared template is left as it is."""
    row = await conn.fetchrow(
        q("template_save_for_network"),
        network_id,
        of.specialty.value,
        of.modality,
        of.name,
        of.language,
        findings,
        impression,
        user_id,
        active,
    )
    assert row is not None  # an upsert returns its row
    return _template(row)


async def template_for_user(db: Queryable, template_id: int, user_id: UserId) -> Template | None:
    """A template the user reads from (shared, or their network's; a shared one their
    network copied reads as the copy); None otherwise."""
    row = await db.fetchrow(q("template_for_user"), template_id, user_id)
    return _template(row) if row else None


@dataclass(frozen=True, kw_only=True)
class TemplateText:
    """What an administrator writes of a template."""

    specialty: Specialty
    modality: str | None
    name: str
    language: str
    findings: str
    impression: str


async def create_for_network(
    conn: Conn, network_id: FacilityId, text: TemplateText, *, user_id: UserId
) -> Template | None:
    """A new template of the network's own; None when it has one of that name already."""
    row = await conn.fetchrow(
        q("template_insert_for_network"),
        network_id,
        text.specialty.value,
        text.modality,
        text.name,
        text.language,
        text.findings,
        text.impression,
        user_id,
    )
    return _template(row) if row else None


async def update_own(conn: Conn, changed: Template, *, user_id: UserId) -> Template | None:
    """The network's own template ``changed.id`` given ``changed``'s name, modality, text and
    activity; None when another of the network's templates has that name and modality."""
    row = await conn.fetchrow(
        q("template_update_own"),
        changed.id,
        changed.name,
        changed.modality,
        changed.findings,
        changed.impression,
        changed.active,
        user_id,
    )
    return _template(row) if row else None


async def copies_shared(db: Queryable, template_id: int) -> bool:
    """Whether the template is a network's copy of a shared one (standing in its place)."""
    return bool(await db.fetchval(q("template_copies_shared"), template_id))
