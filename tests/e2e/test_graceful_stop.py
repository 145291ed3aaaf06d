"""SIGTERM (Kubernetes stopping a pod) drains the DICOM listener: no new association is
accepted, the open one is served to its end, and the service then exits by itself."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pydicom
import pytest
from pynetdicom import AE

from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, Service, running_service, service_env, telemed
from tests.factory import make_study


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST) as running:
        yield running


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


async def _stored(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("select sop_instance_uid from instance")
    finally:
        await conn.close()
    return sorted(r["sop_instance_uid"] for r in rows)


def test_sigterm_serves_the_open_association_to_its_end_then_exits(
    service: Service, database_url: str
) -> None:
    study = [pydicom.dcmread(io.BytesIO(b)) for b in make_study(modality="CR", count=2)]
    ae = AE(ae_title="HBXL01")
    ae.add_requested_context(study[0].SOPClassUID)
    assoc = ae.associate("127.0.0.1", service.dicom_port, ae_title="TELEMED")
    assert assoc.is_established
    assert service.proc is not None
    try:
        assert assoc.send_c_store(study[0]).Status == 0
        service.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _refused(service.dicom_port):
            assert time.monotonic() < deadline, "the listener still accepts after SIGTERM"
            time.sleep(0.1)
        # The sender's study goes on on its open association, and is stored.
        assert assoc.send_c_store(study[1]).Status == 0
    finally:
        assoc.release()
    assert service.proc.wait(timeout=30) == 0
    assert "aborting" not in service.log()
    assert asyncio.run(_stored(database_url)) == sorted(ds.SOPInstanceUID for ds in study)
