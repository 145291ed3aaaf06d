"""Orders across processes, as a county deploys them: an api, a dicom and a worker process
(``telemed serve --role ...``) on one PostgreSQL, with the default settings (stable age
60 s, sweep every 5 s). A clinic registers an order over HTTP; its workstation performs it
over DICOM (MPPS, C-STORE) on the dicom process; the worker process, woken through
PostgreSQL, routes the study within 2 s of its last instance, and the county reader's
worklist shows it urgent."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from tests.e2e.cluster import Shape, running_cluster
from tests.e2e.harness import DEMO_NETWORK, http, service_env, telemed, wait_for
from tests.integration.test_orders import (
    WORKSTATION,
    c_store,
    mpps,
    mpps_completed,
    mpps_create,
    order_body,
    study_of,
)

pytestmark = pytest.mark.dcmtk


def test_a_completed_step_is_routed_by_the_worker_process_at_once(
    database_url: str, tmp_path: Path
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    shape = Shape(api=1, dicom=1, dicom_processes=1, workers=1)
    with running_cluster(env, shape) as cluster:
        (api,), (dicom,) = cluster.api, cluster.dicom
        clinic, reader = api.token("xlwd.clinic"), api.token("wang.reader")
        status, _, order = http(
            "POST", f"{api.base_url}/api/v1/orders", token=clinic,
            body=order_body(scheduled_date=date.today().isoformat()),
        )  # fmt: skip
        assert status == 201, order
        images = study_of(order, count=3)
        step = generate_uid()
        port = dicom.dicom_port
        assert mpps(port, WORKSTATION, ("create", step, mpps_create(order))) == [0]
        assert c_store(port, WORKSTATION, images[:2]) == [0, 0]
        assert mpps(port, WORKSTATION, ("set", step, mpps_completed(images))) == [0]
        started = time.monotonic()
        assert c_store(port, WORKSTATION, images[2:]) == [0]

        def routed() -> dict[str, object] | None:
            _, _, body = http("GET", f"{api.base_url}/api/v1/worklist", token=reader)
            found = [
                c for c in body["cases"] if c["study_instance_uid"] == order["study_instance_uid"]
            ]
            return found[0] if found else None

        case = wait_for(routed, timeout_s=2.0, interval_s=0.05)
        took = time.monotonic() - started
        print(f"last instance -> on the reader's worklist in {took:.2f} s (three processes)")
        assert case["priority"] == "high"
        assert case["clinical_question"] == "咳嗽两周，排除肺炎\n病史: 吸烟三十年"
