"""The api process SIGKILLed while a STOW-RS body, an ECG upload and two resumable uploads
(instances whole, and in ranged parts) are in flight, then started again where the clients
are: the clients send again (``telemed upload`` by itself), and every instance is stored
once with the bytes it was sent with, the ECG's retry answers success with the same
resource, and the finished uploads keep no parts."""

from __future__ import annotations

import asyncio
import io
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pydicom

from teleradiology.core.dicom import dataset_digest
from tests.e2e.harness import (
    DEMO_NETWORK,
    REPO,
    free_port,
    http,
    running_service,
    service_env,
    telemed,
)
from tests.ecg_file import make_ecg
from tests.factory import make_study

BOUNDARY = "kill-boundary-7f3a"
#: Large enough that a rate-limited upload is mid-instance when the kill comes.
SIZE = 384
PER_STUDY = 4
RATE_KB_S = "300"


def _stow_body(instances: list[bytes]) -> bytes:
    body = b""
    for data in instances:
        body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _ecg_body(ecg: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="patient_id"\r\n\r\nWD-KILL-E\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="ecg.dcm"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + ecg + f"\r\n--{BOUNDARY}--\r\n".encode()


def _half_sent(port: int, path: str, token: str, ctype: str, body: bytes) -> socket.socket:
    """A request whose headers and first half of its body are on the wire, the rest not."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def _post(base: str, path: str, token: str, ctype: str, body: bytes) -> tuple[int, object]:
    status, _, answer = http(
        "POST", f"{base}{path}", token=token, data=body, headers={"Content-Type": ctype}
    )
    return status, answer


def _upload(folder: Path, base: str, token: str, *part_size: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "teleradiology", "upload", "--server", base]
    command += ["--limit-rate", RATE_KB_S, "--retry-for", "120", "--no-progress", *part_size]
    env = {"TELEMED_TOKEN": token, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [*command, str(folder)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _write_study(folder: Path, patient_id: str) -> list[bytes]:
    study = make_study(modality="CR", count=PER_STUDY, patient_id=patient_id, size=SIZE)
    folder.mkdir(parents=True)
    for n, data in enumerate(study):
        (folder / f"{n}.dcm").write_bytes(data)
    return study


async def _fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_a_killed_api_loses_nothing_and_every_retry_succeeds_once(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stowed = make_study(modality="CR", count=3, patient_id="WD-KILL-S", size=SIZE)
    whole = _write_study(tmp_path / "whole", "WD-KILL-W")
    ranged = _write_study(tmp_path / "ranged", "WD-KILL-R")
    ecg = make_ecg(patient_id="WD-KILL-E", patient_name="张^三")
    stow_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    form_type = f"multipart/form-data; boundary={BOUNDARY}"

    with running_service(env, "--role", "api", name="api1", http_port=port) as first:
        token = first.token("xlwd.clinic")
        uploads = [
            _upload(tmp_path / "whole", base, token),
            _upload(tmp_path / "ranged", base, token, "--part-size", "0.1"),
        ]
        cut = [
            _half_sent(port, "/dicomweb/studies", token, stow_type, _stow_body(stowed)),
            _half_sent(port, "/api/v1/ecg", token, form_type, _ecg_body(ecg)),
        ]
        time.sleep(2.5)  # the uploads are mid-instance at 300 kB/s
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        for sock in cut:
            sock.close()
        assert all(u.poll() is None for u in uploads), "an upload ended before the kill"

    with running_service(env, "--role", "api", name="api2", http_port=port):
        # The clients whose requests were cut send them again, twice for good measure.
        for _ in range(2):
            status, answer = _post(base, "/dicomweb/studies", token, stow_type, _stow_body(stowed))
            assert status == 200, answer
        answers = [_post(base, "/api/v1/ecg", token, form_type, _ecg_body(ecg)) for _ in range(2)]
        assert all(status in (200, 201) for status, _ in answers), answers
        first_ecg, again = (answer for _, answer in answers)
        assert isinstance(first_ecg, dict)
        assert isinstance(again, dict)
        assert again["sop_instance_uid"] == first_ecg["sop_instance_uid"]
        for upload in uploads:
            out, _ = upload.communicate(timeout=120)
            assert upload.returncode == 0, out.decode(errors="replace")

    rows = asyncio.run(
        _fetch(database_url, "select sop_instance_uid, dataset_sha256 from instance")
    )
    stored = [r["sop_instance_uid"] for r in rows]
    assert len(stored) == len(set(stored)), "an instance was stored twice"
    sent = {
        str(pydicom.dcmread(io.BytesIO(d)).SOPInstanceUID): dataset_digest(d)
        for d in [*stowed, *whole, *ranged]
    }
    by_uid = {r["sop_instance_uid"]: r["dataset_sha256"] for r in rows}
    assert {uid: by_uid.get(uid) for uid in sent} == sent
    assert set(by_uid) - set(sent) == {first_ecg["sop_instance_uid"]}
    sessions = asyncio.run(_fetch(database_url, "select state from upload_session"))
    assert [s["state"] for s in sessions] == ["committed", "committed"]
    parts = asyncio.run(_fetch(database_url, "select count(*) as n from upload_part"))
    assert parts[0]["n"] == 0
