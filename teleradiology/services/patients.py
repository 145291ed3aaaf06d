"""The county patient index as use cases: linking a record by national ID, an
administrator's merge and unmerge, and the history of a record's links.

The rules are core/patients.py's; every link, merge and unmerge is written to the patient
link audit here, in the same transaction as the change.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence

from storage import identity, patients
from storage.db import Conn, Pool, transaction
from storage.patients import LinkAudit
from storage.records import User
from teleradiology.core import patients as rules
from teleradiology.core.errors import ConfigError, Conflict, NotConfigured, NotFound
from teleradiology.core.language import N_

log = logging.getLogger(__name__)

#: What the operator is told to set when linking by national ID is not set up.
KEY_SETTING = "TELEMED_NATIONAL_ID_KEY (or _FILE; openssl rand -hex 32)"


async def _in_scope(db: Pool | Conn, patient: int, user: User) -> None:
    if not await patients.visible(db, patient, user):
        raise NotFound(N_("找不到患者 %(id)s"), id=patient)


async def link_national_id(
    pool: Pool, patient: int, national_id: str, user: User, *, key: bytes | None
) -> int:
    """Link a patient record to the person with this national ID (kept only as an HMAC
    under the network's ``key``, from the configuration); returns the person's id.

    Raises
    ------
    NotConfigured
        No key is configured: the service does not link by national ID.
    BadRequest
        The text is not a national ID.
    NotFound
        The record is not in the user's scope.
    Conflict
        The record is already linked to another person: unmerge it first.
    """
    if key is None:
        raise NotConfigured(
            N_("本服务未设置按身份证号关联：须由运维人员设置 %(setting)s"), setting=KEY_SETTING
        )
    canonical = rules.normalise_national_id(national_id)
    digest = rules.national_id_digest(key, canonical)
    try:
        async with transaction(pool) as conn:
            await _in_scope(conn, patient, user)
            person = await patients.person_by_digest(conn, digest)
            await identity.state_national_id(conn, patient, digest, user.id)
            rules.check_link(patient, await patients.person_of(conn, patient), person)
            await patients.link(conn, patient, person, "national_id", user)
            await patients.record_link(
                conn, user, "link", patient, person, {"method": "national_id"}
            )
    except Conflict:
        # The record is another person's: the statement is kept, so that administrators
        # find the pair among the candidate duplicates.
        async with transaction(pool) as conn:
            await identity.state_national_id(conn, patient, digest, user.id)
        raise
    return person


async def merge(pool: Pool, records: Sequence[int], user: User) -> int:
    """An administrator states that these records are one person; returns the person.

    Raises
    ------
    InvalidState
        Fewer than two different records are named.
    NotFound
        A record is not in the user's scope.
    """
    rules.check_merge(records)
    async with transaction(pool) as conn:
        for p in records:
            await _in_scope(conn, p, user)
        person, others = rules.merged_person([await patients.person_of(conn, p) for p in records])
        if person is None:
            person = await patients.new_person(conn)
        for other in others:
            await patients.move_links(conn, other, person)
        for p in records:
            if await patients.person_of(conn, p) is None:
                await patients.link(conn, p, person, "merge", user)
            await patients.record_link(conn, user, "merge", p, person, {"patients": list(records)})
    return person


async def unmerge(pool: Pool, patient: int, user: User) -> None:
    """Take one record out of its person; the audit keeps what it was linked to.

    Raises
    ------
    NotFound
        The record is not in the user's scope.
    InvalidState
        The record is linked to nobody.
    """
    async with transaction(pool) as conn:
        await _in_scope(conn, patient, user)
        person = rules.check_unmerge(patient, await patients.unlink(conn, patient))
        await patients.record_link(conn, user, "unmerge", patient, person, {})


async def link_history(pool: Pool, patient: int, user: User) -> list[LinkAudit]:
    """Who linked, merged or unmerged a record (and the persons it was linked to), when.

    Raises
    ------
    NotFound
        The record is not in the user's scope.
    """
    await _in_scope(pool, patient, user)
    return await patients.link_history(pool, patient)


async def check_national_id_key(pool: Pool, key: bytes | None) -> None:
    """At start-up: versions before the key came from the configuration kept it in the
    database. That copy must move to the configuration (the digests already stored were
    made under it) and then leave the database.

    Raises
    ------
    ConfigError
        The database holds a key and the configuration another one, or none.
    """
    legacy = await patients.legacy_key(pool)
    if legacy is None:
        return
    if key is not None and hmac.compare_digest(key, legacy):
        log.warning(
            "the national-ID key is still also in the database: remove that copy with "
            "'telemed national-id-key forget'"
        )
        return
    raise ConfigError(
        "the database holds the national-ID key of an earlier version, under which the "
        f"stored national-ID digests were made, and {KEY_SETTING} "
        + ("is another key" if key is not None else "is not set")
        + ": write it to a file readable by the service only with 'telemed national-id-key "
        "export > FILE', set TELEMED_NATIONAL_ID_KEY_FILE=FILE, start again, then run "
        "'telemed national-id-key forget'"
    )


async def export_legacy_key(pool: Pool) -> bytes | None:
    """The database's copy of the key (for the operator to move it), if there is one."""
    return await patients.legacy_key(pool)


async def forget_legacy_key(pool: Pool, key: bytes | None) -> bool:
    """Delete the database's copy once the configuration holds the same key; False when
    there was none.

    Raises
    ------
    ConfigError
        The configuration does not hold the same key (deleting it would lose the digests).
    """
    legacy = await patients.legacy_key(pool)
    if legacy is None:
        return False
    if key is None or not hmac.compare_digest(key, legacy):
        raise ConfigError(
            f"{KEY_SETTING} must hold the database's key before its copy is deleted "
            "('telemed national-id-key export' prints it)"
        )
    await patients.forget_legacy_key(pool)
    return True
