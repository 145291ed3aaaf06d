"""The DICOM DIMSE listener: C-ECHO and C-STORE from workstations, on pynetdicom.

pynetdicom runs each association in a thread; the handlers only hand the received bytes to
the event loop and return a named PS3.4 status.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from tempfile import NamedTemporaryFile
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from prometheus_client import Counter
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, _config, dimse_messages, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from storage import audit
from storage.errors import is_unavailable
from storage.records import ReceivedVia
from teleradiology.core.errors import DuplicateConflict, InvalidDicom, QuotaExceeded
from teleradiology.core.peers import PeerRule
from teleradiology.core.statuses import StoreStatus
from teleradiology.dimse import command_set, file_meta
from teleradiology.dimse.gate import HANDSHAKE_S, REJECT, Gate, log_refusal, peer_certificate
from teleradiology.services.intake import Ingestor, Stored, StudyMismatch

log = logging.getLogger(__name__)

#: How long a stopping listener lets open associations finish (SIGTERM: within Kubernetes'
#: default 30 s grace period, with time left for the rest of the process to stop).
DRAIN_S = 20.0
_DRAIN_POLL_S = 0.1

DIMSE_STORES = Counter(
    "telemed_dimse_stores",
    "C-STORE requests answered, by status",
    ["status"],
)


class _NoDelayServer(ThreadedAssociationServer):
    """Accepted sockets get TCP_NODELAY: Nagle with delayed ACKs stalls every C-STORE ~40 ms."""

    #: SO_REUSEPORT: several listener processes share the port, the kernel spreads the
    #: associations over them (pynetdicom holds the GIL: one process is one core).
    reuse_port = False
    #: A listening socket shared with other processes (`--dicom-processes`), used instead of
    #: binding one: every process accepts from it, and the one that is free first takes the
    #: association, so busy processes (holding their GIL) leave new work to idle ones.
    shared_socket: socket.socket | None = None

    def server_bind(self) -> None:
        if self.shared_socket is not None:
            if self.socket is not None:
                self.socket.close()
            self.socket = self.shared_socket
            # Non-blocking: when another process wins the race for a connection, accept()
            # fails at once (socketserver ignores it) instead of waiting for the next one.
            self.socket.setblocking(False)
            self.server_address = self.socket.getsockname()
            return
        if self.reuse_port and self.socket is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def server_activate(self) -> None:
        if self.shared_socket is None:  # a shared socket is listening already
            super().server_activate()

    #: On a shared socket, a process holding associations waits this long per association
    #: before it accepts the next one, so that a burst of connections (four modalities at
    #: once) goes to the idle processes: the kernel wakes them all, the first to accept wins.
    accept_yield_s = 0.01

    #: Counts failed TLS handshakes against the peer's address (set by the listener).
    gate: Gate | None = None

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        if self.shared_socket is not None:
            busy = self._held()
            if busy:
                time.sleep(min(5 * self.accept_yield_s, busy * self.accept_yield_s))
        assert self.socket is not None
        client, address = self.socket.accept()
        if self.ssl_context:
            client = self._handshake(client, address)
        with self._held_lock:
            self._held_count += 1
        client.setblocking(True)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address

    def _handshake(self, client: socket.socket, address: tuple[str, int]) -> socket.socket:
        """The TLS handshake, bounded in time (it holds the accepting thread); a failed one
        counts as a refusal of the address. Raises OSError: socketserver drops the
        connection."""
        assert self.ssl_context is not None
        client.settimeout(HANDSHAKE_S)
        try:
            return self.ssl_context.wrap_socket(client, server_side=True)
        except OSError as exc:
            client.close()
            log.info("TLS handshake with %s failed (%s)", address[0], type(exc).__name__)
            if self.gate is not None:
                self.gate.handshake_failed(address[0])
            raise

    def shutdown_request(self, request: Any) -> None:
        # socketserver calls this exactly once for every accepted connection, when its
        # association has ended or could not start.
        with self._held_lock:
            self._held_count = max(0, self._held_count - 1)
        super().shutdown_request(request)

    _held_lock = threading.Lock()
    _held_count = 0

    def _held(self) -> int:
        with self._held_lock:
            return self._held_count


class _ReusePortServer(_NoDelayServer):
    reuse_port = True


def _abstract_syntaxes() -> list[str]:
    """Every storage SOP class (stored as received, any transfer syntax), and Verification."""
    return [str(c.abstract_syntax) for c in AllStoragePresentationContexts] + [str(Verification)]


#: What a listener does with one received Part-10 file from a calling AE: a status and comment.
StoreHandler = Callable[[str, bytes], Coroutine[Any, Any, tuple["StoreStatus", str | None]]]


@runtime_checkable
class FileStoreHandler(Protocol):
    """A store handler that also takes received files on disk: the listener then streams each
    data set to a file in ``spool_dir`` (pynetdicom's chunked mode) instead of memory, and
    hands over the path; the handler consumes the file."""

    @property
    def spool_dir(self) -> Path: ...

    def __call__(self, calling: str, data: bytes) -> Awaitable[tuple[StoreStatus, str | None]]: ...

    def store_file(
        self, calling: str, path: Path, size_bytes: int | None = None
    ) -> Awaitable[tuple[StoreStatus, str | None]]: ...


@dataclass(frozen=True, kw_only=True)
class DimseService:
    """More DIMSE services on the same listener (query/retrieve, ...).

    ``contexts`` are (abstract syntax, transfer syntaxes, SCP role for SCP/SCU role
    selection or None); ``handlers`` are pynetdicom (event, handler) pairs, called in the
    association's thread.
    """

    contexts: Sequence[tuple[str, Sequence[str], bool | None]] = ()
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = ()


class Places(Protocol):
    """Where the association limit is counted when several processes accept from one port:
    a place is taken before an association is accepted and given back when it ends."""

    async def take(self, group: str, limit: int) -> int | None:
        """A place for one more association of ``group``, or None when it holds ``limit``."""
        ...

    async def give_back(self, place: int) -> None: ...


#: How long taking a place may wait for PostgreSQL. Past it (or when PostgreSQL is away) the
#: limit is counted in this process alone: the association goes on, and its C-STOREs answer
#: A700 for as long as the database is away.
PLACE_TIMEOUT_S = 1.0


class DicomListener:
    """C-ECHO and C-STORE SCP (plus any further services) for the network's workstations."""

    def __init__(
        self,
        *,
        store: StoreHandler,
        peers: Callable[[], Awaitable[Sequence[PeerRule]]],
        ae_title: str,
        host: str,
        port: int,
        services: Sequence[DimseService] = (),
        store_timeout_s: float = 120.0,
        max_associations_per_facility: int | None = None,
        facility_of_ae: Callable[[], Awaitable[Mapping[str, str]]] | None = None,
        reuse_port: bool = False,
        listen_socket: socket.socket | None = None,
        places: Places | None = None,
        gate: Gate | None = None,
        tls: ssl.SSLContext | None = None,
        tls_port: int | None = None,
        max_store_bytes: int | None = None,
    ) -> None:
        #: Checks each requested association's title, address and certificate.
        self.gate = gate or Gate()
        #: With ``tls``: TLS on ``tls_port`` beside plain TCP on ``port``, or (no
        #: ``tls_port``) TLS on ``port`` alone.
        self._tls = tls
        self._tls_port = tls_port
        self._tls_server: ThreadedAssociationServer | None = None
        self._reuse_port = reuse_port
        #: The largest data set one C-STORE may carry; larger ones are refused (A700).
        self._max_store_bytes = max_store_bytes
        #: Counted across processes when given, else in this process alone.
        self._places = places
        self._place_of: dict[int, int] = {}
        self._listen_socket = listen_socket
        self._store = store
        self._store_file = store if isinstance(store, FileStoreHandler) else None
        self._max_per_facility = max_associations_per_facility
        self._facility_of_ae = facility_of_ae
        self._ae_facility: dict[str, str] = {}
        self._active: dict[str, int] = {}
        self._counted: dict[int, str] = {}
        self._active_lock = threading.Lock()
        self._services = services
        self._peers = peers
        self._ae_title = ae_title
        self._host = host
        self._port = port
        self._timeout = store_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadedAssociationServer | None = None
        # Any calling title reaches EVT_REQUESTED, where the gate refuses (pynetdicom's own
        # check would answer "calling AE title not recognised": enumerable).
        self._ae = AE(ae_title=ae_title)
        self._ae.require_calling_aet = []
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
        ae.maximum_pdu_size = 4 * 1024 * 1024  # big PDUs: fewer trips through pynetdicom
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        for abstract_syntax in _abstract_syntaxes():
            ae.add_supported_context(abstract_syntax, ALL_TRANSFER_SYNTAXES)
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_CONN_CLOSE, self._on_closed),
        ]
        if self._store_file is not None:
            _stream_received_data_sets_to(self._store_file.spool_dir, self._max_store_bytes)
        _encode_command_sets_directly()
        for service in self._services:
            for abstract_syntax, transfer_syntaxes, scp_role in service.contexts:
                if scp_role is None:
                    ae.add_supported_context(abstract_syntax, list(transfer_syntaxes))
                else:
                    ae.add_supported_context(
                        abstract_syntax, list(transfer_syntaxes), scu_role=False, scp_role=scp_role
                    )
        handlers.extend(_merged_handlers(self._services))
        server_class: type[_NoDelayServer] = (
            _ReusePortServer if self._reuse_port else _NoDelayServer
        )
        if self._listen_socket is not None:
            shared = self._listen_socket
            server_class = type("_SharedSocketServer", (_NoDelayServer,), {"shared_socket": shared})
        separate_tls = self._tls is not None and self._tls_port is not None
        self._server = self._serve(
            self._port, handlers, server_class, None if separate_tls else self._tls
        )
        if separate_tls:
            # Several processes on one node (SO_REUSEPORT) each serve the TLS port too.
            tls_class = _ReusePortServer if self._reuse_port else _NoDelayServer
            self._tls_server = self._serve(self._tls_port or 0, handlers, tls_class, self._tls)
        self._refresher = asyncio.create_task(self._refresh_forever())
        log.info(
            "DICOM listener %s on %s:%s%s",
            self._ae_title,
            self._host,
            self.port,
            f" (TLS on {self.tls_port})" if separate_tls else " (TLS)" if self._tls else "",
        )
        unbound = self.gate.unbound_titles()
        if unbound:
            log.warning(
                "%d calling AE title(s) bound to neither a peer host nor a certificate", unbound
            )

    def _serve(
        self,
        port: int,
        handlers: list[Any],
        server_class: type[_NoDelayServer],
        tls: ssl.SSLContext | None,
    ) -> ThreadedAssociationServer:
        server = self._ae.make_server(
            (self._host, port), evt_handlers=handlers, server_class=server_class, ssl_context=tls
        )
        if isinstance(server, _NoDelayServer):
            server.gate = self.gate
        self._ae._servers.append(server)  # as start_server does: shutdown() removes it again
        threading.Thread(target=server.serve_forever, name="dicom-listener", daemon=True).start()
        return server

    @property
    def tls_port(self) -> int | None:
        """The separate TLS port listened on, when there is one."""
        if self._tls_server is None:
            return self._tls_port
        return int(self._tls_server.server_address[1])

    async def refresh_callers(self) -> None:
        self.gate.set_rules(await self._peers())
        if self._facility_of_ae is not None:
            self._ae_facility = dict(await self._facility_of_ae())

    def _group_of(self, calling: str) -> str:
        """What the association limit counts by: the facility, else the AE title itself."""
        return self._ae_facility.get(calling, f"AE {calling}")

    def _on_requested(self, event: evt.Event) -> None:
        """Refuse a peer that does not prove its calling AE title (the gate's one refusal,
        whatever the reason), then an association past the facility's limit:
        A-ASSOCIATE-RJ, transient, local limit exceeded (the peer retries later)."""
        primitive = event.assoc.requestor.primitive
        calling = str(getattr(primitive, "calling_ae_title", "") or "").strip()
        address = str(event.assoc.requestor.address)
        refusal = self.gate.check(calling, address, peer_certificate(event.assoc))
        if refusal is not None:
            log_refusal(refusal, calling, address)
            _reject(event.assoc, REJECT)
            return
        group = self._group_of(calling)
        if not self._take_place(event.assoc, group):
            log.warning(
                "association from %s at %s refused: %s already has %d open (the limit)",
                calling,
                event.assoc.requestor.address,
                group,
                self._max_per_facility,
            )
            _reject(event.assoc, (0x02, 0x03, 0x02))

    def _take_place(self, assoc: Any, group: str) -> bool:
        """Count one more association of ``group``, unless that passes its limit: in this
        process alone, or across processes when the listener has ``places``."""
        limit = self._max_per_facility
        place = None
        if limit is not None and self._places is not None:
            future = asyncio.run_coroutine_threadsafe(self._places.take(group, limit), self.loop)
            try:
                place = future.result(timeout=PLACE_TIMEOUT_S)
            except Exception as exc:
                future.cancel()
                log.warning(
                    "association places not known (%s): counted in this process",
                    type(exc).__name__,
                )
            else:
                if place is None:
                    return False
        with self._active_lock:
            active = self._active.get(group, 0)
            if place is None and limit is not None and active >= limit:
                return False
            self._active[group] = active + 1
            self._counted[id(assoc)] = group
            if place is not None:
                self._place_of[id(assoc)] = place
        return True

    def _on_closed(self, event: evt.Event) -> None:
        with self._active_lock:
            place = self._place_of.pop(id(event.assoc), None)
        if place is not None and self._places is not None:
            # Given back before this process counts it closed: the next association of the
            # facility, in any process, finds the place free.
            future = asyncio.run_coroutine_threadsafe(self._places.give_back(place), self.loop)
            try:
                future.result(timeout=PLACE_TIMEOUT_S)
            except Exception as exc:  # it goes stale and stops counting by itself
                log.warning("an association's place was not given back (%s)", type(exc).__name__)
        with self._active_lock:
            group = self._counted.pop(id(event.assoc), None)
            if group is not None:
                self._active[group] = max(0, self._active.get(group, 1) - 1)

    def active_associations(self) -> dict[str, int]:
        """Open associations per facility (or per AE title outside any facility)."""
        with self._active_lock:
            return {k: v for k, v in self._active.items() if v}

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(5)
            try:
                await self.refresh_callers()
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("the known AE titles wait: %s", type(exc).__name__)
                else:
                    log.exception("could not refresh the known AE titles")

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Stop accepting associations, let the open ones finish (for up to ``drain_s``: a
        sender mid-study completes it), then abort what is left."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        servers = [s for s in (self._server, self._tls_server) if s is not None]
        self._server = self._tls_server = None
        for server in servers:
            await asyncio.to_thread(server.shutdown)
        await asyncio.gather(*(_drain(server, drain_s) for server in servers))

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
        work: Coroutine[Any, Any, tuple[StoreStatus, str | None]]
        path = _received_path(event)
        refused = self._over_size(event, path)
        if refused is not None:
            DIMSE_STORES.labels(StoreStatus.OUT_OF_RESOURCES.name).inc()
            log.info("C-STORE from %s at %s: larger than %s bytes", calling, address, refused)
            return _status(
                StoreStatus.OUT_OF_RESOURCES,
                f"the data set is larger than the {refused} bytes this archive accepts "
                "in one C-STORE; nothing was stored",
            )
        if path is not None and self._store_file is not None:
            # Its size taken here, in the association's thread (the loop need not hand it on).
            try:
                size: int | None = path.stat().st_size
            except OSError:
                size = None  # the ingest says what became of the file
            work = _as_coroutine(self._store_file.store_file(calling, path, size))
        else:
            # Another handler (or a path-less event): the data set as bytes, with a meta header.
            data = path.read_bytes() if path is not None else event.encoded_dataset(True)
            work = self._store(calling, data)
        peer = f"{address}:{event.assoc.requestor.port}"
        future = asyncio.run_coroutine_threadsafe(audit.at_address(peer, work), self.loop)
        try:
            status, comment = future.result(timeout=self._timeout)
        except FutureTimeout:
            future.cancel()
            status, comment = StoreStatus.OUT_OF_RESOURCES, "storage did not answer in time"
        except Exception as exc:
            if is_unavailable(exc):
                log.warning(
                    "C-STORE from %s: a store is not answering (%s)", calling, type(exc).__name__
                )
                comment = "the archive's database or object store is not answering; send again"
            else:
                log.exception("C-STORE from %s at %s failed", calling, address)
                comment = "the archive could not store it"
            status = StoreStatus.OUT_OF_RESOURCES
        DIMSE_STORES.labels(status.name).inc()
        if status is not StoreStatus.SUCCESS:
            log.info("C-STORE from %s at %s: %s", calling, address, status.name)
        return _status(status, comment)

    def _over_size(self, event: evt.Event, path: Path | None) -> int | None:
        """The limit a received data set went past (its file is removed), or None."""
        limit = self._max_store_bytes
        if limit is None:
            return None
        if path is not None:
            if not _CappedSpoolFile.was_over_size(path):
                return None
            path.unlink(missing_ok=True)
            return limit
        dataset = getattr(event.request, "DataSet", None)
        if dataset is None:
            return None
        with dataset.getbuffer() as view:
            return limit if view.nbytes > limit else None


