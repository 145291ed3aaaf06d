"""The operations pages in Debian's chromium, against the service on real PostgreSQL and the
real job queue: a report's delivery job fails for real (its object store cannot be
written) and is held; the county's administrator opens the operations page, sees it with
its error among the lights, retries it from the page, and the worker then delivers the
report; she tests a new webhook channel from the channels page; the city's administrator
adds a report template and a county reader signs a report from it. Screenshots are kept in
``test-artifacts/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from storage.records import ReceivedVia
from teleradiology.core.errors import DuplicateConflict
from teleradiology.http.context import INGESTOR, OBJECTS
from teleradiology.services import delivery
from tests.browser import wait_until
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import facility, store
from tests.integration.test_delivery_jobs import (
    _final_report,
    _job_status,
    _run_worker,
    held_failed,
)
from tests.integration.test_operations import _changed
from tests.integration.test_reports_home import _ok
from tests.integration.test_web_pages import (
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    _base,
    _routed,
    _sign_in,
    browser_test,
)

FINDINGS = "右下肺野见斑片状模糊影，边界不清。心影不大。"
IMPRESSION = "右下肺炎，建议抗感染治疗后复查。"


async def _message(page: Page) -> str:
    await wait_until(page, "document.getElementById('message').textContent !== ''")
    return await page.inner_text("#message")


async def _operations(page: Page, base: str, report_id: int) -> int:
    """The administrator opens the operations page and retries the failed job there."""
    await page.click("nav.menu a[href='/admin/operations']")
    await page.wait_for_url(f"{base}/admin/operations")
    row = page.locator("#failed-jobs tr[data-job]")
    assert await row.count() == 1
    job_id = int(await row.get_attribute("data-job") or 0)
    text = await row.inner_text()
    assert f"#{report_id}" in text
    assert "StorageError" in text
    assert "deliver_report" in text
    health = await page.inner_text("#health")
    assert "注意 ≥ 60 s，告警 ≥ 600 s" in health
    database = page.locator("#health tr[data-measure='database_ms'] .light")
    assert await database.inner_text() in ("正常", "注意")
    failed = page.locator("#health tr[data-measure='failed_jobs'] .light")
    assert await failed.inner_text() == "注意"  # one job waits for the administrator
    assert "light-amber" in (await failed.get_attribute("class") or "")
    assert "注意" in await page.inner_text("#ops-light")
    assert "HBXLWD01" in await page.inner_text("#rejections tr[data-rejection]")
    returned = await page.inner_text("#returned tr[data-case]")
    assert "体位不正" in returned
    assert "尚未" in returned
    await page.screenshot(path=str(ARTIFACTS / "operations_failed_job.png"), full_page=True)
    async with page.expect_navigation():
        await row.locator("button").click()
    assert await page.locator("#failed-jobs tr[data-job]").count() == 0
    await page.screenshot(path=str(ARTIFACTS / "operations_retried.png"), full_page=True)
    return job_id


async def _test_channel(page: Page, base: str, url: str) -> str:
    await page.click("nav.menu a[href='/admin/notification-channels']")
    await page.wait_for_url(f"{base}/admin/notification-channels")
    form = page.locator("#add-channel form")
    await form.locator("select[name=facility]").select_option("HB-XL-WD")
    await form.locator("select[name=kind]").select_option("webhook")
    await form.locator("input[name=target]").fill(url)
    await form.locator("input[name=label]").fill("王店村值班")
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    row = page.locator("tr[data-channel]", has_text="王店村值班")
    await row.locator("button.trial").click()
    shown = await _message(page)
    await page.screenshot(path=str(ARTIFACTS / "operations_channel_test.png"), full_page=True)
    return shown


async def _add_template(page: Page, base: str) -> None:
    await page.click("nav.menu a[href='/admin/templates']")
    await page.wait_for_url(f"{base}/admin/templates")
    form = page.locator("#add-template form")
    await form.locator("input[name=name]").fill("胸部正位片 肺炎")
    await form.locator("select[name=specialty]").select_option("radiology")
    await form.locator("input[name=modality]").fill("CR")
    await form.locator("textarea[name=findings]").fill(FINDINGS)
    await form.locator("textarea[name=impression]").fill(IMPRESSION)
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    row = page.locator("tr[data-template]", has_text="胸部正位片 肺炎")
    assert "本网络" in await row.inner_text()
    await page.screenshot(path=str(ARTIFACTS / "operations_templates.png"), full_page=True)


async def _report_from_template(page: Page, base: str, case_id: int) -> None:
    await page.goto(f"{base}/cases/{case_id}")
    await page.click("#claim")
    await page.wait_for_selector("#report")
    option = page.locator("#template option", has_text="胸部正位片 肺炎")
    await page.select_option("#template", await option.first.get_attribute("value"))
    assert await page.input_value("textarea[name=findings]") == FINDINGS
    assert await page.input_value("textarea[name=impression]") == IMPRESSION
    await page.select_option("select[name=conclusion]", "abnormal")
    await page.click("#submit-report")
    await page.wait_for_selector("article.report[data-report]")
    await page.screenshot(path=str(ARTIFACTS / "operations_template_used.png"), full_page=True)


@browser_test
async def test_the_administrator_retries_a_failed_job_and_a_reader_uses_a_new_template(
    api: Api,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook_receiver: tuple[str, list[Any]],
) -> None:
    monkeypatch.setattr(delivery, "DELIVERY_ATTEMPTS", 2)
    report_id = await _final_report(api, "OPS-B1")
    await held_failed(api, database_url, tmp_path, report_id)
    _, case_id = await _routed(api, patient_id="OPS-B2")
    # a study returned for quality, and an instance refused (same UID, other content)
    _, returned = await _routed(api, patient_id="OPS-B3")
    await _ok(api, "wang.reader", f"/api/v1/cases/{returned}/claim")
    await _ok(api, "wang.reader", f"/api/v1/cases/{returned}/return", {"reason": "positioning"})
    first = make_study(modality="CR", count=1, patient_id="OPS-B4")
    await store(api, "HB-XL-WD", first)
    with pytest.raises(DuplicateConflict):
        await api.app[INGESTOR].ingest(
            _changed(first[0]),
            facility=await facility(api, "HB-XL-WD"),
            via=ReceivedVia.DIMSE,
            sender_ae="HBXLWD01",
        )
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        admin = await browser.new_page(viewport={"width": 1500, "height": 1000}, locale="zh-CN")
        await _sign_in(admin, base, "hb.admin")
        await _operations(admin, base, report_id)
        assert await _job_status(api, report_id) == "queued"
        url, taken = webhook_receiver
        shown = await _test_channel(admin, base, url)
        assert re.search(r"已送达 \(delivered\): 200", shown), shown
        assert [b["event"] for b in taken] == ["test"]
        # the county's administrator reads the network's templates; the city changes them
        await admin.click("nav.menu a[href='/admin/templates']")
        assert await admin.locator("tr[data-template]").count() > 0
        assert await admin.locator("#add-template").count() == 0

        city = await (await browser.new_context(locale="zh-CN")).new_page()
        await city.set_viewport_size({"width": 1500, "height": 1000})
        await _sign_in(city, base, "xy.admin")
        await _add_template(city, base)

        reader = await (await browser.new_context(locale="zh-CN")).new_page()
        await reader.set_viewport_size({"width": 1400, "height": 1000})
        await _sign_in(reader, base, "wang.reader")
        await _report_from_template(reader, base, case_id)
        await browser.close()

    async def delivered() -> bool:
        at = await api.pool.fetchval("select delivered_at from report where id = $1", report_id)
        return at is not None

    await _run_worker(api, database_url, api.app[OBJECTS], delivered)
    signed = await api.pool.fetchrow(
        "select findings, impression from report where case_id = $1", case_id
    )
    assert signed is not None
    assert (signed["findings"], signed["impression"]) == (FINDINGS, IMPRESSION)
