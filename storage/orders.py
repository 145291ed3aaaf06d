"""Exam orders (the Modality Worklist), performed procedure steps (MPPS) and the stored
instances a storage commitment asks about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Self

from storage.db import Conn, Queryable
from storage.queries import q
from storage.records import (
    FacilityId,
    Order,
    OrderId,
    OrderMatch,
    OrderSpec,
    OrderStatus,
    Row,
    StepEnd,
    StepStatus,
    StudyId,
    UserId,
)


async def next_number(conn: Conn, facility_id: FacilityId, day: date) -> int:
    """The facility's next order number of ``day`` (1 for the first)."""
    return int(await conn.fetchval(q("order_next_number"), facility_id, day))


async def insert_order(
    conn: Conn,
    facility_id: FacilityId,
    spec: OrderSpec,
    *,
    accession_number: str,
    study_instance_uid: str,
    created_by: UserId | None,
) -> OrderId:
    s = spec
    found = await conn.fetchval(
        q("order_insert"),
        facility_id,
        accession_number,
        accession_number,
        accession_number,
        s.patient_id,
        s.patient_name,
        s.patient_sex,
        s.patient_birth_date,
        s.modality,
        s.station_ae,
        s.procedure_description,
        s.urgency.value,
        s.clinical_question,
        s.history,
        s.scheduled_date,
        s.scheduled_time,
        study_instance_uid,
        created_by,
    )
    return OrderId(found)


async def order_by_id(db: Queryable, order_id: int, facility_id: FacilityId) -> Order | None:
    row = await db.fetchrow(q("order_by_id"), order_id, facility_id)
    return Order.from_row(row) if row else None


async def orders_of_facility(
    db: Queryable,
    facility_id: FacilityId,
    *,
    date_from: date | None,
    date_to: date | None,
    status: OrderStatus | None,
    limit: int,
    offset: int,
) -> list[Order]:
    rows = await db.fetch(
        q("orders_of_facility"),
        facility_id,
        date_from,
        date_to,
        status.value if status else None,
        limit,
        offset,
    )
    return [Order.from_row(r) for r in rows]


async def cancel_order(db: Queryable, order_id: int, facility_id: FacilityId) -> bool:
    """Cancel a scheduled order; False when it is not the facility's or not scheduled."""
    return await db.fetchval(q("order_cancel"), order_id, facility_id) is not None


async def worklist_orders(
    db: Queryable, facility_id: FacilityId, match: OrderMatch, *, limit: int
) -> list[Order]:
    m = match
    rows = await db.fetch(
        q("worklist_orders"),
        facility_id,
        m.modality,
        m.station_ae,
        m.date_from,
        m.date_to,
        m.accession_number,
        m.patient_id_like,
        m.patient_name_like,
        limit,
        m.time_from,
        m.time_to,
    )
    return [Order.from_row(r) for r in rows]


async def order_of_study(db: Queryable, study_id: StudyId) -> Order | None:
    """The open order a study of its facility answers (by UID, else accession number)."""
    row = await db.fetchrow(q("order_of_study"), study_id)
    return Order.from_row(row) if row else None


async def order_of_step(
    db: Queryable, facility_id: FacilityId, *, sps_id: str, requested_id: str, accession: str
) -> Order | None:
    row = await db.fetchrow(q("order_of_step"), facility_id, sps_id, requested_id, accession)
    return Order.from_row(row) if row else None


async def link_study(conn: Conn, order: Order, study_id: StudyId, question: str | None) -> None:
    """The study answers the order: linked, the order done, its urgency and ``question`` on
    the study (before the study's cases are planned; a question the study has is kept)."""
    await conn.execute(q("order_link_study"), order.id, study_id)
    await conn.execute(q("study_take_order"), study_id, order.spec.urgency.priority.value, question)


async def set_order_status(db: Queryable, order_id: OrderId, status: OrderStatus) -> None:
    await db.execute(q("order_set_status"), order_id, status.value)