_T = TypeVar("_T")


def _merged_handlers(services: Sequence[DimseService]) -> list[tuple[Any, Callable[..., Any]]]:
    """The services' handlers; where several services answer one request (C-FIND of
    query/retrieve and of the worklist), one handler that hands each request to the
    service whose presentation contexts name its abstract syntax."""
    by_event: dict[Any, list[tuple[frozenset[str], Callable[..., Any]]]] = {}
    for service in services:
        syntaxes = frozenset(str(c[0]) for c in service.contexts)
        for event, handler in service.handlers:
            by_event.setdefault(event, []).append((syntaxes, handler))
    merged: list[tuple[Any, Callable[..., Any]]] = []
    for event, found in by_event.items():
        if len(found) == 1 or not isinstance(event, evt.InterventionEvent):
            merged.extend((event, handler) for _, handler in found)
        else:
            merged.append((event, functools.partial(_dispatch, found)))
    return merged


def _dispatch(found: list[tuple[frozenset[str], Callable[..., Any]]], event: evt.Event) -> Any:
    syntax = str(event.context.abstract_syntax)
    handler = next((h for syntaxes, h in found if syntax in syntaxes), found[0][1])
    return handler(event)


def on_loop(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, _T],
    timeout_s: float,
    event: evt.Event | None = None,
) -> _T:
    """Run a coroutine on the event loop from an association's thread and wait for it (the
    audit records the peer's address when ``event`` is given); canceled past ``timeout_s``.

    Raises
    ------
    concurrent.futures.TimeoutError
        It did not finish in time.
    """
    if event is not None:
        peer = event.assoc.requestor
        coro = audit.at_address(f"{peer.address}:{peer.port}", coro)
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        future.cancel()
        raise


