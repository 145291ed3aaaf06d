"""Two-way referral in Debian's chromium: a village clinic refers a patient up with an
attached study, the county hospital accepts (green channel), records the arrival and sends
the patient back down with a discharge summary; the clinic downloads the return form (转回单)
and its text is read back with pypdf. Another clinic sees none of it. Screenshots are kept
in ``test-artifacts/``.
"""

from __future__ import annotations

import io
import re

import pypdf
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import store
from tests.integration.one_language import assert_one_language, choose_english
from tests.integration.test_web_pages import (
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    _base,
    _sign_in,
    browser_test,
)


async def _signed_in(browser: Browser, base: str, username: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(
        viewport={"width": 1300, "height": 900},
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        accept_downloads=True,
    )
    page = await context.new_page()
    await _sign_in(page, base, username)
    return context, page


def _text(data: bytes) -> str:
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    return "".join("".join(p.extract_text().replace("\x00", "").split()) for p in pages)


async def _clinic_refers_up(page: Page, base: str, uid: str) -> int:
    await page.click("nav a[href='/referrals']")
    await page.wait_for_url(f"{base}/referrals")
    await page.click("#new-referral")
    await page.select_option("#patient", label="王 小明 · WD-B1")
    await page.click("#choose-patient button[type=submit]")
    await page.wait_for_selector("#referral-form")
    await page.select_option("#referral-form select[name=to]", "HB-COUNTY")
    await page.select_option("#referral-form select[name=urgency]", "urgent")
    await page.fill("#referral-form input[name=preliminary_diagnosis]", "社区获得性肺炎（重症？）")
    await page.fill("#referral-form textarea[name=reason]", "高热不退三天，血氧下降，需住院治疗")
    await page.fill("#referral-form textarea[name=history]", "发热咳嗽五天，口服头孢无效。")
    await page.fill("#referral-form textarea[name=findings]", "体温39.2℃，右下肺湿啰音。")
    results = page.locator("#results input[type=checkbox]")
    assert await results.count() == 1
    await results.first.check()
    await page.click("#referral-form button[type=submit]")
    await page.wait_for_url(re.compile(r"/referrals/\d+$"))
    referral = int(page.url.rsplit("/", 1)[1])
    assert await page.inner_text("#state") == "待接诊"
    attached = await page.inner_text("#attachments")
    assert "影像检查" in attached
    assert_one_language(await page.inner_text("main"))
    assert await page.get_attribute("#attachments a.open", "href") == (
        f"/viewer?StudyInstanceUIDs={uid}"
    )
    await page.screenshot(path=str(ARTIFACTS / "referral_raised.png"), full_page=True)
    return referral


async def _county_works_it(page: Page, base: str, referral: int, uid: str) -> None:
    await page.click("nav a[href='/referrals']")
    row = page.locator(f"#incoming-list tr[data-referral='{referral}']")
    assert "王店村卫生室" in await row.inner_text()
    await row.locator("a").click()
    await page.wait_for_url(f"{base}/referrals/{referral}")
    # the attached study opens for the receiving hospital (its reader had no case of it)
    metadata = await page.request.get(f"{base}/dicomweb/studies/{uid}/metadata")
    assert metadata.status == 200
    await page.fill("#accept input[name=appointment_at]", "2026-12-08T09:00")
    await page.fill("#accept input[name=department]", "呼吸与危重症医学科")
    await page.fill("#accept input[name=doctor]", "王医生")
    await page.select_option("#accept select[name=green_channel]", "true")
    await page.click("#accept button[type=submit]")
    await page.wait_for_selector("#arrive")
    assert await page.inner_text("#state") == "已接诊"
    assert "2026-12-08 09:00" in await page.inner_text("#answer")
    await page.click("#arrive")
    await page.wait_for_selector("#return-form")
    assert await page.inner_text("#state") == "已到诊"
    await page.select_option("#return-form select[name=kind]", "discharge")
    await page.fill(
        "#return-form textarea[name=diagnosis]", "重症肺炎，住院抗感染及氧疗10天，痊愈出院。"
    )
    await page.fill("#return-form textarea[name=orders]", "阿莫西林克拉维酸钾 口服 一周。")
    await page.fill("#return-form textarea[name=follow_up]", "出院后一周村卫生室复诊，复查血常规。")
    await page.click("#return-form button[type=submit]")
    await page.wait_for_selector("#return")
    assert await page.inner_text("#state") == "已转回"
    assert_one_language(await page.inner_text("main"))
    await page.screenshot(path=str(ARTIFACTS / "referral_county.png"), full_page=True)


@browser_test
async def test_a_referral_goes_up_with_a_study_and_comes_back_down_printed(api: Api) -> None:
    uid = await store(
        api,
        "HB-XL-WD",
        make_study(modality="DX", count=1, patient_id="WD-B1", patient_name="王^小明", size=16),
    )
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        clinic_context, clinic = await _signed_in(browser, base, "xlwd.clinic")
        referral = await _clinic_refers_up(clinic, base, uid)
        county_context, county = await _signed_in(browser, base, "wang.reader")
        await _county_works_it(county, base, referral, uid)
        # back home: the clinic follows it and prints the return form
        await clinic.goto(f"{base}/referrals")
        assert "已转回" in await clinic.inner_text(f"#outgoing-list tr[data-referral='{referral}']")
        await clinic.goto(f"{base}/referrals/{referral}")
        assert "痊愈出院" in await clinic.inner_text("#return")
        async with clinic.expect_download() as info:
            await clinic.click("a[data-document='return']")
        download = await info.value
        assert download.suggested_filename == f"referral-{referral}-return.pdf"
        saved = ARTIFACTS / "referral_return.pdf"
        await download.save_as(str(saved))
        await clinic.screenshot(path=str(ARTIFACTS / "referral_returned.png"), full_page=True)
        # another village's clinic sees none of it
        other_context, other = await _signed_in(browser, base, "xlzz.clinic")
        answer = await other.goto(f"{base}/referrals/{referral}")
        assert answer is not None
        assert answer.status == 404
        await other.goto(f"{base}/referrals")
        assert await other.locator("tr[data-referral]").count() == 0
        pdf = await other.request.get(f"{base}/referrals/{referral}/documents/return")
        assert pdf.status == 404
        # the county hospital's reader, in English: the referral and the list
        await choose_english(api, "wang.reader")
        await county.goto(f"{base}/referrals/{referral}")
        assert await county.inner_text("#state") == "returned down"
        assert "Return form" in await county.inner_text("#return h2")
        assert "Green channel" in await county.inner_text("#answer")
        assert_one_language(await county.inner_text("main"))
        await county.screenshot(path=str(ARTIFACTS / "referral_en.png"), full_page=True)
        await county.goto(f"{base}/referrals")
        assert await county.inner_text("h1") == "Referrals"
        assert "returned down" in await county.inner_text("#incoming-list")
        assert_one_language(await county.inner_text("main"))
        # the clinic's form, in English
        await choose_english(api, "xlwd.clinic")
        await clinic.goto(f"{base}/referrals/new")
        await clinic.select_option("#patient", label="王 小明 · WD-B1")
        await clinic.click("#choose-patient button[type=submit]")
        await clinic.wait_for_selector("#referral-form")
        assert "New referral" in await clinic.inner_text("h1")
        assert "study" in await clinic.inner_text("#results")
        assert_one_language(await clinic.inner_text("main"))
        await clinic.screenshot(path=str(ARTIFACTS / "referral_new_en.png"), full_page=True)
        for context in (clinic_context, county_context, other_context):
            await context.close()
        await browser.close()
    text = _text(saved.read_bytes())
    for expected in (
        "双向转诊单（转回）",
        "王小明",
        "出院小结",
        "重症肺炎，住院抗感染及氧疗10天",
        "阿莫西林克拉维酸钾",
        "出院后一周村卫生室复诊",
        "淮滨县人民医院",
    ):
        assert expected in text, expected
