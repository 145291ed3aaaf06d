"""Passwords: argon2id hashes for storage, and checking a password against one."""

from __future__ import annotations

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from teleradiology.core.errors import WrongValue
from teleradiology.core.language import N_

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of a password, for storage; WrongValue for one too short."""
    if len(password) < 8:
        raise WrongValue(N_("密码至少须有 %(n)s 个字符"), n=8)
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash (False on any mismatch or bad hash)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def is_argon2_hash(text: str) -> bool:
    """Whether the text is an argon2 hash in its encoded form (``$argon2id$v=19$m=…``)."""
    if not text.startswith(("$argon2id$", "$argon2i$", "$argon2d$")):
        return False
    try:
        extract_parameters(text)
    except InvalidHashError:
        return False
    return True
