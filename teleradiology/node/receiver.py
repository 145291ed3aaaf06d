"""The node's C-STORE receiver: the township's modalities and ECG carts send to it.

pynetdicom runs each association in a thread; the handler hands the received data set to the
event loop and answers the status the store coroutine returns. Only the configured calling AE
titles may associate.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from teleradiology.core.statuses import StoreStatus

log = logging.getLogger(__name__)

#: What the receiver does with one received Part-10 file from a calling AE.
StoreHandler = Callable[[str, bytes], Coroutine[Any, Any, tuple[StoreStatus, str | None]]]

#: Longer than any AE title can be: with no title configured, no caller matches.
_NO_AE = "<no AE configured>"


class _NoDelayServer(ThreadedAssociationServer):
    """TCP_NODELAY on accepted sockets: Nagle with delayed ACKs stalls each C-STORE ~40 ms."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


class StoreReceiver:
    """C-ECHO and C-STORE SCP for the calling AE titles in ``accept_ae``."""

    def __init__(
        self,
        *,
        store: StoreHandler,
        accept_ae: Sequence[str],
        ae_title: str,
        host: str,
        port: int,
        store_timeout_s: float = 120.0,
    ) -> None:
        self._store = store
        self._accept_ae = [a.strip() for a in accept_ae if a.strip()] or [_NO_AE]
        self._ae_title = ae_title
        self._host = host
        self._port = port
        self._timeout = store_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when started on port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.server_address[1])

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ae = AE(ae_title=self._ae_title)
        ae.require_calling_aet = self._accept_ae
        ae.maximum_pdu_size = 4 * 1024 * 1024
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        transfer_syntaxes = [str(uid) for uid in AllTransferSyntaxes]
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(str(context.abstract_syntax), transfer_syntaxes)
        ae.add_supported_context(str(Verification), transfer_syntaxes)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, lambda event: int(StoreStatus.SUCCESS)),
        ]
        server = ae.make_server(
            (self._host, self._port), evt_handlers=handlers, server_class=_NoDelayServer
        )
        ae._servers.append(server)  # as start_server does: shutdown() removes it again
        threading.Thread(target=server.serve_forever, name="dicom-receiver", daemon=True).start()
        self._server = server
        log.info("C-STORE receiver %s on %s:%s", self._ae_title, self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.shutdown)

    def _on_store(self, event: evt.Event) -> Dataset:
        if self._loop is None:
            raise RuntimeError("the C-STORE receiver is not started")
        calling = event.assoc.requestor.ae_title.strip()
        address = event.assoc.requestor.address
        path = _received_path(event)
        # pynetdicom's chunked mode (process-wide) leaves the data set in a file.
        data = path.read_bytes() if path is not None else event.encoded_dataset(True)
        future = asyncio.run_coroutine_threadsafe(self._store(calling, data), self._loop)
        try:
            status, comment = future.result(timeout=self._timeout)
        except FutureTimeout:
            future.cancel()
            status, comment = StoreStatus.OUT_OF_RESOURCES, "the spool did not answer in time"
        except Exception:
            log.exception("C-STORE from %s at %s failed", calling, address)
            status, comment = StoreStatus.OUT_OF_RESOURCES, "the node could not keep it"
        if status is not StoreStatus.SUCCESS:
            log.info("C-STORE from %s at %s: %s", calling, address, status.name)
        answer = Dataset()
        answer.Status = int(status)
        if comment:
            answer.ErrorComment = comment[:64]  # LO: 64 characters at most
        return answer


def _received_path(event: evt.Event) -> Path | None:
    try:
        return Path(event.dataset_path)
    except (AttributeError, TypeError):
        return None
