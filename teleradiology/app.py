"""The aiohttp application factory: resources owned by cleanup contexts, in start-up order."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from storage import index, network
from storage import qido as qido_index
from storage.db import EmbeddedPostgres, create_pool, migrate
from storage.objects import open_object_store
from teleradiology import (
    api,
    casework,
    dicomweb,
    ecg_api,
    events,
    metrics,
    pages,
    patients,
    qido,
    referrals,
    routing_admin,
    stow,
    uploads,
    viewer,
    wado,
)
from teleradiology.auth import bearer_token
from teleradiology.context import DSN, INGESTOR, OBJECTS, POOL, SETTINGS, USER
from teleradiology.dimse import DicomListener, ingest_store_handler
from teleradiology.dimse_processes import dicom_children
from teleradiology.dimse_qr import QueryRetrieve, configured_nodes
from teleradiology.errors import NotFound, Unauthorized
from teleradiology.ingest import Ingestor
from teleradiology.metrics import metrics_middleware
from teleradiology.problems import problem_middleware
from teleradiology.session import COOKIE_METHODS, session_token
from teleradiology.settings import Role, Settings

log = logging.getLogger(__name__)

DICOM = web.AppKey("dicom", DicomListener)

#: Paths anyone may call: health, the API's own description, and signing in.
#: /metrics holds counts by route, status and facility code: no patient data.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/api/v1/openapi.json", "/api/v1/login"})
PROTECTED_PREFIXES = ("/api/", "/dicomweb")


@dataclass(frozen=True, kw_only=True)
class Hooks:
    """Extra cleanup contexts a caller (the worker role, tests) adds after the core ones."""

    contexts: tuple[Callable[[web.Application], AsyncIterator[None]], ...] = ()


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    path = request.path
    if path in PUBLIC_PATHS or not path.startswith(PROTECTED_PREFIXES):
        return await handler(request)
    if request.method == "OPTIONS":
        return await handler(request)
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and request.method in COOKIE_METHODS and path.startswith("/dicomweb"):
        # The browser viewer cannot send a bearer header: its session cookie, reads only.
        token = session_token(request)
    if token is None:
        raise Unauthorized("this call needs a token: send 'Authorization: Bearer <token>'")
    user = await network.user_by_token(request.app[POOL], token)
    if user is None:
        raise Unauthorized("the token is unknown, expired or revoked; sign in again")
    request[USER] = user
    return await handler(request)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir / "pg")
        dsn = await embedded.start()
    pool = await create_pool(dsn)
    try:
        applied = await migrate(pool)
        if applied:
            log.info("database migrated: %s", ", ".join(applied))
        app[POOL] = pool
        app[DSN] = dsn
        yield
    finally:
        await pool.close()
        if embedded is not None:
            await embedded.stop()


async def _objects(app: web.Application) -> AsyncIterator[None]:
    store = open_object_store(app[SETTINGS].objects_url)
    await store.start()
    app[OBJECTS] = store
    app[INGESTOR] = Ingestor(app[POOL], store)
    try:
        yield
    finally:
        await store.close()


async def _dicom(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = app[POOL]
    shared: socket.socket | None = None
    if settings.dicom_listen_fd is not None:
        shared = socket.socket(fileno=settings.dicom_listen_fd)  # a parent's, inherited
    elif settings.dicom_processes > 1:
        shared = socket.create_server((settings.dicom_host, settings.dicom_port), backlog=128)

    await configured_nodes(pool)

    async def known_ae_titles() -> list[str]:
        # Workstations send and query their facility's studies; configured DICOM nodes
        # (readers' desktop viewers) query and retrieve.
        workstations = await network.list_ae_titles(pool)
        return [*workstations, *await qido_index.dicom_node_titles(pool)]

    query_retrieve = QueryRetrieve(pool=pool, objects=app[OBJECTS], loop=asyncio.get_running_loop())
    listener = DicomListener(
        store=ingest_store_handler(app[INGESTOR]),
        known_ae_titles=known_ae_titles,
        services=[query_retrieve.service()],
        ae_title=settings.dicom_aet,
        host=settings.dicom_host,
        port=settings.dicom_port,
        max_associations_per_facility=settings.dicom_max_associations_per_facility,
        facility_of_ae=functools.partial(index.ae_facility_codes, pool),
        reuse_port=settings.dicom_reuse_port,
        listen_socket=shared,
    )
    await listener.start()
    app[DICOM] = listener
    children = (
        dicom_children(settings, app[DSN], shared)
        if shared is not None and settings.dicom_listen_fd is None
        else None
    )
    try:
        if children is not None:
            await children.start()
        yield
    finally:
        if children is not None:
            await children.stop()
        await listener.stop()


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


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
    raise NotFound(f"no route {request.method} {request.path}")


def create_app(settings: Settings, hooks: Hooks | None = None) -> web.Application:
    """The application for the roles in ``settings``; resources start in dependency order."""
    app = web.Application(
        middlewares=[metrics_middleware, problem_middleware, auth_middleware],
        client_max_size=16 * 1024**2,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_objects)
    if Role.DICOM in settings.roles:
        app.cleanup_ctx.append(_dicom)
    for context in (hooks or Hooks()).contexts:
        app.cleanup_ctx.append(context)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    metrics.add_routes(app)
    if Role.API in settings.roles:
        # Each feature module registers its own routes; add new modules to this list.
        for module in (
            api,
            casework,
            events,
            referrals,
            routing_admin,
            patients,
            stow,
            dicomweb,
            qido,
            wado,
            viewer,
            pages,
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
