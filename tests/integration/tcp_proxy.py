"""A TCP proxy for fault tests: forwards to a server until it is cut, then refuses."""

from __future__ import annotations

import asyncio
import contextlib
import random


class TcpProxy:
    """Listens on a loopback port and forwards each connection to ``target``.

    ``cut()`` closes every open connection and stops listening (new connections are refused);
    ``restore()`` listens on the same port again. ``freeze()`` is a black hole: connections stay
    open and new ones are accepted, but nothing is forwarded until ``thaw()``.
    ``drop_one()`` resets one open connection and goes on forwarding the others.
    ``cut_after_bytes`` cuts by itself once that many bytes went from clients to the server, so
    a test can cut in the middle of a transfer.
    """

    def __init__(self, target_host: str, target_port: int, *, unix_path: str | None = None) -> None:
        self._target = (target_host, target_port)
        #: Forward to this Unix socket instead (a PostgreSQL that listens only on its socket).
        self._unix_path = unix_path
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.upstream_bytes = 0
        self.cut_after_bytes: int | None = None
        #: Connections reset by drop_one.
        self.dropped = 0
        self.was_cut = asyncio.Event()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def restore(self) -> None:
        await self.start()

    def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.was_cut.set()

    def drop_one(self, rng: random.Random) -> bool:
        """Reset one open connection, chosen by ``rng`` (the proxy keeps listening); False
        when none is open."""
        if not self._writers:
            return False
        writer = rng.choice(sorted(self._writers, key=id))
        writer.transport.abort()
        self.dropped += 1
        return True

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        self.cut()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()
        try:
            if self._unix_path is not None:
                up_reader, up_writer = await asyncio.open_unix_connection(self._unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer, upstream=True),
            self._pipe(up_reader, writer, upstream=False),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while chunk := await reader.read(16 * 1024):
                if upstream:
                    self.upstream_bytes += len(chunk)
                    if self.cut_after_bytes is not None and (
                        self.upstream_bytes >= self.cut_after_bytes
                    ):
                        self.cut_after_bytes = None
                        self.cut()
                        return
                await self._flowing.wait()
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
