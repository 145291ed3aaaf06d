"""The typed shapes of what the JSON API takes and answers (pydantic), and their value types.

Every model is frozen. Request models (bodies, query strings, path parameters) validate what a
client sent; response models are built from a domain record by one constructor (``of``) and
serialised with ``model_dump(mode="json")``, so an answer is what the OpenAPI document says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)


class Model(BaseModel):
    """The base of every request and response model: frozen, unknown keys ignored."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    @classmethod
    def from_record(cls, record: Any) -> Self:
        """The answer for a record whose fields it shares by name (a model whose fields
        differ from its record's has an ``of`` that says how)."""
        return cls.model_validate(record, from_attributes=True)


def iso(value: datetime | None) -> str | None:
    """A UTC time as ISO 8601 with a trailing Z."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_offset(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time"})

#: A moment in an answer: ISO 8601 in UTC with a trailing Z.
Instant = Annotated[datetime, PlainSerializer(_iso_z, return_type=str), _TIME_SCHEMA]
#: A moment in an answer written with a +00:00 offset (the ECG priors' form).
InstantOffset = Annotated[datetime, PlainSerializer(_iso_offset, return_type=str), _TIME_SCHEMA]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


#: A moment a client sends: ISO 8601; without an offset it is UTC.
Moment = Annotated[datetime, AfterValidator(_utc)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is required and must be text, not blank")
    return value


#: Text a client must send (not blank), at most 20000 characters unless said otherwise.
Text = Annotated[str, StringConstraints(max_length=20000), AfterValidator(_not_blank)]
ShortText = Annotated[str, StringConstraints(max_length=2000), AfterValidator(_not_blank)]
#: Text a client may leave out.
OptionalText = Annotated[str, StringConstraints(max_length=20000)]
OptionalShortText = Annotated[str, StringConstraints(max_length=2000)]
#: A record id in a body: a whole number (not a string, not true/false), positive.
RecordRef = Annotated[StrictInt, Field(gt=0)]
Flag = StrictBool

#: Any JSON value (the free-form details of events and analyses).
Json = Any


class RecordPath(Model):
    """A path naming a record by its number."""

    id: int = Field(gt=0, le=2**62)


class PageQuery(Model):
    """A page of a listing."""

    limit: int = Field(100, ge=1, le=1000, description="how many at most")
    offset: int = Field(0, ge=0, le=10**9, description="how many to skip")


class PeriodQuery(Model):
    """A period (ISO 8601 times; by default the 30 days to now)."""

    since: Moment | None = Field(None, description="from (ISO 8601); default: 30 days before")
    until: Moment | None = Field(None, description="until (ISO 8601); default: now")


class Problem(Model):
    """An RFC 9457 problem: ``detail`` is written for the person who must act on it."""

    type: str
    title: str
    status: int
    detail: str


class EventData(Model):
    """The data of one event (its ``event:`` is the kind, its ``id:`` the id)."""

    id: int
    at: Instant
    kind: str
    case_id: int | None
    report_id: int | None
    detail: Json


class EventsQuery(Model):
    after: str | None = Field(None, description="resume after this event id (or Last-Event-ID)")