def _reject(assoc: Any, why: tuple[int, int, int]) -> None:
    """As pynetdicom rejects on its own: the reject, then stop the DUL once it is sent."""
    assoc.acse.send_reject(*why)
    evt.trigger(assoc, evt.EVT_REJECTED, {})
    assoc.kill()


def _established(server: Any) -> list[Any]:
    """The server's associations that are established (not a connection that never asked)."""
    return [a for a in server.active_associations if a.is_established]


async def _drain(server: Any, drain_s: float) -> None:
    if _established(server):
        log.info("waiting for %d open association(s) to end", len(_established(server)))
    for _ in range(round(drain_s / _DRAIN_POLL_S)):
        if not _established(server):
            break
        await asyncio.sleep(_DRAIN_POLL_S)
    left = _established(server)
    if left:
        log.warning("aborting %d association(s) still open after %.0f s", len(left), drain_s)
    # And the connections that never asked for an association (probes, port scans).
    for assoc in server.active_associations:
        assoc.abort()


def _received_path(event: evt.Event) -> Path | None:
    try:
        return Path(event.dataset_path)
    except (AttributeError, TypeError):
        return None


async def _as_coroutine(
    awaitable: Awaitable[tuple[StoreStatus, str | None]],
) -> tuple[StoreStatus, str | None]:
    return await awaitable


