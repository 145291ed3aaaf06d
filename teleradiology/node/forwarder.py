"""``telemed forward``: a store-and-forward node for a township or village.

It takes C-STORE from the local modalities and ECG carts, writes each file durably into a
spool folder before answering success, and forwards the spool to the county server with the
resumable upload, one session per study. It outlives link outages and its own restarts: the
spool folder is its whole state (the files, and a small SQLite file per node), and a file
leaves the spool only after the server confirmed it stored.

It can also watch a cart's ECG export folder (``--ecg-folder``) and send each new ECG file
once (`teleradiology.node.ecg_folder`).

Spool layout::

    SPOOL/studies/<Study Instance UID>/<SOP Instance UID>.dcm   waiting to be confirmed
    SPOOL/rejected/<SOP Instance UID>.dcm and .txt               refused by the server, why
    SPOOL/state.sqlite                                           per study: session, quiet clock
    SPOOL/ecg.sqlite                                             the ECG files sent or refused
    SPOOL/ecg-refused/<time>-<name> and .txt                     ECG files refused, why
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from teleradiology.core.dicom import instance_identity
from teleradiology.core.statuses import StoreStatus
from teleradiology.node.ecg_folder import EcgFolder
from teleradiology.node.receiver import StoreReceiver
from teleradiology.node.upload_client import (
    ExitCode,
    LocalInstance,
    Refused,
    Retry,
    UploadClient,
    UploadError,
    check_server_url,
    file_sha256,
)

log = logging.getLogger(__name__)

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


@dataclass(frozen=True, kw_only=True)
class ForwarderSettings:
    spool_dir: Path
    server_url: str
    token: str
    #: Calling AE titles of the local modalities and carts allowed to send.
    accept_ae: tuple[str, ...]
    ae_title: str = "TELEMED"
    host: str = "0.0.0.0"  # noqa: S104 - the modalities are on the local network
    port: int = 11112
    #: A study with no new instance for this long is committed (sent as complete).
    stable_age_s: float = 30.0
    #: How often the spool is looked at when nothing wakes the forwarder.
    poll_s: float = 2.0
    #: Longest wait between attempts while the county server cannot be reached.
    max_backoff_s: float = 30.0
    concurrency: int = 3
    urgency: str = "routine"
    #: Plain http to a server off this machine (a link encrypted otherwise, such as a VPN).
    allow_http: bool = False
    #: A cart's ECG export folder: each new ECG file in it is sent once.
    ecg_folder: Path | None = None
    #: An ECG file unchanged for this long is complete.
    ecg_settle_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.accept_ae and self.ecg_folder is None:
            raise ValueError(
                "give at least one calling AE title to accept (--accept-ae), or a cart's ECG "
                "export folder to watch (--ecg-folder)"
            )
        if self.ecg_folder is not None and not self.ecg_folder.is_dir():
            raise ValueError(f"--ecg-folder {self.ecg_folder}: no such folder")
        if self.ecg_settle_s <= 0:
            raise ValueError("the ECG settling time must be positive")
        if not self.token:
            raise ValueError("a clinic user's token is needed (--token or TELEMED_TOKEN)")
        check_server_url(self.server_url, allow_http=self.allow_http)
        if self.stable_age_s <= 0 or self.poll_s <= 0 or self.max_backoff_s <= 0:
            raise ValueError("stable age, poll interval and backoff must be positive")
        if self.urgency not in ("routine", "urgent"):
            raise ValueError("urgency must be 'routine' or 'urgent'")


@dataclass(frozen=True, kw_only=True)
class StudyState:
    study_instance_uid: str
    generation: int
    last_received: float
    session_id: str | None
    pending_commit: bool


class SpoolConflict(Exception):
    """The spool holds this SOP Instance UID with other content."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The forwarder's folder: spooled files and the per-study state (blocking; call from a
    thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.studies_dir = root / "studies"
        self.rejected_dir = root / "rejected"
        for folder in (root, self.studies_dir, self.rejected_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "state.sqlite", check_same_thread=False)
        with self._lock, self._db:
            # The files are the durable part (fsync before C-STORE success); this state is a
            # quiet clock and a session key, and losing its last change costs one retry.
            self._db.execute("pragma journal_mode = wal")
            self._db.execute("pragma synchronous = normal")
            self._db.execute(
                """create table if not exists study (
                       study_instance_uid text primary key,
                       generation integer not null default 0,
                       last_received real not null,
                       session_id text,
                       pending_commit integer not null default 1)"""
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- files --------------------------------------------------------------------------

    def path_of(self, study_uid: str, sop_uid: str) -> Path:
        for uid in (study_uid, sop_uid):
            if len(uid) > 64 or not _UID.fullmatch(uid):
                raise ValueError(f"{uid[:80]!r} is not a DICOM UID")
        return self.studies_dir / study_uid / f"{sop_uid}.dcm"

    def write(self, study_uid: str, sop_uid: str, data: bytes) -> bool:
        """Write one file durably (fsync of the file and its folder); False when the same
        bytes were already spooled.

        Raises
        ------
        SpoolConflict
            The same SOP Instance UID is spooled with other bytes; the first copy stays.
        """
        path = self.path_of(study_uid, sop_uid)
        if path.exists():
            if path.read_bytes() == data:
                return False
            raise SpoolConflict(f"instance {sop_uid} is already spooled with other content")
        folder = path.parent
        if not folder.exists():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_dir(folder.parent)
        tmp = folder / f".{sop_uid}.{threading.get_ident()}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
        return True

    def study_uids(self) -> list[str]:
        """Studies with spooled files, oldest folder first."""
        found = [d for d in self.studies_dir.iterdir() if d.is_dir()]
        found.sort(key=lambda d: d.stat().st_mtime)
        return [d.name for d in found]

    def files(self, study_uid: str) -> list[Path]:
        folder = self.studies_dir / study_uid
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix == ".dcm")

    def remove(self, path: Path) -> None:
        """Delete a file the server confirmed; the folder goes when empty."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _fsync_dir(path.parent)

    def remove_study_folder(self, study_uid: str) -> None:
        folder = self.studies_dir / study_uid
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty

    def reject(self, path: Path, reason: str) -> None:
        """Keep a file the server refused, with the reason, out of the forwarding."""
        target = self.rejected_dir / path.name
        shutil.move(path, target)
        target.with_suffix(".txt").write_text(reason + "\n", "utf-8")
        _fsync_dir(self.rejected_dir)

    def count(self) -> int:
        """Files waiting in the spool."""
        return sum(1 for _ in self.studies_dir.glob("*/*.dcm"))

    # -- state --------------------------------------------------------------------------

    def received(self, study_uid: str) -> None:
        """A file of the study arrived now: its quiet clock restarts, a commit is due."""
        with self._lock, self._db:
            self._db.execute(
                """insert into study (study_instance_uid, last_received, pending_commit)
                   values (?, ?, 1)
                   on conflict (study_instance_uid) do update
                   set last_received = excluded.last_received, pending_commit = 1""",
                (study_uid, time.time()),
            )

    def state(self, study_uid: str) -> StudyState:
        with self._lock:
            row = self._db.execute(
                """select generation, last_received, session_id, pending_commit
                   from study where study_instance_uid = ?""",
                (study_uid,),
            ).fetchone()
        if row is None:
            # Files without state (the state was lost): treat them as just received.
            self.received(study_uid)
            return self.state(study_uid)
        return StudyState(
            study_instance_uid=study_uid,
            generation=row[0],
            last_received=row[1],
            session_id=row[2],
            pending_commit=bool(row[3]),
        )

    def pending(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "select study_instance_uid from study where pending_commit = 1"
            ).fetchall()
        return [r[0] for r in rows]

    def set_session(self, study_uid: str, session_id: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "update study set session_id = ? where study_instance_uid = ?",
                (session_id, study_uid),
            )

    def next_generation(self, study_uid: str) -> None:
        """The study's session is committed: later instances go in a new session."""
        with self._lock, self._db:
            self._db.execute(
                """update study set generation = generation + 1, session_id = null
                   where study_instance_uid = ?""",
                (study_uid,),
            )

    def committed(self, study_uid: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                """update study set generation = generation + 1, session_id = null,
                   pending_commit = 0 where study_instance_uid = ?""",
                (study_uid,),
            )


