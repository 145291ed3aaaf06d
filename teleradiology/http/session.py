"""The browser's session: the viewer cannot send a bearer header, so a cookie carries it.

The cookie holds a token made at sign-in (like ``/api/v1/login``'s, 12 hours), HttpOnly and
SameSite=Strict; the auth middleware accepts it for GET and HEAD requests of /dicomweb only
(reads: no cross-site request can carry it, and nothing it allows changes data).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from storage import network, sessions
from storage.records import TokenKind, User
from teleradiology.http.context import POOL, SIGNIN_THROTTLE
from teleradiology.http.headers import site_origin
from teleradiology.services import signin

COOKIE = "telemed_session"
#: The cookie that keeps a signed-out visitor's language (the sign-in page's switch); a
#: signed-in user's is their own, remembered on their account.
LANGUAGE_COOKIE = "telemed_lang"
LIFETIME = timedelta(hours=12)
#: The methods a session cookie authenticates on /dicomweb (never STOW-RS).
COOKIE_METHODS = frozenset({"GET", "HEAD"})


def session_token(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token else None


async def session_user(request: web.Request) -> User | None:
    """The user of the request's session cookie, when it is valid."""
    token = session_token(request)
    if token is None:
        return None
    return await network.user_by_token(request.app[POOL], token)


async def sign_in(request: web.Request, username: str, password: str) -> str | None:
    """A new session token for valid credentials, else None."""
    pool = request.app[POOL]
    user_id = await signin.check_credentials(
        pool, request.app[SIGNIN_THROTTLE], username, password, address=request.remote
    )
    if user_id is None:
        return None
    return await network.create_token(
        pool, user_id, expires_at=datetime.now(UTC) + LIFETIME, kind=TokenKind.SESSION
    )


def set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    secure = site_origin(request).startswith("https://")
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


async def sign_out(request: web.Request, response: web.StreamResponse) -> None:
    token = session_token(request)
    if token is not None:
        await sessions.revoke(request.app[POOL], token)
    response.del_cookie(COOKIE, path="/")
