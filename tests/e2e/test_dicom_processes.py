"""``telemed serve --dicom-processes N``: N listener processes accept from one socket."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.e2e.conftest import FAST
from tests.e2e.harness import (
    DEMO_NETWORK,
    Service,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.factory import make_study, write_files

pytestmark = pytest.mark.dcmtk

PROCESSES = 3
ASSOCIATIONS = 6
#: A village workstation (王店村) sending a folder.
STORESCU = ("storescu", "-aet", "HBXLWD01", "-aec", "TELEMED", "+sd", "127.0.0.1")


def _listener_children(service: Service) -> list[psutil.Process]:
    parent = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if f"{service.dicom_port}" in " ".join(p.info["cmdline"] or [])
        and "--dicom-processes" in (p.info["cmdline"] or [])
    )
    return [c for c in parent.children() if "--role" in c.cmdline()]


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST, "--dicom-processes", str(PROCESSES)) as running:
        yield running


def test_associations_in_parallel_are_spread_over_the_processes_and_stored_once(
    service: Service, tmp_path: Path
) -> None:
    children = _listener_children(service)
    assert len(children) == PROCESSES - 1
    folders = []
    for n in range(ASSOCIATIONS):
        folder = tmp_path / f"study{n}"
        folder.mkdir()
        write_files(folder, make_study(modality="CR", count=20, patient_id=f"WD-P{n}"))
        folders.append(folder)
    cpu_before = [c.cpu_times().user + c.cpu_times().system for c in children]
    senders = [
        subprocess.Popen(
            [*STORESCU, str(service.dicom_port), str(folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for folder in folders
    ]
    for sender in senders:
        _, err = sender.communicate(timeout=120)
        assert sender.returncode == 0, err
    # A re-sent study is stored once, whichever process takes it.
    again = subprocess.run(
        [*STORESCU, str(service.dicom_port), str(folders[0])],
        capture_output=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    admin = service.token("hb.admin")

    def counted() -> int:
        studies = http("GET", f"{service.base_url}/dicomweb/studies", token=admin)[2]
        return sum(int(s["00201208"]["Value"][0]) for s in studies)

    assert wait_for(lambda: counted() == ASSOCIATIONS * 20, timeout_s=30)
    # The children did C-STORE work (not all in one process).
    cpu_after = [c.cpu_times().user + c.cpu_times().system for c in children]
    assert any(after - before > 0.2 for before, after in zip(cpu_before, cpu_after, strict=True))


def test_the_children_stop_with_the_service(database_url: str, tmp_path: Path) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST, "--dicom-processes", "2") as service:
        children = _listener_children(service)
        assert len(children) == 1
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []
    assert len(gone) == 1


def test_a_listener_process_that_dies_is_started_again(database_url: str, tmp_path: Path) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST, "--dicom-processes", "2") as service:
        (child,) = _listener_children(service)
        child.kill()
        child.wait(timeout=10)

        def replaced() -> list[psutil.Process]:
            return [c for c in _listener_children(service) if c.pid != child.pid]

        (new,) = wait_for(replaced, timeout_s=30)
        # the new process takes associations: every study of a few senders is stored
        folders = []
        for n in range(3):
            folder = tmp_path / f"after{n}"
            folder.mkdir()
            write_files(folder, make_study(modality="CR", count=5, patient_id=f"WD-R{n}"))
            folders.append(folder)
        for folder in folders:
            sent = subprocess.run(
                [*STORESCU, str(service.dicom_port), str(folder)],
                capture_output=True,
                check=False,
                timeout=60,
            )
            assert sent.returncode == 0, sent.stderr
        assert new.is_running()
        assert len(_listener_children(service)) == 1


def test_the_facility_limit_holds_across_the_listener_processes(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    env["TELEMED_DICOM_MAX_ASSOCIATIONS"] = "2"
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST, "--dicom-processes", str(PROCESSES)) as service:
        assert len(_listener_children(service)) == PROCESSES - 1
        held = []
        for _ in range(3 * PROCESSES):
            ae = AE(ae_title="HBXLWD01")
            ae.add_requested_context(Verification)
            held.append(ae.associate("127.0.0.1", service.dicom_port, ae_title="TELEMED"))
        try:
            assert sum(a.is_established for a in held) == 2
            refused = [a for a in held if a.is_rejected]
            assert len(refused) == 3 * PROCESSES - 2
            results = {a.acceptor.primitive.result for a in refused if a.acceptor.primitive}
            assert results == {0x02}  # transient
        finally:
            for assoc in held:
                if assoc.is_established:
                    assoc.release()
        # The places are given back: the facility may open its two again.
        again = []
        for _ in range(2):
            ae = AE(ae_title="HBXLWD01")
            ae.add_requested_context(Verification)
            again.append(ae.associate("127.0.0.1", service.dicom_port, ae_title="TELEMED"))
        assert all(a.is_established for a in again)
        for assoc in again:
            assoc.release()
    assert asyncio.run(_open_places(database_url)) == 0


async def _open_places(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("select count(*) from dicom_association"))
    finally:
        await conn.close()
