"""The rules of reading: who may do what to a case in which state, what state follows, what the
deadline watch does to a case at risk, and whether a finalising reader agreed with the first.

Plain values in, plain values out: the services apply these rules to the row they hold locked,
and pages and the API ask them which actions to offer. A refusal is raised as the domain error
the edges translate (Forbidden 403, InvalidState 409, Conflict 409), with a message written for
the person who tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from storage.records import (
    Case,
    CaseId,
    CaseStatus,
    Conclusion,
    FacilityId,
    ReportId,
    ReportStatus,
    Role,
    User,
    UserId,
)
from teleradiology.core.access import require_role
from teleradiology.core.errors import Conflict, Forbidden, InvalidState
from teleradiology.core.language import N_
from teleradiology.core.words import word


class CaseAction(StrEnum):
    """What a user can do to a case (a report's are `ReportAction`)."""

    CLAIM = "claim"
    RELEASE = "release"
    REPORT = "report"
    ESCALATE = "escalate"
    RETURN = "return"
    SECOND_READ = "second_read"


#: The roles each action is for.
ACTION_ROLES: dict[CaseAction, frozenset[Role]] = {
    CaseAction.CLAIM: frozenset({Role.READER}),
    CaseAction.RELEASE: frozenset({Role.READER, Role.ADMIN}),
    CaseAction.REPORT: frozenset({Role.READER}),
    CaseAction.ESCALATE: frozenset({Role.READER}),
    CaseAction.RETURN: frozenset({Role.READER}),
    CaseAction.SECOND_READ: frozenset({Role.READER, Role.ADMIN}),
}


class ReportAction(StrEnum):
    """What a user can do to a delivered or final report."""

    ADDENDUM = "addendum"
    ACKNOWLEDGE = "acknowledge"


#: The roles each report action is for.
REPORT_ACTION_ROLES: dict[ReportAction, frozenset[Role]] = {
    ReportAction.ADDENDUM: frozenset({Role.READER}),
    ReportAction.ACKNOWLEDGE: frozenset({Role.CLINIC}),
}

#: The actions only the reader holding the case may take, with the verb their refusal uses.
#: What only the case's holder may do, and the refusal of anyone else.
_HOLDER_VERBS = {
    CaseAction.RELEASE: N_("请先领取病例 %(id)s，再释放"),
    CaseAction.REPORT: N_("请先领取病例 %(id)s，再写报告"),
    CaseAction.ESCALATE: N_("请先领取病例 %(id)s，再上转"),
    CaseAction.RETURN: N_("请先领取病例 %(id)s，再退回"),
}

OPEN_STATES = frozenset({CaseStatus.SCHEDULED, CaseStatus.IN_PROGRESS})


@dataclass(frozen=True, kw_only=True)
class CaseState:
    """What the rules read of one case, at one moment."""

    id: CaseId
    status: CaseStatus
    claimed_by: UserId | None
    #: the holder's lease ran out (the case may be taken over)
    lease_expired: bool
    pool_facility_id: FacilityId
    #: the pool's facility code, for messages
    pool_code: str
    escalation_facility_id: FacilityId | None
    escalated: bool
    second_read_of: CaseId | None = None

    def __post_init__(self) -> None:
        if (self.status is CaseStatus.IN_PROGRESS) != (self.claimed_by is not None):
            raise ValueError(
                f"case {self.id}: status {self.status} with claimed_by={self.claimed_by}"
            )

    @classmethod
    def of(cls, case: Case, now: datetime) -> CaseState:
        """The state of a case record as of ``now``."""
        return cls(
            id=case.id,
            status=case.status,
            claimed_by=case.claimed_by,
            lease_expired=case.lease_expires_at is not None and case.lease_expires_at < now,
            pool_facility_id=case.pool_facility_id,
            pool_code=case.pool_code or "",
            escalation_facility_id=case.escalation_facility_id,
            escalated=case.escalated,
            second_read_of=case.second_read_of,
        )

    def held_by(self, user: User) -> bool:
        return self.status is CaseStatus.IN_PROGRESS and self.claimed_by == user.id


def check_role(user: User, action: CaseAction | ReportAction) -> None:
    """Raise unless ``action`` is for the user's role (before the case or report is read:
    a role that may never take it is refused whatever the case)."""
    roles = ACTION_ROLES[action] if isinstance(action, CaseAction) else REPORT_ACTION_ROLES[action]
    require_role(user, *sorted(roles, key=list(Role).index))


def check(
    user: User, case: CaseState, action: CaseAction, *, read_first_read: bool = False
) -> None:
    """Raise unless ``user`` may take ``action`` on ``case`` now.

    ``read_first_read``: on a second read, whether the user read (claimed or reported) the
    first read; that reader may not read the second.
    """
    check_role(user, action)
    if action is CaseAction.CLAIM:
        _check_claim(user, case, read_first_read=read_first_read)
    elif action is CaseAction.RELEASE and user.role is Role.ADMIN:
        if case.status is not CaseStatus.IN_PROGRESS:
            raise InvalidState(N_("病例 %(id)s 未被领取"), id=case.id)
    elif action in _HOLDER_VERBS:
        if not case.held_by(user):
            raise InvalidState(_HOLDER_VERBS[action], id=case.id)
        if action is CaseAction.ESCALATE and case.escalation_facility_id is None:
            raise InvalidState(
                N_("病例 %(id)s 在 %(pool)s 之上没有上转阅片组"), id=case.id, pool=case.pool_code
            )
    elif action is CaseAction.SECOND_READ:
        if case.second_read_of is not None:
            raise InvalidState(N_("病例 %(id)s 本身就是复核阅片"), id=case.id)
        if case.status is CaseStatus.CANCELED:
            raise InvalidState(N_("病例 %(id)s 已取消"), id=case.id)


def _check_claim(user: User, case: CaseState, *, read_first_read: bool) -> None:
    if case.status not in OPEN_STATES:
        raise InvalidState(N_("病例 %(id)s 的状态是%(status)s"), id=case.id, status=case.status)
    if case.pool_facility_id != user.facility_id:
        raise InvalidState(
            N_("病例 %(id)s 现由 %(pool)s 阅片；只有其阅片医生能领取"),
            id=case.id,
            pool=case.pool_code,
        )
    held_by_other = case.status is CaseStatus.IN_PROGRESS and case.claimed_by != user.id
    if held_by_other and not case.lease_expired:
        raise Conflict(N_("病例 %(id)s 正由另一位阅片医生阅片"), id=case.id)
    if case.second_read_of is not None and read_first_read:
        raise InvalidState(N_("病例 %(id)s 是复核阅片：须由另一位阅片医生阅片"), id=case.id)


def allowed(
    user: User, case: CaseState, action: CaseAction, *, read_first_read: bool = False
) -> bool:
    """Whether `check` lets ``user`` take ``action`` on ``case``."""
    try:
        check(user, case, action, read_first_read=read_first_read)
    except (Forbidden, InvalidState, Conflict):
        return False
    return True


def offered_actions(
    user: User, case: CaseState, *, read_first_read: bool = False
) -> frozenset[CaseAction]:
    """The actions to offer ``user`` on ``case``: those allowed, less a claim the user already
    holds (it is renewed as they work)."""
    found = {a for a in CaseAction if allowed(user, case, a, read_first_read=read_first_read)}
    if case.held_by(user):
        found.discard(CaseAction.CLAIM)
    return frozenset(found)


def next_status(
    status: CaseStatus, action: CaseAction, *, report_status: ReportStatus | None = None
) -> CaseStatus:
    """The state a case is in after ``action`` (a second read opens a new case, so the first
    keeps its state)."""
    if action is CaseAction.CLAIM:
        return CaseStatus.IN_PROGRESS
    if action in (CaseAction.RELEASE, CaseAction.ESCALATE):
        return CaseStatus.SCHEDULED
    if action is CaseAction.RETURN:
        return CaseStatus.CANCELED
    if action is CaseAction.REPORT:
        if report_status is None:
            raise ValueError("a report's status decides what follows it")
        return CaseStatus.COMPLETED if report_status is ReportStatus.FINAL else status
    return status


def consulting(user: User, case: CaseState, draft_author: UserId | None) -> bool:
    """Whether ``user`` finalises an escalated case over another reader's draft (the city
    reader agrees with the county's preliminary report or amends it)."""
    return (
        case.escalated
        and user.role is Role.READER
        and user.facility_id == case.pool_facility_id
        and draft_author is not None
        and draft_author != user.id
    )


def check_addendum(
    user: User,
    report_id: ReportId,
    status: ReportStatus,
    author_id: UserId,
    *,
    above_author: bool = False,
) -> None:
    """Raise unless ``user`` may add an addendum to the report, once final: its author, or a
    reader of a higher tier above the author in the same network (``above_author``: a city
    reader over a county reader's report). A reader of the same pool does not amend a
    colleague's signed report."""
    check_role(user, ReportAction.ADDENDUM)
    if status is not ReportStatus.FINAL:
        raise InvalidState(N_("报告 %(id)s 不是正式报告：请改草稿"), id=report_id)
    if author_id != user.id and not above_author:
        raise Forbidden(
            N_("报告 %(id)s 由另一位阅片医生签发：只有本人或其上级机构的阅片医生可补充"),
            id=report_id,
        )


def addendum_allowed(
    user: User,
    report_id: ReportId,
    status: ReportStatus,
    author_id: UserId,
    *,
    above_author: bool = False,
) -> bool:
    """Whether `check_addendum` lets ``user`` add an addendum to the report."""
    try:
        check_addendum(user, report_id, status, author_id, above_author=above_author)
    except (Forbidden, InvalidState):
        return False
    return True


def check_acknowledgement(
    user: User,
    report_id: ReportId,
    conclusion: Conclusion,
    name: str | None,
    read_back: str | None = None,
) -> None:
    """Raise unless ``user`` may acknowledge the delivered report: its clinic, and for a
    critical result a named person who took it and repeated it back (复述)."""
    check_role(user, ReportAction.ACKNOWLEDGE)
    if conclusion is not Conclusion.CRITICAL:
        return
    if not name:
        raise InvalidState(
            N_("报告 %(id)s 是危急值：请写明接收人（name：诊所接收结果的人）"), id=report_id
        )
    if not read_back:
        raise InvalidState(
            N_("报告 %(id)s 是危急值：请写下 %(name)s 的复述（read_back：接收人复述的结果）"),
            id=report_id,
            name=name,
        )


def agreement(
    first: Conclusion | None,
    final: Conclusion,
    *,
    agreed: bool | None,
    discrepancy: str | None,
) -> tuple[bool, str | None]:
    """Whether the finalising reader agreed with the first reader's preliminary conclusion
    (``first``; None when there was none), and the discrepancy recorded when not.

    Unless the reader says, they agreed when the conclusions are the same.
    """
    if first is None:
        return (agreed if agreed is not None else True), discrepancy
    verdict = agreed if agreed is not None else first is final
    if not verdict and not discrepancy:
        discrepancy = f"结论由{word(first)}改为{word(final)}"
    return verdict, discrepancy


class DeadlineStep(StrEnum):
    """What the deadline watch does to an open case that will miss its deadline."""

    #: unclaimed, with a pool above: sent up
    ESCALATE = "escalated"
    #: held by a reader who went off duty: back to its pool
    REASSIGN = "reassigned"
    #: anything else: its pool's readers and the duty administrator are told
    AT_RISK = "at_risk"


def deadline_step(
    *,
    status: CaseStatus,
    has_escalation_pool: bool,
    holder_off_duty: bool,
    deadline: datetime,
    now: datetime,
) -> tuple[DeadlineStep, str]:
    """The step for a case at risk, and its reason in words."""
    left = deadline - now
    if left <= timedelta(0):
        reason = f"deadline passed {int(-left.total_seconds() // 60)} min ago"
    else:
        reason = f"{int(left.total_seconds() // 60)} min left and not claimed"
    if status is CaseStatus.SCHEDULED and has_escalation_pool:
        return DeadlineStep.ESCALATE, reason
    if holder_off_duty:
        return DeadlineStep.REASSIGN, f"{reason}; the reader holding it is off duty"
    return DeadlineStep.AT_RISK, reason
