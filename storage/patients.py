"""The county patient index: explicit links between a person's records at several
facilities (a hashed national ID, or an administrator's merge), and their priors."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Conn
from storage.errors import Conflict, InvalidState, NotFound
from storage.queries import q
from storage.records import PatientRef, StudyId, User, UserId

_KEY_NAME = "national_id_hmac"


def normalise_national_id(national_id: str) -> str:
    """The canonical form of a resident ID number (18 characters, X upper case).

    Raises
    ------
    ValueError
        If the text is not 15 or 18 characters of digits (and a final X).
    """
    text = national_id.strip().upper()
    if (
        len(text) not in (15, 18)
        or not text[:-1].isdigit()
        or not (text[-1].isdigit() or text[-1] == "X")
    ):
        raise ValueError("a national ID is 15 or 18 characters: digits, the last may be X")
    return text


async def _key(conn: Conn) -> bytes:
    await conn.execute(q("secret_insert"), _KEY_NAME, secrets.token_bytes(32))
    key: bytes = await conn.fetchval(q("secret_get"), _KEY_NAME)
    return key


async def _audit(
    conn: Conn, user: User, action: str, patient: int, person: int | None, detail: dict[str, object]
) -> None:
    await conn.execute(
        q("patient_link_audit_insert"),
        user.id,
        action,
        patient,
        person,
        json.dumps(detail, ensure_ascii=False),
    )


async def _patient_in_scope(conn: Conn, patient: int, user: User) -> None:
    if not await conn.fetchval(q("patient_visible_to"), user.id, patient):
        raise NotFound(f"patient {patient} not found")


async def link_national_id(pool: asyncpg.Pool, patient: int, national_id: str, user: User) -> int:
    """Link a patient record to the person with this national ID (kept only as an HMAC
    under the network's own key); returns the person's id.

    Raises
    ------
    Conflict
        The record is already linked to another person: unmerge it first.
    """
    canonical = normalise_national_id(national_id)
    async with pool.acquire() as conn, conn.transaction():
        await _patient_in_scope(conn, patient, user)
        digest = hmac.new(await _key(conn), canonical.encode(), hashlib.sha256).hexdigest()
        person: int = await conn.fetchval(q("person_by_digest_upsert"), digest)
        current = await conn.fetchval(q("patient_link_of"), patient)
        if current is not None and current != person:
            raise Conflict(f"patient {patient} is linked to another person; unmerge it first")
        await conn.execute(q("patient_link_upsert"), patient, person, "national_id", user.id)
        await _audit(conn, user, "link", patient, person, {"method": "national_id"})
    return person


async def merge(pool: asyncpg.Pool, patients: list[int], user: User) -> int:
    """An administrator states that these records are one person; returns the person."""
    if len(set(patients)) < 2:
        raise InvalidState("name at least two different patient records to merge")
    async with pool.acquire() as conn, conn.transaction():
        for p in patients:
            await _patient_in_scope(conn, p, user)
        persons = [await conn.fetchval(q("patient_link_of"), p) for p in patients]
        person = next((x for x in persons if x is not None), None)
        if person is None:
            person = await conn.fetchval(q("person_insert"))
        for other in {x for x in persons if x is not None and x != person}:
            await conn.execute(q("person_move_links"), other, person)
        for p in patients:
            if await conn.fetchval(q("patient_link_of"), p) is None:
                await conn.execute(q("patient_link_upsert"), p, person, "merge", user.id)
            await _audit(conn, user, "merge", p, person, {"patients": patients})
    return int(person)


async def unmerge(pool: asyncpg.Pool, patient: int, user: User) -> None:
    """Take one record out of its person; the audit keeps what it was linked to."""
    async with pool.acquire() as conn, conn.transaction():
        await _patient_in_scope(conn, patient, user)
        person = await conn.fetchval(q("patient_unlink"), patient)
        if person is None:
            raise InvalidState(f"patient {patient} is not linked to anyone")
        await _audit(conn, user, "unmerge", patient, person, {})


@dataclass(frozen=True, kw_only=True)
class LinkAudit:
    at: datetime
    user_id: UserId | None
    action: str
    patient_id: int
    person_id: int | None


async def link_history(pool: asyncpg.Pool, patient: int, user: User) -> list[LinkAudit]:
    async with pool.acquire() as conn:
        await _patient_in_scope(conn, patient, user)
        rows = await conn.fetch(q("patient_link_history"), patient)
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
