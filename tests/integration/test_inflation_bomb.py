"""A deflate bomb sent over STOW-RS, C-STORE or as an ECG is refused with a clear answer,
stores nothing, and does not make the service grow by its inflated size."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

import pynetdicom._config
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pynetdicom import AE

from teleradiology.core.dicom import MAX_INFLATED_BYTES
from teleradiology.roles import DICOM
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import upload
from tests.integration.test_ingest import multipart, stow
from tests.unit.test_deflate_bomb import _bomb

MIB = 1024**2
CANNOT_UNDERSTAND = 0xC000
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"


def _grown_mib(before_kib: int) -> float:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024


def _c_store(port: int, path: Path) -> int:
    """C-STORE the file as it is (pynetdicom sends a file's encoded data set untouched)."""
    ae = AE(ae_title="HBXL01")
    ae.add_requested_context(CR_IMAGE, DeflatedExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(path)
        return int(status.Status)
    finally:
        assoc.release()


async def test_a_deflate_bomb_is_refused_on_every_way_in(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workstation sends the file's bytes as they are (pynetdicom would otherwise read,
    # and so inflate, the whole file in this process before sending it).
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
    bomb = _bomb(MAX_INFLATED_BYTES // MIB + 400)
    assert len(bomb) < 1024**2
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    sent = await stow(api, multipart(bomb))
    text = await sent.text()
    assert sent.status in (400, 409), text
    failed = (await sent.json())["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [CANNOT_UNDERSTAND]

    status, body = await upload(api, [("bomb.dcm", bomb)])
    assert status == 400, body
    assert "解压后超过 128 MiB" in str(body)  # the clinic reads Chinese

    port = api.app[DICOM].port
    path = tmp_path / "bomb.dcm"
    path.write_bytes(bomb)
    assert await asyncio.to_thread(_c_store, port, path) == CANNOT_UNDERSTAND

    assert await api.pool.fetchval("select count(*) from instance") == 0
    assert await api.pool.fetchval("select count(*) from ecg_original") == 0
    grown = _grown_mib(before)
    print(
        f"a {len(bomb) // 1024} KiB deflate bomb on three ways in: the service grew {grown:.0f} MiB"
    )
    assert grown < 200, f"the service grew by {grown:.0f} MiB"
