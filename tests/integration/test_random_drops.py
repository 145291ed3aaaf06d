"""Connections to PostgreSQL and to S3 reset at random while 1,000 instances arrive over
C-STORE, STOW-RS and the resumable upload (whole and in ranged parts), the senders sending
again whatever was not acknowledged, as a workstation and the upload client do.

Every acknowledged instance is indexed exactly once and its object reads back with its hash;
an instance whose answer was lost is either absent or stored complete, so sending it again
answers success; the worker routes every study through the same drops and gives no job up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import io
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pydicom
import pytest
from pynetdicom import AE

from storage.collection import verify
from teleradiology.http.context import OBJECTS
from teleradiology.node.upload_client import ExitCode, Retry, upload_paths
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api, drop_bucket, serving, unique_bucket_name
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_ingest import multipart, stow
from tests.integration.test_outage import _proxy_for, _settings
from tests.s3 import S3Endpoint

pytestmark = pytest.mark.s3

#: Instances per path in (studies, instances each): 1,000 in all.
C_STORE = (8, 50)
STOW = (10, 30)
UPLOAD_WHOLE = (10, 15)
UPLOAD_RANGED = (10, 15)
#: Parts small enough that every ranged instance goes in three.
RANGED_PART_BYTES = 4096
#: A connection to PostgreSQL or S3 is reset this often (seconds, at random between).
DROP_EVERY_S = (0.05, 0.3)
#: How long the senders may take, drops and all.
SEND_WITHIN_S = 240.0
SUCCESS, OUT_OF_RESOURCES = 0x0000, 0xA700


@dataclasses.dataclass
class Tally:
    """What the senders saw."""

    acknowledged: Counter[str] = dataclasses.field(default_factory=Counter)
    sent_again: Counter[str] = dataclasses.field(default_factory=Counter)
    refused: list[str] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def note(self, path: str, *, acknowledged: bool) -> None:
        with self.lock:
            (self.acknowledged if acknowledged else self.sent_again)[path] += 1


@pytest.fixture
async def dropping(
    database_url: str, tmp_path: Path, seaweedfs: S3Endpoint
) -> AsyncIterator[tuple[Api, list[TcpProxy]]]:
    """The service (every role) reaching PostgreSQL and S3 through proxies."""
    pg, template = _proxy_for(database_url)
    s3 = TcpProxy(seaweedfs.host, seaweedfs.port)
    await pg.start()
    await s3.start()
    bucket = unique_bucket_name()
    storage_url = dataclasses.replace(seaweedfs, port=s3.port).url(bucket)
    settings = _settings(tmp_path, template.format(port=pg.port), storage_url)
    try:
        async with serving(settings, run_worker=True) as api:
            yield api, [pg, s3]
    finally:
        await pg.close()
        await s3.close()
        await asyncio.to_thread(drop_bucket, seaweedfs.client(), bucket)


async def _drop_at_random(proxies: list[TcpProxy], rng: random.Random) -> None:
    while True:
        await asyncio.sleep(rng.uniform(*DROP_EVERY_S))
        rng.choice(proxies).drop_one(rng)


def _studies(prefix: str, shape: tuple[int, int]) -> list[list[bytes]]:
    studies, each = shape
    return [
        make_study(modality="CR", count=each, patient_id=f"{prefix}-{n}") for n in range(studies)
    ]


def _c_store_all(port: int, instances: list[bytes], tally: Tally) -> None:
    """Send every instance, on as many associations as it takes, until each is acknowledged."""
    pending = [pydicom.dcmread(io.BytesIO(data)) for data in instances]
    deadline = time.monotonic() + SEND_WITHIN_S
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} C-STOREs never acknowledged"
        ae = AE(ae_title="HBXL01")
        ae.add_requested_context(pending[0].SOPClassUID)
        ae.dimse_timeout = ae.acse_timeout = 30
        assoc = ae.associate("127.0.0.1", port, ae_title="TELEMED")
        if not assoc.is_established:
            time.sleep(0.2)
            continue
        try:
            while pending and assoc.is_established:
                answer = assoc.send_c_store(pending[0])
                status = int(answer.Status) if "Status" in answer else None
                if status == SUCCESS:
                    pending.pop(0)
                    tally.note("c-store", acknowledged=True)
                    continue
                tally.note("c-store", acknowledged=False)
                if status not in (None, OUT_OF_RESOURCES):
                    tally.refused.append(f"C-STORE answered {status:#06x}")
                    pending.pop(0)
                time.sleep(0.1)
        finally:
            if assoc.is_established:
                assoc.release()


async def _stow_all(api: Api, instances: list[bytes], tally: Tally) -> None:
    """STOW-RS each instance, sending it again while the answer is "send again" or lost."""
    deadline = time.monotonic() + SEND_WITHIN_S
    for data in instances:
        while True:
            assert time.monotonic() < deadline, "a STOW-RS was never acknowledged"
            try:
                sent = await stow(api, multipart(data))
                status, text = sent.status, await sent.text()
            except aiohttp.ClientError:
                status, text = 0, "connection lost"
            if status == 200:
                tally.note("stow", acknowledged=True)
                break
            tally.note("stow", acknowledged=False)
            if status not in (0, 503):
                tally.refused.append(f"STOW-RS answered {status}: {text[:200]}")
                break
            await asyncio.sleep(0.1)


async def _upload_all(api: Api, folder: Path, part_bytes: int | None, tally: Tally) -> None:
    """``telemed upload`` of a folder of studies, with its own retries."""

    def sent_again(reason: str) -> None:
        tally.note("upload", acknowledged=False)

    out, err = io.StringIO(), io.StringIO()
    extra = {} if part_bytes is None else {"part_bytes": part_bytes}
    code = await upload_paths(
        [folder],
        server=str(api.client.make_url("")),
        token=api.tokens["xlwd.clinic"],
        retry=Retry(give_up_s=SEND_WITHIN_S, first_s=0.1, max_s=1.0),
        out=out,
        err=err,
        show_progress=False,
        **extra,  # type: ignore[arg-type]
    )
    if code != ExitCode.OK:
        tally.refused.append(f"telemed upload exited {code}: {err.getvalue()[-500:]}")
    else:
        tally.note("upload", acknowledged=True)


def _write(folder: Path, studies: list[list[bytes]]) -> None:
    for s, study in enumerate(studies):
        for n, data in enumerate(study):
            path = folder / f"study{s}" / f"{n:03d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


async def test_random_resets_lose_nothing_acknowledged_and_store_nothing_twice(
    dropping: tuple[Api, list[TcpProxy]], tmp_path: Path
) -> None:
    api, proxies = dropping
    by_path = {
        "c-store": _studies("DROP-D", C_STORE),
        "stow": _studies("DROP-S", STOW),
        "upload-whole": _studies("DROP-UW", UPLOAD_WHOLE),
        "upload-ranged": _studies("DROP-UR", UPLOAD_RANGED),
    }
    sent = {
        str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)
        for studies in by_path.values()
        for study in studies
        for data in study
    }
    assert len(sent) == 1000
    _write(tmp_path / "whole", by_path["upload-whole"])
    _write(tmp_path / "ranged", by_path["upload-ranged"])

    tally = Tally()
    port = api.app[DICOM].port
    loop = asyncio.get_running_loop()
    # The workstations' threads of their own: the service's default executor is its own.
    senders = concurrent.futures.ThreadPoolExecutor(max_workers=len(by_path["c-store"]))
    dropper = asyncio.create_task(_drop_at_random(proxies, random.Random(20261203)))
    try:
        await asyncio.gather(
            *(
                loop.run_in_executor(senders, _c_store_all, port, study, tally)
                for study in by_path["c-store"]
            ),
            *(_stow_all(api, study, tally) for study in by_path["stow"]),
            _upload_all(api, tmp_path / "whole", None, tally),
            _upload_all(api, tmp_path / "ranged", RANGED_PART_BYTES, tally),
        )
    finally:
        dropper.cancel()
        senders.shutdown(wait=False)
    dropped = sum(p.dropped for p in proxies)
    print(f"connections reset: {dropped}; senders saw {dict(tally.sent_again)} sent again")
    assert tally.refused == []
    assert dropped >= 50, "too few resets to mean anything"
    assert sum(tally.sent_again.values()) > 0, "no sender ever had to send again"

    # Every instance is indexed once, and its object reads back with its own hash and UID.
    rows = await api.pool.fetch("select sop_instance_uid, object_key from instance")
    uids = Counter(r["sop_instance_uid"] for r in rows)
    assert [uid for uid, n in uids.items() if n > 1] == []
    assert set(uids) == sent
    checked = await verify(api.pool, api.app[OBJECTS], read=True)
    assert (checked.missing, checked.damaged) == ([], [])
    assert checked.checked >= len(sent)
    for row in rows[:: max(1, len(rows) // 100)]:
        data = await api.app[OBJECTS].get(row["object_key"])
        assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID == row["sop_instance_uid"]

    # The worker went through the same resets: every study routed, no job given up.
    studies = sum(len(s) for s in by_path.values())
    deadline = time.monotonic() + 60
    while (routed := await api.pool.fetchval("select count(*) from reading_case")) < studies:
        assert time.monotonic() < deadline, f"{routed} of {studies} studies routed"
        await asyncio.sleep(0.5)
    assert routed == studies
    given_up = await api.pool.fetchval("select count(*) from pgqueuer where status = 'failed'")
    assert given_up == 0
