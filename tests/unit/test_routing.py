from __future__ import annotations

from datetime import timedelta

import pytest

from storage.cases import StudyToRoute
from storage.records import Facility, FacilityId, Priority, Specialty, StudyId, Tier
from teleradiology.routing import RoutingError, plan_cases, specialties_of


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