def _stream_received_data_sets_to(spool_dir: Path, max_bytes: int | None = None) -> None:
    """pynetdicom's chunked mode: each received data set goes to a file, never to memory.

    pynetdicom writes it with ``NamedTemporaryFile`` in the default temporary directory; it
    is pointed at the spool directory beside the objects, so that storing the file is a
    rename on the same file system, and (``max_bytes``) capped: past it, the rest of the
    data set is read off the association and dropped, and the C-STORE refused. Both settings
    are process-wide in pynetdicom.
    """
    spool_dir.mkdir(parents=True, exist_ok=True)
    _config.STORE_RECV_CHUNKED_DATASET = True
    dimse_messages.NamedTemporaryFile = functools.partial(  # type: ignore[assignment]
        _CappedSpoolFile, max_bytes, dir=spool_dir, prefix="assoc-"
    )
    # Its file meta group, packed directly rather than built and encoded by pydicom.
    dimse_messages.create_file_meta = file_meta.FileMeta  # type: ignore[assignment]
    dimse_messages.write_file_meta_info = file_meta.write  # type: ignore[assignment]


def _encode_command_sets_directly() -> None:
    """Responses' command sets packed directly (`command_set`), process-wide in pynetdicom."""
    if dimse_messages.encode.__module__ != command_set.__name__:
        dimse_messages.encode = command_set.fast_encode(dimse_messages.encode)


