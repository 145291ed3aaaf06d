"""Report templates per specialty and modality (zh-CN first), edited by administrators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn
from storage.errors import NotFound
from storage.queries import q
from storage.records import Specialty, UserId


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
    )


async def list_templates(
    pool: asyncpg.Pool, *, specialty: str | None, modality: str | None, language: str | None
) -> list[Template]:
    rows = await pool.fetch(q("templates_list"), specialty, modality, language)
    return [_template(r) for r in rows]


async def lock_template(conn: Conn, template_id: int) -> Template:
    """The template, locked until the caller's transaction ends.

    Raises
    ------
    NotFound
        No template has this id.
    """
    row = await conn.fetchrow(q("template_lock"), template_id)
    if row is None:
        raise NotFound(f"template {template_id} not found")
    return _template(row)


async def update_template(
    conn: Conn, template_id: int, *, findings: str, impression: str, user_id: UserId
) -> Template:
    """Replace the template's text (in the caller's transaction), noting who changed it.

    Raises
    ------
    NotFound
        No template has this id.
    """
    row = await conn.fetchrow(q("template_update"), template_id, findings, impression, user_id)
    if row is None:
        raise NotFound(f"template {template_id} not found")
    return _template(row)


async def template_by_id(pool: asyncpg.Pool, template_id: int) -> Template | None:
    row = await pool.fetchrow(q("template_by_id"), template_id)
    return _template(row) if row else None
