"""A busy day of the Huaibin network, compressed into minutes, on a scaled-out service.

The network (1 city, 9 counties, 112 townships, 220 villages; radiology and ECG readers at
each county and at the city) is generated as a network file in the format of
deploy/demo-network.toml and imported with ``telemed network import``. The service runs as
an operator runs it: ``telemed serve --role api|dicom|worker`` subprocesses with their default
options (``--stable-age`` etc. only when given here) against one PostgreSQL (an embedded
server started here) and one object store (files, or SeaweedFS with ``--storage s3``).

Villages and townships send X-ray studies (half by C-STORE with dcmtk storescu to the dicom
processes, half by STOW-RS to the api processes) and ECGs (uploads to the api processes),
spread evenly over ``--minutes``. Every clinic keeps an event stream open; readers work their
worklists by the API (claim, sign a final report). Printed: instances/s, p50/p95/p99 from
study complete to visible in a reader's worklist and from report final to the clinic's event
stream, errors, lost items (sent but never reported back to the clinic: must be 0), the peak
PostgreSQL connections and the peak memory (VmHWM) of each process.

    .venv/bin/python bench/load.py --studies 300 --ecgs 200 --minutes 3     # the issue's size
    .venv/bin/python bench/load.py                                         # a busy day
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage.db import EmbeddedPostgres, create_pool  # noqa: E402
from storage.network import create_token, list_users  # noqa: E402
from tests.e2e.cluster import Cluster, Shape, running_cluster  # noqa: E402
from tests.e2e.harness import service_env, telemed  # noqa: E402
from tests.ecg_file import make_ecg  # noqa: E402
from tests.factory import make_study, write_files  # noqa: E402

BOUNDARY = "telemed-load-boundary"
COUNTIES = 9
TOWNSHIPS = 112
VILLAGES = 220
REPORT = {"findings": "双肺纹理清晰", "impression": "未见异常", "conclusion": "normal"}


@dataclass(frozen=True)
class Sender:
    code: str
    ae_title: str
    clinic: str


def network_file(path: Path) -> list[Sender]:
    """The Huaibin-sized network as TOML; the facilities that send (townships, villages)."""
    lines: list[str] = []
    senders: list[Sender] = []

    def facility(code: str, name: str, tier: str, parent: str | None, aet: str | None) -> None:
        lines.extend(["[[facility]]", f'code = "{code}"', f'name = "{name}"', f'tier = "{tier}"'])
        if parent:
            lines.append(f'parent = "{parent}"')
        titles = f'"{aet}"' if aet else ""
        lines.extend([f"ae_titles = [{titles}]", ""])
        if aet:  # a title must be bound to where it calls from: here, loopback
            lines.extend(["[[facility.workstation]]", f'ae_title = "{aet}"'])
            lines.extend(['host = "127.0.0.1"', ""])

    def user(name: str, role: str, code: str, specialties: str | None = None) -> None:
        lines.extend(["[[user]]", f'username = "{name}"', f'display_name = "{name}"'])
        lines.extend([f'role = "{role}"', f'facility = "{code}"'])
        if specialties:
            lines.append(f"specialties = [{specialties}]")
        lines.append("")

    facility("HB-CITY", "市中心医院", "city", None, None)
    user("city.radiology", "reader", "HB-CITY", '"radiology"')
    user("city.ecg", "reader", "HB-CITY", '"ecg"')
    for c in range(COUNTIES):
        facility(f"C{c}", f"第{c + 1}县人民医院", "county", "HB-CITY", None)
        user(f"c{c}.radiology", "reader", f"C{c}", '"radiology"')
        user(f"c{c}.ecg", "reader", f"C{c}", '"ecg"')
    for t in range(TOWNSHIPS):
        code = f"C{t % COUNTIES}-T{t}"
        facility(code, f"第{t + 1}镇卫生院", "township", f"C{t % COUNTIES}", f"T{t}")
        user(f"t{t}.clinic", "clinic", code)
        senders.append(Sender(code, f"T{t}", f"t{t}.clinic"))
    for v in range(VILLAGES):
        parent = f"C{(v % TOWNSHIPS) % COUNTIES}-T{v % TOWNSHIPS}"
        facility(f"{parent}-V{v}", f"第{v + 1}村卫生室", "village", parent, f"V{v}")
        user(f"v{v}.clinic", "clinic", f"{parent}-V{v}")
        senders.append(Sender(f"{parent}-V{v}", f"V{v}", f"v{v}.clinic"))
    path.write_text("\n".join(lines), "utf-8")
    return senders


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:.2f} s  p95 {q[94]:.2f} s  p99 {q[98]:.2f} s  (n={len(values)})"


@dataclass
class Figures:
    errors: list[str] = field(default_factory=list)
    instances: int = 0
    sent_s: float = 0.0
    #: when a reader first saw each case (by case id), on this machine's clock
    seen: dict[int, float] = field(default_factory=dict)
    #: when each report reached its clinic's event stream (by report id)
    told: dict[int, float] = field(default_factory=dict)
    reported: set[int] = field(default_factory=set)
    memory: dict[str, int] = field(default_factory=dict)
    connections: int = 0


async def tokens_for(dsn: str) -> dict[str, str]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        return {u.username: await create_token(pool, u.id) for u in await list_users(pool)}
    finally:
        await pool.close()


def _multipart(parts: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for headers, data in parts:
        out += f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


class Load:
    def __init__(self, args: argparse.Namespace, cluster: Cluster, tokens: dict[str, str]):
        self.args, self.cluster, self.tokens = args, cluster, tokens
        self.figures = Figures()
        self.done = asyncio.Event()
        self.scratch = Path(tempfile.mkdtemp(prefix="load-studies-"))

    def auth(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    async def send_study(self, http: aiohttp.ClientSession, n: int, sender: Sender) -> None:
        count = self.args.instances
        study = make_study(modality="DX", count=count, patient_id=f"L{n}", size=self.args.size)
        if n % 2:
            service = self.cluster.dicom[n // 2 % len(self.cluster.dicom)]
            folder = self.scratch / f"s{n}"
            write_files(folder, study)
            proc = await asyncio.create_subprocess_exec(
                *("storescu", "-aet", sender.ae_title, "-aec", "TELEMED", "+sd", "127.0.0.1"),
                *(str(service.dicom_port), str(folder)),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                self.figures.errors.append(f"storescu {proc.returncode}: {err[-200:]!r}")
                return
        else:
            api = self.cluster.api[n // 2 % len(self.cluster.api)]
            body = _multipart([("Content-Type: application/dicom", part) for part in study])
            ctype = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            async with http.post(
                f"{api.base_url}/dicomweb/studies",
                data=body,
                headers={**self.auth(sender.clinic), "Content-Type": ctype},
            ) as response:
                if response.status != 200:
                    self.figures.errors.append(f"STOW {response.status}")
                    return
        self.figures.instances += count

    async def send_ecg(self, http: aiohttp.ClientSession, n: int, sender: Sender) -> None:
        api = self.cluster.api[n % len(self.cluster.api)]
        data = make_ecg(patient_id=f"E{n}", patient_name="张^三")
        body = _multipart(
            [
                ('Content-Disposition: form-data; name="patient_id"', f"E{n}".encode()),
                (
                    'Content-Disposition: form-data; name="file"; filename="ecg.dcm"\r\n'
                    "Content-Type: application/octet-stream",
                    data,
                ),
            ]
        )
        async with http.post(
            f"{api.base_url}/api/v1/ecg",
            data=body,
            headers={
                **self.auth(sender.clinic),
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        ) as response:
            if response.status != 201:
                self.figures.errors.append(f"ECG upload {response.status}")
                return
        self.figures.instances += 1

    async def send_all(self, http: aiohttp.ClientSession, senders: list[Sender]) -> None:
        """Studies and ECGs from random senders, spread evenly over ``--minutes``."""
        rng = random.Random(7)
        plan = ["study"] * self.args.studies + ["ecg"] * self.args.ecgs
        rng.shuffle(plan)
        gap = self.args.minutes * 60 / max(1, len(plan))
        limit = asyncio.Semaphore(self.args.concurrency)
        started = time.monotonic()

        async def one(n: int, kind: str) -> None:
            async with limit:
                try:
                    sender = rng.choice(senders)
                    if kind == "study":
                        await self.send_study(http, n, sender)
                    else:
                        await self.send_ecg(http, n, sender)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.figures.errors.append(f"{kind}: {type(exc).__name__}")

        tasks = []
        for n, kind in enumerate(plan):
            await asyncio.sleep(max(0.0, started + n * gap - time.monotonic()))
            tasks.append(asyncio.create_task(one(n, kind)))
        await asyncio.gather(*tasks)
        self.figures.sent_s = time.monotonic() - started

    async def reader(self, http: aiohttp.ClientSession, username: str, n: int) -> None:
        """Claim and sign what the worklist shows, through the api processes in turn."""
        apis = self.cluster.api
        while not self.done.is_set():
            api = apis[n % len(apis)]
            n += 1
            try:
                async with http.get(
                    f"{api.base_url}/api/v1/worklist?limit=1000", headers=self.auth(username)
                ) as response:
                    cases = (await response.json())["cases"] if response.status == 200 else []
                now = time.time()
                for case in cases:
                    self.figures.seen.setdefault(case["id"], now)
                for case in cases:
                    await self.report(http, apis[n % len(apis)], username, case["id"])
                    await asyncio.sleep(self.args.read_seconds)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.figures.errors.append(f"reader: {type(exc).__name__}")
            await asyncio.sleep(self.args.poll_seconds)

    async def report(self, http: aiohttp.ClientSession, api: Any, username: str, case: int) -> None:
        url = f"{api.base_url}/api/v1/cases/{case}"
        async with http.post(f"{url}/claim", headers=self.auth(username)) as response:
            if response.status != 200:
                self.figures.errors.append(f"claim {response.status}")
                return
        async with http.post(f"{url}/report", json=REPORT, headers=self.auth(username)) as answer:
            if answer.status != 201:
                self.figures.errors.append(f"report {answer.status}")
                return
            self.figures.reported.add(int((await answer.json())["id"]))

    async def clinic_stream(self, http: aiohttp.ClientSession, username: str, n: int) -> None:
        """A clinic's open event stream (reconnecting from its last id when cut)."""
        last = ""
        while not self.done.is_set():
            api = self.cluster.api[n % len(self.cluster.api)]
            headers = {**self.auth(username), **({"Last-Event-ID": last} if last else {})}
            try:
                async with http.get(
                    f"{api.base_url}/api/v1/events",
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                ) as response:
                    async for raw in response.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("id: "):
                            last = line[4:]
                        elif line.startswith("data: "):
                            data = json.loads(line[6:])
                            if data["kind"] == "report" and data["report_id"]:
                                self.figures.told.setdefault(data["report_id"], time.time())
            except (aiohttp.ClientError, OSError, TimeoutError):
                await asyncio.sleep(1)


