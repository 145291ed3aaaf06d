from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from storage.records import (
    CasePlan,
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
from teleradiology.core.routing import RoutingError, match_rule, plan_cases, specialties_of


def _chain(*tiers: Tier) -> list[Facility]:
    return [
        Facility(
            id=FacilityId(i + 1),
            code=f"F{i}",
            name=f"机构{i}",
            tier=tier,
            parent_id=FacilityId(i + 2) if i + 1 < len(tiers) else None,
        )
        for i, tier in enumerate(tiers)
    ]


def _study(*modalities: str, priority: Priority = Priority.MEDIUM) -> StudyToRoute:
    return StudyToRoute(
        id=StudyId(1),
        study_instance_uid="1.2.3",
        facility_id=FacilityId(1),
        modalities=modalities,
        priority=priority,
    )


def test_a_village_study_is_read_at_the_county_and_escalates_to_the_city() -> None:
    chain = _chain(Tier.VILLAGE, Tier.TOWNSHIP, Tier.COUNTY, Tier.CITY)
    (plan,) = plan_cases(_study("CR"), chain)
    assert plan.pool_facility_id == 3
    assert plan.escalation_facility_id == 4
    assert plan.specialty is Specialty.RADIOLOGY
    assert plan.due_in == timedelta(hours=24)


def test_urgent_studies_are_due_in_thirty_minutes() -> None:
    chain = _chain(Tier.TOWNSHIP, Tier.COUNTY, Tier.CITY)
    (plan,) = plan_cases(_study("CT", priority=Priority.HIGH), chain)
    assert plan.priority is Priority.HIGH
    assert plan.due_in == timedelta(minutes=30)


def test_a_county_hospital_without_a_city_reads_its_own_and_has_no_escalation() -> None:
    (plan,) = plan_cases(_study("DX"), _chain(Tier.COUNTY))
    assert plan.pool_facility_id == 1
    assert plan.escalation_facility_id is None


def test_a_township_under_a_city_only_is_read_at_the_city() -> None:
    (plan,) = plan_cases(_study("US"), _chain(Tier.TOWNSHIP, Tier.CITY))
    assert plan.pool_facility_id == 2
    assert plan.escalation_facility_id is None


def test_no_reading_facility_above_is_an_error_naming_the_sender() -> None:
    with pytest.raises(RoutingError, match="F0"):
        plan_cases(_study("CR"), _chain(Tier.VILLAGE, Tier.TOWNSHIP))


@pytest.mark.parametrize(
    ("modalities", "expected"),
    [
        (("ECG",), [Specialty.ECG]),
        (("CT",), [Specialty.RADIOLOGY]),
        (("CT", "SR"), [Specialty.RADIOLOGY]),
        (("ECG", "SR"), [Specialty.ECG]),
        (("CR", "ECG"), [Specialty.RADIOLOGY, Specialty.ECG]),
        ((), [Specialty.RADIOLOGY]),
    ],
)
def test_specialty_follows_the_modality(
    modalities: tuple[str, ...], expected: list[Specialty]
) -> None:
    assert specialties_of(modalities) == expected


def test_a_mixed_study_gets_one_case_per_specialty() -> None:
    plans = plan_cases(_study("CR", "ECG"), _chain(Tier.VILLAGE, Tier.TOWNSHIP, Tier.COUNTY))
    assert [p.specialty for p in plans] == [Specialty.RADIOLOGY, Specialty.ECG]


# --- routing as data: rules, deadlines, duty ------------------------------------------------

_VILLAGE_CHAIN = _chain(Tier.VILLAGE, Tier.TOWNSHIP, Tier.COUNTY, Tier.CITY)  # ids 1, 2, 3, 4


def _rule(sender: int, first: int, **kw: object) -> RoutingRule:
    fields: dict[str, Any] = {
        "modality": None,
        "specialty": None,
        "priority": None,
        "escalation_facility_id": None,
        "deadline": None,
        **kw,
    }
    return RoutingRule(
        sender_facility_id=FacilityId(sender), first_read_facility_id=FacilityId(first), **fields
    )


def _routed(
    *modalities: str,
    rules: tuple[RoutingRule, ...] = (),
    policy: NetworkPolicy | None = None,
    staffed: frozenset[tuple[FacilityId, Specialty]] | None = None,
    priority: Priority = Priority.MEDIUM,
    stemi: bool = False,
) -> list[CasePlan]:
    study = dataclasses.replace(
        _study(*modalities, priority=priority),
        suspected_stemi=stemi,
        routing=RoutingData(policy=policy or NetworkPolicy(), rules=rules, staffed=staffed),
    )
    return plan_cases(study, _VILLAGE_CHAIN)


def test_the_demo_defaults_are_thirty_minutes_a_day_and_ten_minutes_for_stemi() -> None:
    policy = NetworkPolicy()
    assert policy.deadlines[Priority.HIGH] == timedelta(minutes=30)
    assert policy.deadlines[Priority.MEDIUM] == timedelta(hours=24)
    assert policy.stemi_deadline == timedelta(minutes=10)
    assert policy.critical_ack == timedelta(minutes=15)


def test_deadlines_come_from_the_networks_policy() -> None:
    policy = NetworkPolicy(
        deadlines={
            Priority.HIGH: timedelta(minutes=20),
            Priority.MEDIUM: timedelta(hours=8),
            Priority.LOW: timedelta(days=2),
        }
    )
    (plan,) = _routed("CR", policy=policy)
    assert plan.due_in == timedelta(hours=8)
    (plan,) = _routed("CR", policy=policy, priority=Priority.HIGH)
    assert plan.due_in == timedelta(minutes=20)


def test_a_suspected_stemi_ecg_is_high_priority_and_due_in_ten_minutes() -> None:
    radiology, ecg = _routed("CR", "ECG", stemi=True)
    assert (ecg.priority, ecg.due_in, ecg.stemi) == (Priority.HIGH, timedelta(minutes=10), True)
    # the chest film of the same study keeps its own priority
    assert (radiology.priority, radiology.due_in, radiology.stemi) == (
        Priority.MEDIUM,
        timedelta(hours=24),
        False,
    )


def test_a_township_reads_its_villages_ecgs_first_and_escalates_to_the_county() -> None:
    township_ecg = _rule(2, 2, specialty=Specialty.ECG, escalation_facility_id=FacilityId(3))
    radiology, ecg = _routed("CR", "ECG", rules=(township_ecg,))
    assert (ecg.pool_facility_id, ecg.escalation_facility_id, ecg.reason) == (2, 3, "rule")
    assert (radiology.pool_facility_id, radiology.reason) == (3, "default")


def test_the_nearest_sender_wins_then_the_most_specific_rule() -> None:
    county_wide = _rule(3, 4)
    township_any = _rule(2, 3)
    township_ct = _rule(2, 4, modality="CT", deadline=timedelta(hours=2))
    rules = (county_wide, township_any, township_ct)
    (ct,) = _routed("CT", rules=rules)
    assert (ct.pool_facility_id, ct.due_in) == (4, timedelta(hours=2))
    (cr,) = _routed("CR", rules=rules)
    assert (cr.pool_facility_id, cr.escalation_facility_id) == (3, 4)
    assert (
        match_rule(
            rules,
            _VILLAGE_CHAIN[2:],
            modalities=("CT",),
            specialty=Specialty.RADIOLOGY,
            priority=Priority.MEDIUM,
        )
        == county_wide
    )


def test_a_rule_for_urgent_studies_only_leaves_routine_ones_to_the_default() -> None:
    urgent_to_city = _rule(1, 4, priority=Priority.HIGH)
    (urgent,) = _routed("DX", rules=(urgent_to_city,), priority=Priority.HIGH)
    (routine,) = _routed("DX", rules=(urgent_to_city,))
    assert (urgent.pool_facility_id, urgent.escalation_facility_id) == (4, None)
    assert routine.pool_facility_id == 3


def test_with_nobody_on_duty_at_the_county_the_city_reads_first() -> None:
    city_only = frozenset({(FacilityId(4), Specialty.RADIOLOGY)})
    (plan,) = _routed("CR", staffed=city_only)
    assert (plan.pool_facility_id, plan.escalation_facility_id) == (4, None)
    assert plan.reason == "no reader on duty at the first-read pool"
    # nobody on duty anywhere: the county keeps it (someone comes on duty)
    (plan,) = _routed("CR", staffed=frozenset())
    assert plan.pool_facility_id == 3
    (plan,) = _routed("CR", staffed=frozenset({(FacilityId(3), Specialty.RADIOLOGY)}))
    assert (plan.pool_facility_id, plan.reason) == (3, "default")
