"""The orders page and the case page's discontinued-step notice, in Debian's chromium
against the service on real PostgreSQL: a clinic registers an exam and cancels another; the
county reader sees on the case that the modality discontinued the exam, and why.
Screenshots go under the test's temporary directory."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser
from pydicom.uid import generate_uid

from teleradiology.roles import DICOM
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all
from tests.integration.one_language import assert_one_language, choose_english
from tests.integration.test_orders import (
    CLINIC,
    WORKSTATION,
    c_store,
    mpps,
    mpps_create,
    mpps_discontinued,
    register,
    study_of,
)
from tests.integration.test_send_page import ARTIFACTS, CHROMIUM, signed_in
from tests.integration.test_send_page import browser as browser  # the fixture

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the chromium Debian package is missing"
)


async def test_a_clinic_registers_and_cancels_orders_on_its_page(
    api: Api, browser: Browser, tmp_path: Path
) -> None:
    base = str(api.client.make_url("")).rstrip("/")
    context, page = await signed_in(browser, base, CLINIC)
    try:
        await page.goto(f"{base}/orders")
        await page.fill("input[name=patient_id]", "WD-2001")
        await page.fill("input[name=patient_name]", "王^小红")
        await page.select_option("select[name=patient_sex]", "F")
        await page.select_option("select[name=modality]", "DX")
        await page.select_option("select[name=urgency]", "urgent")
        await page.fill("input[name=station_ae]", WORKSTATION)
        await page.fill("textarea[name=clinical_question]", "胸痛半天")
        await page.click("#register")
        # The page reloads with the new order listed.
        await page.wait_for_selector("#orders tr[data-order]", timeout=15_000)
        assert await page.locator("#orders tr[data-order]").count() == 1
        row = page.locator("#orders tr[data-order]")
        assert "王 小红" in await row.locator(".patient").inner_text()
        accession = (await row.locator(".accession").inner_text()).strip()
        assert accession.startswith(date.today().strftime("%Y%m%d"))
        await page.screenshot(path=str(tmp_path / "orders.png"), full_page=True)
        stored = await api.pool.fetchrow(
            "select urgency, clinical_question, patient_sex from exam_order "
            "where accession_number = $1",
            accession,
        )
        assert stored is not None
        assert dict(stored) == {
            "urgency": "urgent",
            "clinical_question": "胸痛半天",
            "patient_sex": "F",
        }
        await row.locator("button.cancel").click()
        await page.wait_for_selector("#orders .status-canceled", timeout=15_000)
        assert not await page.locator("#orders button.cancel").count()
        await page.screenshot(path=str(tmp_path / "orders-canceled.png"), full_page=True)
        assert "登记检查" in await page.inner_text("main")
        assert_one_language(await page.inner_text("main"))
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "orders_zh.png"), full_page=True)
        # the same page for a clinic operator who chose English
        await choose_english(api, CLINIC)
        await page.reload()
        assert "Register an exam" in await page.inner_text("main")
        assert await page.inner_text("#orders .status-canceled") == "canceled"
        assert await page.inner_text("select[name=patient_sex] option[value=F]") == "female"
        assert_one_language(await page.inner_text("main"))
        await page.screenshot(path=str(ARTIFACTS / "orders_en.png"), full_page=True)
    finally:
        await context.close()


async def test_the_reader_sees_the_exam_was_discontinued(
    api: Api, browser: Browser, tmp_path: Path
) -> None:
    order = await register(api)
    port = api.app[DICOM].port
    step = generate_uid()
    stop = mpps_discontinued("110503", "Patient condition prevented continuing")
    assert await asyncio.to_thread(
        mpps, port, WORKSTATION, ("create", step, mpps_create(order)), ("set", step, stop)
    ) == [0, 0]
    assert await asyncio.to_thread(c_store, port, WORKSTATION, study_of(order, count=1)) == [0]
    await route_all(api)
    case_id = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1",
        order["study_instance_uid"],
    )
    assert case_id is not None
    answer = await api.client.get(f"/api/v1/cases/{case_id}", headers=api.auth("wang.reader"))
    body = await answer.json()
    assert answer.status == 200, body
    ((performed),) = body["performed_steps"]
    assert performed["status"] == "discontinued"
    assert performed["reason_code"] == "110503"
    assert body["priority"] == "high"
    base = str(api.client.make_url("")).rstrip("/")
    context, page = await signed_in(browser, base, "wang.reader")
    try:
        await page.goto(f"{base}/cases/{case_id}")
        notice = page.locator("#step-discontinued")
        assert "Patient condition prevented continuing" in await notice.inner_text()
        assert "[110503]" in await notice.inner_text()
        await page.screenshot(path=str(tmp_path / "case-discontinued.png"), full_page=True)
    finally:
        await context.close()
