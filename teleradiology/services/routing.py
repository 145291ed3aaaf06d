"""Complete studies and route them: a study that received nothing for long enough is
complete, and its cases are opened in the pools `core.routing` plans for it."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from storage import cases, index, jobs, orders
from storage.db import Conn, Pool, transaction
from storage.eventlog import notify
from storage.records import (
    CaseId,
    CasePlan,
    EventKind,
    FacilityId,
    NotificationKind,
    Priority,
    Role,
    StudyId,
)
from teleradiology.core.orders import reading_question
from teleradiology.core.routing import RoutingError, plan_cases
from teleradiology.services.progress import record_step

log = logging.getLogger(__name__)

#: The job that routes the studies marked ready at once (the worker's sweep is the fallback).
ROUTE_READY = "route_ready"


async def mark_ready(pool: Pool, study_uid: str, facility_id: FacilityId) -> bool:
    """The study is whole (a manifest, a completed procedure step, a storage commitment):
    marked ready, and the worker woken to route it now. False when no receiving study of
    the facility has the UID."""
    async with transaction(pool) as conn:
        return await mark_ready_on(conn, study_uid, facility_id)


async def mark_ready_on(conn: Conn, study_uid: str, facility_id: FacilityId) -> bool:
    """`mark_ready` in the caller's transaction."""
    if not await index.mark_study_ready(conn, study_uid, facility_id):
        return False
    await jobs.enqueue(conn, ROUTE_READY, {"study_instance_uid": study_uid})
    return True


async def _with_order(conn: Conn, stable: cases.StableStudy) -> cases.StableStudy:
    """The study as its order asks it read: an open order of its facility (by the Study
    Instance UID the worklist gave, else the accession number) is linked, and its urgency
    and clinical question carried to the study and so to its cases."""
    order = await orders.order_of_study(conn, stable.study.id)
    if order is None:
        return stable
    await orders.link_study(conn, order, stable.study.id, reading_question(order.spec))
    priority = order.spec.urgency.priority
    if priority is Priority.HIGH and stable.study.priority is not Priority.HIGH:
        stable = dataclasses.replace(
            stable, study=dataclasses.replace(stable.study, priority=priority)
        )
    return stable


async def complete_stable_studies(
    pool: Pool, *, stable_age: timedelta, limit: int = 50, now: datetime | None = None
) -> list[CaseId]:
    """Mark studies complete that received nothing for ``stable_age`` (or were marked
    ready), and route them; the cases opened.

    Each batch is completed and its cases created in one transaction; concurrent workers
    skip each other's studies. A study returned to its clinic waits for a new instance.
    ``now`` is the time the pools' duty is judged at (the server's unless a test passes its
    own).
    """
    at = now or datetime.now(UTC)
    created: list[CaseId] = []
    async with transaction(pool) as conn:
        for found in await cases.lock_stable_studies(
            conn, stable_age=stable_age, limit=limit, at=at
        ):
            stable = await _with_order(conn, found)
            study = stable.study
            await cases.mark_complete(conn, study.id)
            await record_step(
                conn, EventKind.COMPLETE, facility_id=study.facility_id, study_id=study.id
            )
            codes = {f.id: f.code for f in stable.chain}
            for plan in _plan(stable):
                case_id = await schedule_case(conn, study.id, study.facility_id, plan)
                if case_id is None:
                    continue
                pool_code = codes.get(plan.pool_facility_id) or await cases.facility_code(
                    conn, plan.pool_facility_id
                )
                await record_step(
                    conn,
                    EventKind.ROUTED,
                    facility_id=study.facility_id,
                    study_id=study.id,
                    case_id=case_id,
                    detail={
                        "pool": pool_code,
                        "specialty": plan.specialty.value,
                        "reason": plan.reason,
                    },
                )
                created.append(case_id)
    return created


def plan(stable: cases.StableStudy) -> list[CasePlan]:
    """The cases a study opens, where and when due: the one decision real routing and the
    administrators' preview both take.

    Raises
    ------
    RoutingError
        No rule applies and no county or city stands above the sender.
    """
    return plan_cases(stable.study, list(stable.chain))


def _plan(stable: cases.StableStudy) -> list[CasePlan]:
    try:
        return plan(stable)
    except RoutingError as exc:
        # Completed without a case: the network needs fixing, the study must not block others.
        log.error("study %s cannot be routed: %s", stable.study.id, exc)
        return []


async def schedule_case(
    conn: Conn,
    study_id: StudyId,
    facility_id: FacilityId,
    plan: CasePlan,
    *,
    second_read_of: CaseId | None = None,
) -> CaseId | None:
    """Open a scheduled case as planned and tell its pool's readers; None when the study
    already has that open case."""
    case_id = await cases.insert_case(
        conn, study_id, facility_id, plan, second_read_of=second_read_of
    )
    if case_id is None:
        return None
    await notify(
        conn,
        NotificationKind.CASE,
        facility_id=plan.pool_facility_id,
        audience=Role.READER,
        case_id=case_id,
        detail={"specialty": plan.specialty.value, "priority": plan.priority.value},
    )
    return case_id
