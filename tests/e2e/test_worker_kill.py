"""A worker SIGKILLed while it delivers reports, with a second worker running: every report is
delivered exactly once (one delivered event, one notification to the clinic, one DICOM copy of
each kind at the clinic's node), and nothing is left failed or stuck."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pynetdicom import AE, AllStoragePresentationContexts, evt

from tests.e2e.conftest import FAST
from tests.e2e.harness import (
    DEMO_NETWORK,
    Service,
    free_port,
    http,
    running_service,
    service_env,
    telemed,
    wait_for,
)
from tests.factory import make_study
from tests.integration.test_ingest import BOUNDARY, multipart

pytestmark = pytest.mark.dcmtk

REPORTS = 12
#: The clinic's node takes its time with each copy, so that a worker is killed mid-delivery.
STORE_DELAY_S = 0.4


class ClinicNode:
    """The clinic's own DICOM node: a storage SCP that notes every SOP instance it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[str] = []
        self._lock = threading.Lock()
        ae = AE(ae_title="XLWDPACS")
        ae.supported_contexts = AllStoragePresentationContexts
        server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._stored)]
        )
        assert server is not None
        self._server = server

    def _stored(self, event: evt.Event) -> int:
        time.sleep(STORE_DELAY_S)
        with self._lock:
            self.received.append(str(event.dataset.SOPInstanceUID))
        return 0x0000

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def node() -> Iterator[ClinicNode]:
    running = ClinicNode()
    yield running
    running.stop()


async def _fetch(database_url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def _rows(database_url: str, sql: str, *args: object) -> list[Any]:
    return asyncio.run(_fetch(database_url, sql, *args))


def _send_and_report(api: Service) -> None:
    clinic, reader = api.token("xlwd.clinic"), api.token("wang.reader")
    for n in range(REPORTS):
        body = multipart(make_study(modality="CR", count=1, patient_id=f"WK-{n}")[0])
        status, _, answer = http(
            "POST",
            f"{api.base_url}/dicomweb/studies",
            token=clinic,
            data=body,
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            },
        )
        assert status == 200, answer

    def worklist() -> list[dict[str, Any]]:
        cases: list[dict[str, Any]] = http("GET", f"{api.base_url}/api/v1/worklist", token=reader)[
            2
        ]["cases"]
        return cases if len(cases) == REPORTS else []

    for case in wait_for(worklist, timeout_s=60):
        claimed = http("POST", f"{api.base_url}/api/v1/cases/{case['id']}/claim", token=reader)
        assert claimed[0] == 200, claimed[2]
        reported = http(
            "POST",
            f"{api.base_url}/api/v1/cases/{case['id']}/report",
            token=reader,
            body={"findings": "双肺纹理清晰", "impression": "未见异常", "conclusion": "normal"},
        )
        assert reported[0] == 201, reported[2]


def test_a_worker_killed_mid_delivery_leaves_each_report_delivered_exactly_once(
    database_url: str, tmp_path: Path, node: ClinicNode
) -> None:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    telemed("network", "import", str(DEMO_NETWORK), env=env)
    with ExitStack() as stack:
        api = stack.enter_context(
            running_service(env, *FAST, "--role", "api", "--role", "dicom", name="api")
        )
        doomed, survivor = (
            stack.enter_context(running_service(env, *FAST, "--role", "worker", name=f"w{n}"))
            for n in (1, 2)
        )
        admin = api.token("hb.admin")
        # the operator's DICOM node of the clinic's workstation; the API only names it
        _rows(
            database_url,
            "insert into dicom_node (ae_title, facility_id, host, port, may_query) "
            "select 'XLWDPACS', id, '127.0.0.1', $1, false from facility "
            "where code = 'HB-XL-WD'",
            node.port,
        )
        destination = {"ae_title": "XLWDPACS"}
        put = http(
            "PUT",
            f"{api.base_url}/api/v1/admin/facilities/HB-XL-WD/report-destination",
            token=admin,
            body=destination,
        )
        assert put[0] == 200, put[2]
        _send_and_report(api)

        # Kill one worker once copies are on their way, whichever worker sends them.
        wait_for(lambda: len(node.received) >= 2, timeout_s=60)
        assert doomed.proc is not None
        doomed.proc.kill()
        doomed.proc.wait()

        # The survivor takes over the killed worker's jobs once their heartbeat is stale.
        def all_sent() -> bool:
            rows = _rows(database_url, "select status from dicom_send")
            return len(rows) == 2 * REPORTS and all(r["status"] == "sent" for r in rows)

        wait_for(all_sent, timeout_s=120, interval_s=1)
        health = http("GET", f"{survivor.base_url}/healthz")[2]
        assert health["jobs"]["running"] is True

    delivered = _rows(database_url, "select report_id from event where kind = 'delivered'")
    assert sorted(Counter(r["report_id"] for r in delivered).values()) == [1] * REPORTS
    told = _rows(database_url, "select report_id from notification where kind = 'report'")
    assert sorted(Counter(r["report_id"] for r in told).values()) == [1] * REPORTS
    undelivered = _rows(database_url, "select id from report where delivered_at is null")
    assert undelivered == []
    copies = _rows(database_url, "select report_id, sop_instance_uid from dicom_send")
    assert sorted(Counter(r["report_id"] for r in copies).values()) == [2] * REPORTS
    # The node holds each copy (a copy cut by the kill is sent again: same SOP instance).
    assert set(node.received) == {r["sop_instance_uid"] for r in copies}
    failed = _rows(database_url, "select id from pgqueuer where status in ('failed', 'picked')")
    assert failed == []
