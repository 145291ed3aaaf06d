"""A rule that names a reading pool: the pool's members on duty decide, as the facility's
readers do for the default pools; the preview's escalation time; the roster's week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from storage.records import (
    CasePlan,
    DutyShift,
    Facility,
    FacilityId,
    NetworkPolicy,
    Priority,
    RoutingData,
    RoutingRule,
    Specialty,
    StudyId,
    StudyToRoute,
    Tier,
)
from storage.rosters import DutyException, ExceptionKind
from teleradiology.core.routing import plan_cases, unclaimed_escalation_at
from teleradiology.http.web.routing_admin import week_cells

CHAIN = [
    Facility(id=FacilityId(1), code="V", name="村", tier=Tier.VILLAGE, parent_id=FacilityId(2)),
    Facility(id=FacilityId(2), code="T", name="镇", tier=Tier.TOWNSHIP, parent_id=FacilityId(3)),
    Facility(id=FacilityId(3), code="C", name="县", tier=Tier.COUNTY, parent_id=FacilityId(4)),
    Facility(id=FacilityId(4), code="S", name="市", tier=Tier.CITY, parent_id=None),
]
RULE = RoutingRule(
    sender_facility_id=FacilityId(1),
    modality="DX",
    specialty=Specialty.RADIOLOGY,
    priority=None,
    first_read_facility_id=FacilityId(3),
    escalation_facility_id=None,
    deadline=timedelta(minutes=90),
    pool_id=7,
)


def _plan(staffed_pools: frozenset[int] | None, modality: str = "DX") -> list[CasePlan]:
    study = StudyToRoute(
        id=StudyId(1),
        study_instance_uid="1.2",
        facility_id=FacilityId(1),
        modalities=(modality,),
        priority=Priority.MEDIUM,
        routing=RoutingData(
            policy=NetworkPolicy(),
            rules=(RULE,),
            staffed=frozenset({(FacilityId(4), Specialty.RADIOLOGY)}),
            staffed_pools=staffed_pools,
        ),
    )
    return plan_cases(study, CHAIN)


def test_a_rule_naming_a_pool_with_a_member_on_duty_sends_its_cases_to_the_pool() -> None:
    (plan,) = _plan(frozenset({7}))
    assert plan.reading_pool_id == 7
    assert plan.pool_facility_id == 3
    assert plan.escalation_facility_id == 4
    assert plan.due_in == timedelta(minutes=90)
    assert plan.reason == "rule"


def test_a_pool_with_nobody_on_duty_hands_the_case_to_the_city() -> None:
    # the county's other readers are off duty too (not staffed), the city is
    (plan,) = _plan(frozenset())
    assert plan.reading_pool_id is None
    assert plan.pool_facility_id == 4
    assert plan.reason == "no reader on duty at the first-read pool"


def test_a_study_the_rule_does_not_match_goes_to_no_pool() -> None:
    (plan,) = _plan(frozenset({7}), modality="CT")
    assert plan.reading_pool_id is None
    assert plan.reason != "rule"


def test_an_unclaimed_case_is_escalated_when_the_at_risk_share_is_left() -> None:
    at = datetime(2030, 1, 7, 1, 0, tzinfo=UTC)
    # PostgreSQL keeps the share as a real: 0.1 is 0.10000000149
    assert unclaimed_escalation_at(at, timedelta(hours=2), 0.10000000149) == at + timedelta(
        minutes=108
    )


def test_the_week_shows_weekly_shifts_extra_shifts_and_leave_on_their_days() -> None:
    monday = date(2030, 1, 7)
    night = DutyShift(weekdays=frozenset({1, 3}), starts=time(20), ends=time(8))
    day = DutyShift(weekdays=frozenset({5}), starts=time(8), ends=time.max)
    cells = week_cells(
        [night, day],
        [
            DutyException(
                id=1,
                username="w",
                day=date(2030, 1, 9),
                kind=ExceptionKind.LEAVE,
                starts=None,
                ends=None,
            ),
            DutyException(
                id=2,
                username="w",
                day=date(2030, 1, 12),
                kind=ExceptionKind.EXTRA,
                starts=time(9),
                ends=time(12),
            ),
            DutyException(
                id=3,
                username="w",
                day=date(2030, 1, 14),
                kind=ExceptionKind.LEAVE,
                starts=None,
                ends=None,
            ),
        ],
        monday,
    )
    assert cells[0].shifts == ["20:00–08:00 (+1)"]
    assert cells[2].leave == [{"id": 1, "span": "全天"}]
    assert cells[4].shifts == ["08:00–24:00"]
    assert cells[5].extra == [{"id": 2, "span": "09:00–12:00"}]
    assert sum(len(c.leave) for c in cells) == 1  # the next Monday's leave is not this week