@dataclass(frozen=True, kw_only=True)
class PerformedStep:
    sop_instance_uid: str
    facility_id: FacilityId
    calling_ae: str
    status: StepStatus
    study_instance_uid: str | None
    order_id: OrderId | None
    referenced_sops: tuple[str, ...]
    reason_code: str | None
    reason_meaning: str | None
    ready_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(
            sop_instance_uid=row["sop_instance_uid"],
            facility_id=FacilityId(row["facility_id"]),
            calling_ae=row["calling_ae"],
            status=StepStatus(row["status"]),
            study_instance_uid=row["study_instance_uid"],
            order_id=OrderId(row["order_id"]) if row["order_id"] is not None else None,
            referenced_sops=tuple(row["referenced_sops"]),
            reason_code=row["reason_code"],
            reason_meaning=row["reason_meaning"],
            ready_at=row["ready_at"],
            updated_at=row["updated_at"],
        )


async def insert_step(
    db: Queryable,
    sop_instance_uid: str,
    facility_id: FacilityId,
    calling_ae: str,
    *,
    study_uid: str | None,
    order_id: OrderId | None,
) -> bool:
    """Record a new IN PROGRESS step; False when the SOP Instance UID is taken."""
    found = await db.fetchval(
        q("step_insert"), sop_instance_uid, facility_id, calling_ae, study_uid, order_id
    )
    return found is not None


async def step_by_uid(db: Queryable, sop_instance_uid: str) -> PerformedStep | None:
    row = await db.fetchrow(q("step_by_uid"), sop_instance_uid)
    return PerformedStep.from_row(row) if row else None


async def end_step(db: Queryable, sop_instance_uid: str, end: StepEnd) -> bool:
    """Complete or discontinue an IN PROGRESS step; False when it is not in progress."""
    found = await db.fetchval(
        q("step_update"),
        sop_instance_uid,
        end.status.value,
        list(end.referenced_sops),
        end.reason_code,
        end.reason_meaning,
        end.study_uid,
    )
    return found is not None


async def missing_instances(db: Queryable, sop_uids: Sequence[str]) -> int:
    """How many of the named instances are not stored yet."""
    return int(await db.fetchval(q("step_missing"), list(sop_uids)))


async def waiting_steps(
    conn: Conn, study_uid: str
) -> list[tuple[str, FacilityId, tuple[str, ...]]]:
    """The study's completed steps not yet found whole, locked (a concurrent check waits)."""
    rows = await conn.fetch(q("steps_waiting"), study_uid)
    return [
        (r["sop_instance_uid"], FacilityId(r["facility_id"]), tuple(r["referenced_sops"]))
        for r in rows
    ]


async def step_found_whole(conn: Conn, sop_instance_uid: str) -> None:
    await conn.execute(q("step_ready"), sop_instance_uid)


@dataclass(frozen=True, kw_only=True)
class StepSummary:
    """A study's performed step as its reader sees it."""

    status: StepStatus
    reason_code: str | None
    reason_meaning: str | None
    updated_at: datetime


async def steps_of_study(db: Queryable, study_uid: str) -> list[StepSummary]:
    rows = await db.fetch(q("steps_of_study"), study_uid)
    return [
        StepSummary(
            status=StepStatus(r["status"]),
            reason_code=r["reason_code"],
            reason_meaning=r["reason_meaning"],
            updated_at=r["updated_at"],
        )
        for r in rows
    ]


@dataclass(frozen=True, kw_only=True)
class StoredInstance:
    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    facility_id: FacilityId


async def stored_instances(db: Queryable, sop_uids: Sequence[str]) -> list[StoredInstance]:
    """The named instances that are stored (durable and indexed)."""
    rows = await db.fetch(q("instances_stored"), list(sop_uids))
    return [
        StoredInstance(
            sop_instance_uid=r["sop_instance_uid"],
            sop_class_uid=r["sop_class_uid"],
            study_instance_uid=r["study_instance_uid"],
            facility_id=FacilityId(r["facility_id"]),
        )
        for r in rows
    ]


async def has_waiting_steps(db: Queryable, study_uid: str) -> bool:
    """Whether a completed step of the study waits for its instances."""
    return bool(await db.fetchval(q("steps_waiting_exist"), study_uid))
