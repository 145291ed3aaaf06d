"""Where a complete study is read: pure rules over the facility chain above the sender.

The network's data decides: a routing rule of the nearest sender in the chain (the most
specific one there) names the first-read and escalation pools and may set the deadline;
without a rule the county above the sender reads first and the city above escalates. A
pool with no reader on duty hands its first read to the escalation pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from storage.records import (
    CasePlan,
    Facility,
    FacilityId,
    NetworkPolicy,
    Priority,
    RoutingData,
    RoutingRule,
    Specialty,
    StudyToRoute,
    Tier,
)
from teleradiology.core.errors import ServiceError
from teleradiology.core.language import N_

#: Modalities that carry no image or waveform of their own to read.
NON_READABLE = frozenset({"SR", "PR", "KO", "DOC", "REG", "OT"})
_READING_TIERS = (Tier.COUNTY, Tier.CITY)


class RoutingError(ServiceError):
    """No facility above the sender can read this study (said to the administrators'
    preview as a :class:`ServiceError` is)."""


def specialties_of(modalities: tuple[str, ...]) -> list[Specialty]:
    """ECG waveforms go to ECG readers; any image to radiology."""
    found: list[Specialty] = []
    if any(m not in NON_READABLE and m != "ECG" for m in modalities):
        found.append(Specialty.RADIOLOGY)
    if "ECG" in modalities:
        found.append(Specialty.ECG)
    return found or [Specialty.RADIOLOGY]


def match_rule(
    rules: Sequence[RoutingRule],
    chain: Sequence[Facility],
    *,
    modalities: tuple[str, ...],
    specialty: Specialty,
    priority: Priority,
) -> RoutingRule | None:
    """The rule of the nearest sender in ``chain`` that matches, the most specific first."""
    for facility in chain:
        candidates = [
            r
            for r in rules
            if r.sender_facility_id == facility.id
            and (r.modality is None or r.modality in modalities)
            and (r.specialty is None or r.specialty is specialty)
            and (r.priority is None or r.priority is priority)
        ]
        if candidates:
            return max(candidates, key=lambda r: r.specificity)
    return None


def _reading_above(chain: Sequence[Facility], facility_id: FacilityId) -> FacilityId | None:
    """The nearest county or city above ``facility_id`` in the chain (or, when the facility
    is not in the chain, the first county or city of the chain above the sender)."""
    ids = [f.id for f in chain]
    start = ids.index(facility_id) + 1 if facility_id in ids else 1
    return next((f.id for f in chain[start:] if f.tier in _READING_TIERS), None)


def plan_cases(study: StudyToRoute, chain: list[Facility]) -> list[CasePlan]:
    """One case per specialty of the study, routed by the network's rules.

    Raises
    ------
    RoutingError
        When no rule applies and no county or city facility stands above the sender.
    """
    data = study.routing or RoutingData(policy=NetworkPolicy())
    return [_plan_one(study, chain, data, s) for s in specialties_of(study.modalities)]


def _plan_one(
    study: StudyToRoute, chain: list[Facility], data: RoutingData, specialty: Specialty
) -> CasePlan:
    stemi = study.suspected_stemi and specialty is Specialty.ECG
    priority = Priority.HIGH if stemi else study.priority
    rule = match_rule(
        data.rules, chain, modalities=study.modalities, specialty=specialty, priority=priority
    )
    reason = "rule" if rule else "default"
    if rule is not None:
        first: FacilityId | None = rule.first_read_facility_id
        escalation = rule.escalation_facility_id or _reading_above(
            chain, rule.first_read_facility_id
        )
    else:
        first = next((f.id for f in chain if f.tier in _READING_TIERS), None)
        escalation = _reading_above(chain, first) if first is not None else None
    if first is None:
        sender = chain[0].code if chain else "?"
        raise RoutingError(N_("%(sender)s 之上没有能阅读其检查的县级或市级机构"), sender=sender)
    pool_id = rule.pool_id if rule is not None else None
    if not _staffed(data, first, specialty, pool_id) and (
        escalation is not None and _staffed(data, escalation, specialty, None)
    ):
        first, escalation = escalation, _reading_above(chain, escalation)
        pool_id = None
        reason = "no reader on duty at the first-read pool"
    due_in = (rule.deadline if rule and rule.deadline else None) or data.policy.deadlines[priority]
    if stemi:
        due_in = min(due_in, data.policy.stemi_deadline)
    return CasePlan(
        specialty=specialty,
        priority=priority,
        pool_facility_id=first,
        escalation_facility_id=escalation,
        due_in=due_in,
        stemi=stemi,
        reason=reason,
        reading_pool_id=pool_id,
    )


def _staffed(
    data: RoutingData, facility_id: FacilityId, specialty: Specialty, pool_id: int | None
) -> bool:
    """Whether a reader is on duty in the pool: a named pool's members, or else the
    facility's readers of the specialty (unknown duty counts as staffed)."""
    if pool_id is not None:
        return data.staffed_pools is None or pool_id in data.staffed_pools
    return data.staffed is None or (facility_id, specialty) in data.staffed


def unclaimed_escalation_at(
    routed_at: datetime, due_in: timedelta, at_risk_share: float
) -> datetime:
    """When a case still unclaimed is escalated: once less than the network's at-risk share
    of its window is left (as the deadline watch finds it), to the second."""
    left = (due_in * (1 - at_risk_share)).total_seconds()
    return routed_at + timedelta(seconds=round(left))
