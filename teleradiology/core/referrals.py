"""The rules of two-way referral (双向转诊), as plain functions.

Up (上转): from the case's sending clinic to a county or city hospital above it, answered by
that hospital: accepted with the time the patient is received, or declined with a reason.
Down (下转/转回): from the hospital the patient leaves to a township or village below it, with
the discharge summary and follow-up plan. Who is told of each step is decided here too.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime

from storage.records import (
    EventKind,
    Facility,
    FacilityId,
    NotificationKind,
    ReferralDirection,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
    Role,
    Tier,
    Urgency,
    User,
)
from teleradiology.core.errors import Forbidden, InvalidState, NotFound

#: The tiers an up-referral may go to.
RECEIVING_TIERS = frozenset({Tier.COUNTY, Tier.CITY})


@dataclass(frozen=True, kw_only=True)
class ReferralRequest:
    """What the sender asks: where to, how urgent, why; the case or referral it is about."""

    direction: ReferralDirection
    to_facility: str
    urgency: Urgency
    reason: str
    case_id: int | None = None
    in_reply_to: int | None = None
    discharge_summary: str | None = None
    follow_up_plan: str | None = None


def subject(earlier: ReferralSubject | None, of_case: ReferralSubject | None) -> ReferralSubject:
    """The referral's subject: its case's (named, or the answered referral's), else the
    answered referral's."""
    found = of_case or earlier
    if found is None:
        raise InvalidState("attach the case (case_id) or the referral it answers")
    return found


def up_source(
    user: User, about: ReferralSubject, target: Facility, above_clinic: Set[int]
) -> FacilityId:
    """The sender of an up-referral (the case's clinic), when ``target`` may receive it:
    a county or city hospital among ``above_clinic`` (the clinic's facility chain)."""
    if user.role is Role.CLINIC and user.facility_id != about.clinic_id:
        raise NotFound(f"case {about.case_id} not found")
    if target.id not in above_clinic or target.tier not in RECEIVING_TIERS:
        raise InvalidState(
            f"an up-referral goes to a county or city hospital above the clinic; "
            f"{target.code} is not one"
        )
    return about.clinic_id


def down_source(user: User, target: Facility, target_chain: Set[int]) -> FacilityId:
    """The sender of a down-referral (the user's hospital), when ``target`` is below it
    (the sender is in ``target_chain``, the target's facility chain)."""
    if user.role is Role.CLINIC:
        raise InvalidState("a down-referral is sent by the hospital the patient leaves")
    if user.facility_id not in target_chain or target.id == user.facility_id:
        raise InvalidState(f"a down-referral goes to a facility below yours; {target.code} is not")
    return user.facility_id


def told_of_request(direction: ReferralDirection) -> Role:
    """Who at the receiving facility is told of a new referral: its administrators (who
    arrange the admission) for an up-referral, its clinic for a down-referral."""
    return Role.CLINIC if direction is ReferralDirection.DOWN else Role.ADMIN


def check_response(
    user: User,
    referral: ReferralState,
    *,
    accept: bool,
    appointment_at: datetime | None,
    reason: str | None,
) -> ReferralStatus:
    """Whether the user may answer the referral so; the status it then has.

    Only the receiving facility answers (another is refused: Forbidden), once, while it is
    requested; accepting an up-referral needs the time the patient is received, declining
    needs a reason.
    """
    if referral.to_facility_id != user.facility_id:
        raise Forbidden("only the receiving facility answers a referral")
    if referral.status is not ReferralStatus.REQUESTED:
        raise InvalidState(f"referral {referral.id} is already {referral.status.value}")
    if accept and referral.direction is ReferralDirection.UP and appointment_at is None:
        raise InvalidState("say when the patient is received ('appointment_at')")
    if not accept and not reason:
        raise InvalidState("say why the referral is declined ('reason')")
    return ReferralStatus.ACCEPTED if accept else ReferralStatus.DECLINED


def answered(status: ReferralStatus) -> tuple[EventKind, NotificationKind]:
    """The event an answer is, and what the sender is told."""
    if status is ReferralStatus.ACCEPTED:
        return EventKind.REFERRAL_ACCEPTED, NotificationKind.REFERRAL_ACCEPTED
    if status is ReferralStatus.DECLINED:
        return EventKind.REFERRAL_DECLINED, NotificationKind.REFERRAL_DECLINED
    raise ValueError(f"{status.value} is not an answer to a referral")


def told_of_answer(direction: ReferralDirection) -> Role:
    """Who at the sending facility is told of the answer: the clinic that referred the
    patient up, the administrators of the hospital that sent them down."""
    return Role.CLINIC if direction is ReferralDirection.UP else Role.ADMIN
