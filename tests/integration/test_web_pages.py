"""The web pages of the three roles, in Debian's chromium and over plain HTTP, against the
service on real PostgreSQL.

A county reader claims a village chest film from the worklist and signs a final report from
the modality's template; the village clinic sees the critical result on top of its inbox and
acknowledges it by name, and sees a study returned for poor quality with the reason; the
county administrator reads turnaround on the dashboard and downloads it as CSV. Other
counties' readers and other clinics get 404, cross-site changes get 403. Screenshots are
kept in ``test-artifacts/``.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from teleradiology.dimse.sender import report_sender
from teleradiology.http.context import OBJECTS
from teleradiology.services import delivery
from tests.browser import wait_until
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.one_language import assert_one_language, choose_english
from tests.integration.test_ecg_reading_page import session

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PAGE = {"X-Telemed-Page": "1"}

browser_test = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the chromium Debian package is not installed"
)


async def _routed(
    api: Api, code: str = "HB-XL-WD", patient_id: str = "WD-1", name: str = "王^小明"
) -> tuple[str, int]:
    uid = await store(
        api,
        code,
        make_study(modality="CR", count=2, patient_id=patient_id, patient_name=name, size=16),
    )
    await route_all(api)
    case_id: int = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id "
        "where s.study_instance_uid = $1 order by c.id desc limit 1",
        uid,
    )
    return uid, case_id


async def _ok(api: Api, user: str, path: str, body: object = None) -> Any:
    response = await api.client.post(path, json=body, headers=api.auth(user))
    answer = await response.json()
    assert response.status in (200, 201), (path, answer)
    return answer


async def _reported(api: Api, conclusion: str, patient_id: str = "WD-1") -> tuple[int, int]:
    """A case of 王店村 read by the county and delivered home: (case id, report id)."""
    _, case_id = await _routed(api, patient_id=patient_id)
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    report = await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{case_id}/report",
        {
            "findings": "右下肺见片状高密度影。",
            "impression": "右下肺炎，建议抗感染治疗后复查。",
            "conclusion": conclusion,
        },
    )
    assert await delivery.deliver(
        api.pool, api.app[OBJECTS], report["id"], send=report_sender("TELEMED")
    )
    return case_id, report["id"]


async def _sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", f"demo-{username}")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


def _base(api: Api) -> str:
    return str(api.client.make_url("/")).rstrip("/")


@browser_test
async def test_the_reader_claims_a_case_and_signs_a_final_report_in_the_browser(
    api: Api,
) -> None:
    _, routine = await _routed(api, patient_id="WD-2", name="李^四")
    uid, case_id = await _routed(api, patient_id="WD-1")
    await _ok(
        api,
        "xlwd.clinic",
        f"/api/v1/studies/{uid}/reading-request",
        {"urgency": "urgent", "question": "咳嗽发热三天，肺炎？"},
    )
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        await _sign_in(page, base, "wang.reader")
        # the worklist: the urgent case first, highlighted, with sender, deadline and time left
        rows = page.locator("tr.case-row")
        assert await rows.count() == 2
        first = rows.first
        assert await first.get_attribute("data-case") == str(case_id)
        assert "urgent" in (await first.get_attribute("class") or "")
        text = await first.inner_text()
        assert "王 小明" in text
        assert "王店村卫生室" in text
        assert "紧急" in text
        assert re.search(r"剩余 \d+分", text), text
        assert "王医生" in await first.locator("td.suggested").inner_text()
        await page.screenshot(path=str(ARTIFACTS / "web_worklist.png"), full_page=True)
        # filter by status
        await page.click("a[data-filter=in_progress]")
        assert await page.locator("tr.case-row").count() == 0
        await page.click("a[data-filter=all]")
        # the case page
        await page.click(f"tr[data-case='{case_id}'] a.case")
        await page.wait_for_url(re.compile(rf".*/cases/{case_id}$"))
        assert "王 小明" in await page.inner_text("#patient")
        assert "王店村卫生室" in await page.inner_text("#facility")
        assert await page.inner_text("#counts") == "1 / 2"
        href = await page.get_attribute("#open-viewer", "href")
        assert href == f"/viewer?StudyInstanceUIDs={uid}"
        events = await page.inner_text("#events")
        assert "接收" in events
        assert "分配" in events
        assert "(routed)" not in events  # one language at a time
        await page.click("#claim")
        await page.wait_for_selector("#report")
        assert "王医生" in await page.inner_text("#claimed-by")
        # a template of the modality fills the report; the reader edits and signs it final
        option = page.locator("#template option", has_text="胸部正位片")
        await page.select_option("#template", await option.first.get_attribute("value"))
        findings = await page.input_value("textarea[name=findings]")
        assert "双肺纹理清晰" in findings
        await page.fill("textarea[name=findings]", findings + "右下肺见小片状模糊影。")
        await page.fill("textarea[name=impression]", "右下肺少许炎症。")
        await page.select_option("select[name=conclusion]", "abnormal")
        await page.click("#submit-report")
        await page.wait_for_selector("article.report[data-report]")
        assert "正式报告" in await page.inner_text("#reports")
        assert "已完成" in await page.inner_text("#status")
        assert "正式报告" in await page.inner_text("#events")
        await page.screenshot(path=str(ARTIFACTS / "web_case_reported.png"), full_page=True)
        await browser.close()
    row = await api.pool.fetchrow(
        "select r.status, r.conclusion, r.impression, c.status as case_status from report r"
        " join reading_case c on c.id = r.case_id where c.id = $1",
        case_id,
    )
    assert row is not None
    assert (row["status"], row["conclusion"], row["case_status"]) == (
        "final",
        "abnormal",
        "completed",
    )
    assert row["impression"] == "右下肺少许炎症。"
    assert routine != case_id


@browser_test
async def test_the_clinic_acknowledges_a_critical_result_by_name_in_the_browser(
    api: Api,
) -> None:
    _, normal = await _reported(api, "normal", patient_id="WD-3")
    _, critical = await _reported(api, "critical", patient_id="WD-1")
    # a study returned for poor quality, with the reason
    _, returned_case = await _routed(api, patient_id="WD-4", name="赵^六")
    await _ok(api, "wang.reader", f"/api/v1/cases/{returned_case}/claim")
    await _ok(
        api,
        "wang.reader",
        f"/api/v1/cases/{returned_case}/return",
        {"reason": "positioning", "note": "请重新摄片，双肩未展开"},
    )
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        await _sign_in(page, base, "xlwd.clinic")
        reports = page.locator("#inbox article.report")
        assert await reports.count() == 2
        top = reports.first
        # the critical result is on top, marked, though the normal one is not newer
        assert await top.get_attribute("data-report") == str(critical)
        assert "critical-open" in (await top.get_attribute("class") or "")
        assert "危急值" in await top.inner_text()
        assert "右下肺炎" in await top.inner_text()
        assert "1 条危急值待确认" in await page.inner_text("#critical-count")
        returned = await page.inner_text("#returned")
        assert "体位不正" in returned
        assert "双肩未展开" in returned
        assert "待重新发送" in returned
        studies = await page.inner_text("#studies")
        assert "已报告" in studies
        assert "已退回" in studies
        assert_one_language(await page.inner_text("main"))
        await page.screenshot(path=str(ARTIFACTS / "web_inbox_critical.png"), full_page=True)
        # the PDF of the report opens for the clinic
        pdf_href = await top.locator("a.pdf").get_attribute("href")
        assert pdf_href == f"/reports/{critical}/pdf"
        pdf = await page.request.get(f"{base}{pdf_href}")
        assert pdf.status == 200
        assert (await pdf.body()).startswith(b"%PDF")
        # the name and the read-back (复述) are required, then the acknowledgement is kept
        # with both
        button = top.locator("form.ack button[type=submit]")
        await button.click()
        assert await page.eval_on_selector(
            f"article[data-report='{critical}'] input[name=name]", "i => !i.validity.valid"
        )
        await top.locator("input[name=name]").fill("张护士")
        await button.click()
        assert await page.eval_on_selector(
            f"article[data-report='{critical}'] textarea[name=read_back]",
            "i => !i.validity.valid",
        )
        await top.locator("textarea[name=read_back]").fill("右下肺炎，危急值，已告知接诊医生")
        await page.screenshot(path=str(ARTIFACTS / "web_inbox_read_back.png"), full_page=True)
        await button.click()
        await page.wait_for_selector(f"article[data-report='{critical}'] .ack-done")
        done = await page.inner_text(f"article[data-report='{critical}'] .ack-done")
        assert "张护士" in done
        read_back = await page.inner_text(f"article[data-report='{critical}'] .read-back")
        assert "右下肺炎，危急值，已告知接诊医生" in read_back
        assert await page.locator("#critical-count").count() == 0
        # an up-referral for the patient of the critical result
        await page.select_option("#refer select[name=case_id]", str(await _case_of(api, critical)))
        await page.select_option("#refer select[name=to]", "HB-COUNTY")
        await page.select_option("#refer select[name=urgency]", "urgent")
        await page.fill("#refer input[name=reason]", "重症肺炎，需住院治疗")
        await page.click("#refer button[type=submit]")
        await page.wait_for_selector("tr[data-referral]")
        assert "待接诊" in await page.inner_text("#referrals")
        await page.screenshot(path=str(ARTIFACTS / "web_inbox_acknowledged.png"), full_page=True)
        # the same inbox for a clinic operator who chose English
        await choose_english(api, "xlwd.clinic")
        await page.reload()
        assert await page.inner_text("h1") == "Report inbox"
        assert "Returned studies" in await page.inner_text("#returned")
        assert "reported" in await page.inner_text("#studies")
        assert "requested" in await page.inner_text("#referrals")
        assert "Acknowledged" in await page.inner_text(f"article[data-report='{critical}']")
        assert_one_language(await page.inner_text("main"))
        await page.screenshot(path=str(ARTIFACTS / "web_inbox_en.png"), full_page=True)
        await browser.close()
    row = await api.pool.fetchrow(
        "select acknowledged_at, acknowledged_name, acknowledged_read_back from report "
        "where id = $1",
        critical,
    )
    assert row is not None
    assert row["acknowledged_at"] is not None
    assert row["acknowledged_name"] == "张护士"
    assert row["acknowledged_read_back"] == "右下肺炎，危急值，已告知接诊医生"
    assert await api.pool.fetchval(
        "select acknowledged_at is null from report where id = $1", normal
    )
    referral = await api.pool.fetchrow("select direction, urgency, reason from referral")
    assert referral is not None
    assert tuple(referral) == ("up", "urgent", "重症肺炎，需住院治疗")


async def _case_of(api: Api, report_id: int) -> int:
    case_id: int = await api.pool.fetchval("select case_id from report where id = $1", report_id)
    return case_id


@browser_test
async def test_the_administrator_reads_turnaround_and_downloads_the_csv(api: Api) -> None:
    await _reported(api, "normal")
    _, open_case = await _routed(api, patient_id="WD-5")
    await _ok(
        api,
        "xlwd.clinic",
        "/api/v1/referrals",
        {"to": "HB-COUNTY", "reason": "复查", "case_id": open_case, "urgency": "routine"},
    )
    await api.pool.execute(
        "update reading_case set deadline = now() - interval '5 minutes' where id = $1",
        open_case,
    )
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = await browser.new_context(
            viewport={"width": 1400, "height": 900}, locale="zh-CN", accept_downloads=True
        )
        page = await context.new_page()
        await _sign_in(page, base, "hb.admin")
        await page.click("a[href='/admin']")
        await page.wait_for_url(f"{base}/admin")
        row = page.locator("#turnaround tr[data-facility='HB-XL-WD']")
        assert await row.count() == 1
        assert "王店村卫生室" in await row.inner_text()
        assert re.search(r"^\d+(\.\d)? (秒|分钟)$", await row.locator("td.median").inner_text())
        assert await page.inner_text("#total-reports") == "1"
        assert await page.inner_text("#overdue-total") == "1"
        assert f"#{open_case}" in await page.inner_text("#breaches")
        assert "received_to_final" not in await page.inner_text("#segments")  # in words
        assert "接收→正式报告" in await page.inner_text("#segments")
        referral_stats = await page.inner_text("#referral-stats")
        assert "王店村卫生室" in referral_stats
        assert "待接诊" in referral_stats
        await page.screenshot(path=str(ARTIFACTS / "web_admin_dashboard.png"), full_page=True)
        async with page.expect_download() as info:
            await page.click("#csv")
        download = await info.value
        assert re.fullmatch(r"turnaround-\d{8}\.csv", download.suggested_filename)
        saved = ARTIFACTS / "turnaround.csv"
        await download.save_as(str(saved))
        await browser.close()
    text = saved.read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    facility = [r for r in rows if r["row"] == "facility"]
    assert [r["facility"] for r in facility] == ["HB-XL-WD"]
    assert facility[0]["count"] == "1"
    assert float(facility[0]["median_minutes"]) >= 0
    assert any(r["segment"] == "claimed_to_final" for r in rows if r["row"] == "segment")


async def test_the_csv_api_is_scoped_like_the_json_and_described(api: Api) -> None:
    await _reported(api, "normal")
    county = await api.client.get("/api/v1/stats/turnaround.csv", headers=api.auth("hb.admin"))
    assert county.status == 200
    assert county.content_type == "text/csv"
    assert county.charset == "utf-8"
    body = (await county.read()).decode("utf-8-sig")
    assert "HB-XL-WD" in body
    assert "淮滨县新里镇王店村卫生室" in body
    json_body = await (
        await api.client.get("/api/v1/stats/turnaround", headers=api.auth("hb.admin"))
    ).json()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert float(rows[0]["median_minutes"]) == json_body["facilities"][0]["median_minutes"]
    # each segment also in words, as the dashboard names it, in the caller's language
    assert rows[0]["segment_name"] == "接收→正式报告"
    named = {r["segment"]: r["segment_name"] for r in rows if r["row"] == "segment"}
    assert named["claimed_to_final"] == "领取→正式报告"
    # another clinic sees nothing of it; a reader is refused
    other = await api.client.get("/api/v1/stats/turnaround.csv", headers=api.auth("xlzz.clinic"))
    assert other.status == 200
    assert "HB-XL-WD" not in (await other.read()).decode("utf-8-sig")
    reader = await api.client.get("/api/v1/stats/turnaround.csv", headers=api.auth("wang.reader"))
    assert reader.status == 403
    assert reader.content_type == "application/problem+json"
    assert (await api.client.get("/api/v1/stats/turnaround.csv")).status == 401
    bad = await api.client.get(
        "/api/v1/stats/turnaround.csv?since=yesterday", headers=api.auth("hb.admin")
    )
    assert bad.status == 400
    spec = await (await api.client.get("/api/v1/openapi.json")).json()
    op = spec["paths"]["/api/v1/stats/turnaround.csv"]["get"]
    assert "text/csv" in op["responses"]["200"]["content"]
    # the dashboard's link runs the same handler for the session
    admin = await session(api, "hb.admin")
    page_csv = await api.client.get("/admin/turnaround.csv", headers=admin)
    assert page_csv.status == 200
    same = list(csv.DictReader(io.StringIO((await page_csv.read()).decode("utf-8-sig"))))
    drop = ("since", "until")
    assert [{k: v for k, v in r.items() if k not in drop} for r in same] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows
    ]


async def test_pages_of_other_counties_and_clinics_are_not_found(api: Api) -> None:
    case_id, report_id = await _reported(api, "critical")
    for user in ("gs.reader", "xlzz.clinic", "li.ecg"):
        cookie = await session(api, user)
        got = await api.client.get(f"/cases/{case_id}", headers=cookie)
        assert got.status == 404, user
        assert "王 小明" not in await got.text()
    own = await session(api, "wang.reader")
    assert (await api.client.get(f"/cases/{case_id}", headers=own)).status == 200
    # another clinic: neither the report, its PDF nor its acknowledgement
    other = await session(api, "xlzz.clinic")
    inbox = await (await api.client.get("/", headers=other)).text()
    assert "王 小明" not in inbox
    assert f'data-report="{report_id}"' not in inbox
    pdf = await api.client.get(f"/reports/{report_id}/pdf", headers=other)
    assert pdf.status == 404
    ack = await api.client.post(
        f"/reports/{report_id}/acknowledge", json={"name": "某人"}, headers={**other, **PAGE}
    )
    assert ack.status == 404
    assert ack.content_type == "application/problem+json"
    # the dashboard is for administrators; readers get no CSV
    clinic = await session(api, "xlwd.clinic")
    assert (await api.client.get("/admin", headers=clinic)).status == 403
    assert (await api.client.get("/admin/turnaround.csv", headers=own)).status == 403
    # the page shows the reports only in the clinic's own inbox, audited
    mine = await (await api.client.get("/", headers=clinic)).text()
    assert f'data-report="{report_id}"' in mine
    audited = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'report' and object_id = 'inbox'"
    )
    assert audited >= 2
    # signed out, a page asks for sign-in
    unsigned = await api.client.get(f"/cases/{case_id}", allow_redirects=False)
    assert unsigned.status == 303
    assert unsigned.headers["Location"] == f"/login?next=/cases/{case_id}"


async def test_cross_site_changes_are_refused(api: Api) -> None:
    _, case_id = await _routed(api)
    reader = await session(api, "wang.reader")
    claim = f"/cases/{case_id}/claim"
    assert (await api.client.post(claim, headers=PAGE)).status == 401
    assert (await api.client.post(claim, headers=reader)).status == 403
    evil = {**reader, **PAGE, "Origin": "https://evil.example"}
    assert (await api.client.post(claim, headers=evil)).status == 403
    assert (
        await api.pool.fetchval("select claimed_by from reading_case where id = $1", case_id)
        is None
    )
    _, report_id = await _reported(api, "critical", patient_id="WD-9")
    clinic = await session(api, "xlwd.clinic")
    for path, body in (
        (f"/reports/{report_id}/acknowledge", {"name": "张护士", "read_back": "危急值"}),
        ("/referrals", {"to": "HB-COUNTY", "reason": "x", "case_id": case_id}),
    ):
        forged = await api.client.post(path, json=body, headers=clinic)
        assert forged.status == 403, path
        assert forged.content_type == "application/problem+json"
    assert await api.pool.fetchval(
        "select acknowledged_at is null from report where id = $1", report_id
    )
    # from the page itself (same origin, its header) the claim goes through
    own_origin = _base(api)
    done = await api.client.post(claim, headers={**reader, **PAGE, "Origin": own_origin})
    assert done.status == 200, await done.text()


async def test_the_city_sees_the_county_draft_and_question_and_agrees(api: Api) -> None:
    _, case_id = await _routed(api)
    await _ok(api, "wang.reader", f"/api/v1/cases/{case_id}/claim")
    cookie = await session(api, "wang.reader")
    escalated = await api.client.post(
        f"/cases/{case_id}/escalate",
        json={
            "question": "右上肺结节，良恶性？",
            "findings": "右上肺见结节影。",
            "impression": "右上肺结节，建议上级会诊。",
            "conclusion": "abnormal",
        },
        headers={**cookie, **PAGE},
    )
    assert escalated.status == 200, await escalated.text()
    city = await session(api, "zhao.city")
    page = await (await api.client.get(f"/cases/{case_id}", headers=city)).text()
    assert 'id="consult"' in page
    assert "右上肺结节，良恶性？" in page
    assert "右上肺见结节影。" in page
    assert 'id="agree"' not in page  # claim first
    claimed = await api.client.post(f"/cases/{case_id}/claim", headers={**city, **PAGE})
    assert claimed.status == 200
    page = await (await api.client.get(f"/cases/{case_id}", headers=city)).text()
    assert 'id="agree"' in page
    agreed = await api.client.post(
        f"/cases/{case_id}/report",
        json={
            "findings": "右上肺见结节影。",
            "impression": "右上肺结节，建议上级会诊。",
            "conclusion": "abnormal",
            "status": "final",
            "agreed": True,
        },
        headers={**city, **PAGE},
    )
    assert agreed.status == 201, await agreed.text()
    assert (await agreed.json())["agreed"] is True
    page = await (await api.client.get(f"/cases/{case_id}", headers=city)).text()
    assert "同意初步报告" in page
    assert "(agreed)" not in page


@browser_test
async def test_the_county_escalates_and_the_city_agrees_in_the_browser(api: Api) -> None:
    _, case_id = await _routed(api)
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        county = await browser.new_page(viewport={"width": 1400, "height": 900})
        await _sign_in(county, base, "wang.reader")
        await county.goto(f"{base}/cases/{case_id}")
        await county.click("#claim")
        await county.wait_for_selector("#escalate")
        await county.fill("#report textarea[name=findings]", "右上肺见结节影，边缘毛糙。")
        await county.fill("#report textarea[name=impression]", "右上肺结节，性质待定。")
        await county.select_option("#report select[name=conclusion]", "abnormal")
        await county.fill("#escalate textarea[name=question]", "右上肺结节，良恶性？")
        await county.check("#escalate input[name=with_draft]")
        await county.click("#escalate button[type=submit]")
        await county.wait_for_selector("#escalate", state="detached")
        assert "上转会诊" in await county.inner_text("#events")
        city = await browser.new_page(viewport={"width": 1400, "height": 900})
        await _sign_in(city, base, "zhao.city")
        assert await city.locator(f"tr[data-case='{case_id}'] .badge", has_text="会诊").count()
        await city.click(f"tr[data-case='{case_id}'] a.case")
        await city.wait_for_selector("#consult")
        assert "右上肺结节，良恶性？" in await city.inner_text("#consult")
        assert "右上肺见结节影，边缘毛糙。" in await city.inner_text("#draft-findings")
        await city.click("#claim")
        await city.wait_for_selector("#agree")
        await city.screenshot(path=str(ARTIFACTS / "web_case_consult.png"), full_page=True)
        await city.click("#agree button[type=submit]")
        await city.wait_for_selector("text=同意初步报告")
        await browser.close()
    row = await api.pool.fetchrow(
        "select status, agreed, discrepancy, impression from report"
        " where case_id = $1 and status = 'final'",
        case_id,
    )
    assert row is not None
    assert (row["agreed"], row["discrepancy"]) == (True, None)
    assert row["impression"] == "右上肺结节，性质待定。"


async def test_what_the_clinic_typed_is_escaped_and_every_case_page_read_is_audited(
    api: Api,
) -> None:
    _, case_id = await _routed(api, patient_id="X-1", name="<script>alert(1)</script>^小红")
    reader = await session(api, "wang.reader")
    for path in ("/", f"/cases/{case_id}"):
        text = await (await api.client.get(path, headers=reader)).text()
        assert "<script>alert(1)</script>" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt; 小红" in text, path
    audited = await api.pool.fetchval(
        "select count(*) from audit a join app_user u on u.id = a.user_id"
        " where u.username = 'wang.reader' and a.action = 'read'"
        " and a.object_type = 'case' and a.object_id = $1",
        str(case_id),
    )
    assert audited == 1
    missing = await api.client.get("/cases/999999", headers=reader)
    assert missing.status == 404
    assert "未找到" in await missing.text()


async def test_the_reader_claims_the_next_case_from_the_worklist(api: Api) -> None:
    _, routine = await _routed(api, patient_id="N-1")
    uid, urgent = await _routed(api, patient_id="N-2")
    await _ok(api, "xlwd.clinic", f"/api/v1/studies/{uid}/reading-request", {"urgency": "urgent"})
    reader = await session(api, "wang.reader")
    page = await (await api.client.get("/", headers=reader)).text()
    assert 'id="claim-next"' in page
    assert 'data-live="case ' in page
    taken = await api.client.post("/worklist/next", headers={**reader, **PAGE})
    assert taken.status == 200, await taken.text()
    assert (await taken.json())["id"] == urgent  # the most urgent first
    assert (await api.client.post("/worklist/next", headers=reader)).status == 403
    mine = await (await api.client.get("/?status=mine", headers=reader)).text()
    assert f'data-case="{urgent}"' in mine
    assert f'data-case="{routine}"' not in mine


@browser_test
async def test_the_worklist_and_the_inbox_update_as_cases_and_reports_arrive(api: Api) -> None:
    """The pages follow the user's notifications (server-sent events on /events, with the
    session cookie): a new case appears on the open worklist without a reload timer, and a
    critical result reaching a clinic that is typing is announced, not reloaded over."""
    await _routed(api, patient_id="LIVE-1")
    base = _base(api)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        reader = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        await _sign_in(reader, base, "wang.reader")
        await wait_until(reader, "document.body.dataset.liveOpen === '1'")
        assert await reader.locator("tr.case-row").count() == 1
        _, arrived = await _routed(api, patient_id="LIVE-2", name="钱^七")
        row = reader.locator(f"tr.case-row[data-case='{arrived}']")
        await row.wait_for(timeout=10_000)  # the timer would take five minutes
        assert "钱 七" in await row.inner_text()

        clinic = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        await _sign_in(clinic, base, "xlwd.clinic")
        await wait_until(clinic, "document.body.dataset.liveOpen === '1'")
        await clinic.fill("#refer input[name=reason]", "患者要求转上级医院")
        await _reported(api, "critical", patient_id="LIVE-3")
        banner = clinic.locator("#live-banner")
        await banner.wait_for(timeout=10_000)
        assert "危急值" in await banner.inner_text()
        assert "kind-critical" in (await banner.get_attribute("class") or "")
        # nothing typed was lost; the reload is the clinic's to make
        assert await clinic.input_value("#refer input[name=reason]") == "患者要求转上级医院"
        await banner.locator("button").click()
        await clinic.wait_for_selector("#critical-count")
        await browser.close()
    # the stream is the pages' own: without a session it is refused like any page action
    anonymous = await api.client.get("/events")
    assert anonymous.status == 401
