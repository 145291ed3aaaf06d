"""The service scaled out on one database and one S3 store: 2 api processes, 2 dicom processes
of 2 listener processes each, 3 workers, against one PostgreSQL and one SeaweedFS.

Villages send X-ray studies by C-STORE to both dicom processes and by STOW-RS to both api
processes, and ECGs to both api processes; readers work their worklists through both api
processes. Each case is routed once, each report delivered once, every notification reaches
the clinic's event streams on each api process with no gap, and the processes together stay
under PostgreSQL's max_connections. (The full-size day is ``bench/load.py``.)"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.e2e.cluster import Cluster, Shape, running_cluster
from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, Service, http, service_env, telemed, wait_for
from tests.ecg_file import make_ecg
from tests.factory import make_study, write_files
from tests.integration.test_ingest import BOUNDARY, multipart
from tests.s3 import S3Endpoint

pytestmark = [pytest.mark.dcmtk, pytest.mark.s3]

#: CI-sized; the issue's 300 studies and 200 ECGs run in ``bench/load.py``.
STUDIES = 24
ECGS = 12
#: The sending villages (none with a report destination of its own: delivery is the inbox).
VILLAGES = {
    "HB-XL-WD": ("HBXLWD01", "xlwd.clinic"),
    "HB-XL-ZZ": ("HBXLZZ01", "xlzz.clinic"),
    "HB-MJ-LW": ("HBMJLW01", "mjlw.clinic"),
    "HB-FH-CG": ("HBFHCG01", "fhcg.clinic"),
}
#: Who reads what: radiology at the county, ECGs at 新里镇 and at the county.
READERS = ("wang.reader", "xl.ecg", "li.ecg")
SSE_ID = re.compile(rb"^id: (\d+)-(\d+)\r?$", re.MULTILINE)


class EventClient:
    """One clinic user's event stream on one api process: the cursors (``tx-id``) of the
    notifications it is sent, in the order it is sent them."""

    def __init__(self, service: Service, token: str) -> None:
        host, port = service.base_url.removeprefix("http://").split(":")
        self._sock = socket.create_connection((host, int(port)), timeout=10)
        self._sock.sendall(
            f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        self._received = b""
        while b"retry:" not in self._received:  # subscribed before anything is sent
            self._received += self._sock.recv(4096)
        assert self._received.startswith(b"HTTP/1.1 200"), self._received
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):
            while chunk := self._sock.recv(65536):
                self._received += chunk

    @property
    def cursors(self) -> list[tuple[int, int]]:
        # one frame is one chunk of the chunked body: a frame's lines are never split
        return [(int(tx), int(n)) for tx, n in SSE_ID.findall(self._received)]

    @property
    def resynced(self) -> bool:
        return b"event: resync" in self._received

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=10)
        self._sock.close()


class ConnectionPeak:
    """Samples pg_stat_activity while the load runs: the peak number of connections."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.peak = 0
        self.max_connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._sample()), daemon=True)
        self._thread.start()

    async def _sample(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            self.max_connections = int(await conn.fetchval("show max_connections"))
            while not self._stop.is_set():
                count = await conn.fetchval(
                    "select count(*) from pg_stat_activity where backend_type = 'client backend'"
                )
                self.peak = max(self.peak, int(count))
                await asyncio.sleep(0.25)
        finally:
            await conn.close()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.peak


def _rows(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture
def cluster(database_url: str, seaweedfs: S3Endpoint, tmp_path: Path) -> Iterator[Cluster]:
    storage_url = seaweedfs.url(f"scale-{uuid.uuid4().hex[:12]}")
    env = service_env(database_url=database_url, storage_url=storage_url, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with running_cluster(env, Shape(options=FAST)) as running:
        yield running


def _storescu(service: Service, ae_title: str, folder: Path) -> None:
    sent = subprocess.run(
        [
            *("storescu", "-aet", ae_title, "-aec", "TELEMED", "+sd", "+r", "127.0.0.1"),
            *(str(service.dicom_port), str(folder)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sent.returncode == 0, sent.stderr


def _stow(service: Service, token: str, instances: list[bytes]) -> None:
    status, _, body = http(
        "POST",
        f"{service.base_url}/dicomweb/studies",
        token=token,
        data=multipart(*instances),
        headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        },
    )
    assert status == 200, body


def _upload_ecg(service: Service, token: str, patient_id: str) -> None:
    form = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="patient_id"\r\n\r\n'
        f"{patient_id}\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="ecg.dcm"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    form += (
        make_ecg(patient_id=patient_id, patient_name="张^三") + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    status, _, body = http(
        "POST",
        f"{service.base_url}/api/v1/ecg",
        token=token,
        data=form,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert status == 201, body


def _send(cluster: Cluster, tokens: dict[str, str], tmp_path: Path) -> None:
    """Studies by C-STORE to each dicom process and by STOW-RS to each api process; ECGs by
    upload to each api process; from every village in turn."""
    villages = itertools.cycle(VILLAGES.items())
    senders = [*((s, "cstore") for s in cluster.dicom), *((s, "stow") for s in cluster.api)]
    folders: dict[tuple[int, str], Path] = {}
    for n in range(STUDIES):
        service, how = senders[n % len(senders)]
        _, (ae_title, clinic) = next(villages)
        study = make_study(modality="CR", count=2, patient_id=f"SC-{n}")
        if how == "stow":
            _stow(service, tokens[clinic], study)
        else:
            folder = tmp_path / f"{service.log_path.stem}-{ae_title}"
            folders[(service.dicom_port, ae_title)] = folder
            write_files(folder / f"s{n}", study)
    for service in cluster.dicom:
        for (port, ae_title), folder in folders.items():
            if port == service.dicom_port:
                _storescu(service, ae_title, folder)
    for n in range(ECGS):
        _, (_, clinic) = next(villages)
        _upload_ecg(cluster.api[n % len(cluster.api)], tokens[clinic], f"SE-{n}")


def _read_all(cluster: Cluster, tokens: dict[str, str], cases: int) -> int:
    """The readers claim and sign what their worklists show, through both api processes,
    until ``cases`` reports are final; the number of reports written."""
    written = 0
    body = {"findings": "双肺纹理清晰", "impression": "未见异常", "conclusion": "normal"}
    deadline = time.monotonic() + 120
    apis = itertools.cycle(cluster.api)
    while written < cases:
        assert time.monotonic() < deadline, f"{written} of {cases} cases reported"
        for reader in READERS:
            api = next(apis)
            status, _, listed = http("GET", f"{api.base_url}/api/v1/worklist", token=tokens[reader])
            assert status == 200, listed
            for case in listed["cases"]:
                url = f"{next(apis).base_url}/api/v1/cases/{case['id']}"
                claimed = http("POST", f"{url}/claim", token=tokens[reader])
                assert claimed[0] == 200, claimed[2]
                reported = http(
                    "POST",
                    f"{next(apis).base_url}/api/v1/cases/{case['id']}/report",
                    token=tokens[reader],
                    body=body,
                )
                assert reported[0] == 201, reported[2]
                written += 1
        time.sleep(0.3)
    return written


def _addressed(database_url: str, username: str) -> list[tuple[int, int]]:
    """The cursors of every notification addressed to ``username``, in cursor order."""
    rows = _rows(
        database_url,
        "select n.tx::text::bigint as tx, n.id from notification n join app_user u"
        " on u.username = $1 where n.user_id = u.id or (n.user_id is null"
        " and n.facility_id = u.facility_id and n.audience = u.role) order by 1, 2",
        username,
    )
    return [(r["tx"], r["id"]) for r in rows]


def test_a_scaled_out_service_routes_delivers_and_notifies_each_case_once(
    cluster: Cluster, database_url: str, tmp_path: Path
) -> None:
    any_api = cluster.api[0]
    tokens = {u: any_api.token(u) for u in (*READERS, *(c for _, c in VILLAGES.values()))}
    peak = ConnectionPeak(database_url)
    streams = {
        (api.log_path.stem, clinic): EventClient(api, tokens[clinic])
        for api in cluster.api
        for _, clinic in VILLAGES.values()
    }
    try:
        started = time.monotonic()
        _send(cluster, tokens, tmp_path)
        print(f"\nsent in {time.monotonic() - started:.1f} s")
        assert _read_all(cluster, tokens, STUDIES + ECGS) == STUDIES + ECGS

        def all_delivered() -> bool:
            return not _rows(database_url, "select id from report where delivered_at is null")

        wait_for(all_delivered, timeout_s=60, interval_s=0.5)
        print(f"read and delivered in {time.monotonic() - started:.1f} s")
        expected = {clinic: _addressed(database_url, clinic) for _, clinic in VILLAGES.values()}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            s.cursors != expected[c] for (_, c), s in streams.items()
        ):
            time.sleep(0.5)
    finally:
        for stream in streams.values():
            stream.close()
        highest = peak.stop()
    print(f"\npeak connections {highest} of max_connections {peak.max_connections}")

    cases = _rows(database_url, "select id from reading_case")
    assert len(cases) == STUDIES + ECGS
    routed = _rows(database_url, "select case_id from event where kind = 'routed'")
    assert Counter(r["case_id"] for r in routed) == Counter({c["id"]: 1 for c in cases})
    delivered = _rows(database_url, "select report_id from event where kind = 'delivered'")
    assert sorted(Counter(r["report_id"] for r in delivered).values()) == [1] * len(cases)
    told = _rows(database_url, "select report_id from notification where kind = 'report'")
    assert sorted(Counter(r["report_id"] for r in told).values()) == [1] * len(cases)
    # each clinic's streams, on each api process, got every notification once, in order
    for (api, clinic), stream in streams.items():
        assert stream.cursors == expected[clinic], (api, clinic)
        assert not stream.resynced
    assert sum(len(ids) for ids in expected.values()) >= len(cases)
    assert 0 < highest < peak.max_connections

    # a delivery job may still be sending its DICOM copies after the report is delivered:
    # in flight, not stuck; the queue drains, and no job failed
    def drained() -> bool:
        return not _rows(
            database_url, "select id from pgqueuer where status in ('queued', 'picked')"
        )

    wait_for(drained, timeout_s=60, interval_s=0.5)
    failed = _rows(database_url, "select entrypoint, status, attempts from pgqueuer")
    assert [dict(r) for r in failed] == []
