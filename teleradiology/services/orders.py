"""Exam orders and what modalities say of them: a clinic's orders (registered, listed,
canceled), the Modality Worklist its workstations query, their performed procedure steps
(MPPS) and storage commitment requests, which mark a study whole so that it is routed now.

Every read of an order (page, API, worklist query) is audited; a facility sees only its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from storage import audit, network, orders, qido
from storage.db import Pool, transaction
from storage.records import (
    AuditAction,
    Case,
    Facility,
    FacilityId,
    Order,
    OrderSpec,
    OrderStatus,
    Role,
    StepStatus,
    User,
)
from teleradiology.core import orders as rules
from teleradiology.core.access import require_role
from teleradiology.core.errors import BadRequest, Conflict, Forbidden, NotFound
from teleradiology.core.language import N_
from teleradiology.services import routing

log = logging.getLogger(__name__)

#: An order the caller's facility does not have.
NO_ORDER = N_("您的机构没有检查预约 %(id)s")

#: Most matches one worklist query answers.
WORKLIST_MAX = 500


def _patients(order: Order) -> tuple[str, ...]:
    return (f"{order.facility_code}:{order.spec.patient_id}",)


async def _audit(pool: Pool, user: User, action: AuditAction, found: Sequence[Order]) -> None:
    await audit.record(
        pool,
        user_id=user.id,
        action=action,
        object_type="order",
        object_id=str(found[0].id) if len(found) == 1 else "orders",
        patients=[p for o in found for p in _patients(o)],
    )


async def create(pool: Pool, user: User, spec: OrderSpec, *, today: date | None = None) -> Order:
    """Register an exam for the clinic user's facility: a new accession number (unique in
    the facility), scheduled procedure step and Study Instance UID.

    Raises
    ------
    Forbidden
        The user is not a clinic operator.
    BadRequest
        A value the worklist cannot carry (the message names it).
    """
    require_role(user, Role.CLINIC)
    rules.check_spec(spec)
    day = today or datetime.now(UTC).date()
    async with transaction(pool) as conn:
        number = await orders.next_number(conn, user.facility_id, day)
        order_id = await orders.insert_order(
            conn,
            user.facility_id,
            spec,
            accession_number=rules.accession_number(day, number),
            study_instance_uid=generate_uid(),
            created_by=user.id,
        )
    found = await orders.order_by_id(pool, order_id, user.facility_id)
    assert found is not None
    await _audit(pool, user, AuditAction.ORDER, [found])
    return found


def _clinic(user: User) -> FacilityId:
    if user.role is not Role.CLINIC:
        raise Forbidden(N_("检查预约属于送检诊所：请以其操作员身份登录"))
    return user.facility_id


async def list_orders(
    pool: Pool,
    user: User,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    status: OrderStatus | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Order]:
    """The clinic's orders, by scheduled date (newest first), filtered."""
    facility_id = _clinic(user)
    if date_from and date_to and date_from > date_to:
        raise BadRequest(N_("from：晚于 until"))
    found = await orders.orders_of_facility(
        pool,
        facility_id,
        date_from=date_from,
        date_to=date_to,
        status=status,
        limit=limit,
        offset=offset,
    )
    if found:
        await _audit(pool, user, AuditAction.LIST, found)
    return found


async def get(pool: Pool, user: User, order_id: int) -> Order:
    """One of the clinic's orders.

    Raises
    ------
    NotFound
        No order of the user's facility has that id (another facility's neither).
    """
    found = await orders.order_by_id(pool, order_id, _clinic(user))
    if found is None:
        raise NotFound(NO_ORDER, id=order_id)
    await _audit(pool, user, AuditAction.READ, [found])
    return found


