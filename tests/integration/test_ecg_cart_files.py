"""Cart files as villages send them, through the service: the cart's own measurements are
kept beside ours in the analysis a reader sees, and a file we cannot read is refused in
words the clinic can act on (nothing of it is indexed; its original is kept aside:
test_ecg_refused.py)."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import async_playwright

from tests.ecg_file import FORMATS
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import ecg_case, get_json, sweep, upload
from tests.integration.test_ecg_reading_page import ARGS, ARTIFACTS, CHROMIUM, session
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


async def test_the_reading_page_shows_the_carts_values_beside_ours(api: Api) -> None:
    """The reader's ECG page: a column of the cart's own values beside the automatic ones,
    the gap beyond tolerance flagged (Philips QRS 135 against our 98), and the cart's own
    statements listed apart from ours."""
    path = FORMATS / PHILIPS
    status, body = await upload(api, [(path.name, path.read_bytes())])
    assert status == 201, body
    await sweep(api)
    case = await ecg_case(api, str(body["study_instance_uid"]))
    base = str(api.client.make_url("/")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 1200})
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", "xl.ecg")
        await page.fill("input[name=password]", "demo-xl.ecg")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/")
        await page.goto(f"{base}/ecg/cases/{case['id']}")
        header = await page.inner_text("#measurements tr:first-child")
        assert "心电图机" in header
        rate = page.locator("#measurements tr[data-key=heart_rate_bpm] td.cart")
        assert (await rate.inner_text()).strip() == "41"
        rate_flag = page.locator("#measurements tr[data-key=heart_rate_bpm] td.beyond")
        assert await rate_flag.count() == 0
        qrs = page.locator("#measurements tr[data-key=qrs_ms] td.cart.beyond")
        assert await qrs.count() == 1
        assert "135" in await qrs.inner_text()
        assert "±" in (await qrs.get_attribute("title") or "")
        # one cart cell a row, filled only where the cart gives the value
        cells = [t.strip() for t in await page.locator("#measurements td.cart").all_inner_texts()]
        assert len(cells) == await page.locator("#measurements tr[data-key]").count()
        view = await get_json(api, "xl.ecg", f"/api/v1/ecg/{body['sop_instance_uid']}")
        given = view["automatic"]["device_measurements"]
        assert sum(1 for c in cells if c) == sum(1 for v in given.values() if v is not None)
        statements = await page.inner_text("#cart-findings")
        assert ">>> Acute MI <<<" in statements
        assert "ABNORMAL ECG" in statements
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "ecg_cart_values.png"), full_page=True)
        await browser.close()


async def test_a_file_without_cart_values_has_no_cart_column(api: Api) -> None:
    status, body = await upload(api, [("paced.scp", paced_scp())])
    assert status == 201, body
    await sweep(api)
    case = await ecg_case(api, str(body["study_instance_uid"]))
    headers = await session(api, "xl.ecg")
    response = await api.client.get(f"/ecg/cases/{case['id']}", headers=headers)
    assert response.status == 200
    page = await response.text()
    device = (await get_json(api, "xl.ecg", f"/api/v1/ecg/{body['sop_instance_uid']}"))[
        "automatic"
    ]["device_measurements"]
    assert ("<th>心电图机</th>" in page) == bool(device)
    assert 'id="cart-findings"' in page  # its statements and stimuli, listed apart
    assert "Atrial-sensed ventricular-paced rhythm" in page
    assert "起搏脉冲" in page
