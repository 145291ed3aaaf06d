"""What one process runs for its roles: the resources every role shares (the PostgreSQL pool,
the object store, the ingest path), the DICOM listener, the worker, and the web application
that holds them all as cleanup contexts (started in this order, stopped in reverse).

With cli.py and settings.py this is the composition root: the only place that knows every
ring, and where the resources are handed to the rings that use them.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from storage.db import EmbeddedPostgres, close_pool, create_pool
from storage.objects import open_object_store
from storage.records import IntakeLimits
from storage.schema import check_schema, migrate
from teleradiology.dimse.gate import client_context
from teleradiology.dimse.listener import DicomListener
from teleradiology.dimse.sender import report_sender
from teleradiology.dimse.service import dicom_role
from teleradiology.http.app import HEALTH, create_web_app
from teleradiology.http.context import (
    DSN,
    INGESTOR,
    NOTICE_CARRIER,
    OBJECTS,
    POOL,
    SETTINGS,
    STUDIES,
)
from teleradiology.services import patients
from teleradiology.services.intake import Ingestor
from teleradiology.services.studies import Studies
from teleradiology.settings import Role, Settings
from worker import outbound
from worker.runner import worker_running

log = logging.getLogger(__name__)

DICOM = web.AppKey("dicom", DicomListener)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


@dataclass(frozen=True, kw_only=True)
class Hooks:
    """Extra cleanup contexts a caller (the demo loader, tests) adds after the roles' own."""

    contexts: tuple[CleanupContext, ...] = ()


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if dsn is None:
        embedded = EmbeddedPostgres(settings.data_dir / "pg")
        dsn = await embedded.start()
    pool = await create_pool(dsn, command_timeout_s=settings.database_command_timeout_s)
    try:
        if settings.migrate_on_start:
            applied = await migrate(pool)
            if applied:
                log.info("database schema brought up to date: %d step(s) applied", len(applied))
        await check_schema(pool)
        if Role.API in settings.roles:  # the role that links by national ID
            await patients.check_national_id_key(pool, settings.national_id_key)
        app[POOL] = pool
        app[DSN] = dsn
        app[STUDIES] = Studies(pool)
        yield
    finally:
        await close_pool(pool)
        if embedded is not None:
            await embedded.stop()


async def _objects(app: web.Application) -> AsyncIterator[None]:
    store = open_object_store(app[SETTINGS].objects_url)
    await store.start()
    app[OBJECTS] = store
    settings = app[SETTINGS]
    app[INGESTOR] = Ingestor(
        app[POOL],
        store,
        limits=IntakeLimits(
            bytes_per_day=settings.quota_bytes_per_day,
            instances_per_day=settings.quota_instances_per_day,
        ),
        spool_dir=settings.data_dir / "spool",
    )
    try:
        yield
    finally:
        await store.close()


async def _carrier(app: web.Application) -> AsyncIterator[None]:
    """The carrier of the API's own messages (an administrator's test of a channel)."""
    async with outbound.carrier(app[SETTINGS]) as carrier:
        app[NOTICE_CARRIER] = carrier
        yield


async def _dicom(app: web.Application) -> AsyncIterator[None]:
    async with dicom_role(
        app[SETTINGS], pool=app[POOL], objects=app[OBJECTS], ingestor=app[INGESTOR], dsn=app[DSN]
    ) as listener:
        app[DICOM] = listener
        yield


async def _worker(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with worker_running(
        settings,
        pool=app[POOL],
        objects=app[OBJECTS],
        dsn=app[DSN],
        send=report_sender(
            settings.dicom_aet,
            tls=client_context(
                settings.dicom_tls_cert, settings.dicom_tls_key, settings.dicom_tls_ca
            ),
        ),
    ) as jobs:
        app[HEALTH]["jobs"] = jobs.report
        yield


async def _heap_frozen(app: web.Application) -> AsyncIterator[None]:
    """Everything made while starting (modules, templates, the API's models) kept out of
    the collector's full passes: otherwise each full pass walks them all again, a pause of
    tens to hundreds of milliseconds inside whatever request the event loop is serving."""
    gc.collect(1)  # the young garbage first (a full pass here would cost each test's start)
    gc.freeze()
    yield
    gc.unfreeze()


def create_app(
    settings: Settings, hooks: Hooks | None = None, *, run_worker: bool = False
) -> web.Application:
    """The process for the roles in ``settings``: the DICOM listener when it has the DICOM
    role, the worker's loops when ``run_worker`` (``telemed serve`` with the worker role),
    the web routes when it has the API role; resources start in dependency order."""
    contexts: list[CleanupContext] = [_database, _objects]
    if Role.API in settings.roles:
        contexts.append(_carrier)
    if Role.DICOM in settings.roles:
        contexts.append(_dicom)
    if run_worker:
        contexts.append(_worker)
    contexts.extend((hooks or Hooks()).contexts)
    contexts.append(_heap_frozen)  # last: once every resource has started
    return create_web_app(settings, contexts)
