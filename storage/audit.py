"""The audit log: who read or changed which patient data, when, from where, and how it ended.

Records are appended to a hash chain (migration 0052) through ``audit_append``, the one
write the application's role may make; the chain is walked by ``chain_page`` to verify it,
and searched by ``search``. A record that cannot be written raises `AuditUnavailable`: the
read it was to record must then not be answered.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Required, TypedDict, TypeVar, Unpack

import asyncpg

from storage.db import Conn, Queryable
from storage.errors import Unavailable
from storage.queries import q
from storage.records import AuditAction, AuditResult, FacilityId, UserId

_T = TypeVar("_T")

#: The network address of the request (or association) being served: set where it comes in,
#: so that every record written while it is served names it.
ADDRESS: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_address", default=None)
#: The signed-in user of the request being served, for records written where the user is not
#: passed down (an instance received over STOW-RS).
SIGNED_IN: contextvars.ContextVar[UserId | None] = contextvars.ContextVar(
    "audit_signed_in", default=None
)
#: Most studies (and patients) one record names; a longer answer names the first ones and
#: gives the full count in ``detail``.
NAMED_MAX = 1000


async def at_address(address: str | None, work: Awaitable[_T]) -> _T:
    """Await ``work`` with ``address`` on every record it writes (a DICOM association's
    work, handed from its thread to the event loop, starts without the caller's context)."""
    ADDRESS.set(address)
    return await work


class AuditUnavailable(Unavailable):
    """The audit record could not be written: what it records must not happen."""


@dataclass(frozen=True, kw_only=True)
class Who:
    """Who acted, when it is not (only) a signed-in user: a name tried at sign-in, a calling
    AE title's facility."""

    username: str | None = None
    role: str | None = None
    facility_id: FacilityId | None = None


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One record to append, as `entry` takes it (the address of the request it records
    already read)."""

    args: tuple[Any, ...]
    action: AuditAction


class Named(TypedDict, total=False):
    """What a record names: who acted, on what, how it ended (see `record`)."""

    user_id: Required[UserId | None]
    action: Required[AuditAction]
    object_type: Required[str]
    object_id: Required[str | int]
    detail: dict[str, Any] | None
    studies: Iterable[str]
    study_ids: Iterable[int]
    patients: Iterable[str]
    result: AuditResult
    who: Who | None


def entry(**named: Unpack[Named]) -> Entry:
    """A record to append later (`record_all`), named as `record` names it, at the address
    of the request being served now."""
    uids = list(named.get("studies", ()))
    ids = list(named.get("study_ids", ()))
    patients = list(named.get("patients", ()))
    extra = dict(named.get("detail") or {})
    if max(len(uids), len(ids), len(patients)) > NAMED_MAX:
        extra["named_of"] = max(len(uids), len(ids), len(patients))
    who = named.get("who") or Who()
    action = named["action"]
    return Entry(
        args=(
            named["user_id"],
            who.username,
            who.role,
            who.facility_id,
            action.value,
            named["object_type"],
            str(named["object_id"]),
            patients[:NAMED_MAX],
            uids[:NAMED_MAX],
            ADDRESS.get(),
            named.get("result", AuditResult.OK).value,
            json.dumps(extra, ensure_ascii=False, default=str),
            ids[:NAMED_MAX],
        ),
        action=action,
    )


async def record(db: asyncpg.Pool | Conn, **named: Unpack[Named]) -> int:
    """Append one record (in the caller's transaction when ``db`` is a connection) and return
    its sequence number.

    ``studies`` (UIDs) and ``study_ids`` name the studies disclosed; their patients are added
    as ``issuer code:patient ID``. The user's name, role and facility are taken from the
    user; ``who`` names them when there is no user. Times in ``detail`` are written as text.

    Raises
    ------
    AuditUnavailable
        The record could not be written (the database refused or did not answer).
    """
    e = entry(**named)
    try:
        seq: int = await db.fetchval(q("audit_append"), *e.args)
    except _UNWRITTEN as exc:
        raise unwritten(e.action, exc) from exc
    return seq


async def record_all(db: asyncpg.Pool | Conn, entries: Sequence[Entry]) -> None:
    """Append the records, in order (in the caller's transaction when ``db`` is a
    connection), in one round trip.

    Raises
    ------
    AuditUnavailable
        They could not be written (none is).
    """
    if not entries:
        return
    try:
        await db.executemany(q("audit_append"), [e.args for e in entries])
    except _UNWRITTEN as exc:
        raise unwritten(entries[0].action, exc) from exc


_UNWRITTEN = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def unwritten(action: AuditAction, exc: BaseException) -> AuditUnavailable:
    """A record of ``action`` that could not be written, for the error ``exc``."""
    return AuditUnavailable(
        f"the audit record of this {action.value} could not be written ({type(exc).__name__})"
    )


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    user_id: UserId | None
    action: str
    at: datetime


async def entries_for(
    pool: asyncpg.Pool, object_type: str, object_id: str | int
) -> list[AuditEntry]:
    rows = await pool.fetch(q("audit_of_object"), object_type, str(object_id))
    return [AuditEntry(user_id=r["user_id"], action=r["action"], at=r["at"]) for r in rows]


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Link:
    """One record as the chain holds it: its number, the hash it follows, its own hash, and
    the canonical text its hash covers."""

    seq: int
    prev_hash: bytes
    hash: bytes
    body: str


async def head(db: Queryable) -> tuple[int, bytes]:
    """The chain's head: the last record's number (0 when empty) and hash."""
    row = await db.fetchrow(q("audit_head"))
    if row is None:
        raise RuntimeError("the audit chain has no head row: migration 0052 did not run")
    return int(row["seq"]), bytes(row["hash"])


async def chain_page(db: Queryable, after_seq: int, limit: int) -> list[Link]:
    """Up to ``limit`` records after ``after_seq``, in order."""
    rows = await db.fetch(q("audit_chain_page"), after_seq, limit)
    return [
        Link(seq=r["seq"], prev_hash=bytes(r["prev_hash"]), hash=bytes(r["hash"]), body=r["body"])
        for r in rows
    ]


# --- searching ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Filters:
    """What an administrator's search narrows to; None: any."""

    since: datetime | None = None
    until: datetime | None = None
    username: str | None = None
    action: str | None = None
    patient: str | None = None
    study: str | None = None
    result: str | None = None
    before_seq: int | None = None


@dataclass(frozen=True, kw_only=True)
class Record:
    """One audit record as an administrator reads it."""

    seq: int
    at: datetime
    username: str | None
    role: str | None
    facility: str | None
    action: str
    object_type: str
    object_id: str
    patients: tuple[str, ...]
    studies: tuple[str, ...]
    address: str | None
    result: str
    detail: dict[str, Any]


async def search(pool: Queryable, admin_id: UserId, filters: Filters, limit: int) -> list[Record]:
    """The records of the administrator's network that match, newest first."""
    f = filters
    rows = await pool.fetch(
        q("audit_search"),
        admin_id,
        f.since,
        f.until,
        f.username,
        f.action,
        f.patient,
        f.study,
        f.result,
        f.before_seq,
        limit,
    )
    return [
        Record(
            seq=r["seq"],
            at=r["at"],
            username=r["username"],
            role=r["role"],
            facility=r["facility"],
            action=r["action"],
            object_type=r["object_type"],
            object_id=r["object_id"],
            patients=tuple(r["patients"]),
            studies=tuple(r["studies"]),
            address=r["address"],
            result=r["result"],
            detail=json.loads(r["detail"]),
        )
        for r in rows
    ]
