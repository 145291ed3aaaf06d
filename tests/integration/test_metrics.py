"""/metrics: Prometheus text with this process's traffic and the network's gauges."""

from __future__ import annotations

import asyncio
import re
from io import BytesIO

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from teleradiology.roles import DICOM
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store


def _value(text: str, name: str, **labels: str) -> float:
    """The sample of ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(rf"{re.escape(name)}(\{{.*\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def _scrape(api: Api) -> str:
    response = await api.client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return await response.text()


async def test_metrics_count_open_and_overdue_cases_and_unacknowledged_reports(api: Api) -> None:
    before = await _scrape(api)
    assert _value(before, "telemed_open_cases", pool="HB-COUNTY") == 0
    uid = await store(api, "HB-XL-WD", make_study(modality="CR", count=2, patient_id="P-7"))
    await route_all(api)
    text = await _scrape(api)
    assert _value(text, "telemed_open_cases", pool="HB-COUNTY", status="scheduled") == 1
    assert _value(text, "telemed_overdue_cases", pool="HB-COUNTY") == 0
    assert _value(text, "telemed_instances") == 2
    # No patient data: neither the study UID nor the patient ID is a label.
    assert uid not in text
    assert "P-7" not in text

    case_id = await api.pool.fetchval("select id from reading_case")
    await api.pool.execute("update reading_case set deadline = now() - interval '1 minute'")
    assert _value(await _scrape(api), "telemed_overdue_cases", pool="HB-COUNTY") == 1

    reader = api.auth("wang.reader")
    assert (await api.client.post(f"/api/v1/cases/{case_id}/claim", headers=reader)).status == 200
    report = {"findings": "两肺纹理清晰", "impression": "未见异常", "conclusion": "normal"}
    response = await api.client.post(f"/api/v1/cases/{case_id}/report", json=report, headers=reader)
    assert response.status in (200, 201)
    text = await _scrape(api)
    assert _value(text, "telemed_open_cases", pool="HB-COUNTY") == 0
    assert _value(text, "telemed_unacknowledged_reports", facility="HB-XL-WD") == 1
    # The HTTP traffic of this process, by route pattern, not by concrete path.
    assert (
        _value(
            text,
            "telemed_http_requests_total",
            route="/api/v1/cases/{id}/claim",
            method="POST",
            status="200",
        )
        >= 1
    )
    assert f"/api/v1/cases/{case_id}/claim" not in text


async def test_metrics_count_dimse_stores_by_status(api: Api) -> None:
    def send() -> int:
        ae = AE(ae_title="HBXLWD01")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", api.app[DICOM].port, ae_title="TELEMED")
        assert assoc.is_established
        ds = dcmread(BytesIO(make_study(modality="CT", count=1)[0]))
        status = assoc.send_c_store(ds)
        assoc.release()
        return int(status.Status)

    before = _value(await _scrape(api), "telemed_dimse_stores_total", status="SUCCESS")
    assert await asyncio.to_thread(send) == 0
    after = _value(await _scrape(api), "telemed_dimse_stores_total", status="SUCCESS")
    assert after == before + 1


async def test_metrics_need_no_token_and_hold_no_patient_names(api: Api) -> None:
    await store(api, "HB-XL-WD", make_study(modality="CR", count=1, patient_name="王^小明"))
    text = await _scrape(api)
    assert "王" not in text
    assert "telemed_studies 1.0" in text
