"""The role check every action starts with."""

from __future__ import annotations

from storage.records import Role, User
from teleradiology.core.errors import Forbidden
from teleradiology.core.language import N_


def require_role(user: User, *roles: Role) -> None:
    """Refuse a caller whose role is not one of ``roles``."""
    if user.role not in roles:
        raise Forbidden(
            N_("此操作供%(allowed)s使用；您的登录身份是%(role)s"), allowed=roles, role=user.role
        )
