"""The role check every action starts with."""

from __future__ import annotations

from storage.records import Role, User
from teleradiology.core.errors import Forbidden


def require_role(user: User, *roles: Role) -> None:
    """Refuse a caller whose role is not one of ``roles``."""
    if user.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"this action is for {allowed} users; you are signed in as {user.role}")
