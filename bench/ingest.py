"""Ingest throughput of our service, side by side with Orthanc, through the outside harness.

Each run starts a fresh `telemed serve` (empty data directory, embedded PostgreSQL, file
object store, durable writes) on loopback ports, loads a network with a facility owning the
harness's calling AE (BENCHSCU) and a clinic user, and runs ``../shared/bench/ingest_bench.py``
against it: C-STORE by dcmtk storescu (one association, then K in parallel) and STOW-RS
(K clients, one and fifty instances per request). With ``--orthanc pg,sqlite`` the same plan
runs against a fresh Orthanc 1.10.1 (Debian) after each of our runs. The peak memory of our
server process (VmHWM) and of its whole process tree is printed with the table of medians.

    .venv/bin/python bench/ingest.py --studies 60 --runs 1              # a quick look
    .venv/bin/python bench/ingest.py --runs 4 --orthanc pg,sqlite       # the standard corpus

The standard corpus (250 studies, 4.3 GB) is generated once into ``--corpus`` and removed
afterwards unless ``--keep-corpus``. Measurements vary ±20-30 % on the 2-core VM: compare
medians of several fresh runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared" / "bench").resolve()
PYTHON = sys.executable
TELEMED = [PYTHON, "-m", "teleradiology"]

NETWORK = """
[[facility]]
code = "BENCH"
name = "基准测试卫生院"
tier = "city"
ae_titles = ["BENCHSCU"]

[[facility.workstation]]
ae_title = "BENCHSCU"
host = "127.0.0.1"

[[user]]
username = "bench.clinic"
display_name = "基准"
role = "clinic"
facility = "BENCH"
"""

PHASES = ("storescu1", "storescuK", "stow1", "stow50")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_corpus(out: Path, studies: int) -> None:
    if (out / "manifest.json").exists():
        return
    command = [PYTHON, str(SHARED / "make_corpus.py"), "--out", str(out)]
    command += ["--studies", str(studies), "--per-study", "50"]
    command += ["--per-study-override", "CR:2,DX:2"]
    command += ["--modality-mix", "CT:0.5,MR:0.35,CR:0.08,DX:0.04,SAMPLE:0.03"]
    subprocess.run(command, check=True)


def plan_for(corpus: Path, share: float) -> str:
    """Instances per phase: the corpus split over the phases (each sends whole studies)."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    studies = manifest["studies"] if isinstance(manifest, dict) else manifest
    total = sum(len(s.get("instances", ())) or int(s.get("n", 0)) for s in studies)
    each = int(total * share / len(PHASES))
    return ",".join(f"{p}={each}" for p in PHASES)


