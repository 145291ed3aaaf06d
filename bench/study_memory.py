"""Peak memory of the service while one large study arrives by C-STORE and by STOW-RS.

Usage::

    .venv/bin/python bench/study_memory.py                        # 2 GB: 16 instances of 128 MB
    .venv/bin/python bench/study_memory.py --study-mb 600 --instance-mb 40

It writes one study of ``--study-mb`` MB, made of multi-frame 16-bit CT instances of about
``--instance-mb`` MB each, to a temporary directory. Then, for each path, it starts a fresh
`telemed serve` with its defaults (embedded PostgreSQL, file object store, durable writes, one
DICOM listener per core; see ``bench/ingest.py``) and sends the whole study:

- ``c-store``: dcmtk ``storescu`` over one association;
- ``stow-rs``: ``POST /dicomweb/studies`` with the instances streamed from their files, in as
  few requests as the server's per-request limit allows.

Before each send the peak resident memory (``VmHWM``) of every process of the service is
reset; afterwards it is read from ``/proc`` with the resident memory at rest. A process that
held the study would peak near its size; one that holds a few instances at a time peaks near
its resting size plus a few instances. Prints a line per process and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from ingest import Service, _descendants, _is_python, _status_kb  # noqa: E402
from upload_memory import reset_peak, write_instance  # noqa: E402

MB = 1_000_000
#: The service's default per-request limit for STOW-RS (settings.py ``max_upload_bytes``).
STOW_REQUEST_BYTES = 512 * 1024**2


def write_study(folder: Path, study_mb: int, instance_mb: int) -> tuple[str, list[Path]]:
    """``study_mb`` MB of CT instances of ``instance_mb`` MB, one study, in ``folder``; its
    Study Instance UID and the files."""
    folder.mkdir(parents=True, exist_ok=True)
    count = max(1, round(study_mb / instance_mb))
    paths = [folder / f"{n:04d}.dcm" for n in range(count)]
    study = write_instance(paths[0], instance_mb)[0]
    for path in paths[1:]:
        write_instance(path, instance_mb, study)
    return study, paths


async def stored_instances(service: Service, study: str) -> int:
    """How many instances of ``study`` the service lists (QIDO-RS)."""
    url = f"http://127.0.0.1:{service.http_port}/dicomweb/studies/{study}/instances"
    auth = {"Authorization": f"Bearer {service.token()}", "Accept": "application/dicom+json"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=auth) as answer:
        return len(await answer.json()) if answer.status == 200 else 0


def python_pids(service: Service) -> list[int]:
    assert service.proc is not None
    pids = [service.proc.pid, *_descendants(service.proc.pid)]
    return [pid for pid in pids if _is_python(pid)]


def send_c_store(service: Service, paths: list[Path]) -> None:
    command = ["storescu", "-aet", "BENCHSCU", "-aec", "TELEMED", "-xs", "--max-pdu", "131072"]
    command += ["127.0.0.1", str(service.dicom_port), *map(str, paths)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"storescu failed: {result.stderr[-2000:]}")


def stow_batches(paths: list[Path], limit: int) -> list[list[Path]]:
    """The instances in order, in requests of at most ``limit`` bytes of parts."""
    batches: list[list[Path]] = [[]]
    size = 0
    for path in paths:
        part = path.stat().st_size + 200
        if batches[-1] and size + part > limit:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += part
    return batches


async def send_stow(service: Service, paths: list[Path]) -> None:
    url = f"http://127.0.0.1:{service.http_port}/dicomweb/studies"
    auth = {"Authorization": f"Bearer {service.token()}"}
    timeout = aiohttp.ClientTimeout(total=3600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for batch in stow_batches(paths, STOW_REQUEST_BYTES):
            with aiohttp.MultipartWriter("related", boundary="study-memory-bench") as body:
                files = [path.open("rb") for path in batch]
                try:
                    for fp in files:
                        body.append(fp, {"Content-Type": "application/dicom"})
                    body.headers["Content-Type"] += '; type="application/dicom"'
                    async with http.post(url, data=body, headers=auth) as answer:
                        if answer.status != 200:
                            raise SystemExit(f"STOW-RS {answer.status}: {await answer.text()}")
                finally:
                    for fp in files:
                        fp.close()


def measure(path: str, study: str, paths: list[Path], work: Path) -> dict[str, object]:
    service = Service(work / f"var-{path}")
    try:
        service.start()
        pids = python_pids(service)
        for pid in pids:
            reset_peak(pid)
        at_rest = {pid: _status_kb(pid, "VmRSS") for pid in pids}
        started = time.perf_counter()
        if path == "c-store":
            send_c_store(service, paths)
        else:
            asyncio.run(send_stow(service, paths))
        seconds = time.perf_counter() - started
        stored = asyncio.run(stored_instances(service, study))
        if stored != len(paths):
            raise SystemExit(f"{path}: {stored} of {len(paths)} instances stored")
        processes = []
        for pid in pids:
            comm = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            peak, rest = _status_kb(pid, "VmHWM"), at_rest[pid]
            processes.append({"pid": pid, "rest_MB": rest // 1024, "peak_MB": peak // 1024})
            print(f"{path}: pid {pid} at rest {rest // 1024} MB, peak {peak // 1024} MB  {comm}")
        return {"path": path, "seconds": round(seconds, 1), "processes": processes}
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study-mb", type=int, default=2048)
    parser.add_argument("--instance-mb", type=int, default=128)
    parser.add_argument("--paths", default="c-store,stow-rs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="telemed-study-memory-"))
    try:
        study, paths = write_study(work / "study", args.study_mb, args.instance_mb)
        total = sum(p.stat().st_size for p in paths)
        print(f"wrote one study: {len(paths)} instances, {total / MB:.0f} MB", flush=True)
        results = [measure(name, study, paths, work) for name in args.paths.split(",")]
        summary = {
            "study_MB": round(total / MB),
            "instance_MB": round(total / len(paths) / MB),
            "instances": len(paths),
            "results": results,
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
