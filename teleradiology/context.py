"""Typed keys for what the application owns, and the caller of a request."""

from __future__ import annotations

from aiohttp import web

from storage.db import Pool
from storage.objects import ObjectStore
from storage.records import User
from teleradiology.errors import Unauthorized
from teleradiology.ingest import Ingestor
from teleradiology.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", Pool)
#: The database URL the pool connects to (the worker opens a LISTEN connection of its own).
DSN = web.AppKey("dsn", str)
OBJECTS = web.AppKey("objects", ObjectStore)
INGESTOR = web.AppKey("ingestor", Ingestor)
USER = web.RequestKey("user", User)


def current_user(request: web.Request) -> User:
    """The authenticated caller of a protected route."""
    user = request.get(USER)
    if user is None:
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>'")
    return user
