"""Who is calling: bearer tokens, and the role check at a route's entry."""

from __future__ import annotations

from storage.records import Role, User
from teleradiology.core.errors import Forbidden


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_role(user: User, *roles: Role) -> None:
    """Refuse a caller whose role is not one of ``roles``."""
    if user.role not in roles:
        allowed = " or ".join(r.value for r in roles)
        raise Forbidden(f"this action is for {allowed} users; you are signed in as {user.role}")
