"""The rules of two-way referral, without a database.

The tables are the specification; each cell names the outcome: ``ok`` (or the facility or
status that follows), or the error the step is refused with (``state`` 409, ``missing`` 404).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage.records import (
    CaseId,
    EventKind,
    Facility,
    FacilityId,
    NotificationKind,
    PatientRef,
    ReferralDirection,
    ReferralDocumentKind,
    ReferralId,
    ReferralMonth,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
    ReturnKind,
    Role,
    Tier,
    User,
    UserId,
)
from teleradiology.core import referrals
from teleradiology.core.errors import BadRequest, Forbidden, InvalidState, NotFound

#: The network: a city above a county above a township above a village clinic.
CITY, COUNTY, TOWNSHIP, VILLAGE, ELSEWHERE = (FacilityId(n) for n in (1, 2, 3, 4, 9))
TIERS = {
    CITY: Tier.CITY,
    COUNTY: Tier.COUNTY,
    TOWNSHIP: Tier.TOWNSHIP,
    VILLAGE: Tier.VILLAGE,
    ELSEWHERE: Tier.COUNTY,
}
#: Each facility's chain: itself and everything above it.
CHAINS = {
    CITY: {CITY},
    COUNTY: {COUNTY, CITY},
    TOWNSHIP: {TOWNSHIP, COUNTY, CITY},
    VILLAGE: {VILLAGE, TOWNSHIP, COUNTY, CITY},
    ELSEWHERE: {ELSEWHERE},
}
WHEN = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
ERRORS = {"state": InvalidState, "missing": NotFound, "refused": Forbidden}


def user(role: Role, facility: FacilityId) -> User:
    return User(id=UserId(5), username="u", display_name="u", role=role, facility_id=facility)


def facility(fid: FacilityId) -> Facility:
    return Facility(id=fid, code=f"F{fid}", name=f"F{fid}", tier=TIERS[fid], parent_id=None)


def _outcome(step: Callable[[], object]) -> str:
    try:
        got = step()
    except (InvalidState, NotFound, Forbidden) as exc:
        return next(k for k, v in ERRORS.items() if type(exc) is v)
    return str(got)


# --- raising a referral ----------------------------------------------------------------------

ABOUT = ReferralSubject(patient_ref=PatientRef(70), clinic_id=VILLAGE, case_id=CaseId(7))

#: who sends, to where → the sender of the up-referral, or the refusal
UP: dict[tuple[Role, FacilityId, FacilityId], str] = {
    (Role.CLINIC, VILLAGE, COUNTY): str(VILLAGE),
    (Role.CLINIC, VILLAGE, CITY): str(VILLAGE),
    (Role.CLINIC, VILLAGE, TOWNSHIP): "state",  # above, but not a county or city hospital
    (Role.CLINIC, VILLAGE, ELSEWHERE): "state",  # a county hospital, but not above the clinic
    (Role.CLINIC, TOWNSHIP, COUNTY): "missing",  # another clinic's case does not exist
    (Role.READER, COUNTY, CITY): str(VILLAGE),  # a reader refers the case's patient up
    (Role.ADMIN, COUNTY, COUNTY): str(VILLAGE),
    (Role.READER, COUNTY, ELSEWHERE): "state",
}


@pytest.mark.parametrize(("role", "at", "to"), sorted(UP, key=str))
def test_an_up_referral_goes_from_the_clinic_to_a_hospital_above_it(
    role: Role, at: FacilityId, to: FacilityId
) -> None:
    got = _outcome(
        lambda: referrals.up_source(user(role, at), ABOUT, facility(to), CHAINS[VILLAGE])
    )
    assert got == UP[(role, at, to)]


#: who sends, to where → the sender of the down-referral, or the refusal
DOWN: dict[tuple[Role, FacilityId, FacilityId], str] = {
    (Role.READER, COUNTY, TOWNSHIP): str(COUNTY),
    (Role.READER, COUNTY, VILLAGE): str(COUNTY),
    (Role.ADMIN, CITY, VILLAGE): str(CITY),
    (Role.READER, COUNTY, COUNTY): "state",  # not below itself
    (Role.READER, COUNTY, CITY): "state",  # above, not below
    (Role.READER, ELSEWHERE, VILLAGE): "state",  # another county's village
    (Role.CLINIC, TOWNSHIP, VILLAGE): "state",  # sent by the hospital the patient leaves
}


@pytest.mark.parametrize(("role", "at", "to"), sorted(DOWN, key=str))
def test_a_down_referral_goes_from_the_users_hospital_to_a_facility_below_it(
    role: Role, at: FacilityId, to: FacilityId
) -> None:
    got = _outcome(lambda: referrals.down_source(user(role, at), facility(to), CHAINS[to]))
    assert got == DOWN[(role, at, to)]


def test_a_referral_is_about_its_case_or_the_referral_it_answers() -> None:
    earlier = ReferralSubject(patient_ref=PatientRef(70), clinic_id=TOWNSHIP, case_id=None)
    assert referrals.subject(earlier, ABOUT) is ABOUT
    assert referrals.subject(None, ABOUT) is ABOUT
    assert referrals.subject(earlier, None) is earlier
    with pytest.raises(InvalidState, match="name the patient"):
        referrals.subject(None, None)


@pytest.mark.parametrize(
    ("direction", "told_of_request", "told_of_answer"),
    [
        (ReferralDirection.UP, Role.ADMIN, Role.CLINIC),
        (ReferralDirection.DOWN, Role.CLINIC, Role.ADMIN),
    ],
)
def test_who_is_told_of_each_step(
    direction: ReferralDirection, told_of_request: Role, told_of_answer: Role
) -> None:
    assert referrals.told_of_request(direction) is told_of_request
    assert referrals.told_of_answer(direction) is told_of_answer


# --- answering a referral --------------------------------------------------------------------


def referral(direction: ReferralDirection, status: ReferralStatus) -> ReferralState:
    return ReferralState(
        id=ReferralId(11),
        direction=direction,
        status=status,
        case_id=CaseId(7),
        from_facility_id=VILLAGE if direction is ReferralDirection.UP else COUNTY,
        to_facility_id=COUNTY if direction is ReferralDirection.UP else VILLAGE,
    )


UP_, DOWN_ = ReferralDirection.UP, ReferralDirection.DOWN
REQUESTED, ACCEPTED = ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED
_ = "state"
NO = "refused"
#: direction, status, the answering facility →
#:   accept with a time, accept without one, decline with a reason, decline without one
ANSWERS: dict[tuple[ReferralDirection, ReferralStatus, FacilityId], tuple[str, ...]] = {
    (UP_, REQUESTED, COUNTY): ("accepted", _, "declined", _),
    (UP_, REQUESTED, VILLAGE): (NO,) * 4,  # the sender does not answer its own
    (UP_, REQUESTED, CITY): (NO,) * 4,  # nor a hospital it was not sent to
    (UP_, ACCEPTED, COUNTY): (_, _, _, _),  # answered once
    (UP_, ReferralStatus.DECLINED, COUNTY): (_, _, _, _),
    (DOWN_, REQUESTED, VILLAGE): ("accepted", "accepted", "declined", _),  # no time needed
    (DOWN_, REQUESTED, COUNTY): (NO,) * 4,
    (DOWN_, ACCEPTED, VILLAGE): (_, _, _, _),
}


@pytest.mark.parametrize(("direction", "status", "at"), sorted(ANSWERS, key=str))
def test_only_the_receiving_facility_answers_a_requested_referral_once(
    direction: ReferralDirection, status: ReferralStatus, at: FacilityId
) -> None:
    answering = user(Role.ADMIN if at == COUNTY else Role.CLINIC, at)
    found = referral(direction, status)

    def answer(accept: bool, when: datetime | None, reason: str | None) -> str:
        return _outcome(
            lambda: (
                referrals.check_response(
                    answering, found, accept=accept, appointment_at=when, reason=reason
                ).value
            )
        )

    got = (
        answer(True, WHEN, None),
        answer(True, None, None),
        answer(False, None, "床位已满"),
        answer(False, None, None),
    )
    assert got == ANSWERS[(direction, status, at)]


def test_the_refusals_say_what_to_do() -> None:
    county = user(Role.ADMIN, COUNTY)
    up = referral(UP_, REQUESTED)
    with pytest.raises(Forbidden, match="only the receiving facility"):
        referrals.check_response(
            user(Role.CLINIC, VILLAGE), up, accept=True, appointment_at=WHEN, reason=None
        )
    with pytest.raises(InvalidState, match="referral 11 is already accepted"):
        referrals.check_response(
            county, referral(UP_, ACCEPTED), accept=False, appointment_at=None, reason="x"
        )
    with pytest.raises(InvalidState, match="'appointment_at'"):
        referrals.check_response(county, up, accept=True, appointment_at=None, reason=None)
    with pytest.raises(InvalidState, match="'reason'"):
        referrals.check_response(county, up, accept=False, appointment_at=None, reason="")


def test_an_answer_is_an_event_and_the_sender_is_told() -> None:
    assert referrals.answered(ReferralStatus.ACCEPTED) == (
        EventKind.REFERRAL_ACCEPTED,
        NotificationKind.REFERRAL_ACCEPTED,
    )
    assert referrals.answered(ReferralStatus.DECLINED) == (
        EventKind.REFERRAL_DECLINED,
        NotificationKind.REFERRAL_DECLINED,
    )
    with pytest.raises(ValueError, match="not a step of the receiving facility"):
        referrals.answered(ReferralStatus.REQUESTED)


# --- arrival, the return down, documents, statistics -----------------------------------------

ARRIVED, RETURNED = ReferralStatus.ARRIVED, ReferralStatus.RETURNED
DECLINED = ReferralStatus.DECLINED
FORM = referrals.ReturnForm(
    kind=ReturnKind.DISCHARGE,
    diagnosis="社区获得性肺炎，抗感染治疗7天",
    orders=None,
    follow_up="一周后复查",
)
#: status → record the arrival, return down (at the county, the receiver of an up-referral)
STEPS: dict[ReferralStatus, tuple[str, str]] = {
    REQUESTED: (_, _),  # cannot arrive before accepted
    ACCEPTED: ("arrived", _),  # cannot return before arrived
    DECLINED: (_, _),
    ARRIVED: (_, "returned"),  # arrives once
    RETURNED: (_, _),  # returned once
}


@pytest.mark.parametrize("status", list(STEPS))
def test_a_patient_arrives_once_accepted_and_is_returned_once_arrived(
    status: ReferralStatus,
) -> None:
    county = user(Role.READER, COUNTY)
    found = referral(UP_, status)
    got = (
        _outcome(lambda: referrals.check_arrival(county, found, WHEN, WHEN).value),
        _outcome(lambda: referrals.check_return(county, found, FORM).value),
    )
    assert got == STEPS[status]


def test_only_the_receiver_records_the_steps_and_the_form_is_complete() -> None:
    accepted = dataclasses.replace(referral(UP_, ACCEPTED), created_at=WHEN)
    for other in (user(Role.CLINIC, VILLAGE), user(Role.ADMIN, CITY)):
        with pytest.raises(Forbidden, match="only the receiving facility"):
            referrals.check_arrival(other, accepted, WHEN, WHEN)
        with pytest.raises(Forbidden):
            referrals.check_return(other, referral(UP_, ARRIVED), FORM)
    county = user(Role.ADMIN, COUNTY)
    with pytest.raises(InvalidState, match="in the future"):
        referrals.check_arrival(county, accepted, WHEN + timedelta(minutes=1), WHEN)
    with pytest.raises(InvalidState, match="before the referral was raised"):
        referrals.check_arrival(county, accepted, WHEN - timedelta(minutes=1), WHEN)
    arrived = referral(UP_, ARRIVED)
    with pytest.raises(InvalidState, match="'diagnosis'"):
        referrals.check_return(county, arrived, dataclasses.replace(FORM, diagnosis=" "))
    with pytest.raises(InvalidState, match="'follow_up'"):
        referrals.check_return(county, arrived, dataclasses.replace(FORM, follow_up=""))
    down = referral(DOWN_, ARRIVED)
    with pytest.raises(InvalidState, match="refer them up"):
        referrals.check_return(user(Role.CLINIC, VILLAGE), down, FORM)
    assert referrals.answered(ARRIVED)[1] is NotificationKind.REFERRAL_ARRIVED
    assert referrals.answered(RETURNED)[0] is EventKind.REFERRAL_RETURNED


def test_the_documents_follow_the_steps() -> None:
    kinds = ReferralDocumentKind
    assert referrals.documents(REQUESTED, UP_) == (kinds.FORM,)
    assert referrals.documents(DECLINED, UP_) == (kinds.FORM, kinds.ANSWER)
    assert referrals.documents(ARRIVED, UP_) == (kinds.FORM, kinds.ANSWER)
    assert referrals.documents(RETURNED, UP_) == (kinds.FORM, kinds.ANSWER, kinds.RETURN)
    with pytest.raises(NotFound, match="no return form while arrived"):
        referrals.check_document(ARRIVED, UP_, kinds.RETURN)
    referrals.check_document(RETURNED, UP_, kinds.RETURN)


def test_attachments_are_the_patients_and_kept_once() -> None:
    assert referrals.check_attachments([3, 1, 3], {1, 3, 5}, "study") == (3, 1)
    with pytest.raises(NotFound, match="study 2, 4: not a result of this patient"):
        referrals.check_attachments([1, 4, 2], {1}, "study")
    patient = ReferralSubject(patient_ref=PatientRef(71), clinic_id=VILLAGE, case_id=None)
    assert referrals.subject(None, None, patient) is patient
    with pytest.raises(InvalidState, match="case 7 is not of patient 71"):
        referrals.subject(None, ABOUT, patient)


def _month(code: str, month: str, up: int, accepted: int, arrived: int) -> ReferralMonth:
    return ReferralMonth(
        facility_code=code,
        facility_name=code,
        month=month,
        up=up,
        accepted=accepted,
        declined=0,
        arrived=arrived,
        returned=arrived // 2,
        down=0,
    )


def test_the_arrival_rate_is_arrived_over_accepted_and_totals_add_up() -> None:
    rows, total = referrals.statistics(
        [_month("A", "2026-10", 4, 4, 3), _month("B", "2026-11", 2, 0, 0)]
    )
    assert [r.arrival_rate for r in rows] == [0.75, None]
    assert (total.up, total.accepted, total.arrived, total.returned) == (6, 4, 3, 1)
    assert total.arrival_rate == 0.75
    assert referrals.arrival_rate(0, 0) is None


def test_the_period_defaults_to_twelve_months_of_local_days() -> None:
    today = date(2026, 3, 15)
    assert referrals.period_of(None, None, today) == (date(2025, 4, 1), today)
    assert referrals.period_of(date(2026, 1, 1), date(2026, 1, 31), today)[1] == date(2026, 1, 31)
    with pytest.raises(BadRequest, match="is after"):
        referrals.period_of(date(2026, 2, 1), date(2026, 1, 1), today)
    zone = ZoneInfo("Asia/Shanghai")
    since, until = referrals.local_bounds(date(2026, 1, 1), date(2026, 1, 31), zone)
    assert since == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert until == datetime(2026, 1, 31, 16, tzinfo=UTC)
