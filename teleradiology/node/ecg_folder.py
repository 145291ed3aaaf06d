"""A cart's ECG export folder, watched: each new ECG file is sent once to ``POST /api/v1/ecg``.

ECG carts (Contec, Healforce SCP-ECG, Philips XML, ...) write one file per ECG into a folder.
The watcher sends a file only once it is complete: not hidden or named as a temporary
(``.tmp``, ``.part``, ...: a file written then renamed is seen under its final name), and its
size and modification time unchanged for the settling time. What was sent is kept in a
ledger (``SPOOL/ecg.sqlite``) by path, size and SHA-256, so a restart sends nothing again; a
file the server refuses is copied aside with the reason (``SPOOL/ecg-refused/``) and not
tried again until its content changes; a dropped link or a 5xx is retried with backoff by the
forwarder's loop. The cart's folder is only read: files stay where the cart keeps them.

A WFDB record is its ``.hea`` header with the ``.dat`` signal file of the same name, sent
together.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from teleradiology.node.upload_client import Refused, UploadClient

log = logging.getLogger(__name__)

#: The largest ECG file the server takes (``POST /api/v1/ecg``); larger ones are set aside.
MAX_ECG_FILE_BYTES = 32 * 1024**2
#: Names carts and copy tools give a file while it is written, before it is renamed.
_TEMPORARY_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", "~")
#: What the server refuses for the token or the user, not for the file: tried again later.
_NOT_THE_FILES_FAULT = (401, 403)


class FileState(StrEnum):
    SENT = "sent"
    REFUSED = "refused"


@dataclass(frozen=True, kw_only=True)
class EcgFile:
    """A complete ECG file of the folder (with a WFDB header, its signal file)."""

    path: Path
    related: tuple[Path, ...]
    size_bytes: int
    mtime_ns: int
    sha256: str

    def read(self) -> list[tuple[str, bytes]]:
        return [(p.name, p.read_bytes()) for p in (self.path, *self.related)]


def _digest(paths: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(1024 * 1024):
                digest.update(block)
    return digest.hexdigest()


class EcgLedger:
    """What became of each file: sent (with the ECG the server made) or refused (why); by
    path, size and SHA-256. Blocking: call from a thread."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        with self._lock, self._db:
            # A sent file not recorded is sent again, and the server answers 200 for it;
            # synchronous = full keeps that to a crash between the answer and this row.
            self._db.execute("pragma journal_mode = wal")
            self._db.execute("pragma synchronous = full")
            self._db.execute(
                """create table if not exists ecg_file (
                       path text not null,
                       size integer not null,
                       sha256 text not null,
                       mtime_ns integer not null,
                       state text not null,
                       detail text not null,
                       at text not null,
                       primary key (path, size, sha256))"""
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def seen(self, path: Path, size: int, mtime_ns: int) -> bool:
        """Whether this file, as it is now (size and modification time), is done with."""
        with self._lock:
            row = self._db.execute(
                "select 1 from ecg_file where path = ? and size = ? and mtime_ns = ?",
                (str(path), size, mtime_ns),
            ).fetchone()
        return row is not None

    def done(self, found: EcgFile) -> bool:
        """Whether this content at this path is done with (its time may have changed)."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "update ecg_file set mtime_ns = ? where path = ? and size = ? and sha256 = ?",
                (found.mtime_ns, str(found.path), found.size_bytes, found.sha256),
            )
        return cursor.rowcount > 0

    def record(self, found: EcgFile, state: FileState, detail: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                """insert into ecg_file (path, size, sha256, mtime_ns, state, detail, at)
                   values (?, ?, ?, ?, ?, ?, ?)
                   on conflict (path, size, sha256) do update
                   set state = excluded.state, detail = excluded.detail, at = excluded.at,
                       mtime_ns = excluded.mtime_ns""",
                (
                    str(found.path),
                    found.size_bytes,
                    found.sha256,
                    found.mtime_ns,
                    state.value,
                    detail,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("select state, count(*) from ecg_file group by state")
            return {state: n for state, n in rows}


class EcgFolder:
    """The cart's folder and the node's ledger of it; the forwarder calls `send_once`."""

    def __init__(self, folder: Path, spool: Path, *, settle_s: float, urgency: str) -> None:
        self.folder = folder
        self.refused_dir = spool / "ecg-refused"
        self.refused_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = EcgLedger(spool / "ecg.sqlite")
        self.settle_s = settle_s
        self.urgency = urgency
        #: Each file's size and time when last looked at, and since when (monotonic).
        self._watched: dict[Path, tuple[int, int, float]] = {}
        #: Files (path, size, time) the ledger said are done: not asked again each pass.
        self._done: set[tuple[Path, int, int]] = set()

    def close(self) -> None:
        self.ledger.close()

    # -- finding complete files (blocking) -------------------------------------------------

    def complete_files(self) -> list[EcgFile]:
        """The files that are complete and not done with, oldest first."""
        found: list[EcgFile] = []
        now = time.monotonic()
        present: set[Path] = set()
        for path, related in self._candidates():
            present.add(path)
            try:
                ready = self._settled(path, related, now)
            except OSError:
                continue  # gone or unreadable now: looked at again on the next pass
            if ready is not None:
                found.append(ready)
        for gone in set(self._watched) - present:
            del self._watched[gone]
        self._done = {key for key in self._done if key[0] in present}
        found.sort(key=lambda f: f.mtime_ns)
        return found

    def _candidates(self) -> Iterator[tuple[Path, tuple[Path, ...]]]:
        """Every ECG file under the folder, a WFDB header with its signal file."""
        for root, dirs, names in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            here = Path(root)
            lower = {n.lower(): n for n in names}
            for name in sorted(names):
                if name.startswith((".", "~")) or name.lower().endswith(_TEMPORARY_SUFFIXES):
                    continue
                stem, _, suffix = name.lower().rpartition(".")
                if suffix == "dat" and f"{stem}.hea" in lower:
                    continue  # sent with its header
                signal = lower.get(f"{stem}.dat") if suffix == "hea" else None
                yield here / name, ((here / signal,) if signal else ())

    def _settled(self, path: Path, related: tuple[Path, ...], now: float) -> EcgFile | None:
        """The file when it has stopped changing for the settling time and is not done."""
        stats = [p.stat() for p in (path, *related)]
        size = sum(s.st_size for s in stats)
        mtime_ns = max(s.st_mtime_ns for s in stats)
        if size == 0 or (path, size, mtime_ns) in self._done:
            return None
        if self.ledger.seen(path, size, mtime_ns):
            self._done.add((path, size, mtime_ns))
            return None
        earlier = self._watched.get(path)
        if earlier is None or earlier[:2] != (size, mtime_ns):
            self._watched[path] = (size, mtime_ns, now)
            return None
        quiet_s = time.time() - mtime_ns / 1e9
        if now - earlier[2] < self.settle_s or quiet_s < self.settle_s:
            return None
        found = EcgFile(
            path=path,
            related=related,
            size_bytes=size,
            mtime_ns=mtime_ns,
            sha256=_digest((path, *related)),
        )
        return None if self.ledger.done(found) else found

    # -- sending ---------------------------------------------------------------------------

    async def send_once(self, client: UploadClient) -> int:
        """Send every complete new file; how many the server took. A dropped link ends the
        pass (UploadError, for the forwarder's backoff); a refused token raises Refused."""
        taken = 0
        for found in await asyncio.to_thread(self.complete_files):
            if found.size_bytes > MAX_ECG_FILE_BYTES:
                limit = MAX_ECG_FILE_BYTES // 1024**2
                await asyncio.to_thread(
                    self._set_aside, found, f"larger than the {limit} MB an ECG file may be"
                )
                continue
            try:
                files = await asyncio.to_thread(found.read)
            except OSError:
                continue
            if _changed(found, files):
                continue  # written again meanwhile: it settles again first
            try:
                status, answer = await client.send_ecg(files, urgency=self.urgency)
            except Refused as exc:
                if exc.status in _NOT_THE_FILES_FAULT:
                    raise
                await asyncio.to_thread(self._set_aside, found, f"HTTP {exc.status}: {exc}")
                continue
            made = str(answer.get("sop_instance_uid", ""))
            await asyncio.to_thread(self.ledger.record, found, FileState.SENT, made)
            log.info("ECG file sent (ECG %s%s)", made, ", sent before" if status == 200 else "")
            taken += 1
        return taken

    def _set_aside(self, found: EcgFile, reason: str) -> None:
        """Copy a refused file (and its signal file) aside with why; the ledger keeps it
        from being sent again."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for path in (found.path, *found.related):
            shutil.copy2(path, self.refused_dir / f"{stamp}-{path.name}")
        note = self.refused_dir / f"{stamp}-{found.path.name}.txt"
        note.write_text(
            f"file: {found.path}\nsha256: {found.sha256}\nrefused: {reason}\n"
            "It is not sent again unless it changes; send a corrected file.\n",
            "utf-8",
        )
        self.ledger.record(found, FileState.REFUSED, reason)
        log.error("an ECG file was refused and set aside in %s: %s", self.refused_dir, reason)


def _changed(found: EcgFile, files: list[tuple[str, bytes]]) -> bool:
    digest = hashlib.sha256()
    for _, data in files:
        digest.update(data)
    return sum(len(d) for _, d in files) != found.size_bytes or digest.hexdigest() != found.sha256
