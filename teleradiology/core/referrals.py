"""The rules of two-way referral (双向转诊), as plain functions.

Up (上转): from the case's sending clinic to a county or city hospital above it, answered by
that hospital: accepted with the time the patient is received, or declined with a reason.
Down (下转/转回): from the hospital the patient leaves to a township or village below it, with
the discharge summary and follow-up plan. Who is told of each step is decided here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, tzinfo

from storage.records import (
    EventKind,
    Facility,
    FacilityId,
    NotificationKind,
    ReferralDirection,
    ReferralDocumentKind,
    ReferralMonth,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
    ReturnKind,
    Role,
    Tier,
    Urgency,
    User,
)
from teleradiology.core.errors import BadRequest, Forbidden, InvalidState, NotFound
from teleradiology.core.language import N_

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
    #: the referral form (转诊单): the patient (a record of the patient index) when no case
    #: names them, what the sender found, and the results attached
    patient_id: int | None = None
    preliminary_diagnosis: str | None = None
    history: str | None = None
    findings: str | None = None
    studies: tuple[int, ...] = ()
    reports: tuple[int, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The receiving hospital's answer (接诊单)."""

    accept: bool
    appointment_at: datetime | None = None
    reason: str | None = None
    department: str | None = None
    doctor: str | None = None
    green_channel: bool = False


@dataclass(frozen=True, kw_only=True)
class ReturnForm:
    """The return down to the referring clinic (转回单): an outpatient or discharge summary."""

    kind: ReturnKind
    diagnosis: str
    orders: str | None
    follow_up: str


def subject(
    earlier: ReferralSubject | None,
    of_case: ReferralSubject | None,
    of_patient: ReferralSubject | None = None,
) -> ReferralSubject:
    """The referral's subject: its case's (named, or the answered referral's), else the
    named patient's, else the answered referral's."""
    found = of_case or of_patient or earlier
    if found is None:
        raise InvalidState(
            "name the patient (patient_id), the case (case_id) or the referral it answers"
        )
    if of_patient and of_case and of_patient.patient_ref != of_case.patient_ref:
        raise InvalidState(f"case {of_case.case_id} is not of patient {of_patient.patient_ref}")
    return found


def check_attachments(asked: Sequence[int], attachable: Set[int], what: str) -> tuple[int, ...]:
    """The results to attach, once each, when every one is the patient's and the sender
    may see it; NotFound naming those that are not."""
    missing = sorted(set(asked) - attachable)
    if missing:
        shown = ", ".join(str(n) for n in missing)
        raise NotFound(f"{what} {shown}: not a result of this patient that you may see")
    return tuple(dict.fromkeys(asked))


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


_STEPS = {
    ReferralStatus.ACCEPTED: (EventKind.REFERRAL_ACCEPTED, NotificationKind.REFERRAL_ACCEPTED),
    ReferralStatus.DECLINED: (EventKind.REFERRAL_DECLINED, NotificationKind.REFERRAL_DECLINED),
    ReferralStatus.ARRIVED: (EventKind.REFERRAL_ARRIVED, NotificationKind.REFERRAL_ARRIVED),
    ReferralStatus.RETURNED: (EventKind.REFERRAL_RETURNED, NotificationKind.REFERRAL_RETURNED),
}


def answered(status: ReferralStatus) -> tuple[EventKind, NotificationKind]:
    """The event a step of the receiving facility is, and what the sender is told."""
    try:
        return _STEPS[status]
    except KeyError:
        raise ValueError(f"{status.value} is not a step of the receiving facility") from None


def _receiver(user: User, referral: ReferralState) -> None:
    if referral.to_facility_id != user.facility_id:
        raise Forbidden("only the receiving facility records the steps of a referral")


def check_arrival(
    user: User, referral: ReferralState, at: datetime, now: datetime
) -> ReferralStatus:
    """Whether the user may record that the patient arrived (到诊) at ``at``: the receiving
    facility, once the referral is accepted; not in the future, not before it was raised."""
    _receiver(user, referral)
    if referral.status is not ReferralStatus.ACCEPTED:
        raise InvalidState(
            f"referral {referral.id} is {referral.status.value}: a patient arrives once the "
            "referral is accepted, and only once"
        )
    if at > now:
        raise InvalidState("the arrival time is in the future")
    if referral.created_at is not None and at < referral.created_at:
        raise InvalidState("the arrival time is before the referral was raised")
    return ReferralStatus.ARRIVED


