"""An ECG report goes home with its tracing: the signed PDF carries the 12-lead sheet and the
measurements, and the clinic's inbox links to the sheet, which only the sending clinic opens
(audited). The clinic's part runs in Debian's chromium; its screenshot is kept in
``test-artifacts/``."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pypdf
from playwright.async_api import async_playwright

from ecg.render import GRID_BOLD_BGR, TRACE_BGR
from storage.records import AuditAction
from tests.integration.conftest import Api
from tests.integration.one_language import choose_english
from tests.integration.test_ecg_flow import FORMATS, ecg_case, get_json, sweep, upload
from tests.integration.test_ecg_reading_page import ARGS, ARTIFACTS, CHROMIUM, session
from tests.integration.test_reports_home import _deliver, _ok, printed
from tests.integration.test_web_pages import _sign_in

_FINDINGS = {"findings": "窦性心律。", "impression": "正常心电图。", "conclusion": "normal"}


async def _reported_ecg(api: Api) -> tuple[dict[str, Any], dict[str, Any], int]:
    """A village's ECG read by the township's ECG reader, signed and delivered: the upload,
    the final report and the case id."""
    path = FORMATS / "ge_muse_xml/braveheart_example2.xml"
    status, sent = await upload(api, [(path.name, path.read_bytes())], patient_id="RPT-1")
    assert status == 201
    await sweep(api)
    case = await ecg_case(api, str(sent["study_instance_uid"]))
    await _ok(api, "xl.ecg", f"/api/v1/cases/{case['id']}/claim")
    final = await _ok(api, "xl.ecg", f"/api/v1/cases/{case['id']}/report", _FINDINGS)
    assert await _deliver(api, final["id"])
    return sent, final, int(case["id"])


def _sheet_image(page: pypdf.PageObject) -> np.ndarray[Any, Any]:
    (image,) = page.images
    assert image.image is not None
    return np.asarray(image.image.convert("RGB"))


async def test_the_signed_ecg_report_carries_the_tracing_and_the_measurements(api: Api) -> None:
    sent, final, _ = await _reported_ecg(api)
    view = await get_json(api, "xl.ecg", f"/api/v1/ecg/{sent['sop_instance_uid']}")
    measured = view["measurements"]
    response = await api.client.get(
        f"/api/v1/reports/{final['id']}/pdf", headers=api.auth("xlwd.clinic")
    )
    assert response.status == 200
    reader = pypdf.PdfReader(io.BytesIO(await response.read()))
    assert len(reader.pages) == 2
    text = "".join(reader.pages[0].extract_text().replace("\x00", "").split())
    assert text.startswith("淮滨县新里镇卫生院心电图诊断报告")
    assert f"心率：{measured['heart_rate_bpm']:.0f}次/分" in text
    for label, key in (("PR间期", "pr_ms"), ("QRS时限", "qrs_ms"), ("QT间期", "qt_ms")):
        assert f"{label}：{measured[key]:.0f}ms" in text
    assert f"QTc：{measured['qtc_bazett_ms']:.0f}ms" in text
    assert f"QRS电轴：{measured['qrs_axis_deg']:.0f}°" in text
    statements = [s["text_zh"] for s in view["statements"]]
    assert statements
    assert all("".join(s.split()) in text for s in statements)
    assert _FINDINGS["impression"] in text
    assert "12导联心电图见第2页（25mm/s，10mm/mV" in text
    # the sheet: A4 landscape, edge to edge, at 300 dpi (1 mm = 11.8 px): true to scale
    sheet = reader.pages[1]
    assert (round(float(sheet.mediabox.width)), round(float(sheet.mediabox.height))) == (842, 595)
    pixels = _sheet_image(sheet)
    assert pixels.shape == (2480, 3508, 3)
    colours = {tuple(int(c) for c in p) for p in pixels[::7, ::7].reshape(-1, 3)}
    assert tuple(reversed(GRID_BOLD_BGR)) in colours  # the 5-mm grid
    assert tuple(reversed(TRACE_BGR)) in colours  # the traces


async def test_an_english_clinic_prints_the_ecg_report_and_its_sheet_in_english(api: Api) -> None:
    sent, final, _ = await _reported_ecg(api)
    view = await get_json(api, "xl.ecg", f"/api/v1/ecg/{sent['sop_instance_uid']}")
    measured = view["measurements"]
    kept, _ = await printed(api, "xlwd.clinic", final["id"])
    await choose_english(api, "xlwd.clinic")
    data, took = await printed(api, "xlwd.clinic", final["id"])
    assert took < 30, f"the English ECG report took {took:.1f} s"  # about 3 s on 2 cores
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ecg_report_en.pdf").write_bytes(data)
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 2
    text = reader.pages[0].extract_text().replace("\x00", "")
    assert text.startswith("淮滨县新里镇卫生院\nECG report")
    assert f"Heart rate: {measured['heart_rate_bpm']:.0f} bpm" in text
    assert f"QTc: {measured['qtc_bazett_ms']:.0f} ms" in text
    statements = [s["text_en"] for s in view["statements"]]
    assert statements
    assert all(s in " ".join(text.split()) for s in statements)
    assert _FINDINGS["impression"] in text  # the reader's words as written
    assert "The 12-lead ECG is on page 2" in text
    # the sheet is drawn again with its English labels, as large and true to scale
    pixels = _sheet_image(reader.pages[1])
    assert pixels.shape == (2480, 3508, 3)
    assert not np.array_equal(pixels, _sheet_image(pypdf.PdfReader(io.BytesIO(kept)).pages[1]))


async def test_the_inbox_links_the_sheet_which_only_the_sending_clinic_opens(api: Api) -> None:
    sent, final, case_id = await _reported_ecg(api)
    sheet = f"/ecg/cases/{case_id}/sheets/{sent['sop_instance_uid']}.png"
    base = str(api.client.make_url("/")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await _sign_in(page, base, "xlwd.clinic")
        report = page.locator(f"article[data-report='{final['id']}']")
        link = report.locator("a.ecg-sheet")
        assert await link.get_attribute("href") == sheet
        assert await report.locator("a.ecg-sheet-pdf").get_attribute("href") == (
            sheet.removesuffix(".png") + ".pdf"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "inbox-ecg-sheet-link.png"), full_page=True)
        async with page.context.expect_page() as opened:
            await link.click()
        tab = await opened.value
        await tab.wait_for_load_state()
        assert await tab.evaluate("document.contentType") == "image/png"
        width = await tab.evaluate("document.images[0].naturalWidth")
        assert width == 3508
        await browser.close()
    audited = await api.pool.fetch(
        "select a.object_id, u.username from audit a join app_user u on u.id = a.user_id "
        "where a.action = $1 and a.result = 'ok' order by a.seq",
        AuditAction.SHEET.value,
    )
    assert [(r["object_id"], r["username"]) for r in audited] == [
        (sent["sop_instance_uid"], "xlwd.clinic")
    ]
    # another clinic (a village of the same township) neither sees the link nor the sheet
    other = await session(api, "xlzz.clinic")
    inbox = await api.client.get("/", headers=other)
    assert sheet not in await inbox.text()
    refused = await api.client.get(sheet, headers=other)
    assert refused.status == 404
    assert refused.content_type == "application/problem+json"
    assert json.loads(await refused.text())["status"] == 404