def sample_memory(cluster: Cluster, figures: Figures, stop: threading.Event) -> None:
    """The peak resident memory (VmHWM) of each process, read every second."""
    while not stop.wait(1.0):
        for name, proc in cluster.processes().items():
            with contextlib.suppress(OSError, psutil.Error):
                status = Path(f"/proc/{proc.pid}/status").read_text()
                hwm = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM"))
                figures.memory[name] = max(figures.memory.get(name, 0), hwm * 1024)


async def sample_connections(dsn: str, figures: Figures, done: asyncio.Event) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        while not done.is_set():
            count = await conn.fetchval(
                "select count(*) from pg_stat_activity where backend_type = 'client backend'"
            )
            figures.connections = max(figures.connections, int(count))
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def run_load(
    args: argparse.Namespace,
    cluster: Cluster,
    tokens: dict[str, str],
    dsn: str,
    senders: list[Sender],
) -> tuple[Figures, list[asyncpg.Record], int]:
    load = Load(args, cluster, tokens)
    readers = [u for u in tokens if u.endswith((".radiology", ".ecg"))]
    clinics = [s.clinic for s in senders]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        background = [
            asyncio.create_task(load.clinic_stream(http, c, n)) for n, c in enumerate(clinics)
        ]
        background += [asyncio.create_task(load.reader(http, r, n)) for n, r in enumerate(readers)]
        background.append(asyncio.create_task(sample_connections(dsn, load.figures, load.done)))
        await asyncio.sleep(2)  # the streams are open before the first study
        await load.send_all(http, senders)
        print(f"sent in {load.figures.sent_s:.0f} s; waiting for the reports", flush=True)
        expected = args.studies + args.ecgs - len(load.figures.errors)
        deadline = time.monotonic() + args.drain_minutes * 60
        while time.monotonic() < deadline and len(load.figures.told) < expected:  # noqa: ASYNC110
            await asyncio.sleep(1)
        load.done.set()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select c.id as case_id, r.id as report_id,"
            " extract(epoch from (select min(at) from event e"
            "   where e.study_id = c.study_id and e.kind = 'complete')) as complete,"
            " extract(epoch from (select min(at) from event e"
            "   where e.report_id = r.id and e.kind = 'final')) as final"
            " from reading_case c left join report r on r.case_id = c.id"
        )
        studies = int(await conn.fetchval("select count(*) from study"))
    finally:
        await conn.close()
    return load.figures, list(rows), studies


