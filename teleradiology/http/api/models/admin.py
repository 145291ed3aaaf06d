"""Routing as data, as the administrators' API takes and answers it: the network file's tables
(``policy``, ``route``, ``report_destination``, ``duty``) as JSON."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from storage.jobs import FailedDelivery, FailedKind
from storage.network import FacilityRouting, UserDuty
from storage.records import DutyShift, NetworkPolicy, Priority, Role, RouteSpec, Tier
from teleradiology.core.network_file import MAX_MINUTES
from teleradiology.http.models import Instant, Model

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Minutes, more than none.
Minutes = Annotated[float, Field(gt=0, le=MAX_MINUTES)]
Word = Literal["urgent", "routine", "low"]


def _minutes(value: timedelta) -> float:
    return round(value.total_seconds() / 60, 3)


def _clock(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


class Deadlines(Model):
    model_config = ConfigDict(extra="forbid")

    urgent: Minutes | None = None
    routine: Minutes | None = None
    low: Minutes | None = None
    stemi: Minutes | None = None


class PolicyOut(Model):
    timezone: str
    deadline_minutes: Deadlines
    critical_ack_minutes: float
    at_risk_share: float

    @classmethod
    def of(cls, p: NetworkPolicy) -> PolicyOut:
        return cls(
            timezone=p.timezone,
            deadline_minutes=Deadlines(
                urgent=_minutes(p.deadlines[Priority.HIGH]),
                routine=_minutes(p.deadlines[Priority.MEDIUM]),
                low=_minutes(p.deadlines[Priority.LOW]),
                stemi=_minutes(p.stemi_deadline),
            ),
            critical_ack_minutes=_minutes(p.critical_ack),
            at_risk_share=p.at_risk_share,
        )


class RouteOut(Model):
    modality: str | None
    specialty: str | None
    priority: str | None
    first_read: str | None
    escalation: str | None
    deadline_minutes: float | None
    pool: str | None = None

    @classmethod
    def of(cls, r: RouteSpec) -> RouteOut:
        return cls(
            modality=r.modality,
            specialty=r.specialty.value if r.specialty else None,
            priority=r.priority.value if r.priority else None,
            first_read=r.first_read,
            escalation=r.escalation,
            deadline_minutes=_minutes(r.deadline) if r.deadline else None,
            pool=r.pool,
        )


class ShiftOut(Model):
    days: list[str]
    from_: str = Field(serialization_alias="from")
    until: str

    @classmethod
    def of(cls, s: DutyShift) -> ShiftOut:
        return cls(
            days=[_DAY_NAMES[d - 1] for d in sorted(s.weekdays)],
            from_=_clock(s.starts),
            until=_clock(s.ends),
        )


class DestinationOut(Model):
    ae_title: str
    host: str
    port: int


class FacilityRoutingOut(Model):
    code: str
    name: str
    tier: Tier
    policy: PolicyOut | None
    routes: list[RouteOut]
    report_destination: DestinationOut | None

    @classmethod
    def of(cls, f: FacilityRouting) -> FacilityRoutingOut:
        return cls(
            code=f.code,
            name=f.name,
            tier=f.tier,
            policy=PolicyOut.of(f.policy) if f.policy else None,
            routes=[RouteOut.of(r) for r in f.routes],
            report_destination=(
                DestinationOut.from_record(f.report_destination) if f.report_destination else None
            ),
        )


class DutyUserOut(Model):
    username: str
    facility: str
    role: Role
    duty: list[ShiftOut]

    @classmethod
    def of(cls, u: UserDuty) -> DutyUserOut:
        return cls(
            username=u.username,
            facility=u.facility,
            role=u.role,
            duty=[ShiftOut.of(s) for s in u.shifts],
        )


class RoutingOut(Model):
    facilities: list[FacilityRoutingOut]
    users: list[DutyUserOut]


class PolicySaved(Model):
    facility: str
    policy: PolicyOut


class RoutesSaved(Model):
    facility: str
    routes: list[RouteOut]


class DestinationSaved(Model):
    facility: str
    report_destination: DestinationOut


class DutySaved(Model):
    username: str
    duty: list[ShiftOut]


# --- requests: checked for shape here, for meaning by the network file's parsers -----------------


class _Table(Model):
    model_config = ConfigDict(extra="forbid")


class PolicyIn(_Table):
    timezone: str = Field("Asia/Shanghai", description="an IANA time zone")
    deadline_minutes: Deadlines | None = None
    critical_ack_minutes: Minutes | None = None
    at_risk_share: float = Field(0.1, ge=0, lt=1)


class RouteIn(_Table):
    modality: str | None = None
    specialty: Literal["radiology", "ecg"] | None = None
    priority: Word | None = None
    first_read: str | None = Field(
        None, description="the facility code that reads first (or name a pool)"
    )
    escalation: str | None = None
    deadline_minutes: Minutes | None = None
    pool: str | None = Field(
        None, description="the code of the reading pool that reads first, at its facility"
    )


class FacilityPath(Model):
    code: str = Field(description="a facility code")


class RoutesIn(_Table):
    routes: list[RouteIn]


class DestinationIn(_Table):
    """A report destination names one of the facility's configured DICOM nodes; its host
    and port are the node's, never the caller's."""

    ae_title: str = Field(
        min_length=1,
        max_length=16,
        description="the AE title of a DICOM node configured for the facility (with host and port)",
    )


class ShiftIn(_Table):
    days: list[str] = Field(list(_DAY_NAMES), description="mon, tue, wed, thu, fri, sat, sun")
    from_: str = Field(alias="from", examples=["08:00"])
    until: str = Field(examples=["18:00", "24:00"])


class DutyIn(_Table):
    duty: list[ShiftIn]


class UserPath(Model):
    username: str


class FailedDeliveryOut(Model):
    """A delivery given up on: a final report to its clinic, or a DICOM copy to a
    report destination."""

    kind: FailedKind
    id: int = Field(description="the delivery's own id (the report's, or the copy's)")
    report_id: int
    case_id: int
    facility: str = Field(description="the facility the delivery was for")
    attempts: int
    last_error: str | None
    failed_at: Instant | None

    @classmethod
    def of(cls, f: FailedDelivery) -> FailedDeliveryOut:
        return cls(
            kind=f.kind,
            id=f.id,
            report_id=f.report_id,
            case_id=f.case_id,
            facility=f.facility_code,
            attempts=f.attempts,
            last_error=f.last_error,
            failed_at=f.failed_at,
        )


class FailedDeliveriesOut(Model):
    failed: list[FailedDeliveryOut]


class FailedPath(Model):
    kind: FailedKind = Field(description="'report', 'dicom_copy' or 'notice'")
    id: int = Field(gt=0, le=2**62)


class RetriedOut(Model):
    kind: FailedKind
    id: int
    retried: bool


class QuotaIn(_Table):
    bytes_per_day: int | None = Field(
        None, ge=0, description="bytes a day, every way in together; 0: no limit; null: default"
    )
    instances_per_day: int | None = Field(
        None, ge=0, description="instances a day; 0: no limit; null: the service's default"
    )


class QuotaSaved(Model):
    facility: str
    bytes_per_day: int | None
    instances_per_day: int | None
    #: What the facility sent today (UTC), counted against the limits.
    sent_today_bytes: int
    sent_today_instances: int