async def cancel(pool: Pool, user: User, order_id: int) -> Order:
    """Cancel a scheduled order: its modality no longer lists it.

    Raises
    ------
    NotFound
        Not an order of the user's facility.
    Conflict
        The exam is under way or done (only a scheduled order is canceled).
    """
    facility_id = _clinic(user)
    found = await orders.order_by_id(pool, order_id, facility_id)
    if found is None:
        raise NotFound(NO_ORDER, id=order_id)
    if not await orders.cancel_order(pool, order_id, facility_id):
        raise Conflict(
            N_("检查预约 %(number)s 的状态是%(status)s：未取消"),
            number=found.accession_number,
            status=found.status,
        )
    canceled = await orders.order_by_id(pool, order_id, facility_id)
    assert canceled is not None
    await _audit(pool, user, AuditAction.ORDER, [canceled])
    return canceled


# --- the Modality Worklist ---------------------------------------------------------------------


async def worklist(pool: Pool, calling_ae: str, identifier: Dataset) -> list[Dataset]:
    """The open orders of the calling workstation's facility that match a Modality
    Worklist query, as answers in the character set it asked for.

    Raises
    ------
    Forbidden
        The calling AE title is no workstation of a facility.
    BadRequest
        The query's keys cannot be matched.
    """
    facility = await _workstation(pool, calling_ae)
    match = rules.worklist_filter(identifier)
    found = await orders.worklist_orders(pool, facility.id, match, limit=WORKLIST_MAX)
    await audit.record(
        pool,
        user_id=None,
        action=AuditAction.C_FIND,
        object_type="worklist",
        object_id=calling_ae,
        detail={"matches": len(found)},
        patients=[p for o in found for p in _patients(o)],
        who=audit.Who(facility_id=facility.id),
    )
    return [rules.worklist_answer(o, identifier) for o in found]


async def _workstation(pool: Pool, calling_ae: str) -> Facility:
    facility = await network.facility_by_ae(pool, calling_ae.strip())
    if facility is None:
        raise Forbidden(N_("%(ae)s 不是任何机构的工作站"), ae=calling_ae.strip())
    return facility


# --- MPPS ---------------------------------------------------------------------------------------


class NoSuchStep(NotFound):
    """No performed procedure step of the caller's facility has that SOP Instance UID."""


class StepClosed(Conflict):
    """The step is COMPLETED or DISCONTINUED already: it may no longer be updated."""


class DuplicateStep(Conflict):
    """A step with that SOP Instance UID exists already."""


async def start_step(pool: Pool, calling_ae: str, sop_instance_uid: str, ds: Dataset) -> None:
    """An MPPS N-CREATE: the step IN PROGRESS, linked to the order it performs (by its
    scheduled step, requested procedure or accession number), which is then in progress.

    Raises
    ------
    Forbidden, BadRequest, DuplicateStep
    """
    facility = await _workstation(pool, calling_ae)
    start = rules.step_start(ds)
    order = None
    if start.sps_id or start.requested_id or start.accession:
        order = await orders.order_of_step(
            pool,
            facility.id,
            sps_id=start.sps_id,
            requested_id=start.requested_id,
            accession=start.accession,
        )
    study_uid = start.study_uid or (order.study_instance_uid if order else None)
    if not await orders.insert_step(
        pool,
        sop_instance_uid,
        facility.id,
        calling_ae.strip(),
        study_uid=study_uid,
        order_id=order.id if order else None,
    ):
        raise DuplicateStep(N_("已执行步骤 %(uid)s 已经存在"), uid=sop_instance_uid)
    if order is not None:
        await orders.set_order_status(pool, order.id, OrderStatus.IN_PROGRESS)
    log.info("MPPS from %s: step in progress (order linked: %s)", facility.code, bool(order))