class _CappedSpoolFile:
    """The file pynetdicom writes one received data set to, keeping at most ``max_bytes``:
    past them the file is emptied, what still arrives is dropped, and the file is marked
    over size for the C-STORE handler to refuse. pynetdicom uses ``write``, ``file.flush``,
    ``name`` and ``close``."""

    _over_size: ClassVar[set[str]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, max_bytes: int | None, **options: Any) -> None:
        self._file = NamedTemporaryFile(**options)  # noqa: SIM115 - pynetdicom closes it
        self.name = self._file.name
        self._max_bytes = max_bytes
        self._written = 0
        self._dropping = False

    @property
    def file(self) -> _CappedSpoolFile:
        return self

    def write(self, data: bytes) -> int:
        if self._dropping:
            return len(data)
        self._written += len(data)
        if self._max_bytes is not None and self._written > self._max_bytes:
            self._dropping = True
            self._file.seek(0)
            self._file.truncate()
            with self._lock:
                self._over_size.add(self.name)
            return len(data)
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @classmethod
    def was_over_size(cls, path: Path) -> bool:
        """Whether the file at ``path`` went past its limit (asked once per file)."""
        with cls._lock:
            name = str(path)
            if name in cls._over_size:
                cls._over_size.discard(name)
                return True
            return False


