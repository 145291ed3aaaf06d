"""Complete studies and route them: a study that received nothing for long enough is
complete, and its cases are opened in the pools `core.routing` plans for it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from storage import cases
from storage.db import Conn, Pool, transaction
from storage.eventlog import notify
from storage.records import (
    CaseId,
    CasePlan,
    EventKind,
    FacilityId,
    NotificationKind,
    Role,
    StudyId,
)
from teleradiology.core.routing import RoutingError, plan_cases
from teleradiology.services.progress import record_step

log = logging.getLogger(__name__)


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
        for stable in await cases.lock_stable_studies(
            conn, stable_age=stable_age, limit=limit, at=at
        ):
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
