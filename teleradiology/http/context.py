"""Typed keys for what the application owns, and the caller of a request."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from storage import network
from storage.db import Pool
from storage.objects import ObjectStore
from storage.records import User
from teleradiology.core.errors import Unauthorized
from teleradiology.core.language import N_
from teleradiology.services.intake import Ingestor
from teleradiology.services.notices import Carrier
from teleradiology.services.signin import Throttle
from teleradiology.services.studies import Studies
from teleradiology.services.work_pool import WorkPool
from teleradiology.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", Pool)
#: The database URL the pool connects to (the worker opens a LISTEN connection of its own).
DSN = web.AppKey("dsn", str)
OBJECTS = web.AppKey("objects", ObjectStore)
INGESTOR = web.AppKey("ingestor", Ingestor)
#: The scoped, audited searches and lookups of stored studies (QIDO-RS, WADO-RS).
STUDIES = web.AppKey("studies", Studies)
#: Child processes for CPU-heavy parsing: pixel decoding and rendering, ECG files and sheets.
WORK_POOL = web.AppKey("work_pool", WorkPool)
#: Wrong passwords in a row, per account and per address, in this process.
SIGNIN_THROTTLE = web.AppKey("signin_throttle", Throttle)
#: How notification messages travel (an administrator's test message goes at once).
NOTICE_CARRIER = web.AppKey("notice_carrier", Carrier)
USER = web.RequestKey("user", User)
#: The token (bearer or session cookie) the caller was let in with.
TOKEN = web.RequestKey("token", str)


def current_user(request: web.Request) -> User:
    """The authenticated caller of a protected route."""
    user = request.get(USER)
    if user is None:
        raise Unauthorized(N_("请先登录：发送 'Authorization: Bearer <token>'"))
    return user


#: When a network's policy names no zone this code knows: the demo network's.
DEFAULT_ZONE = "Asia/Shanghai"


async def user_zone(request: web.Request, user: User) -> ZoneInfo:
    """The time zone of the caller's network (its policy), for times shown to people."""
    policy = await network.policy_of(request.app[POOL], user.facility_id)
    try:
        return ZoneInfo(policy.timezone)
    except (KeyError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)
