"""Notification channels and their messages as the API takes and answers them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from storage.channels import SentRecord
from storage.records import Channel, ChannelKind, NoticeKind, OutboundStatus
from teleradiology.core.notices import shown_target
from teleradiology.http.models import Flag, Instant, Json, Model

Target = Annotated[str, StringConstraints(min_length=3, max_length=2000)]
Label = Annotated[str, StringConstraints(max_length=200)]


class ChannelIn(Model):
    """A channel to add: a facility's, or (``username``) one user's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    facility: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    kind: ChannelKind
    target: Target = Field(description="an e-mail address, or the robot's or webhook's URL")
    label: Label = ""
    secret: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        None, description="DingTalk's signing secret (SEC…); never shown back"
    )
    markdown: Flag = False
    allow_patient_name: Flag = Field(
        False, description="the patient's name and ID may leave the network on this channel"
    )
    reports: Flag = Field(True, description="final normal and abnormal reports too")
    active: Flag = True

    def channel(self) -> dict[str, Any]:
        return self.model_dump(exclude={"facility", "username"}, exclude_unset=False)


class ChannelChange(Model):
    """Some of a channel's settings (its kind stays)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: Target | None = None
    label: Label | None = None
    secret: Annotated[str, StringConstraints(max_length=200)] | None = None
    markdown: Flag | None = None
    allow_patient_name: Flag | None = None
    reports: Flag | None = None
    active: Flag | None = None


class ChannelOut(Model):
    id: int
    facility: str
    username: str | None
    kind: ChannelKind
    target: str = Field(description="a URL's query values masked (a robot's key)")
    label: str
    has_secret: bool
    markdown: bool
    allow_patient_name: bool
    reports: bool
    active: bool
    created_at: Instant

    @classmethod
    def of(cls, c: Channel) -> ChannelOut:
        return cls(
            id=c.id,
            facility=c.facility_code,
            username=c.username,
            kind=c.spec.kind,
            target=shown_target(c.spec),
            label=c.spec.label,
            has_secret=bool(c.spec.secret),
            markdown=c.spec.markdown,
            allow_patient_name=c.spec.allow_patient_name,
            reports=c.spec.reports,
            active=c.spec.active,
            created_at=c.created_at,
        )


class ChannelsOut(Model):
    channels: list[ChannelOut]


class ChannelRemoved(Model):
    id: int
    removed: bool


class OwnEmailIn(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Target
    reports: Flag = Field(True, description="final normal and abnormal reports too")


class MessageOut(Model):
    """One message a report caused on a channel: where, how it went (never its text)."""

    id: int
    kind: NoticeKind
    resend: int
    status: OutboundStatus
    attempts: int
    channel_id: int
    channel_kind: str
    facility: str
    username: str | None
    created_at: Instant
    updated_at: Instant
    tries: list[Json]

    @classmethod
    def of(cls, m: SentRecord) -> MessageOut:
        return cls(
            id=m.id,
            kind=m.kind,
            resend=m.resend,
            status=m.status,
            attempts=m.attempts,
            channel_id=m.channel_id,
            channel_kind=m.channel_kind,
            facility=m.facility_code,
            username=m.username,
            created_at=m.created_at,
            updated_at=m.updated_at,
            tries=m.tries,
        )
