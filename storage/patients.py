"""The county patient index: explicit links between a person's records at several
facilities (a hashed national ID, or an administrator's merge), and their priors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn
from storage.queries import q
from storage.records import PatientRef, StudyId, User, UserId

#: Where versions before the key came from configuration kept it.
_KEY_NAME = "national_id_hmac"


async def legacy_key(db: asyncpg.Pool | Conn) -> bytes | None:
    """The national-ID key an earlier version made and kept in the database, if any."""
    key: bytes | None = await db.fetchval(q("secret_get"), _KEY_NAME)
    return key


async def forget_legacy_key(db: asyncpg.Pool | Conn) -> None:
    """Delete that copy (once the configuration holds the same key)."""
    await db.execute(q("secret_delete"), _KEY_NAME)


async def visible(db: asyncpg.Pool | Conn, patient: int, user: User) -> bool:
    """Whether the user may see this patient record."""
    found: bool = await db.fetchval(q("patient_visible_to"), user.id, patient)
    return found


async def person_by_digest(conn: Conn, digest: str) -> int:
    """The person with this national ID digest (added when new)."""
    person: int = await conn.fetchval(q("person_by_digest_upsert"), digest)
    return person


async def new_person(conn: Conn) -> int:
    person: int = await conn.fetchval(q("person_insert"))
    return person


async def person_of(conn: Conn, patient: int) -> int | None:
    """The person a patient record is linked to, if any."""
    person: int | None = await conn.fetchval(q("patient_link_of"), patient)
    return person


async def link(conn: Conn, patient: int, person: int, method: str, user: User) -> None:
    """Link a record to a person (``method``: national_id or merge)."""
    await conn.execute(q("patient_link_upsert"), patient, person, method, user.id)


async def move_links(conn: Conn, from_person: int, to_person: int) -> None:
    """Every record of one person becomes another's."""
    await conn.execute(q("person_move_links"), from_person, to_person)


async def unlink(conn: Conn, patient: int) -> int | None:
    """Take a record out of its person; the person it was linked to, if any."""
    person: int | None = await conn.fetchval(q("patient_unlink"), patient)
    return person


async def record_link(
    conn: Conn,
    user: User,
    action: str,
    patient: int,
    person: int | None,
    detail: dict[str, object],
) -> None:
    """One line of the patient link audit: who linked, merged or unmerged which record."""
    await conn.execute(
        q("patient_link_audit_insert"),
        user.id,
        action,
        patient,
        person,
        json.dumps(detail, ensure_ascii=False),
    )


@dataclass(frozen=True, kw_only=True)
class LinkAudit:
    at: datetime
    user_id: UserId | None
    action: str
    patient_id: int
    person_id: int | None


async def link_history(pool: asyncpg.Pool, patient: int) -> list[LinkAudit]:
    """The link audit of a record and of the persons it was linked to, oldest first."""
    rows = await pool.fetch(q("patient_link_history"), patient)
    return [
        LinkAudit(
            at=r["at"],
            user_id=r["user_id"],
            action=r["action"],
            patient_id=r["patient_id"],
            person_id=r["person_id"],
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class Prior:
    """An earlier study (or ECG) of the same person, at any linked facility."""

    study_id: StudyId
    study_instance_uid: str
    facility_code: str
    patient_ref: PatientRef
    study_date: str | None
    modalities: tuple[str, ...]
    description: str | None
    received_at: datetime
    conclusion: str | None
    impression: str | None


async def priors(pool: asyncpg.Pool, study_id: int, user: User) -> list[Prior]:
    """The other studies of the patient of ``study_id`` and of every record linked to it,
    that the user may see, newest first."""
    rows = await pool.fetch(q("priors_of_study"), study_id, user.id)
    return [
        Prior(
            study_id=StudyId(r["id"]),
            study_instance_uid=r["study_instance_uid"],
            facility_code=r["code"],
            patient_ref=PatientRef(r["patient_ref"]),
            study_date=r["study_date"],
            modalities=tuple(r["modalities"]),
            description=r["description"],
            received_at=r["first_received_at"],
            conclusion=r["conclusion"],
            impression=r["impression"],
        )
        for r in rows
    ]


async def patient_of_study(pool: asyncpg.Pool, study_id: int) -> PatientRef:
    return PatientRef(await pool.fetchval(q("patient_of_study"), study_id))
