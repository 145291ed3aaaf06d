"""The DICOM role: the listener with storage, query/retrieve, the modality worklist, MPPS and
storage commitment, and its listener processes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

from storage import associations, index, network
from storage.db import Pool
from storage.objects import ObjectStore
from teleradiology.core.peers import LimitPolicy, PeerRule, address_block, peer_rule
from teleradiology.dimse.gate import Gate, server_context
from teleradiology.dimse.listener import DicomListener, ingest_store_handler
from teleradiology.dimse.orders import Orders
from teleradiology.dimse.processes import dicom_children
from teleradiology.dimse.query_retrieve import QueryRetrieve
from teleradiology.services import orders
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


#: How long resolving one configured peer host name may take.
RESOLVE_TIMEOUT_S = 5.0


async def peer_rules(pool: Pool) -> list[PeerRule]:
    """The rule of every calling AE title we accept: workstations send and query their
    facility's studies; configured DICOM nodes (readers' desktop viewers) query and
    retrieve. Host names are resolved here, each time the rules are refreshed."""
    hosts: dict[str, list[str]] = {}
    certificates: dict[str, list[str]] = {}
    for peer in await network.dicom_peers(pool):
        hosts.setdefault(peer.ae_title, [])
        certificates.setdefault(peer.ae_title, [])
        if peer.host:
            hosts[peer.ae_title].append(peer.host)
        if peer.cert_sha256:
            certificates[peer.ae_title].append(peer.cert_sha256)
    names = {h for found in hosts.values() for h in found if address_block(h) is None}
    resolved = dict(zip(names, await asyncio.gather(*map(_resolve, names)), strict=True))
    return [
        peer_rule(
            ae,
            hosts=found,
            resolved=[a for h in found for a in resolved.get(h, ())],
            certificates=certificates[ae],
        )
        for ae, found in hosts.items()
    ]


async def _resolve(host: str) -> list[str]:
    """The addresses of a peer host name (none when it does not resolve: nothing matches)."""
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, TimeoutError) as exc:
        log.warning("peer host %s does not resolve (%s)", host, type(exc).__name__)
        return []
    return sorted({str(info[4][0]) for info in infos})


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.dicom_tls_cert is None or settings.dicom_tls_key is None:
        return None
    return server_context(settings.dicom_tls_cert, settings.dicom_tls_key, settings.dicom_tls_ca)


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
    shared_child = settings.dicom_listen_fd is not None
    child_tls = not shared_child or settings.dicom_tls_port is None

    query_retrieve = QueryRetrieve(
        studies=Studies(pool, retrieve_max=settings.dicom_retrieve_max),
        objects=objects,
        loop=asyncio.get_running_loop(),
    )
    modality_services = Orders(
        pool=pool, loop=asyncio.get_running_loop(), ae_title=settings.dicom_aet
    )
    listener = DicomListener(
        store=ingest_store_handler(ingestor, after=functools.partial(orders.instance_stored, pool)),
        peers=functools.partial(peer_rules, pool),
        gate=Gate(
            allow_unbound=settings.dicom_allow_unbound,
            limit=LimitPolicy(
                refusals=settings.dicom_refusals, first_block_s=settings.dicom_refusal_block_s
            ),
        ),
        # A child of --dicom-processes accepts from the parent's socket: TLS on it when the
        # DICOM port is the TLS one; a separate TLS port is the parent's alone.
        tls=_tls_context(settings) if child_tls else None,
        tls_port=None if shared_child else settings.dicom_tls_port,
        services=[query_retrieve.service(), modality_services.service()],
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
