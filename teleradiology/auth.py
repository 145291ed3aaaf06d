"""Who is calling: bearer tokens, passwords (argon2), and the scope rules' entry checks."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage.records import Role, User
from teleradiology.errors import Forbidden

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of a password, for storage."""
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash (False on any mismatch or bad hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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
