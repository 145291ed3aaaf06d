"""The commands as a township operator runs them: ``telemed forward`` between a modality
(dcmtk's storescu) and ``telemed serve``, and ``telemed upload`` from a workstation."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import FAST
from tests.e2e.harness import (
    DEMO_NETWORK,
    REPO,
    Service,
    free_port,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.factory import make_study, write_files

pytestmark = pytest.mark.dcmtk


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_service(env, *FAST) as running:
        yield running


def test_a_township_forwards_a_modalitys_study_and_a_village_uploads_one(
    service: Service, tmp_path: Path
) -> None:
    forward_through_the_township(service, tmp_path)
    upload_from_a_village_workstation(service, tmp_path)


def forward_through_the_township(service: Service, tmp_path: Path) -> None:
    """新里镇's DR sends to the township forwarder; the county gets the study once."""
    port = free_port()
    spool = tmp_path / "spool"
    env = {**service.env, "TELEMED_TOKEN": service.token("xl.clinic")}
    log_path = tmp_path / "forward.log"
    with log_path.open("wb") as log:
        forwarder = subprocess.Popen(
            [sys.executable, "-m", "teleradiology", "forward", "--server", service.base_url,
             "--spool", str(spool), "--dicom-host", "127.0.0.1", "--dicom-port", str(port),
             "--dicom-aet", "XLFWD", "--accept-ae", "HBXL01", "--stable-age", "1"],
            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        files = write_files(tmp_path / "dr", make_study(modality="DX", count=3, size=64))

        def store() -> bool:
            sent = subprocess.run(
                ["storescu", "-aet", "HBXL01", "-aec", "XLFWD", "127.0.0.1", str(port),
                 *map(str, files)],
                capture_output=True, text=True, timeout=60, env={**env, "TCP_NODELAY": "1"},
            )  # fmt: skip
            return sent.returncode == 0

        wait_for(store, timeout_s=30, interval_s=0.5)  # once the forwarder listens
        reader = service.token("wang.reader")

        def routed() -> list[dict[str, object]]:
            _, _, body = http("GET", f"{service.base_url}/api/v1/worklist", token=reader)
            return list(body["cases"])

        cases = wait_for(routed, timeout_s=30)
        assert len(cases) == 1
        assert cases[0]["facility"] == "HB-XL"
        wait_for(lambda: not list(spool.rglob("*.dcm")), timeout_s=15)
    finally:
        forwarder.send_signal(signal.SIGTERM)
        code = forwarder.wait(timeout=20)
    assert code == 0, log_path.read_text("utf-8", errors="replace")
    _, _, studies = http(
        "GET", f"{service.base_url}/api/v1/studies", token=service.token("xl.clinic")
    )
    assert [s["num_instances"] for s in studies["studies"]] == [3]


def upload_from_a_village_workstation(service: Service, tmp_path: Path) -> None:
    """王店村's workstation sends a folder with ``telemed upload``, marked urgent."""
    folder = tmp_path / "exam"
    write_files(folder, make_study(count=5, size=64))
    env = {**service.env, "TELEMED_TOKEN": service.token("xlwd.clinic")}
    command = [sys.executable, "-m", "teleradiology", "upload", str(folder),
               "--server", service.base_url, "--urgent", "--question", "外伤后胸痛"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "5 instance(s), sent 5, already on the server 0, committed" in done.stdout
    reader = service.token("wang.reader")

    def routed() -> list[dict[str, object]]:
        _, _, body = http("GET", f"{service.base_url}/api/v1/worklist", token=reader)
        return list(body["cases"])

    cases = wait_for(lambda: len(routed()) == 2 and routed(), timeout_s=30)
    (case,) = [c for c in cases if c["facility"] == "HB-XL-WD"]
    assert case["priority"] == "high"

    # Without a token: one line saying what to do, exit status 2.
    no_token = {k: v for k, v in env.items() if k != "TELEMED_TOKEN"}
    refused = subprocess.run(command, env=no_token, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "telemed upload: give a token: set TELEMED_TOKEN (or --token)"
