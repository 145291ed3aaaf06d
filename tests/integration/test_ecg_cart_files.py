"""Cart files as villages send them, through the service: the cart's own measurements are
kept beside ours in the analysis a reader sees, and a file we cannot read is refused in
words the clinic can act on (nothing of it is indexed; its original is kept aside:
test_ecg_refused.py)."""

from __future__ import annotations

import re
from typing import Any

from tests.ecg_file import FORMATS
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import get_json, sweep, upload
from tests.unit.ecg.scp_writer import paced_scp

PHILIPS = "philips_xml/129DYPRG_v1.03.XML"


async def _reader_view(api: Api, name: str, data: bytes) -> dict[str, Any]:
    """The file uploaded, analysed, and its ECG as the reader sees it."""
    status, body = await upload(api, [(name, data)])
    assert status == 201, body
    await sweep(api)
    view: dict[str, Any] = await get_json(api, "xl.ecg", f"/api/v1/ecg/{body['sop_instance_uid']}")
    return view


async def test_the_carts_measurements_stand_beside_ours_in_the_reader_view(api: Api) -> None:
    path = FORMATS / PHILIPS
    view = await _reader_view(api, path.name, path.read_bytes())
    automatic = view["automatic"]
    # Philips' own: rate 41, PR 151, QRS 135 (test_real_files), carried by the DICOM copy
    assert automatic["device_measurements"]["heart_rate_bpm"] == 41.0
    assert automatic["device_measurements"]["qrs_ms"] == 135.0
    by_key = {c["key"]: c for c in automatic["device_comparison"]}
    assert by_key["heart_rate_bpm"]["beyond_tolerance"] is False
    assert by_key["qrs_ms"]["beyond_tolerance"] is True  # ours 98 ms: marked for the reader
    assert any(w.startswith("qrs_ms: ours") for w in automatic["warnings"])
    sheet = await api.client.get(view["links"]["sheet_png"], headers=api.auth("xl.ecg"))
    assert sheet.status == 200


async def test_a_contec_file_without_its_trailer_is_stored_whole(api: Api) -> None:
    data = (FORMATS / "contec_ecg90a/0000053.ECG").read_bytes()[:-37]
    status, body = await upload(api, [("0000053.ECG", data)])
    assert status == 201, body
    assert body["format"] == "contec_ecg90a"
    assert body["duration_s"] == 37.185


async def test_a_philips_file_with_every_lead_missing_is_refused_in_words(api: Api) -> None:
    text = (FORMATS / PHILIPS).read_text("utf-8")
    text = text.replace("<inops></inops>", "<inops>LEADS OFF</inops>")
    status, body = await upload(api, [("missing.xml", text.encode())])
    assert status == 400, body
    message = str(body)
    assert "marked every lead as missing" in message
    assert "check them and record the ECG again" in message
    assert await api.pool.fetchval("select count(*) from instance") == 0


async def test_a_file_that_is_no_ecg_is_refused_with_what_to_send(api: Api) -> None:
    status, body = await upload(api, [("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(200))])
    assert status == 400, body
    assert re.search(r"send the file the cart saved, not a photo", str(body))


async def test_the_carts_statements_lead_measurements_and_stimuli_reach_the_reader(
    api: Api,
) -> None:
    """A paced SCP-ECG file (sections 7, 8 and 10): what its cart found comes through the
    DICOM copy into the reader's view, and its stimuli into the pacing reading."""
    view = await _reader_view(api, "paced.scp", paced_scp())
    cart = view["cart"]
    assert cart["statements"] == ["Atrial-sensed ventricular-paced rhythm"]
    assert cart["lead_measurements"]["V1"]["r_uv"] == 900.0
    assert cart["lead_measurements"]["V1"]["qrs_ms"] == 90.0
    assert [(s["time_ms"], s["triggers"]) for s in cart["pacemaker_spikes"]] == [
        (490.0, "QRS"), (1290.0, "P"), (2090.0, None)
    ]  # fmt: skip
    assert view["automatic"]["device_statements"] == cart["statements"]
    samples = [s["sample"] for s in cart["pacemaker_spikes"]]
    assert set(samples) <= set(view["automatic"]["pacer_spikes"])
    sheet = await api.client.get(view["links"]["sheet_png"], headers=api.auth("xl.ecg"))
    assert sheet.status == 200


async def test_philips_statements_are_the_carts_in_the_reader_view(api: Api) -> None:
    path = FORMATS / PHILIPS
    view = await _reader_view(api, path.name, path.read_bytes())
    assert view["cart"]["statements"][-2:] == [">>> Acute MI <<<", "ABNORMAL ECG"]
    assert view["cart"]["pacemaker_spikes"] == []