class Service:
    """A fresh `telemed serve` with the bench network; stopped with `stop`."""

    def __init__(self, data_dir: Path, dicom_processes: int | None = None) -> None:
        self.data_dir = data_dir
        self.dicom_processes = dicom_processes
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.env = {**os.environ, "TELEMED_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        self.env.pop("DATABASE_URL", None)
        self.env.pop("STORAGE_URL", None)
        self.log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_tree_kb = 0
        self._watching = False

    def start(self) -> None:
        command = [*TELEMED, "serve", "--http-host", "127.0.0.1"]
        command += ["--http-port", str(self.http_port), "--dicom-port", str(self.dicom_port)]
        # More DICOM listeners on the same socket (--dicom-processes), started by the service;
        # unset, the service's default (one per core).
        if self.dicom_processes is not None:
            command += ["--dicom-processes", str(self.dicom_processes)]
        self.proc = subprocess.Popen(
            command, env=self.env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/readyz") as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"telemed did not become ready; see {self.log.name}")
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(NETWORK)
        subprocess.run([*TELEMED, "network", "import", f.name], env=self.env, cwd=REPO, check=True)
        os.unlink(f.name)
        time.sleep(8)  # listeners refresh their known AE titles every 5 s
        self._watching = True
        threading.Thread(target=self._watch, daemon=True).start()

    def token(self) -> str:
        out = subprocess.run(
            [*TELEMED, "token", "create", "bench.clinic"],
            env=self.env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip().splitlines()[-1]

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *_descendants(self.proc.pid)]

    def peak_server_kb(self) -> int:
        """Peak RSS of the service's own processes (not PostgreSQL's), summed."""
        return sum(_status_kb(p, "VmHWM") for p in self.pids() if _is_python(p))

    def _watch(self) -> None:
        while self._watching and self.proc is not None and self.proc.poll() is None:
            total = sum(_status_kb(pid, "VmRSS") for pid in self.pids())
            self.peak_tree_kb = max(self.peak_tree_kb, total)
            time.sleep(0.5)

    def stop(self) -> None:
        self._watching = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    children = [int(p) for p in out.stdout.split()]
    return children + [d for c in children for d in _descendants(c)]


def _is_python(pid: int) -> bool:
    try:
        return "python" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return False


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def harness(
    corpus: Path, label: str, out: Path, plan: str, k: int, extra: list[str]
) -> dict[str, object]:
    command = [PYTHON, str(SHARED / "ingest_bench.py"), "--corpus", str(corpus)]
    command += ["--label", label, "-K", str(k), "--plan", plan, "--json-out", str(out)]
    command += ["--load-target", "0", *extra]
    result = subprocess.run(command, capture_output=True, text=True)
    sys.stdout.write(result.stdout[-3000:])
    if result.returncode != 0:
        sys.stdout.write(result.stderr[-3000:])
    return json.loads(out.read_text().strip().splitlines()[-1])


def run_ours(
    corpus: Path, results: Path, n: int, plan: str, k: int, dicom_processes: int | None
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="telemed-bench-"))
    service = Service(work / "var", dicom_processes)
    try:
        service.start()
        extra = ["--host", "127.0.0.1", "--dicom-port", str(service.dicom_port)]
        extra += [
            "--aet",
            "TELEMED",
            "--dicomweb",
            f"http://127.0.0.1:{service.http_port}/dicomweb",
        ]
        # One argument, "=" joined: a token may begin with "-".
        extra += [
            f"--bearer={service.token()}",
            "--server-pids",
            ",".join(map(str, service.pids())),
        ]
        extra += ["--phases", ",".join(PHASES)]
        report = harness(corpus, "telemed", results / f"telemed-{n}.json", plan, k, extra)
        report["peak_server_MB"] = round(service.peak_server_kb() / 1024, 1)
        report["peak_tree_MB"] = round(service.peak_tree_kb / 1024, 1)
        return report
    finally:
        service.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_orthanc(
    corpus: Path, results: Path, n: int, plan: str, k: int, kind: str
) -> dict[str, object]:
    name = f"bench-{kind}"
    start = [str(SHARED / "start_orthanc.sh"), "--name", name, "--fresh"]
    if kind == "pg":
        start.append("--pg")
    subprocess.run(start, check=True, capture_output=True)
    try:
        pid = Path(f"/tmp/orthanc-bench/{name}/orthanc.pid").read_text().strip()
        extra = ["--host", "127.0.0.1", "--dicom-port", "14242", "--aet", "ORTHANC"]
        extra += ["--dicomweb", "http://127.0.0.1:18042/dicom-web", "--server-pids", pid]
        extra += ["--phases", ",".join(PHASES)]
        label = f"orthanc-{kind}"
        return harness(corpus, label, results / f"{label}-{n}.json", plan, k, extra)
    finally:
        subprocess.run([str(SHARED / "stop_orthanc.sh"), "--name", name], capture_output=True)
        shutil.rmtree(f"/tmp/orthanc-bench/{name}", ignore_errors=True)


def phase_value(report: dict[str, object], phase: str, key: str) -> float | None:
    for p in report.get("phases", []):  # type: ignore[attr-defined]
        if p["name"] == phase:
            value = p.get(key)
            return float(value) if value is not None else None
    return None


def table(reports: dict[str, list[dict[str, object]]]) -> str:
    labels = list(reports)
    lines = ["| phase | " + " | ".join(f"{lab} (n={len(reports[lab])})" for lab in labels) + " |"]
    lines.append("|---|" + "---|" * len(labels))
    for phase in PHASES:
        for key, unit in (("inst_per_s", "inst/s"), ("MB_per_s", "MB/s")):
            cells = []
            for lab in labels:
                values = [v for r in reports[lab] if (v := phase_value(r, phase, key)) is not None]
                cells.append(_median(values))
            lines.append(f"| {phase} {unit} | " + " | ".join(cells) + " |")
    for key in ("peak_server_MB", "peak_tree_MB"):
        cells = [
            _median([float(r[key]) for r in reports[lab] if key in r])  # type: ignore[arg-type]
            for lab in labels
        ]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _median(values: list[float]) -> str:
    if not values:
        return "-"
    text = f"{statistics.median(values):.0f}"
    if len(values) > 1:
        text += f" ({min(values):.0f}-{max(values):.0f})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/telemed-bench-corpus"))
    parser.add_argument("--studies", type=int, default=250)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("-K", type=int, default=4, dest="k")
    parser.add_argument("--share", type=float, default=0.9, help="part of the corpus sent")
    parser.add_argument("--orthanc", default="", help="also measure Orthanc: pg,sqlite")
    parser.add_argument("--results", type=Path, default=Path("/tmp/telemed-bench-results"))
    parser.add_argument("--keep-corpus", action="store_true")
    parser.add_argument(
        "--dicom-processes",
        type=int,
        default=None,
        help="DICOM listener processes sharing the port (default: the service's own)",
    )
    args = parser.parse_args()
    make_corpus(args.corpus, args.studies)
    args.results.mkdir(parents=True, exist_ok=True)
    plan = plan_for(args.corpus, args.share)
    reports: dict[str, list[dict[str, object]]] = {"telemed": []}
    kinds = [k for k in args.orthanc.split(",") if k]
    for kind in kinds:
        reports[f"orthanc-{kind}"] = []
    try:
        for n in range(args.runs):
            reports["telemed"].append(
                run_ours(args.corpus, args.results, n, plan, args.k, args.dicom_processes)
            )
            for kind in kinds:
                reports[f"orthanc-{kind}"].append(
                    run_orthanc(args.corpus, args.results, n, plan, args.k, kind)
                )
            print(table(reports), flush=True)
    finally:
        if not args.keep_corpus:
            shutil.rmtree(args.corpus, ignore_errors=True)
    print(table(reports))


if __name__ == "__main__":
    main()
