"""How soon a study a modality says is whole becomes a case: an order registered by the
API, its performed procedure step created and COMPLETED by MPPS naming every instance, the
instances sent by C-STORE, then the time from the last instance's success to the case in
PostgreSQL, with the service's default settings (stable age 60 s, sweep every 5 s) and its
worker running, in this process on a fresh embedded PostgreSQL. Prints the median and the
slowest of ``--studies`` runs.

    .venv/bin/python bench/ready_latency.py --studies 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from pydicom.uid import generate_uid

from storage.db import EmbeddedPostgres
from teleradiology.roles import DICOM
from tests.integration.conftest import local_settings, serving
from tests.integration.test_orders import (
    WORKSTATION,
    c_store,
    case_of,
    mpps,
    mpps_completed,
    mpps_create,
    register,
    study_of,
)


async def main(studies: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ready-bench-") as tmp:
        embedded = EmbeddedPostgres(Path(tmp) / "pg")
        dsn = await embedded.start()
        try:
            settings = local_settings(dsn, Path(tmp))
            async with serving(settings, run_worker=True) as api:
                port = api.app[DICOM].port
                took = []
                for n in range(studies):
                    order = await register(api, patient_id=f"WD-B{n}")
                    images = study_of(order, count=3)
                    step = generate_uid()
                    await asyncio.to_thread(
                        mpps,
                        port,
                        WORKSTATION,
                        ("create", step, mpps_create(order)),
                        ("set", step, mpps_completed(images)),
                    )
                    await asyncio.to_thread(c_store, port, WORKSTATION, images[:-1])
                    await asyncio.to_thread(c_store, port, WORKSTATION, images[-1:])
                    began = time.monotonic()
                    case = await case_of(api, order["study_instance_uid"], within_s=30.0)
                    assert case is not None, "no case within 30 s"
                    took.append(time.monotonic() - began)
        finally:
            await embedded.stop()
    print(
        f"{studies} studies: last instance stored -> case: median "
        f"{statistics.median(took) * 1000:.0f} ms, slowest {max(took) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=20)
    asyncio.run(main(parser.parse_args().studies))
