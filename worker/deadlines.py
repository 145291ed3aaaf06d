"""The periodic safety nets: deadlines that will be missed, critical results nobody
acknowledged, and DICOM copies of reports waiting for another attempt."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from storage import cases, reports
from storage.db import Pool

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Pass:
    escalated: int
    reassigned: int
    at_risk: int
    critical_resent: int


async def watch_once(pool: Pool, *, now: datetime | None = None) -> Pass:
    """One pass at ``now`` (the server's clock unless a test passes its own)."""
    at = now or datetime.now(UTC)
    actions = await cases.handle_deadlines(pool, now=at)
    resent = await reports.resend_unacknowledged_critical(pool, now=at)
    escalated = sum(a.action == "escalated" for a in actions)
    reassigned = sum(a.action == "reassigned" for a in actions)
    at_risk = len(actions) - escalated - reassigned
    if actions:
        log.info(
            "deadlines: %d escalated, %d reassigned, %d at risk", escalated, reassigned, at_risk
        )
    for r in resent:
        log.warning(
            "critical report %s unacknowledged: re-sent (%d), %d duty administrator(s) alerted",
            r.report_id,
            r.resends,
            len(r.alerted_admins),
        )
    return Pass(
        escalated=escalated, reassigned=reassigned, at_risk=at_risk, critical_resent=len(resent)
    )