#: Told the Study Instance UID of each instance a C-STORE stored (a completed procedure
#: step may be waiting for it).
AfterStore = Callable[[str], Awaitable[None]]
#: How long that may take before the C-STORE is answered without it.
AFTER_STORE_S = 5.0


class IngestStoreHandler:
    """Store each received file through the one ingest path, for the caller's facility."""

    def __init__(self, ingestor: Ingestor, after: AfterStore | None = None) -> None:
        self._ingestor = ingestor
        self._after = after

    @property
    def spool_dir(self) -> Path:
        return self._ingestor.spool_dir

    async def __call__(self, calling: str, data: bytes) -> tuple[StoreStatus, str | None]:
        facility = await self._ingestor.facility_for_ae(calling)
        if facility is None:
            return StoreStatus.NOT_AUTHORIZED, f"calling AE title {calling} is not configured"
        return await _outcome(
            self._ingestor.ingest(
                data, facility=facility, via=ReceivedVia.DIMSE, sender_ae=calling
            ),
            self._after,
        )

    async def store_file(
        self, calling: str, path: Path, size_bytes: int | None = None
    ) -> tuple[StoreStatus, str | None]:
        facility = await self._ingestor.facility_for_ae(calling)
        if facility is None:
            return StoreStatus.NOT_AUTHORIZED, f"calling AE title {calling} is not configured"
        return await _outcome(
            self._ingestor.ingest_file(
                path,
                facility=facility,
                via=ReceivedVia.DIMSE,
                sender_ae=calling,
                size_bytes=size_bytes,
            ),
            self._after,
        )


async def _stored(after: AfterStore | None, stored: Stored) -> None:
    """Tell ``after`` of a stored instance; its failure does not undo the store (the
    stable-age rule completes the study all the same)."""
    if after is None or stored.held:
        return
    try:
        # Bounded: the instance is stored, its answer is not held up by the check.
        async with asyncio.timeout(AFTER_STORE_S):
            await after(stored.study_instance_uid)
    except Exception as exc:
        log.warning("after a C-STORE: study not checked for completeness (%s)", type(exc).__name__)


async def _outcome(
    work: Awaitable[Stored], after: AfterStore | None = None
) -> tuple[StoreStatus, str | None]:
    """The named status and error comment of one ingest."""
    try:
        stored = await work
    except InvalidDicom as exc:
        return StoreStatus.CANNOT_UNDERSTAND, str(exc)
    except DuplicateConflict as exc:
        return StoreStatus.DUPLICATE_SOP_INSTANCE, str(exc)
    except StudyMismatch as exc:
        return StoreStatus.DATA_SET_DOES_NOT_MATCH_SOP_CLASS, str(exc)
    except QuotaExceeded:
        # An error comment is at most 64 characters (LO).
        return StoreStatus.OUT_OF_RESOURCES, "daily intake limit reached; send after 00:00 UTC"
    await _stored(after, stored)
    if stored.identity_conflicts:
        return (
            StoreStatus.COERCION_OF_DATA_ELEMENTS,
            f"stored; differs from its study in {','.join(stored.identity_conflicts)}",
        )
    return StoreStatus.SUCCESS, None


def ingest_store_handler(
    ingestor: Ingestor, *, after: AfterStore | None = None
) -> IngestStoreHandler:
    """Store each received file through the one ingest path, for the caller's facility
    (and tell ``after`` of each stored instance's study)."""
    return IngestStoreHandler(ingestor, after)


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
