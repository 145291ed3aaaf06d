"""The operations API of a network's administrator, on real PostgreSQL and the real job
queue: a report's delivery job fails for real (its object store cannot be written), is
held as failed, listed with its error and retried from the API to delivery; refused
instances by facility and day; studies returned for quality and whether they came again;
the health panel's lights; and another network's administrator sees and changes none of
it."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pydicom
import pytest

from storage import network
from storage.records import ReceivedVia
from teleradiology.core.errors import DuplicateConflict
from teleradiology.dimse.sender import report_sender
from teleradiology.http.context import INGESTOR, OBJECTS
from teleradiology.services import administration, delivery
from teleradiology.services.delivery import DELIVER_REPORT
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, route_all, store
from tests.integration.test_authz_matrix import _other_network as other_network
from tests.integration.test_delivery_jobs import (
    _final_report,
    _job_status,
    _run_worker,
    held_failed,
)
from tests.integration.test_reports_home import _ok

SEND = report_sender("TELEMED")
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
async def _other_network(api: Api) -> None:
    """A second network beside the demo's (ZK-CITY) with its administrator, zk.admin."""
    facilities, users = other_network()
    await administration.import_network(api.pool, facilities, users)
    for name in ("zk.admin", "xy.city"):
        found = await network.user_by_username(api.pool, name)
        assert found is not None
        api.tokens[name] = await network.create_token(api.pool, found.id)


async def _get(api: Api, user: str, path: str) -> tuple[int, Any]:
    response = await api.client.get(path, headers=api.auth(user))
    return response.status, await response.json()


