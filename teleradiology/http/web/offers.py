"""What a page offers the signed-in user on a case: the actions `core.casework` allows them,
as the flags the templates read. The pages never decide this themselves."""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import datetime
from typing import Any

from storage.records import Case, Report, ReportStatus, User, UserId
from teleradiology.core import casework
from teleradiology.core.casework import CaseAction, CaseState


def latest_draft(case_reports: Sequence[Report]) -> Report | None:
    """The case's latest preliminary report (the draft an escalated case arrives with)."""
    drafts = [r for r in case_reports if r.status is ReportStatus.PRELIMINARY]
    return drafts[-1] if drafts else None


def case_actions(
    user: User,
    case: Case,
    offered: frozenset[CaseAction],
    case_reports: Sequence[Report],
    *,
    now: datetime,
    authors_below: Set[UserId] = frozenset(),
) -> dict[str, Any]:
    """The templates' flags for ``offered`` (`services.reading.offered_actions`): what to
    show the user, whether they consult over another reader's draft, and the reports they
    may add an addendum to (their own, and those of ``authors_below``)."""
    draft = latest_draft(case_reports)
    state = CaseState.of(case, now)
    return {
        # reporting is the holder's: the report form is theirs
        "holder": CaseAction.REPORT in offered,
        "can_claim": CaseAction.CLAIM in offered,
        "can_release": CaseAction.RELEASE in offered,
        "can_escalate": CaseAction.ESCALATE in offered,
        "can_second_read": CaseAction.SECOND_READ in offered,
        "consult": casework.consulting(user, state, draft.author_id if draft else None),
        "addendum_to": [
            r.id
            for r in case_reports
            if casework.addendum_allowed(
                user, r.id, r.status, r.author_id, above_author=r.author_id in authors_below
            )
        ],
    }
