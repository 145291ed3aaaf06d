"""The administrator's dashboard as the API asks for it and answers it: the period, the
trend's step and the filters in the query string; the figures in minutes and rates."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from storage.dashboard import (
    BreakdownRow,
    Bucket,
    EscalationRow,
    Figures,
    IntakeRow,
    ReferralRow,
    SecondReadRow,
    TrendRow,
)
from storage.records import Priority, ReferralDirection, ReferralStatus, Specialty, Tier
from teleradiology.core.language import Language, word
from teleradiology.core.words import DashboardTable
from teleradiology.http.models import Model
from teleradiology.services.dashboard import Dashboard, DashboardAsk

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
Modality = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Z0-9]+$")]


class DashboardQuery(Model):
    """The period (local days, both included), the step of the trend, and the filters; an
    empty value (the form's "all") is no filter."""

    since: date | None = Field(
        None, description="first local day (YYYY-MM-DD); default: 29 days before 'until'"
    )
    until: date | None = Field(None, description="last local day, included; default: today")
    by: Bucket | None = Field(
        None, description="the trend's step; default from the period's length"
    )
    tier: Tier | None = Field(None, description="the sending facility's tier")
    facility: Code | None = Field(
        None, description="a sending facility's code (with those below it)"
    )
    specialty: Specialty | None = None
    modality: Modality | None = Field(None, description="a DICOM modality (CT, DX, ECG, ...)")
    priority: Priority | None = None
    reader: Code | None = Field(None, description="the username of the reader who signed")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_all(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != ""}
        return data

    def ask(self) -> DashboardAsk:
        return DashboardAsk(**self.model_dump(exclude_none=False))


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class DashboardFiguresOut(Model):
    """Cases finally reported; minutes from received to final and from final to the
    clinic's acknowledgement (p50, p90); the share that kept its deadline."""

    cases: int
    final_p50_minutes: float | None
    final_p90_minutes: float | None
    acknowledged: int
    ack_p50_minutes: float | None
    ack_p90_minutes: float | None
    sla_met: int
    sla_rate: float | None = Field(description="share of the cases reported by their deadline")

    @staticmethod
    def fields(f: Figures) -> dict[str, Any]:
        return {
            "cases": f.cases,
            "final_p50_minutes": _minutes(f.final_p50_s),
            "final_p90_minutes": _minutes(f.final_p90_s),
            "acknowledged": f.acknowledged,
            "ack_p50_minutes": _minutes(f.ack_p50_s),
            "ack_p90_minutes": _minutes(f.ack_p90_s),
            "sla_met": f.sla_met,
            "sla_rate": _rate(f.sla_met, f.cases),
        }


class GroupOut(DashboardFiguresOut):
    """The figures of one value of a dimension: ``key`` the value (tier, facility code,
    specialty, modality, priority or reader's username), ``label`` its name, ``facility``
    the reader's facility."""

    key: str
    label: str
    facility: str

    @classmethod
    def of(cls, row: BreakdownRow, language: Language) -> GroupOut:
        """``label`` a tier's, specialty's or priority's word in `language`, else the name."""
        label = _label(row.dimension, row.key, row.label, language)
        return cls(key=row.key, label=label, facility=row.extra, **cls.fields(row.figures))


def _word_of(kind: type[Enum], value: str, language: Language) -> str:
    """A stored value's word; one that names no member (an older release's) as it is."""
    try:
        return word(kind(value), language)
    except ValueError:
        return value


_WORDED: dict[str, type[Enum]] = {"tier": Tier, "specialty": Specialty, "priority": Priority}


def _label(dimension: str, key: str, name: str, language: Language) -> str:
    """How people name a group: a tier, specialty or priority by its word, else by name."""
    kind = _WORDED.get(dimension)
    return _word_of(kind, key, language) if kind is not None else name


class TrendOut(DashboardFiguresOut):
    """The figures of the day, week or month starting on ``bucket``, for one specialty or
    (``specialty`` null) all."""

    bucket: date
    specialty: Specialty | None

    @classmethod
    def of(cls, row: TrendRow, zone: ZoneInfo) -> TrendOut:
        return cls(
            bucket=_day(row.bucket, zone),
            specialty=Specialty(row.specialty) if row.specialty else None,
            **cls.fields(row.figures),
        )


class VolumeOut(Model):
    """Cases received in the day, week or month starting on ``bucket``, of one specialty,
    and how many of them have a final report."""

    bucket: date
    specialty: Specialty
    cases: int
    reported: int


class ReturnsOut(Model):
    """Cases a sending facility sent in the period, and the share readers returned to it
    for poor quality."""

    facility: str
    name: str
    cases: int
    returned: int
    returned_rate: float | None


class DashboardReferralOut(Model):
    """Referrals of one direction made in the day, week or month starting on ``bucket``
    (``status`` null), or in the whole period with one status (``bucket`` null)."""

    bucket: date | None
    direction: ReferralDirection
    status: ReferralStatus | None
    referrals: int

    @classmethod
    def of(cls, row: ReferralRow, zone: ZoneInfo) -> DashboardReferralOut:
        return cls(
            bucket=_day(row.bucket, zone) if row.bucket else None,
            direction=ReferralDirection(row.direction),
            status=ReferralStatus(row.status) if row.status else None,
            referrals=row.referrals,
        )


class EscalationOut(Model):
    """Cases escalated in the period (sent up from the pool that first had them): in all
    (``dimension`` ``all``), from one pool (``key`` its facility code), of one specialty or
    one priority; how many the upper pool answered with a final report, minutes from the
    escalation to that report (p50, p90), and the share of those reports signed by the
    case's deadline."""

    dimension: str = Field(description="all, pool, specialty or priority")
    key: str
    label: str
    escalated: int
    answered: int
    answer_p50_minutes: float | None
    answer_p90_minutes: float | None
    sla_met: int
    sla_rate: float | None

    @classmethod
    def of(cls, row: EscalationRow, language: Language) -> EscalationOut:
        return cls(
            dimension=row.dimension,
            key=row.key,
            label=_label(row.dimension, row.key, row.name, language),
            escalated=row.escalated,
            answered=row.answered,
            answer_p50_minutes=_minutes(row.answer_p50_s),
            answer_p90_minutes=_minutes(row.answer_p90_s),
            sla_met=row.sla_met,
            sla_rate=_rate(row.sla_met, row.answered),
        )


class SecondReadOut(Model):
    """Final reports of the period compared with an earlier read (an escalated case's
    preliminary report, a second read's first read), and the share that disagreed: in all
    (``dimension`` ``all``), of one first reader (``key`` the username, ``facility`` their
    facility), one specialty or one sending facility (``key`` its code)."""

    dimension: str = Field(description="all, reader, specialty or facility")
    key: str
    label: str
    facility: str
    reads: int
    discrepancies: int
    discrepancy_rate: float | None

    @classmethod
    def of(cls, row: SecondReadRow, language: Language) -> SecondReadOut:
        return cls(
            dimension=row.dimension,
            key=row.key,
            label=_label(row.dimension, row.key, row.name, language),
            facility=row.facility,
            reads=row.reads,
            discrepancies=row.discrepancies,
            discrepancy_rate=_rate(row.discrepancies, row.reads),
        )


class FacilityChoice(Model):
    code: str
    name: str
    tier: Tier


class ReaderChoice(Model):
    username: str
    name: str
    facility: str


class DashboardChoicesOut(Model):
    """What the filters offer: the network's facilities, and the modalities and readers
    of the cases the view counts."""

    facilities: list[FacilityChoice]
    modalities: list[str]
    readers: list[ReaderChoice]


class DashboardOut(Model):
    """The dashboard of the administrator's network over the period and filters."""

    since: date
    until: date
    by: Bucket
    timezone: str
    filters: dict[str, str]
    summary: DashboardFiguresOut
    tier: list[GroupOut]
    facility: list[GroupOut]
    specialty: list[GroupOut]
    modality: list[GroupOut]
    priority: list[GroupOut]
    reader: list[GroupOut]
    trend: list[TrendOut]
    volumes: list[VolumeOut]
    returns: list[ReturnsOut]
    referrals: list[DashboardReferralOut]
    escalations: list[EscalationOut]
    second_reads: list[SecondReadOut]
    choices: DashboardChoicesOut

    @classmethod
    def of(cls, d: Dashboard, asked: DashboardQuery, language: Language) -> DashboardOut:
        """The dashboard, its groups' labels in `language` (the asking user's)."""
        groups: dict[str, list[GroupOut]] = {t: [] for t in _GROUPS}
        summary = DashboardFiguresOut(**DashboardFiguresOut.fields(_NO_FIGURES))
        for row in d.breakdown:
            if row.dimension == "all":
                summary = DashboardFiguresOut(**DashboardFiguresOut.fields(row.figures))
            else:
                groups[row.dimension].append(GroupOut.of(row, language))
        return cls(
            since=d.first_day,
            until=d.last_day,
            by=d.by,
            timezone=d.zone.key,
            filters={
                k: str(v)
                for k, v in asked.model_dump(mode="json", exclude_none=True).items()
                if k not in ("since", "until", "by")
            },
            summary=summary,
            **groups,
            trend=[TrendOut.of(r, d.zone) for r in d.trend],
            volumes=[_volume(r, d.zone) for r in d.intake if r.facility_code is None],
            returns=[_returns(r) for r in d.intake if r.facility_code is not None],
            referrals=[DashboardReferralOut.of(r, d.zone) for r in d.referrals],
            escalations=[EscalationOut.of(r, language) for r in d.escalations],
            second_reads=[SecondReadOut.of(r, language) for r in d.second_reads],
            choices=DashboardChoicesOut(
                facilities=[
                    FacilityChoice(code=f.code, name=f.name, tier=Tier(f.tier))
                    for f in d.facilities
                ],
                modalities=sorted(
                    r.key for r in d.breakdown if r.dimension == "modality" and r.key
                ),
                readers=[
                    ReaderChoice(username=r.key, name=r.label, facility=r.extra)
                    for r in d.breakdown
                    if r.dimension == "reader" and r.key
                ],
            ),
        )

    def table(self, name: DashboardTable) -> list[dict[str, Any]]:
        """One table of the dashboard as rows of plain values (for CSV)."""
        rows: list[Model] = getattr(self, name.value)
        return [r.model_dump(mode="json") for r in rows]


_GROUPS = ("tier", "facility", "specialty", "modality", "priority", "reader")
_NO_FIGURES = Figures(
    cases=0,
    final_p50_s=None,
    final_p90_s=None,
    acknowledged=0,
    ack_p50_s=None,
    ack_p90_s=None,
    sla_met=0,
)


def _day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def _volume(r: IntakeRow, zone: ZoneInfo) -> VolumeOut:
    assert r.bucket is not None
    assert r.specialty is not None
    return VolumeOut(
        bucket=_day(r.bucket, zone),
        specialty=Specialty(r.specialty),
        cases=r.cases,
        reported=r.reported,
    )


def _returns(r: IntakeRow) -> ReturnsOut:
    return ReturnsOut(
        facility=r.facility_code or "",
        name=r.facility_name or "",
        cases=r.cases,
        returned=r.returned,
        returned_rate=_rate(r.returned, r.cases),
    )