class LinkDown(Exception):
    """The county server cannot be reached now; try again later."""


class Forwarder:
    """The C-STORE listener into the spool, and the loop that forwards the spool."""

    def __init__(self, settings: ForwarderSettings) -> None:
        self.settings = settings
        self.spool = Spool(settings.spool_dir)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._hashes: dict[Path, tuple[int, int, str]] = {}
        self._listener: StoreReceiver | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.ecg: EcgFolder | None = None
        if settings.ecg_folder is not None:
            self.ecg = EcgFolder(
                settings.ecg_folder,
                settings.spool_dir,
                settle_s=settings.ecg_settle_s,
                urgency=settings.urgency,
            )
        self._ecg_task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        #: Set when the last pass found the server unreachable (for status and tests).
        self.link_down = False

    @property
    def port(self) -> int:
        return self._listener.port if self._listener else self.settings.port

    async def start(self) -> None:
        s = self.settings

        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)
        )
        if s.accept_ae:
            self._listener = StoreReceiver(
                store=self._store,
                accept_ae=s.accept_ae,
                ae_title=s.ae_title,
                host=s.host,
                port=s.port,
            )
            await self._listener.start()
        self._loop_task = asyncio.create_task(
            self._keep_forwarding(self.forward_once, self._wake), name="forwarder"
        )
        if self.ecg is not None:
            self._ecg_task = asyncio.create_task(
                self._keep_forwarding(self.send_ecg_once, asyncio.Event()), name="ecg folder"
            )
            log.info("watching the ECG folder %s; %s", s.ecg_folder, self.ecg.ledger.counts())
        log.info(
            "forwarding %s to %s; spool %s holds %d file(s)",
            s.ae_title,
            s.server_url,
            s.spool_dir,
            await asyncio.to_thread(self.spool.count),
        )

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        for task in (self._loop_task, self._ecg_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop_task = self._ecg_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await asyncio.to_thread(self.spool.close)
        if self.ecg is not None:
            await asyncio.to_thread(self.ecg.close)

    async def _store(self, calling: str, data: bytes) -> tuple[StoreStatus, str | None]:
        """Durable in the spool before success goes back to the modality."""
        ident = await asyncio.to_thread(instance_identity, data)
        if ident is None:
            return StoreStatus.CANNOT_UNDERSTAND, "not a DICOM instance with study and SOP UIDs"
        try:
            await asyncio.to_thread(
                self.spool.write, ident.study_instance_uid, ident.sop_instance_uid, data
            )
            await asyncio.to_thread(self.spool.received, ident.study_instance_uid)
        except ValueError as exc:
            return StoreStatus.CANNOT_UNDERSTAND, str(exc)
        except SpoolConflict as exc:
            return StoreStatus.DUPLICATE_SOP_INSTANCE, str(exc)
        except OSError as exc:
            log.error("cannot write to the spool %s: %s", self.settings.spool_dir, exc.strerror)
            return StoreStatus.OUT_OF_RESOURCES, "the spool cannot be written (disk full?)"
        self._wake.set()
        return StoreStatus.SUCCESS, None

    async def _keep_forwarding(
        self, one_pass: Callable[[], Awaitable[None]], wake: asyncio.Event
    ) -> None:
        """Run ``one_pass`` until stopped: again when ``wake`` is set or the poll interval
        passed, after a backoff while the server cannot be reached."""
        backoff = 0.0
        down = False  # this loop's own view: the other may not have called the server
        while not self._stop.is_set():
            try:
                await one_pass()
                backoff = 0.0
                self.link_down = down = False
            except Refused as exc:
                backoff = self.settings.max_backoff_s
                log.error("the county server refused the forwarder (HTTP %s): %s", exc.status, exc)
            except LinkDown as exc:
                backoff = min(self.settings.max_backoff_s, max(0.5, backoff * 2))
                if not down:
                    log.warning("county server unreachable (%s); retrying", exc)
                self.link_down = down = True
            except Exception:
                backoff = self.settings.max_backoff_s
                log.exception("forwarding failed; retrying in %.0f s", backoff)
            wake.clear()
            # While the link is down, new files do not shorten the backoff; only stop does.
            event = self._stop if backoff else wake
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff or self.settings.poll_s):
                    await event.wait()

    def _client(self) -> UploadClient:
        if self._http is None:
            raise RuntimeError("the forwarder is not started")
        # Short retries: the forwarding loop itself is the long retry, with its backoff.
        return UploadClient(
            self._http,
            self.settings.server_url,
            self.settings.token,
            retry=Retry(give_up_s=3.0, first_s=0.2, max_s=1.0),
        )

    async def send_ecg_once(self) -> None:
        """One look at the ECG folder: send each complete new file."""
        if self.ecg is None:
            return
        try:
            await self.ecg.send_once(self._client())
        except Refused as exc:
            raise Refused(f"the county server refused the token: {exc}", exc.status) from None
        except UploadError as exc:
            if exc.code is ExitCode.UNREACHABLE:
                raise LinkDown(str(exc)) from None
            raise

    async def forward_once(self) -> None:
        """One pass over the spool: upload what the server lacks, commit quiet studies."""
        client = self._client()
        studies = await asyncio.to_thread(self.spool.study_uids)
        pending = await asyncio.to_thread(self.spool.pending)
        for study_uid in list(dict.fromkeys([*studies, *pending])):
            if self._stop.is_set():
                return
            try:
                await self._forward_study(client, study_uid)
            except UploadError as exc:
                if exc.code is ExitCode.UNREACHABLE:
                    raise LinkDown(str(exc)) from None
                raise

    def _instances(self, files: list[Path]) -> Iterator[LocalInstance]:
        for path in files:
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            cached = self._hashes.get(path)
            if cached is None or cached[:2] != (stat.st_size, stat.st_mtime_ns):
                size, sha = file_sha256(path)
                cached = (size, stat.st_mtime_ns, sha)
                self._hashes[path] = cached
            yield LocalInstance(
                path=path, sop_instance_uid=path.stem, size_bytes=cached[0], sha256=cached[2]
            )

    def _key(self, state: StudyState) -> str:
        return f"forward:{self.settings.ae_title}:{state.study_instance_uid}:{state.generation}"

    async def _forward_study(self, client: UploadClient, study_uid: str) -> None:
        spool = self.spool
        state = await asyncio.to_thread(spool.state, study_uid)
        files = await asyncio.to_thread(spool.files, study_uid)
        session_id = state.session_id
        if files:
            instances = await asyncio.to_thread(lambda: list(self._instances(files)))
            try:
                session = await client.open(
                    key=self._key(state),
                    study_instance_uid=study_uid,
                    instances=instances,
                    urgency=self.settings.urgency,
                )
            except Refused as exc:
                if exc.status == 409 and "already committed" in str(exc):
                    # Instances after a commit (a late series): they go in a new session.
                    await asyncio.to_thread(spool.next_generation, study_uid)
                    self._wake.set()
                    return
                raise
            session_id = session["id"]
            if session_id != state.session_id:
                await asyncio.to_thread(spool.set_session, study_uid, session_id)
            missing = {m["sop_instance_uid"]: m for m in session["missing"]}
            for inst in instances:
                if inst.sop_instance_uid not in missing:
                    # In the manifest and not missing: the server holds it.
                    await asyncio.to_thread(spool.remove, inst.path)
            await self._send(
                client, session_id, [i for i in instances if i.sop_instance_uid in missing], missing
            )
        if await asyncio.to_thread(spool.files, study_uid):
            return
        state = await asyncio.to_thread(spool.state, study_uid)  # a file may have come since
        if not state.pending_commit or session_id is None:
            # Nothing (more) to commit: everything was committed, or refused and set aside.
            if state.pending_commit:
                await asyncio.to_thread(spool.committed, study_uid)
            await asyncio.to_thread(spool.remove_study_folder, study_uid)
            return
        if time.time() - state.last_received < self.settings.stable_age_s:
            return
        await self._commit(client, study_uid, session_id)

    async def _send(
        self,
        client: UploadClient,
        session_id: str,
        todo: list[LocalInstance],
        missing: dict[str, dict[str, Any]],
    ) -> None:
        queue: asyncio.Queue[LocalInstance] = asyncio.Queue()
        for inst in todo:
            queue.put_nowait(inst)

        async def worker() -> None:
            while not queue.empty() and not self._stop.is_set():
                inst = queue.get_nowait()
                received = missing[inst.sop_instance_uid].get("received") or []
                try:
                    await client.send(session_id, inst, received=received)
                except Refused as exc:
                    await self._refused(client, session_id, inst, exc)
                    continue
                except UploadError as exc:
                    if exc.code is ExitCode.BAD_INPUT:  # the spooled file changed or vanished
                        self._hashes.pop(inst.path, None)
                        continue
                    raise
                await asyncio.to_thread(self.spool.remove, inst.path)

        workers = [asyncio.create_task(worker()) for _ in range(self.settings.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _refused(
        self, client: UploadClient, session_id: str, inst: LocalInstance, exc: Refused
    ) -> None:
        if exc.status in (401, 403):
            raise Refused(f"the county server refused the token: {exc}", exc.status)
        log.error("the county server refused instance %s: %s", inst.sop_instance_uid, exc)
        await asyncio.to_thread(self.spool.reject, inst.path, f"HTTP {exc.status}: {exc}")
        with contextlib.suppress(Refused):
            await client.remove(session_id, inst.sop_instance_uid)

    async def _commit(self, client: UploadClient, study_uid: str, session_id: str) -> None:
        try:
            await client.commit(session_id)
        except Refused as exc:
            if exc.status == 404:
                # The session is gone (the server's data was reset): nothing left to commit.
                await asyncio.to_thread(self.spool.committed, study_uid)
                return
            if exc.status != 409:
                raise
            # Instances the manifest lists and the spool no longer has: taken out, then again.
            status = await client.status(session_id)
            held = {p.stem for p in await asyncio.to_thread(self.spool.files, study_uid)}
            for item in status["missing"]:
                if item["sop_instance_uid"] not in held:
                    with contextlib.suppress(Refused):
                        await client.remove(session_id, item["sop_instance_uid"])
            self._wake.set()
            return
        await asyncio.to_thread(self.spool.committed, study_uid)
        await asyncio.to_thread(self.spool.remove_study_folder, study_uid)
        log.info("study committed to the county server (session %s)", session_id)


async def run_forwarder(settings: ForwarderSettings) -> None:
    """Run until SIGINT or SIGTERM."""
    import signal

    forwarder = Forwarder(settings)
    await forwarder.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await forwarder.stop()
