"""A browser that closes the page ends its event stream: the service says nothing about it
(it used to log a 500 with a traceback at the next write)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import asyncpg

from tests.e2e.harness import DEMO_NETWORK, running_service, service_env, telemed


async def _notify_clinic(database_url: str, code: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "insert into notification (kind, facility_id, audience)"
            " select 'report', id, 'clinic' from facility where code = $1",
            code,
        )
    finally:
        await conn.close()


def test_a_closed_event_stream_ends_without_an_error(database_url: str, tmp_path: Path) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env) as service:
        token = service.token("xlwd.clinic")
        host, port = service.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as browser:
            browser.sendall(
                f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            received = b""
            while b"retry:" not in received:
                received += browser.recv(4096)
            assert received.startswith(b"HTTP/1.1 200")
        # the page is gone; what the clinic is told next is written to a closed connection
        for _ in range(2):
            asyncio.run(_notify_clinic(database_url, "HB-XL-WD"))
            time.sleep(1.5)
        log = service.log()
    assert "unhandled error" not in log, log
    assert "Traceback" not in log, log
