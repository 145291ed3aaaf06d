"""The DICOM DIMSE listener: C-ECHO and C-STORE from workstations, on pynetdicom.

pynetdicom runs each association in a thread; the handlers only hand the received bytes to
the event loop and return a named PS3.4 status.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationServer, ThreadedAssociationServer

from storage.records import ReceivedVia
from teleradiology.errors import DuplicateConflict, InvalidDicom
from teleradiology.ingest import Ingestor

log = logging.getLogger(__name__)

#: Longer than any AE title can be: with no facility configured, no calling AE matches.
_NO_AE = "<no AE configured>"


class StoreStatus(IntEnum):
    """C-STORE response statuses (PS3.4 B.2.3 and PS3.7 C)."""

    SUCCESS = 0x0000
    DUPLICATE_SOP_INSTANCE = 0x0111
    NOT_AUTHORIZED = 0x0124
    OUT_OF_RESOURCES = 0xA700
    CANNOT_UNDERSTAND = 0xC000


class _NoDelayServer(ThreadedAssociationServer):
    """Accepted sockets get TCP_NODELAY: Nagle with delayed ACKs stalls every C-STORE ~40 ms."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = AssociationServer.get_request(self)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


class _KnownCallersAE(AE):
    """An AE whose accepted calling AE titles are the network's, refreshed while running."""

    known_callers: list[str]

    @property
    def require_calling_aet(self) -> list[str]:
        return self.known_callers or [_NO_AE]

    @require_calling_aet.setter
    def require_calling_aet(self, ae_titles: list[str]) -> None:
        self.known_callers = list(ae_titles)


def _abstract_syntaxes() -> list[str]:
    """Every storage SOP class (stored as received, any transfer syntax), and Verification."""
    return [str(c.abstract_syntax) for c in AllStoragePresentationContexts] + [str(Verification)]


#: What a listener does with one received Part-10 file from a calling AE: a status and comment.
StoreHandler = Callable[[str, bytes], Coroutine[Any, Any, tuple["StoreStatus", str | None]]]


@dataclass(frozen=True, kw_only=True)
class DimseService:
    """More DIMSE services on the same listener (query/retrieve, ...).

    ``contexts`` are (abstract syntax, transfer syntaxes, SCP role for SCP/SCU role
    selection or None); ``handlers`` are pynetdicom (event, handler) pairs, called in the
    association's thread.
    """

    contexts: Sequence[tuple[str, Sequence[str], bool | None]] = ()
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = ()


class DicomListener:
    """C-ECHO and C-STORE SCP (plus any further services) for the network's workstations."""

    def __init__(
        self,
        *,
        store: StoreHandler,
        known_ae_titles: Callable[[], Awaitable[Sequence[str]]],
        ae_title: str,
        host: str,
        port: int,
        services: Sequence[DimseService] = (),
        store_timeout_s: float = 120.0,
    ) -> None:
        self._store = store
        self._services = services
        self._known_ae_titles = known_ae_titles
        self._ae_title = ae_title
        self._host = host
        self._port = port
        self._timeout = store_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadedAssociationServer | None = None
        self._ae = _KnownCallersAE(ae_title=ae_title)
        self._ae.known_callers = []
        self._refresher: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when started on port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.refresh_callers()
        ae = self._ae
        ae.maximum_associations = 32
        ae.maximum_pdu_size = 0  # unlimited: the peer may send PDUs of any size
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        for abstract_syntax in _abstract_syntaxes():
            ae.add_supported_context(abstract_syntax, ALL_TRANSFER_SYNTAXES)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
        ]
        for service in self._services:
            for abstract_syntax, transfer_syntaxes, scp_role in service.contexts:
                if scp_role is None:
                    ae.add_supported_context(abstract_syntax, list(transfer_syntaxes))
                else:
                    ae.add_supported_context(
                        abstract_syntax, list(transfer_syntaxes), scu_role=False, scp_role=scp_role
                    )
            handlers.extend(service.handlers)
        server = ae.make_server(
            (self._host, self._port), evt_handlers=handlers, server_class=_NoDelayServer
        )
        ae._servers.append(server)  # as start_server does: shutdown() removes it again
        threading.Thread(target=server.serve_forever, name="dicom-listener", daemon=True).start()
        self._server = server
        self._refresher = asyncio.create_task(self._refresh_forever())
        log.info("DICOM listener %s on %s:%s", self._ae_title, self._host, self.port)

    async def refresh_callers(self) -> None:
        self._ae.require_calling_aet = list(await self._known_ae_titles())

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(5)
            try:
                await self.refresh_callers()
            except Exception:
                log.exception("could not refresh the known AE titles")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.shutdown)

    def _on_echo(self, event: evt.Event) -> int:
        return int(StoreStatus.SUCCESS)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the handlers hand their work to (set by start)."""
        if self._loop is None:
            raise RuntimeError("the DICOM listener is not started")
        return self._loop

    def _on_store(self, event: evt.Event) -> Dataset:
        calling = event.assoc.requestor.ae_title.strip()
        address = event.assoc.requestor.address
        data = event.encoded_dataset(include_meta=True)
        future = asyncio.run_coroutine_threadsafe(self._store(calling, data), self.loop)
        try:
            status, comment = future.result(timeout=self._timeout)
        except FutureTimeout:
            future.cancel()
            status, comment = StoreStatus.OUT_OF_RESOURCES, "storage did not answer in time"
        except Exception:
            log.exception("C-STORE from %s at %s failed", calling, address)
            status, comment = StoreStatus.OUT_OF_RESOURCES, "the archive could not store it"
        if status is not StoreStatus.SUCCESS:
            log.info("C-STORE from %s at %s: %s", calling, address, status.name)
        return _status(status, comment)


def ingest_store_handler(ingestor: Ingestor) -> StoreHandler:
    """Store each received file through the one ingest path, for the caller's facility."""

    async def store(calling: str, data: bytes) -> tuple[StoreStatus, str | None]:
        facility = await ingestor.facility_for_ae(calling)
        if facility is None:
            return StoreStatus.NOT_AUTHORIZED, f"calling AE title {calling} is not configured"
        try:
            await ingestor.ingest(data, facility=facility, via=ReceivedVia.DIMSE, sender_ae=calling)
        except InvalidDicom as exc:
            return StoreStatus.CANNOT_UNDERSTAND, str(exc)
        except DuplicateConflict as exc:
            return StoreStatus.DUPLICATE_SOP_INSTANCE, str(exc)
        return StoreStatus.SUCCESS, None

    return store


def _status(status: StoreStatus, comment: str | None) -> Dataset:
    ds = Dataset()
    ds.Status = int(status)
    if comment:
        # ErrorComment is LO: 64 characters at most.
        ds.ErrorComment = comment[:64]
    return ds


def _all_transfer_syntaxes() -> list[str]:
    from pydicom.uid import AllTransferSyntaxes

    return [str(uid) for uid in AllTransferSyntaxes]


ALL_TRANSFER_SYNTAXES = _all_transfer_syntaxes()
