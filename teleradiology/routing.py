"""Where a complete study is read: pure rules over the facility chain above the sender."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from storage.cases import CasePlan, StudyToRoute
from storage.records import Facility, Priority, Specialty, Tier

#: Modalities that carry no image or waveform of their own to read.
NON_READABLE = frozenset({"SR", "PR", "KO", "DOC", "REG", "OT"})


class RoutingError(Exception):
    """No facility above the sender can read this study."""


@dataclass(frozen=True, kw_only=True)
class RoutingPolicy:
    deadlines: dict[Priority, timedelta] = field(
        default_factory=lambda: {
            Priority.HIGH: timedelta(minutes=30),
            Priority.MEDIUM: timedelta(hours=24),
            Priority.LOW: timedelta(hours=72),
        }
    )


def specialties_of(modalities: tuple[str, ...]) -> list[Specialty]:
    """ECG waveforms go to ECG readers; any image to radiology."""
    found: list[Specialty] = []
    if any(m not in NON_READABLE and m != "ECG" for m in modalities):
        found.append(Specialty.RADIOLOGY)
    if "ECG" in modalities:
        found.append(Specialty.ECG)
    return found or [Specialty.RADIOLOGY]


def plan_cases(
    study: StudyToRoute, chain: list[Facility], policy: RoutingPolicy | None = None
) -> list[CasePlan]:
    """One case per specialty: first read at the nearest county hospital above the sender
    (the sender itself if it is one), escalation to the city above it.

    Raises
    ------
    RoutingError
        When no county or city facility stands above the sender.
    """
    policy = policy or RoutingPolicy()
    county = next((f for f in chain if f.tier is Tier.COUNTY), None)
    city = next((f for f in chain if f.tier is Tier.CITY), None)
    pool = county or city
    if pool is None:
        sender = chain[0].code if chain else "?"
        raise RoutingError(f"no county or city facility above {sender} to read its studies")
    escalation = city if pool is county else None
    return [
        CasePlan(
            specialty=specialty,
            priority=study.priority,
            pool_facility_id=pool.id,
            escalation_facility_id=escalation.id if escalation else None,
            due_in=policy.deadlines[study.priority],
        )
        for specialty in specialties_of(study.modalities)
    ]
