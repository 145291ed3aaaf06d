"""Reading pools, the duty roster and the routing preview, as the administrators' API takes
and answers them."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from storage.records import DutyShift
from storage.rosters import DutyException, ReadingPool, RosterUser
from teleradiology.http.api.models.admin import Minutes, ShiftOut, _clock, _minutes, _Table
from teleradiology.http.models import Instant, Model
from teleradiology.services.rosters import PlannedCase, PoolWeek, RoutePreview

Code = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$", description="a stable code")
SpecialtyWord = Literal["radiology", "ecg"]


class PoolOut(Model):
    code: str
    name: str
    specialty: str
    facility: str
    facility_name: str
    active: bool
    members: list[str]

    @classmethod
    def of(cls, p: ReadingPool) -> PoolOut:
        return cls(
            code=p.code,
            name=p.name,
            specialty=p.specialty.value,
            facility=p.facility_code,
            facility_name=p.facility_name,
            active=p.active,
            members=list(p.members),
        )


class PoolsOut(Model):
    pools: list[PoolOut]


class PoolIn(_Table):
    code: str = Code
    name: str = Field(min_length=1, max_length=200)
    specialty: SpecialtyWord
    facility: str = Field(min_length=1, description="the county or city hospital that reads")
    members: list[str] = Field([], description="usernames of the facility's readers")


class PoolPatch(_Table):
    name: str | None = Field(None, min_length=1, max_length=200)
    specialty: SpecialtyWord | None = None
    facility: str | None = Field(None, min_length=1)
    members: list[str] | None = None
    active: bool | None = Field(None, description="false deactivates the pool")


class PoolPath(Model):
    code: str = Field(description="a reading pool's code")


class ShiftsSaved(Model):
    username: str
    duty: list[ShiftOut]

    @classmethod
    def of(cls, username: str, shifts: list[DutyShift]) -> ShiftsSaved:
        return cls(username=username, duty=[ShiftOut.of(s) for s in shifts])


class ExceptionIn(_Table):
    date: date
    kind: Literal["leave", "extra"] = Field(description="leave, or an extra shift")
    from_: str | None = Field(
        None, alias="from", description="leave: absent for the whole day; extra: required"
    )
    until: str | None = None


class ExceptionOut(Model):
    id: int
    username: str
    date: date
    kind: str
    from_: str | None = Field(serialization_alias="from")
    until: str | None

    @classmethod
    def of(cls, e: DutyException) -> ExceptionOut:
        return cls(
            id=e.id,
            username=e.username,
            date=e.day,
            kind=e.kind.value,
            from_=_clock(e.starts) if e.starts else None,
            until=_clock(e.ends) if e.ends else None,
        )


class ExceptionPath(Model):
    id: int = Field(gt=0, le=2**62)


class RosterQuery(Model):
    week: date | None = Field(None, description="a day of the week shown (default: this week)")


class RosterMemberOut(Model):
    username: str
    display_name: str
    duty: list[ShiftOut]

    @classmethod
    def of(cls, u: RosterUser) -> RosterMemberOut:
        return cls(
            username=u.username,
            display_name=u.display_name,
            duty=[ShiftOut.of(s) for s in u.shifts],
        )


class RosterOut(Model):
    pool: PoolOut
    week_of: date
    members: list[RosterMemberOut]
    exceptions: list[ExceptionOut]

    @classmethod
    def of(cls, w: PoolWeek) -> RosterOut:
        return cls(
            pool=PoolOut.of(w.pool),
            week_of=w.monday,
            members=[RosterMemberOut.of(m) for m in w.members],
            exceptions=[ExceptionOut.of(e) for e in w.exceptions],
        )


class PreviewQuery(Model):
    facility: str = Field(min_length=1, description="the sending facility's code")
    modality: str = Field(min_length=1, max_length=16, examples=["DX", "CT", "ECG"])
    priority: Literal["urgent", "routine", "low", "high", "medium"] = "routine"
    at: str | None = Field(None, description="ISO 8601 time sent (default: now)")


class PlannedCaseOut(Model):
    specialty: str
    priority: str
    stemi: bool
    pool: str | None = Field(description="the named reading pool, if a rule names one")
    pool_name: str | None
    facility: str = Field(description="the facility that reads first")
    facility_name: str
    escalation: str | None
    escalation_name: str | None
    due_in_minutes: float
    due_at: Instant
    escalated_at: Instant | None = Field(description="when it is escalated if still unclaimed")
    reason: str

    @classmethod
    def of(cls, c: PlannedCase) -> PlannedCaseOut:
        return cls(
            specialty=c.specialty.value,
            priority=c.priority.value,
            stemi=c.stemi,
            pool=c.pool.code if c.pool else None,
            pool_name=c.pool.name if c.pool else None,
            facility=c.reads_at.code,
            facility_name=c.reads_at.name,
            escalation=c.escalation.code if c.escalation else None,
            escalation_name=c.escalation.name if c.escalation else None,
            due_in_minutes=_minutes(c.due_in),
            due_at=c.due_at,
            escalated_at=c.escalated_at,
            reason=c.reason,
        )


class PreviewOut(Model):
    facility: str
    facility_name: str
    modality: str
    priority: str
    at: Instant
    cases: list[PlannedCaseOut]

    @classmethod
    def of(cls, p: RoutePreview) -> PreviewOut:
        return cls(
            facility=p.sender.code,
            facility_name=p.sender.name,
            modality=p.modality,
            priority=p.priority.value,
            at=p.at,
            cases=[PlannedCaseOut.of(c) for c in p.cases],
        )


class PolicyForm(_Table):
    """The routing page's deadlines form: a network's policy as flat fields."""

    urgent: Minutes
    routine: Minutes
    low: Minutes
    stemi: Minutes
    critical_ack: Minutes
    at_risk_share: float = Field(ge=0, lt=1)
    timezone: str = "Asia/Shanghai"
