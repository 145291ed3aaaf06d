"""The rules of reading, without a database: every role × case state × action.

The table is the specification; each cell names the outcome: ``ok``, or the error the action
is refused with (``forbidden`` 403, ``state`` and ``conflict`` 409).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.records import (
    CaseId,
    CaseStatus,
    Conclusion,
    FacilityId,
    ReportId,
    ReportStatus,
    Role,
    Specialty,
    User,
    UserId,
)
from teleradiology.core import casework
from teleradiology.core.casework import CaseAction, CaseState, DeadlineStep
from teleradiology.core.errors import Conflict, Forbidden, InvalidState

POOL = FacilityId(10)
OTHER_POOL = FacilityId(20)
ME = UserId(1)
SOMEONE = UserId(2)

USERS = {
    Role.CLINIC: User(
        id=ME, username="c", display_name="c", role=Role.CLINIC, facility_id=FacilityId(3)
    ),
    Role.READER: User(
        id=ME,
        username="r",
        display_name="r",
        role=Role.READER,
        facility_id=POOL,
        specialties=frozenset({Specialty.RADIOLOGY}),
    ),
    Role.ADMIN: User(id=ME, username="a", display_name="a", role=Role.ADMIN, facility_id=POOL),
}


def state(name: str) -> CaseState:
    """The case states the table names, as seen by user ME of facility POOL."""
    status, holder, expired, pool = {
        "scheduled": (CaseStatus.SCHEDULED, None, False, POOL),
        "elsewhere": (CaseStatus.SCHEDULED, None, False, OTHER_POOL),
        "mine": (CaseStatus.IN_PROGRESS, ME, False, POOL),
        "theirs": (CaseStatus.IN_PROGRESS, SOMEONE, False, POOL),
        "lapsed": (CaseStatus.IN_PROGRESS, SOMEONE, True, POOL),
        "completed": (CaseStatus.COMPLETED, None, False, POOL),
        "canceled": (CaseStatus.CANCELED, None, False, POOL),
    }[name]
    return CaseState(
        id=CaseId(7),
        status=status,
        claimed_by=holder,
        lease_expired=expired,
        pool_facility_id=pool,
        pool_code="HB-COUNTY",
        escalation_facility_id=FacilityId(99),
        escalated=False,
    )


ACTIONS = (
    CaseAction.CLAIM,
    CaseAction.RELEASE,
    CaseAction.REPORT,
    CaseAction.ESCALATE,
    CaseAction.RETURN,
    CaseAction.SECOND_READ,
)
_ = "forbidden"
#: role, state → outcome of claim, release, report, escalate, return, second read
TABLE: dict[tuple[Role, str], tuple[str, ...]] = {
    (Role.READER, "scheduled"): ("ok", "state", "state", "state", "state", "ok"),
    (Role.READER, "elsewhere"): ("state", "state", "state", "state", "state", "ok"),
    (Role.READER, "mine"): ("ok", "ok", "ok", "ok", "ok", "ok"),
    (Role.READER, "theirs"): ("conflict", "state", "state", "state", "state", "ok"),
    (Role.READER, "lapsed"): ("ok", "state", "state", "state", "state", "ok"),
    (Role.READER, "completed"): ("state", "state", "state", "state", "state", "ok"),
    (Role.READER, "canceled"): ("state", "state", "state", "state", "state", "state"),
    (Role.ADMIN, "scheduled"): (_, "state", _, _, _, "ok"),
    (Role.ADMIN, "elsewhere"): (_, "state", _, _, _, "ok"),
    (Role.ADMIN, "mine"): (_, "ok", _, _, _, "ok"),
    (Role.ADMIN, "theirs"): (_, "ok", _, _, _, "ok"),
    (Role.ADMIN, "lapsed"): (_, "ok", _, _, _, "ok"),
    (Role.ADMIN, "completed"): (_, "state", _, _, _, "ok"),
    (Role.ADMIN, "canceled"): (_, "state", _, _, _, "state"),
    **{(Role.CLINIC, s): (_,) * 6 for s in ("scheduled", "mine", "theirs", "completed")},
}
ERRORS = {"forbidden": Forbidden, "state": InvalidState, "conflict": Conflict}


def _outcome(user: User, case: CaseState, action: CaseAction) -> str:
    try:
        casework.check(user, case, action)
    except (Forbidden, InvalidState, Conflict) as exc:
        return next(k for k, v in ERRORS.items() if type(exc) is v)
    return "ok"


@pytest.mark.parametrize(("role", "name"), sorted(TABLE, key=str))
def test_every_role_state_and_action_answers_as_the_table_says(role: Role, name: str) -> None:
    user, case = USERS[role], state(name)
    got = tuple(_outcome(user, case, a) for a in ACTIONS)
    assert got == TABLE[(role, name)]
    offered = casework.offered_actions(user, case)
    expected = {a for a, o in zip(ACTIONS, got, strict=True) if o == "ok"}
    if case.held_by(user):
        expected.discard(CaseAction.CLAIM)  # renewed as they work, not offered
    assert offered == expected


def test_the_table_covers_every_action_and_state() -> None:
    assert set(ACTIONS) == set(CaseAction)
    assert {s for _, s in TABLE} >= {"scheduled", "mine", "theirs", "lapsed", "completed"}


def test_a_case_without_a_pool_above_cannot_be_escalated() -> None:
    top = CaseState(
        id=CaseId(7),
        status=CaseStatus.IN_PROGRESS,
        claimed_by=ME,
        lease_expired=False,
        pool_facility_id=POOL,
        pool_code="HB-CITY",
        escalation_facility_id=None,
        escalated=True,
    )
    with pytest.raises(InvalidState, match="no escalation pool above HB-CITY"):
        casework.check(USERS[Role.READER], top, CaseAction.ESCALATE)
    assert CaseAction.ESCALATE not in casework.offered_actions(USERS[Role.READER], top)


def test_the_first_reader_may_not_read_the_second_read() -> None:
    second = CaseState(
        id=CaseId(8),
        status=CaseStatus.SCHEDULED,
        claimed_by=None,
        lease_expired=False,
        pool_facility_id=POOL,
        pool_code="HB-COUNTY",
        escalation_facility_id=None,
        escalated=False,
        second_read_of=CaseId(7),
    )
    reader = USERS[Role.READER]
    assert casework.allowed(reader, second, CaseAction.CLAIM)
    with pytest.raises(InvalidState, match="another reader must read it"):
        casework.check(reader, second, CaseAction.CLAIM, read_first_read=True)
    with pytest.raises(InvalidState, match="itself a second read"):
        casework.check(reader, second, CaseAction.SECOND_READ)


@pytest.mark.parametrize(
    ("action", "report_status", "after"),
    [
        (CaseAction.CLAIM, None, CaseStatus.IN_PROGRESS),
        (CaseAction.RELEASE, None, CaseStatus.SCHEDULED),
        (CaseAction.ESCALATE, None, CaseStatus.SCHEDULED),
        (CaseAction.RETURN, None, CaseStatus.CANCELED),
        (CaseAction.REPORT, ReportStatus.PRELIMINARY, CaseStatus.IN_PROGRESS),
        (CaseAction.REPORT, ReportStatus.FINAL, CaseStatus.COMPLETED),
        (CaseAction.SECOND_READ, None, CaseStatus.IN_PROGRESS),
    ],
)
def test_what_state_follows_each_action(
    action: CaseAction, report_status: ReportStatus | None, after: CaseStatus
) -> None:
    assert (
        casework.next_status(CaseStatus.IN_PROGRESS, action, report_status=report_status) is after
    )


def test_a_report_needs_its_status_to_say_what_follows() -> None:
    with pytest.raises(ValueError, match="status"):
        casework.next_status(CaseStatus.IN_PROGRESS, CaseAction.REPORT)


def test_the_author_or_a_higher_tier_adds_an_addendum_to_a_final_report() -> None:
    reader, report = USERS[Role.READER], ReportId(5)
    casework.check_addendum(reader, report, ReportStatus.FINAL, ME)
    with pytest.raises(Forbidden, match="another reader"):
        casework.check_addendum(reader, report, ReportStatus.FINAL, SOMEONE)
    # a reader above the author's facility amends it; a preliminary still is no one's
    casework.check_addendum(reader, report, ReportStatus.FINAL, SOMEONE, above_author=True)
    with pytest.raises(InvalidState, match="not final"):
        casework.check_addendum(
            reader, report, ReportStatus.PRELIMINARY, SOMEONE, above_author=True
        )
    with pytest.raises(InvalidState, match="not final"):
        casework.check_addendum(reader, report, ReportStatus.PRELIMINARY, ME)
    with pytest.raises(Forbidden):
        casework.check_addendum(USERS[Role.CLINIC], report, ReportStatus.FINAL, ME)
    with pytest.raises(Forbidden):
        casework.check_addendum(
            USERS[Role.ADMIN], report, ReportStatus.FINAL, SOMEONE, above_author=True
        )
    assert casework.addendum_allowed(reader, report, ReportStatus.FINAL, SOMEONE, above_author=True)
    assert not casework.addendum_allowed(reader, report, ReportStatus.FINAL, SOMEONE)


def test_the_city_reader_consults_over_another_readers_draft() -> None:
    escalated = CaseState(
        id=CaseId(7),
        status=CaseStatus.SCHEDULED,
        claimed_by=None,
        lease_expired=False,
        pool_facility_id=POOL,
        pool_code="HB-CITY",
        escalation_facility_id=None,
        escalated=True,
    )
    reader = USERS[Role.READER]
    assert casework.consulting(reader, escalated, SOMEONE)
    assert not casework.consulting(reader, escalated, ME)
    assert not casework.consulting(reader, escalated, None)
    assert not casework.consulting(USERS[Role.ADMIN], escalated, SOMEONE)
    assert not casework.consulting(reader, state("scheduled"), SOMEONE)


@pytest.mark.parametrize(
    ("first", "final", "agreed", "discrepancy", "expected"),
    [
        (None, Conclusion.NORMAL, None, None, (True, None)),
        (None, Conclusion.NORMAL, False, "看法不同", (False, "看法不同")),
        (Conclusion.ABNORMAL, Conclusion.ABNORMAL, None, None, (True, None)),
        (
            Conclusion.ABNORMAL,
            Conclusion.NORMAL,
            None,
            None,
            (False, "结论由异常改为未见异常"),
        ),
        (Conclusion.ABNORMAL, Conclusion.NORMAL, True, None, (True, None)),
        (Conclusion.NORMAL, Conclusion.NORMAL, False, "漏诊结节", (False, "漏诊结节")),
    ],
)
def test_agreement_with_the_first_reader(
    first: Conclusion | None,
    final: Conclusion,
    agreed: bool | None,
    discrepancy: str | None,
    expected: tuple[bool, str | None],
) -> None:
    assert casework.agreement(first, final, agreed=agreed, discrepancy=discrepancy) == expected


NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "pool_above", "off_duty", "deadline", "step", "reason"),
    [
        (CaseStatus.SCHEDULED, True, False, NOW + timedelta(minutes=3), DeadlineStep.ESCALATE,
         "3 min left and not claimed"),
        (CaseStatus.SCHEDULED, False, False, NOW - timedelta(minutes=12), DeadlineStep.AT_RISK,
         "deadline passed 12 min ago"),
        (CaseStatus.IN_PROGRESS, True, True, NOW - timedelta(minutes=1), DeadlineStep.REASSIGN,
         "deadline passed 1 min ago; the reader holding it is off duty"),
        (CaseStatus.IN_PROGRESS, True, False, NOW - timedelta(minutes=1), DeadlineStep.AT_RISK,
         "deadline passed 1 min ago"),
    ],
)  # fmt: skip
def test_the_deadline_watch_escalates_reassigns_or_flags(
    status: CaseStatus,
    pool_above: bool,
    off_duty: bool,
    deadline: datetime,
    step: DeadlineStep,
    reason: str,
) -> None:
    got = casework.deadline_step(
        status=status,
        has_escalation_pool=pool_above,
        holder_off_duty=off_duty,
        deadline=deadline,
        now=NOW,
    )
    assert got == (step, reason)


def test_a_case_state_is_consistent() -> None:
    with pytest.raises(ValueError, match="claimed_by"):
        CaseState(
            id=CaseId(1),
            status=CaseStatus.SCHEDULED,
            claimed_by=ME,
            lease_expired=False,
            pool_facility_id=POOL,
            pool_code="X",
            escalation_facility_id=None,
            escalated=False,
        )
