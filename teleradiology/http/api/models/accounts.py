"""Accounts as the API takes and answers them: tokens (never their secrets), users as their
administrator manages them, passwords and one-time links."""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from storage.accounts import ManagedUser, TokenInfo
from storage.records import Language, Role, Specialty, TokenKind
from teleradiology.core.errors import WrongValue
from teleradiology.core.language import N_
from teleradiology.http.models import Instant, Model


class TokenOut(Model):
    id: int
    username: str
    kind: TokenKind = Field(
        description="what made it: cli (telemed token create), signin (/api/v1/login), "
        "session (the browser's), demo (serve --demo)"
    )
    created_at: Instant
    expires_at: Instant

    @classmethod
    def of(cls, t: TokenInfo) -> TokenOut:
        return cls(
            id=t.id,
            username=t.username,
            kind=t.kind,
            created_at=t.created_at,
            expires_at=t.expires_at,
        )


class TokensOut(Model):
    tokens: list[TokenOut]


class TokensQuery(Model):
    username: str | None = Field(None, description="only this user's tokens")


class RevokedOut(Model):
    id: int
    revoked: bool


class PasswordChangeIn(Model):
    model_config = ConfigDict(extra="forbid")

    current_password: str
    new_password: str = Field(min_length=8)


class PasswordChanged(Model):
    changed: bool
    other_tokens_revoked: bool


class LanguageIn(Model):
    model_config = ConfigDict(extra="forbid")

    language: Language = Field(description='"zh-CN" (the default) or "en"')


class LanguageOut(Model):
    language: Language = Field(description="what the caller's pages, PDFs and e-mails are in")


class PasswordLinkIn(Model):
    model_config = ConfigDict(extra="forbid")

    link: str = Field(min_length=1, description="the secret of the one-time link")
    new_password: str = Field(min_length=8)


class PasswordSet(Model):
    username: str


class ManagedUserOut(Model):
    username: str
    display_name: str
    role: Role
    facility: str
    specialties: list[Specialty]
    active: bool
    has_password: bool

    @classmethod
    def of(cls, m: ManagedUser) -> ManagedUserOut:
        return cls(
            username=m.user.username,
            display_name=m.user.display_name,
            role=m.user.role,
            facility=m.facility_code,
            specialties=sorted(m.user.specialties),
            active=m.user.active,
            has_password=m.has_password,
        )


class ManagedUsersOut(Model):
    users: list[ManagedUserOut]


class UserChangeIn(Model):
    """What changes; a field left out stays as it is (at least one is given)."""

    model_config = ConfigDict(extra="forbid")

    active: StrictBool | None = Field(
        default=None,
        description="false deactivates: every token and session of the user stops working "
        "at once and their event streams close",
    )
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    facility: str | None = Field(
        default=None, min_length=1, description="the code of a facility of your network"
    )
    specialties: list[Specialty] | None = Field(default=None, description="readers only")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if all(getattr(self, name) is None for name in self.model_fields_set):
            raise WrongValue(
                N_("请至少给出 %(names)s 之一（null 不改变任何值）"),
                names="active, display_name, role, facility, specialties",
            )
        return self


class PasswordLinkOut(Model):
    username: str
    link: str = Field(description="the one-time link's path with its secret: send it to the user")
    expires_at: Instant
    show: str = Field(
        description="the same in a sentence to pass on to the user, in the user's language"
    )


class UnlockedOut(Model):
    username: str
    unlocked: bool


class UserCreateIn(Model):
    """A new user, as a network file's ``[[user]]`` without a password: they set their own
    with the one-time link the answer carries."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    display_name: str | None = None
    role: Role
    facility: str = Field(min_length=1, description="the code of a facility of your network")
    specialties: list[Specialty] = Field(default_factory=list, description="readers only")


class UserCreated(Model):
    user: ManagedUserOut
    link: str = Field(description="the one-time link's path with its secret: send it to the user")
    expires_at: Instant
