"""The dashboard in Debian's chromium: a village chest film goes through the service (stored,
routed, claimed, reported, delivered, acknowledged) and shows in the figures, the tables and
the charts of /admin; the filters (a GET form) change the figures and stay in the URL; a
table downloads as CSV; the page prints on A4. Screenshots are kept in ``test-artifacts/``.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from playwright.async_api import async_playwright

from tests.dashboard_data import CaseSpec, load_cases
from tests.integration.conftest import Api
from tests.integration.test_dashboard import ZONE
from tests.integration.test_web_pages import (
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    _base,
    _ok,
    _reported,
    _sign_in,
    browser_test,
)


async def _ecgs(api: Api) -> None:
    """Two ECGs of 柳湾村 read in 10 and 20 minutes an hour ago, beside the film, and a
    film of it escalated two days ago."""
    at = datetime.now(ZONE) - timedelta(hours=1)
    await load_cases(
        api.pool,
        [
            CaseSpec(
                facility="HB-MJ-LW",
                pool="HB-COUNTY",
                modality="ECG",
                priority=priority,
                received_at=at - timedelta(minutes=20),
                deadline_s=deadline,
                final_after_s=minutes * 60,
                ack_after_s=300,
                reader="li.ecg",
            )
            for priority, deadline, minutes in (("high", 1800, 10), ("medium", 14400, 20))
        ]
        # a film of 柳湾村 two days ago, sent up to the city by the deadline watch, unread
        + [
            CaseSpec(
                facility="HB-MJ-LW",
                pool="HB-COUNTY",
                modality="DX",
                priority="medium",
                received_at=at - timedelta(days=2),
                deadline_s=14400,
                escalated_after_s=10000,
                escalated_to="XY-CITY",
            )
        ],
    )


@browser_test
async def test_a_case_that_went_through_shows_in_the_figures_and_the_charts(api: Api) -> None:
    case_id, report_id = await _reported(api, "normal")
    await _ok(api, "xlwd.clinic", f"/api/v1/reports/{report_id}/acknowledge", {})
    await _ecgs(api)
    today = datetime.now(ZONE).strftime("%m-%d")
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = await browser.new_context(
            viewport={"width": 1400, "height": 1000}, locale="zh-CN", accept_downloads=True
        )
        page = await context.new_page()
        await _sign_in(page, base, "hb.admin")
        await page.goto(f"{base}/admin")
        assert await page.inner_text("#dash-cases") == "3"
        film = page.locator("#dash-facility tr[data-key='HB-XL-WD']")
        assert "王店村卫生室" in await film.inner_text()
        assert await film.locator("td.cases").inner_text() == "1"
        assert await film.locator("td.sla").inner_text() == "100.0%"
        assert await film.locator("td.ack-p50").inner_text() != ""  # it was acknowledged
        reader = page.locator("#dash-reader tr[data-key='wang.reader']")
        assert await reader.locator("td.cases").inner_text() == "1"
        # the charts: the film's day has a radiology point, the volumes a radiology bar
        point = page.locator(
            f"#chart-turnaround circle[data-series='P50 影像'][data-label='{today}']"
        )
        assert await point.count() == 1
        film_minutes = float(await film.locator("td.p50").inner_text())
        assert abs(float(await point.get_attribute("data-value") or "0") - film_minutes) < 1
        bar = page.locator(f"#chart-volumes rect[data-series='影像'][data-label='{today}']")
        assert await bar.get_attribute("data-value") == "1"
        assert await page.inner_text("#dash-escalated") == "1"
        up = page.locator("#dash-escalations tr[data-dimension='pool'][data-key='HB-COUNTY']")
        assert await up.locator("td.escalated").inner_text() == "1"
        assert await up.locator("td.answered").inner_text() == "0"
        await page.screenshot(path=str(ARTIFACTS / "web_dashboard_all.png"), full_page=True)

        # the filters: ECG only, then the film's clinic only; each stays in the URL
        await page.select_option("#dashboard-filters select[name=specialty]", "ecg")
        await page.click("#dashboard-show")
        await page.wait_for_url("**/admin?*specialty=ecg*")
        assert await page.inner_text("#dash-cases") == "2"
        assert await page.inner_text("#dash-p50") == "15.0"
        assert await page.locator("#dash-facility tr[data-key='HB-XL-WD']").count() == 0
        assert await page.locator("#chart-turnaround circle[data-series='P50']").count() == 1
        await page.screenshot(path=str(ARTIFACTS / "web_dashboard_ecg.png"), full_page=True)
        await page.select_option("#dashboard-filters select[name=specialty]", "")
        await page.select_option("#dashboard-filters select[name=facility]", "HB-XL-WD")
        await page.click("#dashboard-show")
        await page.wait_for_url("**/admin?*facility=HB-XL-WD*")
        assert await page.inner_text("#dash-cases") == "1"
        assert await page.inner_text("#dash-p50") == f"{film_minutes:.1f}"
        returns = page.locator("#dash-returns tr[data-key='HB-XL-WD']")
        assert await returns.locator("td.cases").inner_text() == "1"

        # a table as CSV, for the same filters
        async with page.expect_download() as info:
            await page.click("#csv-facility")
        download = await info.value
        saved = ARTIFACTS / download.suggested_filename
        await download.save_as(str(saved))

        # printed: no form, no navigation, the charts one under the other on A4
        await page.emulate_media(media="print")
        assert not await page.locator("#dashboard-filters").is_visible()
        assert await page.locator("#chart-turnaround").is_visible()
        await page.screenshot(path=str(ARTIFACTS / "web_dashboard_print.png"), full_page=True)
        await page.pdf(path=str(ARTIFACTS / "web_dashboard.pdf"), format="A4")

        # in English for an administrator who chose English: the tiles, tables and charts
        changed = await api.client.put(
            "/api/v1/me/language", json={"language": "en"}, headers=api.auth("hb.admin")
        )
        assert changed.status == 200
        await page.emulate_media(media="screen")
        await page.goto(f"{base}/admin")
        assert "Final reports" in await page.inner_text("#dashboard-tiles")
        assert "Escalated from" in await page.inner_text("#dash-escalations")
        series = page.locator("#chart-volumes rect[data-series='radiology']")
        assert await series.count() >= 1
        await page.screenshot(path=str(ARTIFACTS / "web_dashboard_en.png"), full_page=True)
        await browser.close()
    rows = list(csv.DictReader(io.StringIO(saved.read_text("utf-8-sig"))))
    assert [(r["key"], r["cases"]) for r in rows] == [("HB-XL-WD", "1")]
    assert case_id > 0
