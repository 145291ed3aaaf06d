"""``telemed serve`` with DICOM TLS from the environment and ``--dicom-processes 2``: the
listener processes on the shared port speak TLS (parallel associations, wherever they land,
all succeed), and a workstation bound to its certificate by ``telemed network import`` gets
in with it and only with it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, Service, running_service, service_env, telemed
from tests.factory import make_study, write_files
from tests.integration.test_dicom_peers import Pki, _bindings
from tests.integration.test_dicom_peers import pki as pki

pytestmark = pytest.mark.dcmtk

ASSOCIATIONS = 4


@pytest.fixture
def service(database_url: str, tmp_path: Path, pki: Pki) -> Iterator[Service]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    bindings = tmp_path / "bindings.toml"
    bindings.write_text(_bindings(pki), "utf-8")
    telemed("network", "import", str(bindings), env=env)
    env |= {
        "TELEMED_DICOM_TLS_CERT": pki.path("server.crt"),
        "TELEMED_DICOM_TLS_KEY": pki.path("server.key"),
        "TELEMED_DICOM_TLS_CA": pki.path("ca.crt"),
    }
    with running_service(env, *FAST, "--dicom-processes", "2") as running:
        yield running


def _storescu(port: int, folder: Path, *tls: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["storescu", *tls, "-aet", "HBXLWD01", "-aec", "TELEMED", "+sd", "127.0.0.1", str(port),
         str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


async def test_every_listener_process_speaks_tls_to_a_certified_workstation(
    service: Service,
    tmp_path: Path,
    pki: Pki,
    database_url: str,
) -> None:
    tls = ("+tls", pki.path("wd01.key"), pki.path("wd01.crt"), "+cf", pki.path("ca.crt"))
    folders = []
    for n in range(ASSOCIATIONS):
        folder = tmp_path / f"study{n}"
        folder.mkdir()
        write_files(folder, make_study(modality="CR", count=3, patient_id=f"WD-T{n}", size=16))
        folders.append(folder)
    senders = [_storescu(service.dicom_port, folder, *tls) for folder in folders]
    for sender in senders:
        _, err = sender.communicate(timeout=120)
        assert sender.returncode == 0, err
    # Without its certificate, or in the clear, the same title stores nothing.
    for attempt in (("+tla", "+cf", pki.path("ca.crt")), ()):
        refused = _storescu(service.dicom_port, folders[0], *attempt)
        refused.communicate(timeout=60)
        assert refused.returncode != 0
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("select count(*) from instance where sender_ae = 'HBXLWD01'")
    finally:
        await conn.close()
    assert stored == 3 * ASSOCIATIONS
    assert "(TLS)" in service.log()
