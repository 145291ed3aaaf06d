"""The ceiling of pynetdicom's receive path: a C-STORE SCP that stores nothing.

It accepts every storage SOP class in every transfer syntax, with the listener's PDU size
and TCP_NODELAY, answers success to each C-STORE and drops the data set (kept in memory, or
streamed to a file and removed with ``--chunked``, as the service receives). Run it, send to
it with storescu (one association, then several), and compare with ``bench/ingest.py``: what
the service spends beyond this is ours; this much is pynetdicom's.

    .venv/bin/python bench/bare_scp.py --port 11199 [--chunked] [--processes 2]
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Any

from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from teleradiology.dimse.listener import ALL_TRANSFER_SYNTAXES


class _NoDelay(ThreadedAssociationServer):
    shared: socket.socket | None = None

    def server_bind(self) -> None:
        if self.shared is None:
            super().server_bind()
            return
        if self.socket is not None:
            self.socket.close()
        self.socket = self.shared
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        if self.shared is None:
            super().server_activate()

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


def _on_store(event: evt.Event) -> int:
    path = getattr(event, "dataset_path", None)
    if path is not None:
        os.unlink(path)
    return 0x0000


def serve(port: int, chunked: bool, shared: socket.socket | None) -> None:
    _config.STORE_RECV_CHUNKED_DATASET = chunked
    ae = AE(ae_title="TELEMED")
    ae.maximum_associations = 32
    ae.maximum_pdu_size = 4 * 1024 * 1024
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    server_class = type("_Server", (_NoDelay,), {"shared": shared})
    server = ae.make_server(
        ("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, _on_store)], server_class=server_class
    )
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=11199)
    parser.add_argument("--chunked", action="store_true", help="stream data sets to files")
    parser.add_argument("--processes", type=int, default=1, help="processes on one socket")
    args = parser.parse_args()
    if args.processes == 1:
        serve(args.port, args.chunked, None)
        return
    listen = socket.create_server(("127.0.0.1", args.port), backlog=128)
    for _ in range(args.processes - 1):
        if os.fork() == 0:
            serve(args.port, args.chunked, listen)
            return
    serve(args.port, args.chunked, listen)


if __name__ == "__main__":
    main()
