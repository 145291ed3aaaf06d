"""Two C-STORE receivers that store nothing durable, side by side: pynetdicom's and dcmtk's.

`bench/bare_scp.py` (pynetdicom, as the service's listener receives: data sets streamed to a
spool file, the listener's PDU size, one process per core) answers success and drops each
data set. dcmtk's `storescp` (compiled, one process per association) writes each to a file
without fsync. dcmtk `storescu` sends the same CT instances (512 × 512, 16 bits) to each,
over one association and over four at once, `--runs` times; the medians are printed.

The difference is what a receiver in a compiled toolkit in front of the service's ingest
would save per instance; neither figure includes the ingest itself (parse, the object's
fsync, the index commit).

    PYTHONPATH=. .venv/bin/python bench/receive_ceiling.py --instances 400 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.factory import make_study

REPO = Path(__file__).resolve().parents[1]
#: Debian's dcmtk leaves Nagle's algorithm on unless asked: every C-STORE would wait on a
#: delayed ACK.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def corpus(out: Path, instances: int) -> list[Path]:
    files = []
    for i, data in enumerate(make_study(modality="CT", count=instances, size=512)):
        path = out / f"{i:05d}.dcm"
        path.write_bytes(data)
        files.append(path)
    return files


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def send(port: int, files: list[Path], associations: int) -> float:
    """Instances per second, the files split over ``associations`` storescu at once."""
    share = [files[k::associations] for k in range(associations)]
    command = ["storescu", "-nh", "-aet", "BENCHSCU", "-aec", "TELEMED", "-pdu", "131072"]
    start = time.perf_counter()
    senders = [
        subprocess.Popen(
            [*command, "127.0.0.1", str(port), *map(str, part)],
            env=DCMTK_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for part in share
    ]
    for sender in senders:
        _, err = sender.communicate()
        if sender.returncode != 0:
            raise SystemExit(f"storescu failed: {err.decode(errors='replace')[-500:]}")
    return len(files) / (time.perf_counter() - start)


def measure(name: str, start: list[str], port: int, files: list[Path], runs: int) -> list[str]:
    # Its own process group: both receivers fork (a process per core, per association).
    server = subprocess.Popen(
        start,
        cwd=REPO,
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(port)
        send(port, files[:20], 1)  # warm
        one = [send(port, files, 1) for _ in range(runs)]
        four = [send(port, files, 4) for _ in range(runs)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    return [name, f"{statistics.median(one):.0f}", f"{statistics.median(four):.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("storescp") is None or shutil.which("storescu") is None:
        raise SystemExit("dcmtk's storescp and storescu are needed (apt-get install dcmtk)")
    work = Path(tempfile.mkdtemp(prefix="receive-ceiling-"))
    try:
        (work / "corpus").mkdir()
        files = corpus(work / "corpus", args.instances)
        received = work / "received"
        received.mkdir()
        cores = str(os.cpu_count() or 1)
        pynetdicom_port, dcmtk_port = free_port(), free_port()
        rows = [
            measure(
                f"pynetdicom, streamed to a spool file, {cores} processes",
                [
                    sys.executable,
                    "bench/bare_scp.py",
                    "--port",
                    str(pynetdicom_port),
                    "--chunked",
                    "--processes",
                    cores,
                ],
                pynetdicom_port,
                files,
                args.runs,
            ),
            measure(
                "dcmtk storescp, written to a file (no fsync), a process per association",
                [
                    "storescp",
                    "--fork",
                    "-od",
                    str(received),
                    "+xa",
                    "-aet",
                    "TELEMED",
                    str(dcmtk_port),
                ],
                dcmtk_port,
                files,
                args.runs,
            ),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.instances} CT instances (512 × 512), medians of {args.runs} runs, instances/s")
    print("| receiver | 1 association | 4 associations |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
