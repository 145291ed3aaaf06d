"""How soon a study a modality says is whole is on the reader's worklist, while other
workstations keep sending.

Per study: an order registered by the API; its performed procedure step created by MPPS;
the instances sent by C-STORE; then the modality says the study is whole, by MPPS N-SET
COMPLETED naming every instance (``--by mpps``) or by a Storage Commitment request
(``--by commitment``). Timed from that last response to the case listed by
``GET /api/v1/worklist`` for a county reader. Meanwhile ``--load`` other associations, from
another village's workstation, send studies by C-STORE without stopping. The service runs
with its default settings (stable age 60 s, sweep every 5 s) and its worker, in this
process on a fresh embedded PostgreSQL. Prints p50, p95 and the slowest of ``--studies``
runs, and the instances the load stored meanwhile.

    .venv/bin/python bench/ready_latency.py --studies 20 --by mpps
    .venv/bin/python bench/ready_latency.py --studies 20 --by commitment --load 4
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from storage.db import EmbeddedPostgres
from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.test_orders import (
    OTHER_WORKSTATION,
    WORKSTATION,
    associate,
    c_store,
    commitment_request,
    mpps,
    mpps_completed,
    mpps_create,
    register,
    study_of,
)

READER = "wang.reader"  # a county radiology reader of the village's network
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"


def _load(port: int, stop: threading.Event, stored: list[int]) -> None:
    """Send 10-instance studies from another village until told to stop."""
    while not stop.is_set():
        images = [
            _read(data) for data in make_study(count=10, patient_id=f"LW-{generate_uid()[-8:]}")
        ]
        stored.append(sum(1 for status in c_store(port, OTHER_WORKSTATION, images) if status == 0))


def _read(data: bytes) -> Any:
    return pydicom.dcmread(io.BytesIO(data))


def _commit(port: int, images: list[Any]) -> float:
    """Ask for storage commitment; the time of the N-ACTION response (the report follows)."""
    reported = threading.Event()

    def on_report(event: evt.Event) -> tuple[int, None]:
        reported.set()
        return 0, None

    assoc = associate(
        port, WORKSTATION, StorageCommitmentPushModel,
        handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
    )  # fmt: skip
    assert assoc.is_established
    try:
        status, _ = assoc.send_n_action(
            commitment_request(images), 1, StorageCommitmentPushModel, COMMITMENT_INSTANCE
        )
        answered = time.monotonic()
        assert int(status.Status) == 0, status
        assert reported.wait(30), "no commitment report"
        time.sleep(0.1)  # the report's own response goes out before the release
        return answered
    finally:
        assoc.release()


async def _listed(api: Api, study_uid: str, *, within_s: float) -> float:
    """Poll the reader's worklist until the study's case is on it: the time it was seen."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        got = await api.client.get("/api/v1/worklist?limit=200", headers=api.auth(READER))
        assert got.status == 200, await got.text()
        cases = (await got.json())["cases"]
        if any(c["study_instance_uid"] == study_uid for c in cases):
            return time.monotonic()
        await asyncio.sleep(0.02)
    raise AssertionError(f"not on {READER}'s worklist within {within_s} s")


async def _one(api: Api, n: int, by: str) -> float:
    port = api.app[DICOM].port
    order = await register(api, patient_id=f"WD-B{n}")
    images = study_of(order, count=3)
    step = generate_uid()
    await asyncio.to_thread(mpps, port, WORKSTATION, ("create", step, mpps_create(order)))
    assert await asyncio.to_thread(c_store, port, WORKSTATION, images) == [0, 0, 0]
    # The worklist is watched from before the last request, so the wait for the
    # commitment's report (which follows its response) does not count.
    watching = asyncio.create_task(_listed(api, order["study_instance_uid"], within_s=30.0))
    if by == "mpps":
        await asyncio.to_thread(mpps, port, WORKSTATION, ("set", step, mpps_completed(images)))
        began = time.monotonic()
    else:
        began = await asyncio.to_thread(_commit, port, images)
    return max(0.0, await watching - began)


async def main(studies: int, by: str, load: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ready-bench-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await embedded.start()
        try:
            async with serving(local_settings(dsn, Path(tmp)), run_worker=True) as api:
                stop, stored = threading.Event(), []
                senders = [
                    threading.Thread(target=_load, args=(api.app[DICOM].port, stop, stored))
                    for _ in range(load)
                ]
                for sender in senders:
                    sender.start()
                started = time.monotonic()
                try:
                    took = [await _one(api, n, by) for n in range(studies)]
                finally:
                    stop.set()
                    for sender in senders:
                        await asyncio.to_thread(sender.join)
                elapsed = time.monotonic() - started
        finally:
            await embedded.stop()
    ms = sorted(t * 1000 for t in took)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print(
        f"{studies} studies by {by}, {load} other associations storing "
        f"({sum(stored)} instances, {sum(stored) / elapsed:.0f}/s): last response -> on the "
        f"worklist: p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, "
        f"slowest {ms[-1]:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--by", choices=("mpps", "commitment"), default="mpps")
    parser.add_argument("--load", type=int, default=4, help="other associations storing")
    args = parser.parse_args()
    asyncio.run(main(args.studies, args.by, args.load))