def print_figures(
    args: argparse.Namespace, figures: Figures, rows: list[Any], studies: int
) -> None:
    to_worklist = [
        figures.seen[r["case_id"]] - float(r["complete"])
        for r in rows
        if r["case_id"] in figures.seen and r["complete"] is not None
    ]
    to_clinic = [
        figures.told[r["report_id"]] - float(r["final"])
        for r in rows
        if r["report_id"] in figures.told and r["final"] is not None
    ]
    sent = args.studies + args.ecgs
    lost = sent - len(figures.errors) - len(figures.told)
    print(
        f"\nsent {sent} studies+ECGs ({figures.instances} instances) in {figures.sent_s:.0f} s: "
        f"{figures.instances / max(figures.sent_s, 1e-9):.1f} instances/s"
    )
    print(
        f"studies in the index {studies}, cases {len(rows)}, reports signed "
        f"{len(figures.reported)}, reports at the clinic {len(figures.told)}"
    )
    print(f"complete -> worklist   {percentiles(to_worklist)}")
    print(f"final -> clinic stream {percentiles(to_clinic)}")
    print(f"errors {len(figures.errors)} {sorted(set(figures.errors))[:5]}")
    print(f"lost {lost} (acknowledged, never reported back to the clinic)")
    print(f"peak PostgreSQL connections {figures.connections}")
    print("peak memory (VmHWM) per process:")
    for name, rss in sorted(figures.memory.items()):
        print(f"  {name:<12} {rss / 2**20:7.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=3000)
    parser.add_argument("--ecgs", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=10.0, help="the day, compressed")
    parser.add_argument("--instances", type=int, default=2, help="instances per X-ray study")
    parser.add_argument("--size", type=int, default=256, help="image rows and columns")
    parser.add_argument("--api", type=int, default=2)
    parser.add_argument("--dicom", type=int, default=2)
    parser.add_argument("--dicom-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--stable-age", help="the service's --stable-age (default its own)")
    parser.add_argument("--sweep-interval", help="the service's --sweep-interval")
    parser.add_argument("--storage", choices=("file", "s3"), default="file")
    parser.add_argument("--concurrency", type=int, default=16, help="sends in flight at most")
    parser.add_argument("--read-seconds", type=float, default=0.0, help="a reader per case")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="worklist refresh")
    parser.add_argument("--drain-minutes", type=float, default=5.0)
    args = parser.parse_args(argv)
    options: tuple[str, ...] = ()
    if args.stable_age:
        options += ("--stable-age", args.stable_age)
    if args.sweep_interval:
        options += ("--sweep-interval", args.sweep_interval)
    with (
        tempfile.TemporaryDirectory(prefix="telemed-load-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        root = Path(tmp)
        pg = EmbeddedPostgres(root / "pg")
        dsn = asyncio.run(pg.start())
        stack.callback(lambda: asyncio.run(pg.stop()))
        storage_url = None
        if args.storage == "s3":
            from tests.s3 import seaweedfs_s3

            storage_url = stack.enter_context(seaweedfs_s3()).url(f"load-{uuid.uuid4().hex[:8]}")
        env = service_env(database_url=dsn, storage_url=storage_url, data_dir=root / "var")
        senders = network_file(root / "network.toml")
        telemed("migrate", env=env)
        telemed("network", "import", str(root / "network.toml"), env=env)
        tokens = asyncio.run(tokens_for(dsn))
        shape = Shape(
            api=args.api,
            dicom=args.dicom,
            dicom_processes=args.dicom_processes,
            workers=args.workers,
            options=options,
        )
        started = time.monotonic()
        with running_cluster(env, shape) as cluster:
            print(
                f"{len(cluster.processes())} processes ready in {time.monotonic() - started:.0f} s",
                flush=True,
            )
            stop = threading.Event()
            sampler_figures = Figures()
            memory = threading.Thread(target=sample_memory, args=(cluster, sampler_figures, stop))
            memory.start()
            try:
                figures, rows, studies = asyncio.run(run_load(args, cluster, tokens, dsn, senders))
            finally:
                stop.set()
                memory.join()
            figures.memory = sampler_figures.memory
        print_figures(args, figures, rows, studies)
        lost = args.studies + args.ecgs - len(figures.errors) - len(figures.told)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
