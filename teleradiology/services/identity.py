"""The console's patient identity as use cases: the candidate duplicates of an
administrator's network, the two records a merge screen compares, a pair judged not the same
person, and the identity conflicts found at ingest with their resolution.

An administrator sees the records of their own network only. Every read of patient data is
audited (the records named), every change with its values before and after. Merging and
unmerging stay services/patients.py's (one way to link).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from storage import audit, identity
from storage.db import Pool, transaction
from storage.identity import (
    CandidatePair,
    Dismissal,
    IdentityConflict,
    PairStanding,
    PatientRecord,
    RecordStudy,
)
from storage.records import AuditAction, FacilityId, PatientRef, Role, User
from teleradiology.core.access import require_role
from teleradiology.core.errors import InvalidState, NotFound
from teleradiology.core.language import N_
from teleradiology.core.patients import check_pair
from teleradiology.services.accounts import record_change

log = logging.getLogger(__name__)


async def _network(pool: Pool, admin: User) -> list[FacilityId]:
    require_role(admin, Role.ADMIN)
    return await identity.admin_facilities(pool, admin.id)


async def _listed(
    pool: Pool,
    admin: User,
    object_type: str,
    object_id: str,
    detail: dict[str, object],
    *,
    patients: Sequence[str] = (),
    study_ids: Sequence[int] = (),
) -> None:
    """The audit record of a list the administrator read, naming what it disclosed."""
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.LIST,
        object_type=object_type,
        object_id=object_id,
        detail=detail,
        patients=patients,
        study_ids=study_ids,
    )


@dataclass(frozen=True, kw_only=True)
class DuplicatesPage:
    pairs: list[CandidatePair]
    records: dict[PatientRef, PatientRecord]
    #: Where the next page starts (its ``(b, a)``), when there is one.
    next_before: tuple[int, int] | None


async def duplicates(
    pool: Pool, admin: User, *, before: tuple[int, int] | None, limit: int
) -> DuplicatesPage:
    """A page of the candidate duplicate pairs of the administrator's network, newest
    first, with both records of each; the read is audited with the records it names."""
    facilities = await _network(pool, admin)
    pairs = await identity.duplicate_candidates(pool, facilities, before=before, limit=limit + 1)
    more = len(pairs) > limit
    pairs = pairs[:limit]
    records = await identity.patient_records(pool, sorted({p for x in pairs for p in (x.a, x.b)}))
    await _listed(
        pool,
        admin,
        "patient",
        "duplicates",
        {"pairs": len(pairs), "before": list(before) if before else None},
        patients=[r.shown_as for r in records.values()],
    )
    last = pairs[-1] if more else None
    return DuplicatesPage(
        pairs=pairs, records=records, next_before=(last.b, last.a) if last else None
    )


@dataclass(frozen=True, kw_only=True)
class Compared:
    """Records side by side, each with its studies (ECGs among them), newest first."""

    records: list[PatientRecord]
    studies: dict[PatientRef, list[RecordStudy]]
    #: For a pair: why it is a candidate, and whether it was dismissed.
    standing: PairStanding | None


async def _in_network(pool: Pool, admin: User, ids: Sequence[int]) -> list[PatientRecord]:
    """The records named, in order.

    Raises
    ------
    NotFound
        A record is not one of the administrator's network.
    """
    facilities = set(await _network(pool, admin))
    found = await identity.patient_records(pool, ids)
    records = []
    for p in ids:
        record = found.get(PatientRef(p))
        if record is None or record.facility_id not in facilities:
            raise NotFound(N_("患者 %(id)s 不是您网络中的记录"), id=p)
        records.append(record)
    return records


async def compare(pool: Pool, admin: User, patients: Sequence[int]) -> Compared:
    """The records a merge screen shows (one, or a pair), in the order named; audited.

    Raises
    ------
    NotFound
        A record is not one of the administrator's network.
    """
    records = await _in_network(pool, admin, patients)
    studies = await identity.record_studies(pool, [r.id for r in records])
    by_record: dict[PatientRef, list[RecordStudy]] = {r.id: [] for r in records}
    for s in studies:
        by_record[s.patient_ref].append(s)
    await audit.record(
        pool,
        user_id=admin.id,
        action=AuditAction.READ,
        object_type="patient",
        object_id=",".join(str(r.id) for r in records),
        detail={"view": "merge"},
        study_ids=[s.id for s in studies],
        patients=[r.shown_as for r in records],
    )
    standing = (
        await identity.pair_standing(pool, records[0].id, records[1].id)
        if len(records) == 2
        else None
    )
    return Compared(records=records, studies=by_record, standing=standing)


async def dismiss(pool: Pool, admin: User, a: int, b: int, *, note: str | None = None) -> None:
    """Remember that two records are not the same person: the pair leaves the candidates.
    Audited with the values before and after.

    Raises
    ------
    InvalidState
        The same record is named twice.
    NotFound
        A record is not one of the administrator's network.
    """
    low, high = check_pair(a, b)
    await _in_network(pool, admin, (low, high))
    async with transaction(pool) as conn:
        new = await identity.dismiss_pair(conn, PatientRef(low), PatientRef(high), admin.id, note)
        if new:
            await record_change(
                conn,
                admin,
                "patient_pair",
                f"{low},{high}",
                {"before": {"dismissed": False}, "after": {"dismissed": True, "note": note}},
            )
    log.info("administrator %s dismissed candidate pair %s,%s", admin.id, low, high)


@dataclass(frozen=True, kw_only=True)
class DismissalsPage:
    dismissals: list[Dismissal]
    records: dict[PatientRef, PatientRecord]
    total: int


async def dismissals(pool: Pool, admin: User, *, limit: int, offset: int) -> DismissalsPage:
    """A page of the network's pairs judged not one person, newest first, with their
    records; audited with the records shown."""
    facilities = await _network(pool, admin)
    found, total = await identity.pair_dismissals(pool, facilities, limit=limit, offset=offset)
    records = await identity.patient_records(pool, [p for d in found for p in (d.a, d.b)])
    await _listed(
        pool,
        admin,
        "patient_pair",
        "dismissed",
        {"count": len(found), "offset": offset},
        patients=[r.shown_as for r in records.values()],
    )
    return DismissalsPage(dismissals=found, records=records, total=total)


async def undismiss(pool: Pool, admin: User, a: int, b: int) -> None:
    """Undo a dismissal: the pair is a candidate again when its records still agree.
    Audited with the values before and after.

    Raises
    ------
    InvalidState
        The same record is named twice.
    NotFound
        A record is not one of the administrator's network, or the pair was not dismissed.
    """
    low, high = check_pair(a, b)
    await _in_network(pool, admin, (low, high))
    async with transaction(pool) as conn:
        was, note = await identity.undismiss_pair(conn, PatientRef(low), PatientRef(high))
        if not was:
            raise NotFound(N_("记录 %(low)s 与 %(high)s 未被判定为不是同一人"), low=low, high=high)
        await record_change(
            conn,
            admin,
            "patient_pair",
            f"{low},{high}",
            {"before": {"dismissed": True, "note": note}, "after": {"dismissed": False}},
        )
    log.info("administrator %s undid the dismissal of pair %s,%s", admin.id, low, high)


@dataclass(frozen=True, kw_only=True)
class ConflictsPage:
    conflicts: list[IdentityConflict]
    total: int


async def conflicts(
    pool: Pool, admin: User, *, resolved_too: bool, limit: int, offset: int
) -> ConflictsPage:
    """A page of the identity conflicts at ingest of the administrator's network, newest
    first (open ones only unless ``resolved_too``); audited with the studies named."""
    facilities = await _network(pool, admin)
    found, total = await identity.identity_conflicts(
        pool, facilities, resolved_too=resolved_too, limit=limit, offset=offset
    )
    await _listed(
        pool,
        admin,
        "identity_conflict",
        "list",
        {"count": len(found), "offset": offset, "resolved_too": resolved_too},
        study_ids=sorted({c.study_id for c in found}),
    )
    return ConflictsPage(conflicts=found, total=total)


async def resolve_conflict(pool: Pool, admin: User, conflict: int, note: str) -> None:
    """Mark an identity conflict of the network resolved, with the administrator's note;
    audited with the values before and after.

    Raises
    ------
    NotFound
        The conflict is not one of the administrator's network.
    InvalidState
        It is resolved already.
    """
    facilities = await _network(pool, admin)
    async with transaction(pool) as conn:
        state = await identity.conflict_state(conn, conflict, facilities)
        if state is None:
            raise NotFound(N_("身份冲突 %(id)s 不属于您的网络"), id=conflict)
        at = await identity.resolve_conflict(conn, conflict, facilities, admin.id, note)
        if at is None:
            raise InvalidState(N_("身份冲突 %(id)s 已解决"), id=conflict)
        await record_change(
            conn,
            admin,
            "identity_conflict",
            conflict,
            {
                "before": {"resolved": False},
                "after": {"resolved": True, "resolved_at": at.isoformat(), "note": note},
            },
        )
    log.info("administrator %s resolved identity conflict %s", admin.id, conflict)
