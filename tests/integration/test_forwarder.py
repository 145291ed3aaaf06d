"""The township forwarder: C-STORE into a durable spool, forwarded through link cuts and restarts.

The forwarder talks to the county server through a TCP proxy that the tests cut and restore.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE, StoragePresentationContexts

from teleradiology.http.context import SETTINGS
from teleradiology.node.forwarder import Forwarder, ForwarderSettings
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.tcp_proxy import TcpProxy
from worker.runner import sweep_once

TOWNSHIP_AE = "HBXL01"  # 新里镇卫生院's DR, sending to its own forwarder


@pytest.fixture
async def proxy(api: Api) -> AsyncIterator[TcpProxy]:
    server = api.client.server
    proxy = TcpProxy(str(server.host), int(server.port or 0))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


def forwarder_settings(api: Api, proxy: TcpProxy, spool: Path) -> ForwarderSettings:
    return ForwarderSettings(
        spool_dir=spool,
        server_url=proxy.url,
        token=api.tokens["xl.clinic"],
        accept_ae=(TOWNSHIP_AE,),
        ae_title="XLFWD",
        host="127.0.0.1",
        port=0,
        stable_age_s=1.0,
        poll_s=0.2,
        max_backoff_s=0.5,
    )


def c_store(port: int, instances: list[bytes]) -> list[int]:
    """Send instances like a modality does (blocking); the status of each."""
    ae = AE(ae_title=TOWNSHIP_AE)
    ae.requested_contexts = StoragePresentationContexts
    assoc = ae.associate("127.0.0.1", port, ae_title="XLFWD")
    assert assoc.is_established
    # As a modality on a LAN would: no Nagle stall on each small C-STORE.
    sock = assoc.dul.socket.socket if assoc.dul.socket else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    statuses = []
    try:
        for data in instances:
            status = assoc.send_c_store(pydicom.dcmread(io.BytesIO(data)))
            statuses.append(int(status.Status))
    finally:
        assoc.release()
    return statuses


async def eventually(check: Callable[[], object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout_s} s")
        await asyncio.sleep(0.1)


async def stored(api: Api) -> int:
    n: int = await api.pool.fetchval("select count(*) from instance")
    return n


async def committed(api: Api) -> bool:
    state = await api.pool.fetchval("select state from upload_session")
    return bool(state == "committed")


async def test_a_200_instance_study_survives_a_cut_link_and_arrives_exactly_once(
    api: Api, proxy: TcpProxy, tmp_path: Path
) -> None:
    study = make_study(count=200, size=32, patient_id="XL-200")
    forwarder = Forwarder(forwarder_settings(api, proxy, tmp_path / "spool"))
    await forwarder.start()
    try:
        # The link drops by itself part-way through the upload.
        proxy.cut_after_bytes = 150_000
        statuses = await asyncio.to_thread(c_store, forwarder.port, study)
        # The modality got success for all 200: each was durable in the spool first.
        assert statuses == [0] * 200
        async with asyncio.timeout(30):
            await proxy.was_cut.wait()
        at_cut = await stored(api)
        assert 0 < at_cut < 200

        # The outage: nothing moves, the forwarder keeps what it has, the study stays open.
        await asyncio.sleep(2)
        assert forwarder.link_down
        assert await stored(api) == at_cut
        # Each instance is stored at the county or still spooled; an upload the server
        # stored as the link dropped, before its answer got through, is in both (and is sent
        # again: the server keeps it once).
        in_flight = forwarder.settings.concurrency
        assert 200 - at_cut <= forwarder.spool.count() <= 200 - at_cut + in_flight
        assert not await committed(api)
        assert await sweep_once(api.pool, api.app[SETTINGS]) == 0

        await proxy.restore()
        await eventually(lambda: committed(api))
    finally:
        await forwarder.stop()

    # Every instance exactly once, nothing refused, one study, one case.
    assert await stored(api) == 200
    assert await api.pool.fetchval("select count(distinct object_key) from instance") == 200
    assert await api.pool.fetchval("select count(*) from ingest_rejection") == 0
    study_row = await api.pool.fetchrow("select num_instances, ready_at from study")
    assert study_row is not None
    assert study_row["num_instances"] == 200
    assert study_row["ready_at"] is not None
    assert await api.pool.fetchval("select count(*) from upload_item where stored_at is null") == 0
    assert await sweep_once(api.pool, api.app[SETTINGS]) == 1
    assert await sweep_once(api.pool, api.app[SETTINGS]) == 0
    assert await api.pool.fetchval("select count(*) from reading_case") == 1
    # The spool is empty: every file left it after the server confirmed it.
    assert not list((tmp_path / "spool" / "studies").rglob("*.dcm"))
    assert not list((tmp_path / "spool" / "studies").iterdir())


async def test_the_spool_outlives_a_restart_of_the_forwarder_while_the_link_is_down(
    api: Api, proxy: TcpProxy, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    study = make_study(count=30, size=32, patient_id="XL-030")
    proxy.cut()  # the county is unreachable from the start
    first = Forwarder(forwarder_settings(api, proxy, spool))
    await first.start()
    try:
        statuses = await asyncio.to_thread(c_store, first.port, study[:20])
        assert statuses == [0] * 20
        # The same instance sent twice is spooled once; other bytes under its UID are refused.
        assert await asyncio.to_thread(c_store, first.port, study[:1]) == [0]
        ds = pydicom.dcmread(io.BytesIO(study[0]))
        ds.PatientName = "改^名"
        changed = io.BytesIO()
        ds.save_as(changed, enforce_file_format=True)
        assert await asyncio.to_thread(c_store, first.port, [changed.getvalue()]) == [0x0111]
    finally:
        await first.stop()  # the township's PC is switched off
    assert len(list(spool.rglob("*.dcm"))) == 20

    second = Forwarder(forwarder_settings(api, proxy, spool))
    await second.start()
    try:
        assert await asyncio.to_thread(c_store, second.port, study[20:]) == [0] * 10
        await proxy.restore()
        await eventually(lambda: committed(api))
    finally:
        await second.stop()
    assert await stored(api) == 30
    assert await api.pool.fetchval("select count(*) from ingest_rejection") == 0
    assert await sweep_once(api.pool, api.app[SETTINGS]) == 1
    assert not list(spool.rglob("*.dcm"))