def check_return(user: User, referral: ReferralState, form: ReturnForm) -> ReferralStatus:
    """Whether the user may send the patient back down (转回) with ``form``: the receiving
    facility of an up-referral, once the patient arrived; a diagnosis and follow-up
    guidance are needed."""
    _receiver(user, referral)
    if referral.direction is not ReferralDirection.UP:
        raise InvalidState("a patient referred down is not returned: refer them up instead")
    if referral.status is not ReferralStatus.ARRIVED:
        raise InvalidState(
            f"referral {referral.id} is {referral.status.value}: the patient is returned "
            "down after they arrived, and only once"
        )
    if not form.diagnosis.strip():
        raise InvalidState("write the diagnosis and treatment ('diagnosis')")
    if not form.follow_up.strip():
        raise InvalidState("write the follow-up guidance for the clinic ('follow_up')")
    return ReferralStatus.RETURNED


#: The statuses a referral has reached a step in: accepted, arrived, returned.
REACHED = {
    ReferralStatus.ACCEPTED: frozenset(
        {ReferralStatus.ACCEPTED, ReferralStatus.ARRIVED, ReferralStatus.RETURNED}
    ),
    ReferralStatus.ARRIVED: frozenset({ReferralStatus.ARRIVED, ReferralStatus.RETURNED}),
    ReferralStatus.RETURNED: frozenset({ReferralStatus.RETURNED}),
}


def documents(
    status: ReferralStatus, direction: ReferralDirection
) -> tuple[ReferralDocumentKind, ...]:
    """The documents a referral has in ``status``: its form from the start, the answer once
    answered, the return form once returned down."""
    kinds = [ReferralDocumentKind.FORM]
    if status is not ReferralStatus.REQUESTED:
        kinds.append(ReferralDocumentKind.ANSWER)
    if direction is ReferralDirection.UP and status is ReferralStatus.RETURNED:
        kinds.append(ReferralDocumentKind.RETURN)
    return tuple(kinds)


def check_document(
    status: ReferralStatus, direction: ReferralDirection, kind: ReferralDocumentKind
) -> None:
    """NotFound when the referral has no such document yet."""
    if kind not in documents(status, direction):
        raise NotFound(f"this referral has no {kind.value} document while {status.value}")


def arrival_rate(arrived: int, accepted: int) -> float | None:
    """到位率: the share of accepted referrals whose patient arrived (None with none
    accepted)."""
    return arrived / accepted if accepted else None


def told_of_answer(direction: ReferralDirection) -> Role:
    """Who at the sending facility is told of the answer: the clinic that referred the
    patient up, the administrators of the hospital that sent them down."""
    return Role.CLINIC if direction is ReferralDirection.UP else Role.ADMIN


@dataclass(frozen=True, kw_only=True)
class StatisticsRow(ReferralMonth):
    """One line of the referral statistics, with its 到位率."""

    arrival_rate: float | None


_COUNTS = ("up", "accepted", "declined", "arrived", "returned", "down")


def _with_rate(m: ReferralMonth) -> StatisticsRow:
    # the fields as they are: asdict would deep-copy each plain value, thousands of times
    # for a year of a network's facilities
    values = {f.name: getattr(m, f.name) for f in fields(m)}
    return StatisticsRow(**values, arrival_rate=arrival_rate(m.arrived, m.accepted))


def statistics(months: Iterable[ReferralMonth]) -> tuple[list[StatisticsRow], StatisticsRow]:
    """The rows of the statistics, each with its 到位率, and their total."""
    rows = [_with_rate(m) for m in months]
    counts = {name: sum(getattr(r, name) for r in rows) for name in _COUNTS}
    total = ReferralMonth(facility_code=None, facility_name=N_("合计"), month=None, **counts)
    return rows, _with_rate(total)


#: The longest period the statistics cover, in days.
MAX_PERIOD_DAYS = 3660


def period_of(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The days the statistics cover, both included: by default the twelve months (from the
    first of the month) up to ``today``."""
    last = last or today
    if first is None:
        months = last.year * 12 + last.month - 1 - 11
        first = date(months // 12, months % 12 + 1, 1)
    if first > last:
        raise BadRequest(f"from={first.isoformat()} is after to={last.isoformat()}")
    if (last - first).days > MAX_PERIOD_DAYS:
        raise BadRequest(f"a period of at most {MAX_PERIOD_DAYS} days, please")
    return first, last


def local_bounds(first: date, last: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants a period of local days starts and ends (the midnight after ``last``)."""
    since = datetime.combine(first, time(), tzinfo=zone)
    until = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    return since, until
