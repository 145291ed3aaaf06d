"""More DICOM listener processes on one node, accepting from the first one's socket.

pynetdicom runs associations in threads under one GIL, so one process uses one core. With
``--dicom-processes N`` the serving process opens the listening socket and starts N-1
``telemed serve --role dicom`` children that inherit it; every process accepts from the same
socket, and whichever is free first takes the next association. (SO_REUSEPORT spreads
connections by a hash of their addresses instead, and on one node it piles several
associations onto one process while another idles.) The children use the parent's database
and object store, are started again when one dies, and stop with it.
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


#: Waits before a dead listener process is started again: doubling from the first to the
#: longest, and back to the first once a process has lived for ``STEADY_S``.
FIRST_RESTART_S = 1.0
LONGEST_RESTART_S = 30.0
STEADY_S = 60.0
WATCH_S = 0.5


class DicomChildren:
    """The child listener processes of one node, started and stopped with its app; one that
    dies is started again (with backoff, should it keep dying)."""

    def __init__(self, settings: Settings, database_url: str, listen: socket.socket) -> None:
        self._settings = settings
        self._database_url = database_url
        self._listen = listen
        self._procs: list[subprocess.Popen[bytes]] = []
        self._watcher: asyncio.Task[None] | None = None
        #: Restarts so far, for the node's health answer and its log.
        self.restarts = 0

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

    async def _spawn(self) -> subprocess.Popen[bytes]:
        fd = self._listen.fileno()
        return await asyncio.to_thread(
            subprocess.Popen, self._command(), env=self._env(), pass_fds=(fd,)
        )

    async def start(self) -> None:
        os.set_inheritable(self._listen.fileno(), True)
        for _ in range(self._settings.dicom_processes - 1):
            self._procs.append(await self._spawn())
        log.info("started %d more DICOM listener process(es)", len(self._procs))
        if self._procs:
            self._watcher = asyncio.create_task(self._watch(), name="dicom-children")

    async def _watch(self) -> None:
        """Start again each child that exited, waiting longer each time it dies young."""
        loop = asyncio.get_running_loop()
        started = {n: loop.time() for n in range(len(self._procs))}
        waits = {n: FIRST_RESTART_S for n in range(len(self._procs))}
        while True:
            await asyncio.sleep(WATCH_S)
            for n, proc in enumerate(self._procs):
                code = proc.poll()
                if code is None:
                    continue
                lived = loop.time() - started[n]
                waits[n] = FIRST_RESTART_S if lived >= STEADY_S else waits[n]
                log.warning(
                    "DICOM listener process %d exited (%s) after %.0f s; another in %.0f s",
                    proc.pid,
                    code,
                    lived,
                    waits[n],
                )
                await asyncio.sleep(waits[n])
                await self._respawn(n)
                started[n] = loop.time()
                waits[n] = min(waits[n] * 2, LONGEST_RESTART_S)
                self.restarts += 1

    async def _respawn(self, n: int) -> None:
        """Start child ``n`` again; a stop meanwhile still finds it, to stop it."""
        spawning = asyncio.ensure_future(self._spawn())
        try:
            self._procs[n] = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            self._procs[n] = await spawning
            raise

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
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
