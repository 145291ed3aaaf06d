"""The DICOM role: the listener with storage and query/retrieve, and its listener processes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from storage import associations, index, network
from storage import qido as qido_index
from storage.db import Pool
from storage.objects import ObjectStore
from teleradiology.dimse.listener import DicomListener, ingest_store_handler
from teleradiology.dimse.processes import dicom_children
from teleradiology.dimse.query_retrieve import QueryRetrieve
from teleradiology.services.administration import import_dicom_nodes
from teleradiology.services.intake import Ingestor
from teleradiology.services.studies import Studies
from teleradiology.settings import Settings

log = logging.getLogger(__name__)


class SharedPlaces:
    """The association limit counted in PostgreSQL, for every listener process and node."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._late: set[asyncio.Future[None]] = set()

    async def take(self, group: str, limit: int) -> int | None:
        taking = asyncio.ensure_future(
            associations.open_association(self._pool, group, self.holder, limit)
        )
        try:
            return await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The listener gave up waiting: a place taken after all is given back.
            taking.add_done_callback(self._given_up)
            raise

    def _given_up(self, taking: asyncio.Future[int | None]) -> None:
        if taking.cancelled() or taking.exception() is not None:
            return
        place = taking.result()
        if place is not None:
            late = asyncio.ensure_future(self._give_back_late(place))
            self._late.add(late)
            late.add_done_callback(self._late.discard)

    async def _give_back_late(self, place: int) -> None:
        with contextlib.suppress(Exception):  # else it counts until this process stops
            await self.give_back(place)

    async def give_back(self, place: int) -> None:
        await associations.close_association(self._pool, place)

    async def keep_open(self) -> None:
        """Keep this process's places fresh while it runs (a dead process's go stale)."""
        while True:
            await asyncio.sleep(associations.KEEP_EVERY_S)
            try:
                await associations.keep_open(self._pool, self.holder)
            except Exception as exc:
                log.warning("association places not kept fresh (%s)", type(exc).__name__)

    async def forget(self) -> None:
        with contextlib.suppress(Exception):
            await associations.forget_holder(self._pool, self.holder)


async def _configured_nodes(pool: Pool) -> None:
    """Load the DICOM nodes file ``TELEMED_DICOM_NODES`` names, when it is set."""
    path = os.environ.get("TELEMED_DICOM_NODES")
    if path:
        count = await import_dicom_nodes(pool, Path(path))
        log.info("loaded %d DICOM node(s) from %s", count, path)


@contextlib.asynccontextmanager
async def dicom_role(
    settings: Settings, *, pool: Pool, objects: ObjectStore, ingestor: Ingestor, dsn: str
) -> AsyncIterator[DicomListener]:
    """Listen for DICOM associations while the block runs (and start the other listener
    processes of ``--dicom-processes``, which accept from the same socket)."""
    shared: socket.socket | None = None
    if settings.dicom_listen_fd is not None:
        shared = socket.socket(fileno=settings.dicom_listen_fd)  # a parent's, inherited
    elif settings.dicom_processes > 1:
        shared = socket.create_server((settings.dicom_host, settings.dicom_port), backlog=128)

    await _configured_nodes(pool)
    places = SharedPlaces(pool)

    async def known_ae_titles() -> list[str]:
        # Workstations send and query their facility's studies; configured DICOM nodes
        # (readers' desktop viewers) query and retrieve.
        workstations = await network.list_ae_titles(pool)
        return [*workstations, *await qido_index.dicom_node_titles(pool)]

    query_retrieve = QueryRetrieve(
        studies=Studies(pool), objects=objects, loop=asyncio.get_running_loop()
    )
    listener = DicomListener(
        store=ingest_store_handler(ingestor),
        known_ae_titles=known_ae_titles,
        services=[query_retrieve.service()],
        ae_title=settings.dicom_aet,
        host=settings.dicom_host,
        port=settings.dicom_port,
        max_associations_per_facility=settings.dicom_max_associations_per_facility,
        facility_of_ae=functools.partial(index.ae_facility_codes, pool),
        reuse_port=settings.dicom_reuse_port,
        listen_socket=shared,
        places=places,
        max_store_bytes=settings.max_instance_bytes,
    )
    await listener.start()
    keeper = asyncio.create_task(places.keep_open(), name="association-places")
    children = (
        dicom_children(settings, dsn, shared)
        if shared is not None and settings.dicom_listen_fd is None
        else None
    )
    try:
        if children is not None:
            await children.start()
        yield listener
    finally:
        # Every process stops accepting and lets its open associations finish, together.
        if children is not None:
            await asyncio.gather(children.stop(), listener.stop())
        else:
            await listener.stop()
        keeper.cancel()
        await places.forget()
