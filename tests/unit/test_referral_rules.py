"""The rules of two-way referral, without a database.

The tables are the specification; each cell names the outcome: ``ok`` (or the facility or
status that follows), or the error the step is refused with (``state`` 409, ``missing`` 404).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from storage.records import (
    CaseId,
    EventKind,
    Facility,
    FacilityId,
    NotificationKind,
    PatientRef,
    ReferralDirection,
    ReferralId,
    ReferralState,
    ReferralStatus,
    ReferralSubject,
    Role,
    Tier,
    User,
    UserId,
)
from teleradiology.core import referrals
from teleradiology.core.errors import Forbidden, InvalidState, NotFound

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
    with pytest.raises(InvalidState, match="attach the case"):
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
    with pytest.raises(ValueError, match="not an answer"):
        referrals.answered(ReferralStatus.REQUESTED)
