"""An administrator sets up routing in the browser and the preview tells the truth.

In Debian's chromium, the county's administrator creates a reading pool for a radiologist
who is off duty today, adds him a weekly shift for today on the pool's calendar, adds a
routing rule for DR studies from 李湾村 with a 120-minute deadline, and reads the preview for
the village; then a DR study arrives from that village by STOW-RS, and the service routes it
into that pool with the due time the preview said. The screenshots are kept in
``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.e2e.harness import (
    Service,
    http,
    wait_for,
)
from tests.e2e.test_viewer_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, stow
from tests.factory import make_study

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the chromium Debian package is not installed (make system-deps)"
)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _reading_pool(database_url: str, case_id: int) -> Any:
    async def read() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(
                "select p.code from reading_case c join reading_pool p on p.id = c.reading_pool_id"
                " where c.id = $1",
                case_id,
            )
        finally:
            await conn.close()

    return asyncio.run(read())


def _submit(page: Any, form: str, appears: str) -> None:
    """Submit a page form and wait for the reloaded page to show ``appears``."""
    page.locator(f"{form} button[type=submit]").click()
    try:
        page.locator(appears).first.wait_for(timeout=10_000)
    except Exception:
        raise AssertionError(f"{form}: {page.locator('#message').inner_text()}") from None


@pytest.mark.parametrize("storage_url", [None])
def test_the_preview_says_where_a_study_goes_and_it_goes_there(
    demo_service: Service, database_url: str
) -> None:
    from playwright.sync_api import sync_playwright

    service = demo_service
    today = datetime.now(ZoneInfo("Asia/Shanghai"))
    other_day = DAYS[today.isoweekday() % 7]
    admin = service.token("hb.admin")
    # wang.reader works only on another day of the week: off duty now
    status, _, answer = http(
        "PUT",
        f"{service.base_url}/api/v1/admin/users/wang.reader/duty",
        token=admin,
        body={"duty": [{"days": [other_day], "from": "08:00", "until": "18:00"}]},
    )
    assert status == 200, answer
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{service.base_url}/login")
        page.fill("input[name=username]", "hb.admin")
        page.fill("input[name=password]", "demo-hb.admin")
        page.click("button[type=submit]")
        page.locator("a[href='/admin/routing']").first.click()
        page.wait_for_url("**/admin/routing")

        pool_form = "#new-pool"
        page.fill(f"{pool_form} input[name=code]", "HB-DR-DAY")
        page.fill(f"{pool_form} input[name=name]", "县医院放射白班")
        page.select_option(f"{pool_form} select[name=specialty]", "radiology")
        page.select_option(f"{pool_form} select[name=facility]", "HB-COUNTY")
        page.fill(f"{pool_form} input[name=members]", "wang.reader")
        _submit(page, pool_form, "tr[data-pool='HB-DR-DAY']")

        # the duty shift: today, all day, on the pool's calendar
        page.locator("tr[data-pool='HB-DR-DAY'] a[href$='/roster']").click()
        page.wait_for_url("**/admin/routing/pools/HB-DR-DAY/roster")
        page.select_option("#new-shift select[name=days]", DAYS[today.isoweekday() - 1])
        page.fill("#new-shift input[name=from]", "00:00")
        page.fill("#new-shift input[name=until]", "24:00")
        page.locator("#new-shift button[type=submit]").click()
        today_cell = f"tr[data-member='wang.reader'] td:nth-child({today.isoweekday() + 1})"
        page.locator(f"{today_cell} .shift").first.wait_for(timeout=10_000)
        assert "00:00–24:00" in page.locator(today_cell).inner_text()
        page.screenshot(path=str(ARTIFACTS / "routing-roster.png"), full_page=True)

        # the routing rule: DR from the village to the pool, due in 120 minutes
        page.goto(f"{service.base_url}/admin/routing")
        page.select_option("#rule-sender", "HB-MJ-LW")
        page.fill("#new-rule input[name=modality]", "DX")
        page.select_option("#new-rule select[name=priority]", "routine")
        page.select_option("#new-rule select[name=pool]", "HB-DR-DAY")
        page.fill("#new-rule input[name=deadline_minutes]", "120")
        _submit(page, "#new-rule", "tr[data-sender='HB-MJ-LW']")

        # the preview for the village
        page.select_option("#preview-form select[name=facility]", "HB-MJ-LW")
        page.fill("#preview-form input[name=modality]", "DX")
        page.select_option("#preview-form select[name=priority]", "routine")
        page.locator("#preview-form button[type=submit]").click()
        line = page.locator("#preview-result li").first
        line.wait_for(timeout=10_000)
        text = line.inner_text()
        assert "县医院放射白班" in text, text
        assert "2 h" in text, text
        assert line.get_attribute("data-pool") == "HB-DR-DAY"
        assert line.get_attribute("data-facility") == "HB-COUNTY"
        due = datetime.fromisoformat(line.get_attribute("data-due") or "")
        page.screenshot(path=str(ARTIFACTS / "routing-preview.png"), full_page=True)
        browser.close()

    # a DR study from the village, by STOW-RS
    study = make_study(modality="DX", count=1, patient_id="LW-DR-1")
    stow(service, service.token("mjlw.clinic"), study)
    reader = service.token("wang.reader")
    cases = wait_for(
        lambda: http("GET", f"{service.base_url}/api/v1/worklist", token=reader)[2]["cases"],
        timeout_s=30,
    )
    (case,) = cases
    assert case["pool"] == "HB-COUNTY"
    deadline = datetime.fromisoformat(case["deadline"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(case["created_at"].replace("Z", "+00:00"))
    assert deadline - created == timedelta(minutes=120)
    # the preview's time is the form's minute; the study came a little after it
    assert timedelta(0) <= deadline - due < timedelta(minutes=3)
    assert _reading_pool(database_url, case["id"]) == "HB-DR-DAY"
