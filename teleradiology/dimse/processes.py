"""More DICOM listener processes on one node, accepting from the first one's socket.

pynetdicom runs associations in threads under one GIL, so one process uses one core. With
``--dicom-processes N`` the serving process opens the listening socket and starts N-1
``telemed serve --role dicom`` children that inherit it; every process accepts from the same
socket, and whichever is free first takes the next association. (SO_REUSEPORT spreads
connections by a hash of their addresses instead, and on one node it piles several
associations onto one process while another idles.) The children use the parent's database
and object store, and stop with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys

from teleradiology.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0


class DicomChildren:
    """The child listener processes of one node, started and stopped with its app."""

    def __init__(self, settings: Settings, database_url: str, listen: socket.socket) -> None:
        self._settings = settings
        self._database_url = database_url
        self._listen = listen
        self._procs: list[subprocess.Popen[bytes]] = []

    def _command(self) -> list[str]:
        s = self._settings
        command = [sys.executable, "-m", "teleradiology", "--data-dir", str(s.data_dir)]
        command += ["serve", "--role", "dicom", "--http-host", "127.0.0.1", "--http-port", "0"]
        command += ["--dicom-aet", s.dicom_aet]
        return command

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self._database_url,
            STORAGE_URL=self._settings.objects_url,
            TELEMED_DICOM_LISTEN_FD=str(self._listen.fileno()),
        )
        env.pop("TELEMED_DICOM_PROCESSES", None)
        return env

    async def start(self) -> None:
        fd = self._listen.fileno()
        os.set_inheritable(fd, True)
        for _ in range(self._settings.dicom_processes - 1):
            proc = await asyncio.to_thread(
                subprocess.Popen, self._command(), env=self._env(), pass_fds=(fd,)
            )
            self._procs.append(proc)
        log.info("started %d more DICOM listener process(es)", len(self._procs))

    async def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                await asyncio.to_thread(proc.wait, STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("DICOM listener process %d did not stop; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.to_thread(proc.wait)
        self._procs.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]


def dicom_children(settings: Settings, database_url: str, listen: socket.socket) -> DicomChildren:
    """The N-1 further listener processes ``settings.dicom_processes`` asks for."""
    return DicomChildren(settings, database_url, listen)