async def _post(api: Api, user: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await api.client.post(path, json=body, headers=api.auth(user))
    return response.status, await response.json()


async def test_a_job_that_failed_for_real_is_listed_and_retried_to_delivery(
    api: Api, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "DELIVERY_ATTEMPTS", 2)
    report_id = await _final_report(api, "OPS-1")
    await held_failed(api, database_url, tmp_path, report_id)

    status, body = await _get(api, "hb.admin", "/api/v1/admin/jobs/failed")
    assert status == 200, body
    (job,) = body["jobs"]
    assert (job["kind"], job["report_id"], job["facility"]) == (
        DELIVER_REPORT,
        report_id,
        "HB-XL-WD",
    )
    # the error the last attempt raised, from the job's own log
    assert job["error"].startswith("StorageError: cannot store object"), job["error"]
    # the city above sees it too; another network's administrator and a reader do not
    assert [
        j["id"] for j in (await _get(api, "xy.admin", "/api/v1/admin/jobs/failed"))[1]["jobs"]
    ] == [job["id"]]
    assert (await _get(api, "zk.admin", "/api/v1/admin/jobs/failed"))[1] == {"jobs": []}
    assert (await _get(api, "wang.reader", "/api/v1/admin/jobs/failed"))[0] == 403

    retry = f"/api/v1/admin/jobs/{job['id']}/retry"
    assert (await _post(api, "zk.admin", retry))[0] == 404
    assert await _job_status(api, report_id) == "failed"  # another network changed nothing
    status, answer = await _post(api, "hb.admin", retry)
    assert status == 200, answer
    assert answer == {"id": job["id"], "kind": DELIVER_REPORT, "retried": True}
    assert await _job_status(api, report_id) == "queued"
    assert (await _post(api, "hb.admin", retry))[0] == 404  # queued now, not failed
    audited = await api.pool.fetchrow(
        "select a.detail, u.username from audit a join app_user u on u.id = a.user_id "
        "where a.object_type = 'job' and a.object_id = $1",
        str(job["id"]),
    )
    assert audited is not None
    detail = json.loads(audited["detail"])
    assert audited["username"] == "hb.admin"
    assert (detail["before"]["status"], detail["after"]["status"]) == ("failed", "queued")

    async def delivered() -> bool:
        at = await api.pool.fetchval("select delivered_at from report where id = $1", report_id)
        return at is not None

    await _run_worker(api, database_url, api.app[OBJECTS], delivered)
    assert (await _get(api, "hb.admin", "/api/v1/admin/jobs/failed"))[1] == {"jobs": []}


def _changed(data: bytes) -> bytes:
    """The same instance (same UIDs) with other content."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.StudyDescription = "另一内容"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


async def test_refused_instances_are_listed_by_facility_and_day(api: Api) -> None:
    first = make_study(modality="CR", count=1, patient_id="OPS-R1")
    await store(api, "HB-XL-WD", first)
    sender = await facility(api, "HB-XL-WD")
    with pytest.raises(DuplicateConflict):
        await api.app[INGESTOR].ingest(
            _changed(first[0]), facility=sender, via=ReceivedVia.DIMSE, sender_ae="HBXLWD01"
        )
    today = datetime.now(UTC).astimezone(ZONE).date()
    base = "/api/v1/admin/operations/rejections"
    status, body = await _get(api, "hb.admin", f"{base}?facility=HB-XL-WD&day={today}")
    assert status == 200, body
    assert body["total"] == 1
    (row,) = body["rejections"]
    assert row["facility"] == "HB-XL-WD"
    assert row["calling_ae"] == "HBXLWD01"
    assert row["sop_class_uid"] == str(pydicom.dcmread(io.BytesIO(first[0])).SOPClassUID)
    assert row["reason"]
    assert "小明" not in json.dumps(body, ensure_ascii=False)  # no patient names
    # another day, another facility: none; a facility of another network: 404
    yesterday = today - timedelta(days=1)
    assert (await _get(api, "hb.admin", f"{base}?day={yesterday}"))[1]["total"] == 0
    assert (await _get(api, "hb.admin", f"{base}?facility=HB-COUNTY"))[1]["total"] == 0
    assert (await _get(api, "zk.admin", f"{base}?facility=HB-XL-WD"))[0] == 404
    assert (await _get(api, "zk.admin", base))[1]["total"] == 0
    assert (await _get(api, "hb.admin", f"{base}?day=2026-13-01"))[0] == 400
    # paged
    page = (await _get(api, "hb.admin", f"{base}?limit=1&offset=1"))[1]
    assert (page["total"], page["rejections"]) == (1, [])


async def test_studies_returned_for_quality_say_whether_they_came_again(api: Api) -> None:
    study = make_study(modality="DX", count=1, patient_id="OPS-Q1")
    uid = await store(api, "HB-XL-WD", study)
    await route_all(api)
    case_id = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        uid,
    )
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    await _ok(
        api, "wang.reader", f"/api/v1/cases/{case_id}/return", {"reason": "motion", "note": "重拍"}
    )
    base = "/api/v1/admin/operations/returned"
    status, body = await _get(api, "hb.admin", base)
    assert status == 200, body
    (row,) = body["returned"]
    assert (row["case_id"], row["facility"], row["reason"], row["note"], row["resent"]) == (
        case_id,
        "HB-XL-WD",
        "motion",
        "重拍",
        False,
    )
    assert (await _get(api, "zk.admin", base))[1]["returned"] == []
    # the clinic sends the study again (a new image of it)
    again = make_study(modality="DX", count=1, patient_id="OPS-Q1", study_uid=uid)
    await store(api, "HB-XL-WD", again)
    assert (await _get(api, "hb.admin", base))[1]["returned"][0]["resent"] is True
    listed = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'reading_case' and object_id = 'returned'"
    )
    assert listed == 3


async def test_the_health_panel_judges_the_queue_and_the_stores(api: Api) -> None:
    status, body = await _get(api, "hb.admin", "/api/v1/admin/operations/health")
    assert status == 200, body
    readings = {r["measure"]: r for r in body["readings"]}
    assert readings["database_ms"]["light"] in ("green", "amber")
    assert readings["database_ms"]["value"] is not None
    assert readings["objects_ms"]["light"] in ("green", "amber")
    assert "red ≥" in readings["oldest_due_s"]["thresholds"]
    assert body["sizes"]["database_bytes"] > 0
    # a report's delivery job due for eleven minutes with no runner: the queue is red
    await _final_report(api, "OPS-H1")
    await api.pool.execute("update pgqueuer set execute_after = now() - interval '11 minutes'")
    body = (await _get(api, "hb.admin", "/api/v1/admin/operations/health"))[1]
    readings = {r["measure"]: r for r in body["readings"]}
    assert readings["oldest_due_s"]["light"] == "red"
    assert body["light"] == "red"
    assert any(q["kind"] == DELIVER_REPORT and q["queued"] >= 1 for q in body["queue"])
    assert (await _get(api, "wang.reader", "/api/v1/admin/operations/health"))[0] == 403
