"""The DICOM listener SIGKILLed while several senders C-STORE, the senders re-sending what was
not acknowledged: every acknowledged instance is indexed once with its object intact, and the
collector removes the objects the kill left unindexed."""

from __future__ import annotations

import asyncio
import queue
import signal
import threading
import time
import tracemalloc  # noqa: F401 (loaded before pytest's unraisable hook needs it in a gc pass)
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import asyncpg
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ComputedRadiographyImageStorage  # type: ignore[attr-defined]

from storage.instance_keys import keys_match
from storage.objects import open_object_store
from teleradiology.core.dicom import dataset_digest
from tests.e2e.conftest import FAST
from tests.e2e.harness import DEMO_NETWORK, running_service, service_env, telemed, wait_for
from tests.factory import make_study
from tests.s3 import S3Endpoint

pytestmark = [
    pytest.mark.dcmtk,
    pytest.mark.s3,
    # pynetdicom leaves the socket of a refused connection to the gc (the listener is down)
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

#: Instances sent in the test (``bench/kill_ingest.py --instances 1000`` for the full size).
INSTANCES = 200
SENDERS = 4
#: Instances per association: a broken association leaves at most this many unacknowledged.
PER_ASSOCIATION = 10
#: Village workstations of the demo network (王店村), calling the hub.
CALLING = "HBXLWD01"


@dataclass
class Ingest:
    """Shared state of the senders: what is still to send, what was acknowledged."""

    pending: queue.Queue[Dataset] = field(default_factory=queue.Queue)
    acknowledged: set[str] = field(default_factory=set)
    resent: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _send_batch(state: Ingest, batch: list[Dataset]) -> list[Dataset]:
    """C-STORE ``batch`` on one association; return the instances not acknowledged."""
    ae = AE(ae_title=CALLING)
    ae.add_requested_context(ComputedRadiographyImageStorage)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", state.port, ae_title="TELEMED")
    if not assoc.is_established:
        return batch
    left: list[Dataset] = []
    try:
        for ds in batch:
            if not assoc.is_established:
                left.append(ds)
                continue
            status = assoc.send_c_store(ds)
            if status and getattr(status, "Status", None) == 0x0000:
                with state.lock:
                    state.acknowledged.add(str(ds.SOPInstanceUID))
            else:
                left.append(ds)
    finally:
        if assoc.is_established:
            assoc.release()
    return left


def _sender(state: Ingest) -> None:
    while not state.stop.is_set():
        batch: list[Dataset] = []
        while len(batch) < PER_ASSOCIATION:
            try:
                batch.append(state.pending.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        left = _send_batch(state, batch)
        if left:
            with state.lock:
                state.resent += len(left)
            for ds in left:
                state.pending.put(ds)
            time.sleep(0.2)


def _datasets(count: int) -> list[Dataset]:
    studies = [
        make_study(modality="CR", count=PER_ASSOCIATION, patient_id=f"WD-K{n}", size=16)
        for n in range(count // PER_ASSOCIATION)
    ]
    return [dcmread(BytesIO(raw)) for study in studies for raw in study]


async def _index(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(
            await conn.fetch("select sop_instance_uid, object_key, dataset_sha256 from instance")
        )
    finally:
        await conn.close()


async def _objects(storage_url: str, keys: list[str]) -> tuple[set[str], dict[str, bytes]]:
    """Every key in the bucket, and the bytes of ``keys`` (those present)."""
    async with open_object_store(storage_url) as store:
        stored = {k async for k in store.keys_older_than(datetime.now(UTC) + timedelta(hours=1))}
        found = {k: await store.get(k) for k in keys if k in stored}
    return stored, found


async def _write_orphan(storage_url: str) -> str:
    data = make_study(modality="CR", count=1, patient_id="WD-ORPHAN", size=16)[0]
    async with open_object_store(storage_url) as store:
        return await store.put(data)


@dataclass(frozen=True)
class Figures:
    acknowledged: int
    resent: int
    orphans_before: int
    orphans_after: int
    seconds: float


def run_scenario(database_url: str, storage_url: str, data_dir: Path, count: int) -> Figures:
    """Send ``count`` instances from ``SENDERS`` threads, SIGKILL the listener half-way,
    start it again, let the senders finish; check the index and collect the orphans."""
    started = time.monotonic()
    env = service_env(database_url=database_url, storage_url=storage_url, data_dir=data_dir)
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    state = Ingest()
    sent = _datasets(count)
    for ds in sent:
        state.pending.put(ds)
    with ExitStack() as stack:
        first = stack.enter_context(running_service(env, *FAST, "--role", "dicom", name="dicom1"))
        state.port = first.dicom_port
        threads = [threading.Thread(target=_sender, args=(state,)) for _ in range(SENDERS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(state.acknowledged) >= count // 2, timeout_s=120, interval_s=0.05)
            assert first.proc is not None
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(timeout=10)
            second = stack.enter_context(
                running_service(env, *FAST, "--role", "dicom", name="dicom2")
            )
            state.port = second.dicom_port
            for t in threads:
                t.join(timeout=300)
        finally:
            state.stop.set()
            for t in threads:
                t.join(timeout=30)
        assert state.pending.empty()
        assert state.acknowledged == {str(ds.SOPInstanceUID) for ds in sent}
        rows = asyncio.run(_index(database_url))
        uids = [r["sop_instance_uid"] for r in rows]
        # exactly one row per instance, every acknowledged one among them
        assert len(uids) == len(set(uids))
        assert state.acknowledged <= set(uids)
        keys = [r["object_key"] for r in rows]
        stored, found = asyncio.run(_objects(storage_url, keys))
        # no index row without its object, and each object's bytes are what the row says
        assert set(keys) <= set(found)
        for row in rows:
            data = found[row["object_key"]]
            # an instance's key, or the SHA-256 of a spooled file copied into S3
            assert keys_match(data, row["object_key"])
            assert dataset_digest(data) == row["dataset_sha256"]
            assert str(dcmread(BytesIO(data)).SOPInstanceUID) == row["sop_instance_uid"]
        # The kill lands between an object's write and its index commit only by chance: one
        # object is left here as that moment leaves it (written, never indexed), so that the
        # collector always has an orphan to find.
        planted = asyncio.run(_write_orphan(storage_url))
        orphans_before = len(stored - set(keys)) + (planted not in stored)
        # the listener down: the collector runs alone, as an operator would run it
        stack.close()
    collected = telemed("storage", "collect", "--grace-hours", "0", env=env)
    assert f"collected {orphans_before} that" in collected.stdout, collected.stdout
    stored_after, found_after = asyncio.run(_objects(storage_url, keys))
    assert set(keys) <= set(found_after)
    orphans_after = len(stored_after - set(keys))
    verified = telemed("storage", "verify", "--read", env=env, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return Figures(
        acknowledged=len(state.acknowledged),
        resent=state.resent,
        orphans_before=orphans_before,
        orphans_after=orphans_after,
        seconds=time.monotonic() - started,
    )


def test_a_killed_listener_loses_nothing_acknowledged_and_its_orphans_are_collected(
    database_url: str, seaweedfs: S3Endpoint, tmp_path: Path
) -> None:
    storage_url = seaweedfs.url(f"e2e-{uuid.uuid4().hex[:16]}")
    figures = run_scenario(database_url, storage_url, tmp_path / "var", INSTANCES)
    assert figures.acknowledged == INSTANCES
    assert figures.resent > 0  # the kill did break associations
    assert figures.orphans_before >= 1
    assert figures.orphans_after == 0
