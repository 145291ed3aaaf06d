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
        raise InvalidState(N_("请指明患者（patient_id）、病例（case_id）或所回复的转诊"))
    if of_patient and of_case and of_patient.patient_ref != of_case.patient_ref:
        raise InvalidState(
            N_("病例 %(case)s 不属于患者 %(patient)s"),
            case=of_case.case_id,
            patient=of_patient.patient_ref,
        )
    return found


def check_attachments(asked: Sequence[int], attachable: Set[int], what: str) -> tuple[int, ...]:
    """The results to attach, once each, when every one is the patient's and the sender
    may see it; NotFound naming those that are not."""
    missing = sorted(set(asked) - attachable)
    if missing:
        shown = ", ".join(str(n) for n in missing)
        raise NotFound(
            N_("检查 %(ids)s：不是您可查看的该患者的结果")
            if what == "study"
            else N_("报告 %(ids)s：不是您可查看的该患者的结果"),
            ids=shown,
        )
    return tuple(dict.fromkeys(asked))


def up_source(
    user: User, about: ReferralSubject, target: Facility, above_clinic: Set[int]
) -> FacilityId:
    """The sender of an up-referral (the case's clinic), when ``target`` may receive it:
    a county or city hospital among ``above_clinic`` (the clinic's facility chain)."""
    if user.role is Role.CLINIC and user.facility_id != about.clinic_id:
        raise NotFound(N_("找不到病例 %(id)s"), id=about.case_id)
    if target.id not in above_clinic or target.tier not in RECEIVING_TIERS:
        raise InvalidState(
            N_("上转转诊须转往诊所之上的县级或市级医院；%(code)s 不是"), code=target.code
        )
    return about.clinic_id


def down_source(user: User, target: Facility, target_chain: Set[int]) -> FacilityId:
    """The sender of a down-referral (the user's hospital), when ``target`` is below it
    (the sender is in ``target_chain``, the target's facility chain)."""
    if user.role is Role.CLINIC:
        raise InvalidState(N_("下转转诊由患者离开的医院发出"))
    if user.facility_id not in target_chain or target.id == user.facility_id:
        raise InvalidState(N_("下转转诊须转往您之下的机构；%(code)s 不是"), code=target.code)
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
        raise Forbidden(N_("只有接收机构能答复转诊"))
    if referral.status is not ReferralStatus.REQUESTED:
        raise InvalidState(N_("转诊 %(id)s 已是%(status)s"), id=referral.id, status=referral.status)
    if accept and referral.direction is ReferralDirection.UP and appointment_at is None:
        raise InvalidState(N_("请写明接诊时间（appointment_at）"))
    if not accept and not reason:
        raise InvalidState(N_("请写明拒绝转诊的原因（reason）"))
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
        raise Forbidden(N_("只有接收机构能记录转诊的进展"))


def check_arrival(
    user: User, referral: ReferralState, at: datetime, now: datetime
) -> ReferralStatus:
    """Whether the user may record that the patient arrived (到诊) at ``at``: the receiving
    facility, once the referral is accepted; not in the future, not before it was raised."""
    _receiver(user, referral)
    if referral.status is not ReferralStatus.ACCEPTED:
        raise InvalidState(
            N_("转诊 %(id)s 是%(status)s：转诊被接受后患者才能到诊，且只到诊一次"),
            id=referral.id,
            status=referral.status,
        )
    if at > now:
        raise InvalidState(N_("到诊时间在未来"))
    if referral.created_at is not None and at < referral.created_at:
        raise InvalidState(N_("到诊时间早于转诊提出的时间"))
    return ReferralStatus.ARRIVED


def check_return(user: User, referral: ReferralState, form: ReturnForm) -> ReferralStatus:
    """Whether the user may send the patient back down (转回) with ``form``: the receiving
    facility of an up-referral, once the patient arrived; a diagnosis and follow-up
    guidance are needed."""
    _receiver(user, referral)
    if referral.direction is not ReferralDirection.UP:
        raise InvalidState(N_("下转的患者不再转回：请改为上转"))
    if referral.status is not ReferralStatus.ARRIVED:
        raise InvalidState(
            N_("转诊 %(id)s 是%(status)s：患者到诊后才能转回，且只转回一次"),
            id=referral.id,
            status=referral.status,
        )
    if not form.diagnosis.strip():
        raise InvalidState(N_("请写明诊断与治疗（diagnosis）"))
    if not form.follow_up.strip():
        raise InvalidState(N_("请写明给诊所的随访指导（follow_up）"))
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
        raise NotFound(N_("此转诊状态为%(status)s，没有%(kind)s"), kind=kind, status=status)


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


#: The fields of a month's line, named once (``fields`` per line costs more than the line).
_MONTH_FIELDS = tuple(f.name for f in fields(ReferralMonth))


def _with_rate(m: ReferralMonth) -> StatisticsRow:
    # the fields as they are: asdict would deep-copy each plain value, thousands of times
    # for a year of a network's facilities
    values = {name: getattr(m, name) for name in _MONTH_FIELDS}
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
        raise BadRequest(
            N_("from=%(first)s 晚于 to=%(last)s"), first=first.isoformat(), last=last.isoformat()
        )
    if (last - first).days > MAX_PERIOD_DAYS:
        raise BadRequest(N_("统计期间请不超过 %(n)s 天"), n=MAX_PERIOD_DAYS)
    return first, last


def local_bounds(first: date, last: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants a period of local days starts and ends (the midnight after ``last``)."""
    since = datetime.combine(first, time(), tzinfo=zone)
    until = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    return since, until