async def update_step(
    pool: Pool, calling_ae: str, sop_instance_uid: str, ds: Dataset
) -> StepStatus:
    """An MPPS N-SET: COMPLETED (with the instances it made: the study is ready once they
    are all stored) or DISCONTINUED (recorded with its reason, for the reader); an N-SET
    that keeps the step IN PROGRESS changes nothing we keep.

    Raises
    ------
    Forbidden, BadRequest, NoSuchStep, StepClosed
    """
    facility = await _workstation(pool, calling_ae)
    step = await orders.step_by_uid(pool, sop_instance_uid)
    if step is None or step.facility_id != facility.id:
        raise NoSuchStep(N_("%(ae)s 没有已执行步骤 %(uid)s"), uid=sop_instance_uid, ae=calling_ae)
    if step.status is not StepStatus.IN_PROGRESS:
        raise StepClosed(N_("该步骤已结束（%(status)s）"), status=step.status)
    end = rules.step_end(ds)
    if end is None:
        return StepStatus.IN_PROGRESS
    if not await orders.end_step(pool, sop_instance_uid, end):
        raise StepClosed(N_("该步骤已在此期间结束"))
    if end.status is StepStatus.DISCONTINUED:
        if step.order_id is not None:
            await orders.set_order_status(pool, step.order_id, OrderStatus.DISCONTINUED)
        log.info("MPPS from %s: step discontinued", facility.code)
    elif step.study_instance_uid:
        await check_whole(pool, step.study_instance_uid)
    return end.status


async def check_whole(pool: Pool, study_uid: str) -> bool:
    """Mark the study ready when a completed step of it has every instance it named
    stored; True when it was marked now."""
    marked = False
    async with transaction(pool) as conn:
        for sop_uid, facility_id, referenced in await orders.waiting_steps(conn, study_uid):
            if await orders.missing_instances(conn, referenced):
                continue
            if await routing.mark_ready_on(conn, study_uid, facility_id):
                marked = True
            elif not referenced:
                continue  # it named nothing, and nothing of the study is here yet
            # Whole: ready now, or complete already (the stable age came first).
            await orders.step_found_whole(conn, sop_uid)
    return marked


async def instance_stored(pool: Pool, study_uid: str) -> None:
    """After an instance of the study was stored: a completed step waiting for it may be
    whole now."""
    if await orders.has_waiting_steps(pool, study_uid):
        await check_whole(pool, study_uid)


# --- storage commitment -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Commitment:
    """The answer to a storage commitment request, and where to send it."""

    event_type: int
    report: Dataset
    #: A new association goes here when the requester's has closed (host, port), if known.
    node: tuple[str, int] | None


async def commit(pool: Pool, calling_ae: str, ds: Dataset) -> Commitment:
    """A storage commitment request (push model): each instance named is committed when it
    is stored (durable and indexed) for the caller's facility, else failed (no such object);
    when all are, their studies are ready.

    Raises
    ------
    Forbidden, BadRequest
    """
    facility = await _workstation(pool, calling_ae)
    transaction_uid, asked = rules.commitment_request(ds)
    found = await orders.stored_instances(pool, [sop for _, sop in asked])
    mine = [i for i in found if i.facility_id == facility.id]
    event_type, report = rules.commitment_result(
        transaction_uid, asked, {i.sop_instance_uid: i.sop_class_uid for i in mine}
    )
    if event_type == 1:
        for study_uid in sorted({i.study_instance_uid for i in mine}):
            await routing.mark_ready(pool, study_uid, facility.id)
    node = await qido.dicom_node(pool, calling_ae.strip())
    where = None
    if node is not None and node.host and node.port and node.facility_id == facility.id:
        where = (node.host, node.port)
    log.info(
        "storage commitment from %s: %d of %d stored",
        facility.code,
        len(report.get("ReferencedSOPSequence") or []),
        len(asked),
    )
    return Commitment(event_type=event_type, report=report, node=where)


async def performed_steps(pool: Pool, case: Case) -> list[orders.StepSummary]:
    """What the modality said of the case's study (its procedure steps), for the reader of
    a case already opened (and audited) for them: a step DISCONTINUED, with its reason,
    means the study may be partial."""
    return await orders.steps_of_study(pool, case.study_instance_uid)
