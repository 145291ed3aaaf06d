"""The web application: middlewares (metrics, problems, authentication), health, and the
routes of every HTTP feature; the resources it serves with come from the caller."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from storage import audit, network
from teleradiology.core.errors import NotFound, Unauthorized
from teleradiology.core.language import N_
from teleradiology.http import metrics
from teleradiology.http import sse as events
from teleradiology.http.api import accounts as account_api
from teleradiology.http.api import admin as routing_admin
from teleradiology.http.api import audit as audit_api
from teleradiology.http.api import cases as api
from teleradiology.http.api import (
    casework,
    dashboard,
    identity,
    notices,
    openapi,
    orders,
    patients,
    referrals,
    uploads,
)
from teleradiology.http.api import console as console_api
from teleradiology.http.api import ecg as ecg_api
from teleradiology.http.api import events as event_stream
from teleradiology.http.api import operations as operations_api
from teleradiology.http.api import rosters as rosters_api
from teleradiology.http.auth import bearer_token
from teleradiology.http.context import OBJECTS, POOL, SETTINGS, SIGNIN_THROTTLE, TOKEN, USER
from teleradiology.http.dicomweb import common as dicomweb
from teleradiology.http.dicomweb import qido, stow, wado
from teleradiology.http.headers import security_headers
from teleradiology.http.metrics import metrics_middleware
from teleradiology.http.problems import problem_middleware
from teleradiology.http.proxies import forwarded_by_trusted_proxy
from teleradiology.http.session import COOKIE_METHODS, session_token
from teleradiology.http.web import routes as pages
from teleradiology.http.web import send, viewer
from teleradiology.services.signin import Throttle
from teleradiology.settings import Role, Settings

log = logging.getLogger(__name__)

#: Paths anyone may call: health, the API's own description, and signing in.
#: /metrics holds counts by route, status and facility code: no patient data.
PUBLIC_PATHS = frozenset(
    {"/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/login", "/api/v1/password/link"}
)
PROTECTED_PREFIXES = ("/api/", "/dicomweb")


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    path = request.path
    # Requests on one keep-alive connection share a task (and its context): set both anew.
    audit.ADDRESS.set(request.remote)
    audit.SIGNED_IN.set(None)
    if path in PUBLIC_PATHS or not path.startswith(PROTECTED_PREFIXES):
        return await handler(request)
    if request.method == "OPTIONS":
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and request.method in COOKIE_METHODS and path.startswith("/dicomweb"):
        # The browser viewer cannot send a bearer header: its session cookie, reads only.
        token = session_token(request)
    if token is None:
        raise Unauthorized(N_("此调用需要令牌：发送 'Authorization: Bearer <token>'"))
    user = await network.user_by_token(request.app[POOL], token)
    if user is None:
        raise Unauthorized(N_("令牌未知、已过期或已吊销；请重新登录"))
    request[USER] = user
    request[TOKEN] = token
    audit.SIGNED_IN.set(user.id)
    return await handler(request)


#: What parts of this process say of themselves in /healthz (the worker's job runner), by
#: name: a report whose ``alive`` is false means the process cannot recover by itself.
HEALTH = web.AppKey("health", dict[str, Callable[[], Mapping[str, object]]])


async def healthz(request: web.Request) -> web.Response:
    """Alive (200) unless a part cannot recover by itself (503); a part that waits for the
    database or the object store to return is ``degraded``, not dead."""
    parts = {name: dict(report()) for name, report in request.app[HEALTH].items()}
    dead = any(part.get("alive") is False for part in parts.values())
    waiting = any(part.get("running") is False for part in parts.values())
    status = "failing" if dead else "degraded" if waiting else "ok"
    return web.json_response({"status": status, **parts}, status=503 if dead else 200)


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and the object store is reachable."""
    checks: dict[str, str] = {}
    try:
        await request.app[POOL].fetchval("select 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        await request.app[OBJECTS].exists("0" * 64)
        checks["objects"] = "ok"
    except Exception as exc:
        checks["objects"] = f"failed: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


async def _not_found(request: web.Request) -> web.Response:
    raise NotFound(N_("没有路由 %(method)s %(path)s"), method=request.method, path=request.path)


def create_web_app(
    settings: Settings, contexts: Sequence[Callable[[web.Application], AsyncIterator[None]]] = ()
) -> web.Application:
    """The web application for the roles in ``settings``; ``contexts`` (the resources and the
    roles that need them) start first, in order, and stop last."""
    app = web.Application(
        middlewares=[
            forwarded_by_trusted_proxy,
            metrics_middleware,
            security_headers,
            problem_middleware,
            auth_middleware,
            send.compress_assets,
        ],
        client_max_size=16 * 1024**2,
    )
    app[SETTINGS] = settings
    app[HEALTH] = {}
    app[SIGNIN_THROTTLE] = Throttle()
    for context in contexts:
        app.cleanup_ctx.append(context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    metrics.add_routes(app)
    if Role.API in settings.roles:
        # Each feature module registers its own routes; add new modules to this list.
        for module in (
            openapi,
            api,
            casework,
            events,
            event_stream,
            referrals,
            orders,
            routing_admin,
            dashboard,
            console_api,
            rosters_api,
            notices,
            operations_api,
            account_api,
            audit_api,
            patients,
            identity,
            stow,
            dicomweb,
            qido,
            wado,
            viewer,
            pages,
            send,
            uploads,
            ecg_api,
        ):
            module.add_routes(app)
        # Last: unknown paths under the protected prefixes answer problem+json 404.
        app.router.add_route("*", "/api/{tail:.*}", _not_found)
        app.router.add_route("*", "/dicomweb/{tail:.*}", _not_found)
        # After them: any other unknown path is one of the OHIF viewer's own routes.
        viewer.add_fallback(app)
    return app
