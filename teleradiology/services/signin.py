"""Checking a username and password: off the event loop, in the same time whether or not the
user exists, and slowed down for an account or an address that keeps getting it wrong.

An argon2 check takes about 0.2 s of CPU and 64 MiB: it runs on a thread, at most
``CHECKS_AT_ONCE`` at a time, so a burst of sign-ins cannot stall the requests and
associations around it. After
``FREE_FAILURES`` failures in a row an account (or an address) must wait before its next try,
twice as long each time up to ``LONGEST_WAIT``; a success, or ``FORGET_AFTER`` without a
failure, clears the count. Nobody is locked out for good: the legitimate user waits at most
``LONGEST_WAIT``. The counts are kept per process; an administrator's release of an account
(``storage.accounts.unlock``) is kept in the database, so every process honours it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass

from storage import accounts, audit, network
from storage.db import Pool
from storage.records import AuditAction, AuditResult, UserId
from teleradiology.core.errors import BadRequest, TooManyAttempts, WrongValue
from teleradiology.core.language import N_
from teleradiology.core.passwords import hash_password, verify_password

FREE_FAILURES = 5
FIRST_WAIT_S = 2.0
LONGEST_WAIT_S = 15 * 60.0
FORGET_AFTER_S = 60 * 60.0
#: argon2 checks running at once in this process (each holds 64 MiB).
CHECKS_AT_ONCE = 4
#: Checked against when the user does not exist, so that an unknown name costs the same.
_NOBODY = hash_password("no such user: the same work as a wrong password")
_checker = concurrent.futures.ThreadPoolExecutor(CHECKS_AT_ONCE, thread_name_prefix="argon2")


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    #: The wall-clock time of the last failure (an administrator's release is compared to it).
    last_wall: float = 0.0


class Throttle:
    """Failures in a row per key (an account, an address) and how long each must wait."""

    def __init__(self) -> None:
        self._failures: dict[str, _Failures] = {}

    def wait_s(self, key: str, now: float) -> float:
        seen = self._failures.get(key)
        if seen is None or now - seen.last > FORGET_AFTER_S:
            return 0.0
        over = seen.count - FREE_FAILURES
        if over < 0:
            return 0.0
        return max(0.0, seen.last + min(LONGEST_WAIT_S, FIRST_WAIT_S * 2**over) - now)

    def failed(self, key: str, now: float) -> None:
        seen = self._failures.setdefault(key, _Failures())
        if now - seen.last > FORGET_AFTER_S:
            seen.count = 0
        seen.count += 1
        seen.last = now
        seen.last_wall = time.time()
        if len(self._failures) > 100_000:  # a spray of names: drop the oldest
            oldest = sorted(self._failures, key=lambda k: self._failures[k].last)[:50_000]
            for old in oldest:
                del self._failures[old]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def released(self, key: str, at_wall: float) -> None:
        """Forget the failures of ``key`` made before an administrator's release at
        ``at_wall`` (seconds since the epoch)."""
        seen = self._failures.get(key)
        if seen is not None and seen.last_wall <= at_wall:
            del self._failures[key]


def account_key(username: str) -> str:
    """The throttle's key of an account."""
    return f"user:{username.casefold()}"


async def _honour_release(pool: Pool, throttle: Throttle, username: str, now: float) -> None:
    """An account the throttle holds is let go when an administrator released it since."""
    key = account_key(username)
    if throttle.wait_s(key, now) <= 0:
        return
    released = await accounts.unlocked_at(pool, username)
    if released is not None:
        throttle.released(key, released.timestamp())


async def check_credentials(
    pool: Pool, throttle: Throttle, username: str, password: str, *, address: str | None
) -> UserId | None:
    """The user these credentials sign in, or None.

    Raises
    ------
    TooManyAttempts
        The account or the address must wait before it tries again (nothing was checked).
    """
    keys = [account_key(username), *([f"address:{address}"] if address else [])]
    now = time.monotonic()
    await _honour_release(pool, throttle, username, now)
    wait = max(throttle.wait_s(key, now) for key in keys)
    if wait > 0:
        await _audit(pool, username, None, AuditResult.DENIED, "waiting after failures")
        raise TooManyAttempts(wait)
    found = await network.password_hash(pool, username)
    stored = found[1] if found is not None else _NOBODY
    loop = asyncio.get_running_loop()
    matches = await loop.run_in_executor(_checker, verify_password, stored, password)
    if found is None or not matches:
        for key in keys:
            throttle.failed(key, time.monotonic())
        why = "unknown user" if found is None else "wrong password"
        await _audit(pool, username, found[0] if found else None, AuditResult.FAILED, why)
        return None
    # Signed in only once the sign-in is on the record.
    await _audit(pool, username, found[0], AuditResult.OK, None)
    for key in keys:
        throttle.succeeded(key)
    return found[0]


async def hash_new_password(username: str, password: str) -> str:
    """The argon2 hash of a new password, made off the event loop.

    Raises
    ------
    BadRequest
        The password is shorter than 8 characters, or is the public demo password.
    """
    if password == demo_password(username):
        raise BadRequest(N_("这是公开的演示密码：请另选一个"))
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_checker, hash_password, password)
    except WrongValue as exc:
        raise BadRequest(exc.phrase) from None


def demo_password(username: str) -> str:
    """The demo network's password of a user: public, refused outside the demo."""
    return f"demo-{username}"


async def is_demo_hash(username: str, password_hash: str) -> bool:
    """Whether a stored hash is of the user's public demo password (one argon2 check)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        _checker, verify_password, password_hash, demo_password(username)
    )


async def _audit(
    pool: Pool, username: str, user_id: UserId | None, result: AuditResult, why: str | None
) -> None:
    """One sign-in attempt on the record: the name tried (never the password) and how it
    ended."""
    tried = username[:200]
    await audit.record(
        pool,
        user_id=user_id,
        action=AuditAction.SIGN_IN,
        object_type="user",
        object_id=tried,
        detail={"reason": why} if why else None,
        result=result,
        who=audit.Who(username=tried),
    )
