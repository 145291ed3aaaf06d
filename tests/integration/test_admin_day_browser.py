"""The county administrator's whole day in Debian's chromium, once in zh-CN and once in
English, against the service with its DICOM listener on real PostgreSQL.

The administrator adds a village under a township with its workstation's title bound to
127.0.0.1 and a clinic user for it, who sets a password by the one-time link and signs in
(in the same language); puts a county reader on duty on a new pool's weekly calendar; adds a
routing rule for the village whose preview names the pool and the due time; a DR study sent
by C-STORE (pynetdicom) from the new title lands in that pool with that deadline; the
administrator deactivates the user (their open page and their token stop working), reads the
case in the dashboard's figures and charts once the reader has signed it, and merges the
patient, registered at two facilities through ingest, on the merge screen. Another network's
administrator and a sibling county's see none of it, on the pages and in the API.

Pages are driven by ids, names, data- attributes, hrefs and form structure; the language is
asserted on ``html[lang]`` and the header's words. Screenshots are kept in
``test-artifacts/`` with the suffix ``_zh`` or ``_en``."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from storage import accounts, network
from storage.records import Role, UserSpec
from teleradiology.core.passwords import hash_password
from teleradiology.roles import DICOM
from teleradiology.services import administration
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_authorisation_rules import _another_network
from tests.integration.test_console import _send
from tests.integration.test_console_pages import _sign_in
from tests.integration.test_dashboard import ZONE
from tests.integration.test_web_pages import ARGS, ARTIFACTS, CHROMIUM, _base, browser_test

TITLE = "HBXLNEW02"
VILLAGE = "HB-XL-NEW"
POOL = "HB-DR-NEW"
CLINIC = "xlnew.clinic"
PATIENT = "XLN-1"
TWIN = "WD-77"
NAME = "韩^梅梅"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Another network's administrator and a sibling county's, with the password they sign in by.
OUTSIDERS = ("zk.admin", "gs.admin")
OUTSIDER_PASSWORD = "outsider-2026!"
#: The header's words in each language (base.html speaks one language at a time).
HEADER = {"zh-CN": ("退出", "Sign out"), "en": ("Sign out", "退出")}


@dataclasses.dataclass
class Day:
    """What the day made, for the checks that follow it."""

    api: Api
    base: str
    lang: str
    suffix: str
    case_id: int = 0
    study_uid: str = ""
    patient_ref: int = 0
    due: datetime | None = None


async def _outsiders(api: Api) -> None:
    """Another network (周口) with its administrator, and an administrator of 固始 county,
    each with a password and a token."""
    await _another_network(api)
    sibling = UserSpec(
        username="gs.admin",
        display_name="固始县管理员",
        role=Role.ADMIN,
        facility="GS-COUNTY",
        specialties=(),
        password_hash=None,
    )
    await administration.import_network(api.pool, [], [sibling])
    for name in OUTSIDERS:
        user = await network.user_by_username(api.pool, name)
        assert user is not None
        await accounts.set_password(api.pool, user.id, hash_password(OUTSIDER_PASSWORD))
        api.tokens[name] = await network.create_token(api.pool, user.id)


async def _shot(page: Page, day: Day, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"admin_day_{name}{day.suffix}.png"), full_page=True)


async def _in_language(page: Page, lang: str) -> None:
    """The page is in ``lang`` alone: ``html[lang]`` and the header's words."""
    assert await page.get_attribute("html", "lang") == lang
    header = await page.inner_text("header.topbar")
    present, absent = HEADER[lang]
    assert present in header, header
    assert absent not in header, header


async def _switch_language(page: Page, lang: str) -> None:
    """The header's switch, when the page is not in ``lang`` yet."""
    if await page.get_attribute("html", "lang") != lang:
        async with page.expect_navigation():
            await page.click("#language-switch input[type=submit]")
    assert await page.get_attribute("html", "lang") == lang


async def _message(page: Page) -> str:
    for _ in range(200):
        shown = await page.inner_text("#message")
        if shown:
            return shown
        await asyncio.sleep(0.05)
    raise AssertionError("the page said nothing")


async def _submit(page: Page, form: str, appears: str) -> None:
    """Submit a page form and wait for the reloaded page to show ``appears``."""
    await page.locator(f"{form} button[type=submit]").click()
    try:
        await page.locator(appears).first.wait_for(timeout=10_000)
    except Exception:
        raise AssertionError(f"{form}: {await page.inner_text('#message')}") from None


async def _add_village(admin: Page, day: Day) -> None:
    await admin.click("nav.menu a[href='/admin/facilities']")
    await admin.wait_for_url(f"{day.base}/admin/facilities")
    await _in_language(admin, day.lang)
    form = admin.locator("#add-facility form")
    await form.locator("input[name=code]").fill(VILLAGE)
    await form.locator("input[name=name]").fill("淮滨县新里镇新村卫生室")
    await form.locator("select[name=tier]").select_option("village")
    await form.locator("select[name=parent]").select_option("HB-XL")
    await form.locator("textarea[name=workstations]").fill(f"{TITLE} 127.0.0.1")
    await _submit(admin, "#add-facility form", f"tr[data-facility='{VILLAGE}']")
    row = await admin.inner_text(f"tr[data-facility='{VILLAGE}']")
    assert "HB-XL" in row
    assert TITLE in row
    assert "127.0.0.1" in row
    await _shot(admin, day, "village")


async def _add_user(admin: Page, day: Day) -> str:
    """The clinic user of the village: the one-time link the page shows."""
    await admin.click("nav.menu a[href='/admin/users']")
    await admin.wait_for_url(f"{day.base}/admin/users")
    form = admin.locator("#add-user form")
    await form.locator("input[name=username]").fill(CLINIC)
    await form.locator("input[name=display_name]").fill("新村卫生室 陈村医")
    await form.locator("select[name=role]").select_option("clinic")
    await form.locator("select[name=facility]").select_option(VILLAGE)
    await form.locator("button[type=submit]").click()
    shown = await _message(admin)
    link = re.search(r"(https?://\S+/password#\S+)", shown)
    assert link, shown
    await _shot(admin, day, "user_added")
    return link.group(1)


async def _new_user_signs_in(browser: Browser, day: Day, link: str) -> tuple[Page, str]:
    """In the new user's own browser, in the day's language: the password set by the link,
    signed in; their page and a token of theirs."""
    context = await browser.new_context(viewport={"width": 1300, "height": 800}, locale=day.lang)
    clinic = await context.new_page()
    await clinic.goto(link)
    if day.lang != "zh-CN":
        # the signed-out switch keeps the link's secret (the fragment) on the page
        async with clinic.expect_navigation():
            await clinic.click("#language-switch input[type=submit]")
        assert await clinic.get_attribute("html", "lang") == day.lang
        assert clinic.url == link
    await clinic.fill("input[name=new_password]", "cun-yi-2026!")
    await clinic.fill("input[name=again]", "cun-yi-2026!")
    await clinic.click("form[data-password-link] button[type=submit]")
    assert CLINIC in await _message(clinic)
    await _shot(clinic, day, "password_set")
    await _sign_in(clinic, day.base, CLINIC, "cun-yi-2026!")
    await _switch_language(clinic, day.lang)
    await _in_language(clinic, day.lang)
    assert CLINIC in await clinic.inner_text("#who")
    await _shot(clinic, day, "new_user_inbox")
    return clinic, await _token(day.api, CLINIC)


async def _off_duty_today(api: Api) -> None:
    """王医生 works only on another day of the week: off duty now, until his new shift."""
    other_day = DAYS[datetime.now(ZONE).isoweekday() % 7]
    response = await api.client.put(
        "/api/v1/admin/users/wang.reader/duty",
        json={"duty": [{"days": [other_day], "from": "08:00", "until": "18:00"}]},
        headers=api.auth("hb.admin"),
    )
    assert response.status == 200, await response.text()


async def _duty_shift(admin: Page, day: Day) -> None:
    """A new pool for 王医生, and a shift today on its weekly calendar: the one that puts
    him on duty now."""
    await _off_duty_today(day.api)
    await admin.click("nav.menu a[href='/admin/routing']")
    await admin.wait_for_url(f"{day.base}/admin/routing")
    await admin.fill("#new-pool input[name=code]", POOL)
    await admin.fill("#new-pool input[name=name]", "县医院放射新村组")
    await admin.select_option("#new-pool select[name=specialty]", "radiology")
    await admin.select_option("#new-pool select[name=facility]", "HB-COUNTY")
    await admin.fill("#new-pool input[name=members]", "wang.reader")
    await _submit(admin, "#new-pool", f"tr[data-pool='{POOL}']")
    await admin.click(f"tr[data-pool='{POOL}'] a[href$='/roster']")
    await admin.wait_for_url(f"{day.base}/admin/routing/pools/{POOL}/roster")
    weekday = datetime.now(ZONE).isoweekday()
    await admin.select_option("#new-shift select[name=days]", DAYS[weekday - 1])
    await admin.fill("#new-shift input[name=from]", "00:00")
    await admin.fill("#new-shift input[name=until]", "24:00")
    cell = f"tr[data-member='wang.reader'] td:nth-child({weekday + 1})"
    assert await admin.locator(f"{cell} .shift").count() == 0
    await _submit(admin, "#new-shift", f"{cell} .shift")
    assert await admin.locator(f"{cell} .shift").count() == 1
    assert "00:00–24:00" in await admin.inner_text(cell)
    await _in_language(admin, day.lang)
    await _shot(admin, day, "roster")


async def _rule_and_preview(admin: Page, day: Day) -> None:
    """DR from the village to the pool, due in 120 minutes; the preview says so."""
    await admin.goto(f"{day.base}/admin/routing")
    await admin.select_option("#rule-sender", VILLAGE)
    await admin.fill("#new-rule input[name=modality]", "DX")
    await admin.select_option("#new-rule select[name=priority]", "routine")
    await admin.select_option("#new-rule select[name=pool]", POOL)
    await admin.fill("#new-rule input[name=deadline_minutes]", "120")
    await _submit(admin, "#new-rule", f"tr[data-sender='{VILLAGE}']")
    await admin.select_option("#preview-form select[name=facility]", VILLAGE)
    await admin.fill("#preview-form input[name=modality]", "DX")
    await admin.select_option("#preview-form select[name=priority]", "routine")
    await admin.locator("#preview-form button[type=submit]").click()
    line = admin.locator("#preview-result li").first
    await line.wait_for(timeout=10_000)
    assert await line.get_attribute("data-pool") == POOL
    assert await line.get_attribute("data-facility") == "HB-COUNTY"
    assert "2 h" in await line.inner_text()
    day.due = datetime.fromisoformat(await line.get_attribute("data-due") or "")
    await _shot(admin, day, "preview")


async def _c_store(day: Day) -> None:
    """A DR study by C-STORE from the village's new title lands in the pool the preview
    named, with the due time it said, on the reader's worklist."""
    api = day.api
    await api.app[DICOM].refresh_callers()  # as the listener does by itself every 5 s
    study = make_study(modality="DX", count=1, patient_id=PATIENT, patient_name=NAME)
    assert await asyncio.to_thread(_send, api.app[DICOM].port, TITLE, study) == [0]
    assert await route_all(api) == 1
    listed = await api.client.get("/api/v1/worklist", headers=api.auth("wang.reader"))
    (case,) = [c for c in (await listed.json())["cases"] if c["pool"] == "HB-COUNTY"]
    row = await api.pool.fetchrow(
        "select p.code, s.study_instance_uid, s.patient_ref, f.code as sender "
        "from reading_case c join reading_pool p on p.id = c.reading_pool_id "
        "join study s on s.id = c.study_id join facility f on f.id = s.facility_id "
        "where c.id = $1",
        case["id"],
    )
    assert row is not None
    assert (row["code"], row["sender"]) == (POOL, VILLAGE)
    deadline = datetime.fromisoformat(case["deadline"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(case["created_at"].replace("Z", "+00:00"))
    assert deadline - created == timedelta(minutes=120)
    assert day.due is not None
    # the preview's time is the form's minute; the study came a little after it
    assert timedelta(0) <= deadline - day.due < timedelta(minutes=3)
    day.case_id, day.study_uid, day.patient_ref = case["id"], row[1], row["patient_ref"]


async def _deactivate(admin: Page, clinic: Page, day: Day, token: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await day.api.client.get("/api/v1/me", headers=bearer)).status == 200
    await admin.goto(f"{day.base}/admin/users/{CLINIC}")
    admin.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    async with admin.expect_navigation():
        await admin.click("#deactivate")
    await _in_language(admin, day.lang)
    await _shot(admin, day, "user_off")
    assert (await day.api.client.get("/api/v1/me", headers=bearer)).status == 401
    await clinic.reload()
    assert "/login" in clinic.url
    assert await clinic.get_attribute("html", "lang") == day.lang
    await _shot(clinic, day, "user_signed_out")


async def _sign_the_report(api: Api, case_id: int) -> None:
    for path, body in (
        (f"/api/v1/cases/{case_id}/claim", None),
        (
            f"/api/v1/cases/{case_id}/report",
            {"findings": "双肺纹理清晰。", "impression": "心肺未见异常。", "conclusion": "normal"},
        ),
    ):
        response = await api.client.post(path, json=body, headers=api.auth("wang.reader"))
        assert response.status in (200, 201), (path, await response.text())


async def _dashboard(admin: Page, day: Day) -> None:
    """The village's case in the figures, the facility table and both charts."""
    await _sign_the_report(day.api, day.case_id)
    today = datetime.now(ZONE).strftime("%m-%d")
    await admin.goto(f"{day.base}/admin?facility={VILLAGE}")
    await _in_language(admin, day.lang)
    assert await admin.inner_text("#dash-cases") == "1"
    row = admin.locator(f"#dash-facility tr[data-key='{VILLAGE}']")
    assert await row.locator("td.cases").inner_text() == "1"
    assert await row.locator("td.sla").inner_text() == "100.0%"
    minutes = float(await row.locator("td.p50").inner_text())
    points = admin.locator(f"#chart-turnaround circle[data-label='{today}']")
    assert await points.count() >= 1
    assert abs(float(await points.first.get_attribute("data-value") or "-9") - minutes) < 1
    bars = admin.locator(f"#chart-volumes rect[data-label='{today}'][data-value='1']")
    assert await bars.count() == 1
    await _shot(admin, day, "dashboard")


async def _merge(admin: Page, day: Day) -> int:
    """The same person registered at 王店村 too, through ingest: merged on the merge
    screen. The twin record's id."""
    api = day.api
    await store(
        api, "HB-XL-WD", make_study(modality="CR", count=1, patient_id=TWIN, patient_name=NAME)
    )
    await admin.click("#identity-link")
    await admin.wait_for_url(f"{day.base}/admin/patients/duplicates")
    await _in_language(admin, day.lang)
    row = admin.locator("#duplicates tbody tr").filter(has_text=PATIENT)
    assert TWIN in await row.inner_text()
    await _shot(admin, day, "duplicates")
    await row.locator("a[href^='/admin/patients/merge']").click()
    await admin.wait_for_url(f"{day.base}/admin/patients/merge?*")
    assert await admin.locator("article.record").count() == 2
    admin.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    async with admin.expect_navigation():
        await admin.click("#merge-form button[type=submit]")
    assert await admin.locator("#one-person").count() == 1
    await _shot(admin, day, "merged")
    twin: int = await api.pool.fetchval("select id from patient where patient_id = $1", TWIN)
    linked = await api.pool.fetchval(
        "select $1 in (select linked_patients($2))", twin, day.patient_ref
    )
    assert linked
    return twin


async def _outsider_api(day: Day, username: str, twin: int) -> None:
    """Through the API: no village, user, rule, case, figure or merged record."""
    api = day.api
    auth = api.auth(username)

    async def get(path: str) -> tuple[int, Any]:
        response = await api.client.get(path, headers=auth)
        return response.status, await response.text()

    for path in ("/api/v1/admin/facilities", "/api/v1/admin/users", "/api/v1/admin/routing"):
        status, text = await get(path)
        assert status == 200, (path, text)
        for made in (VILLAGE, CLINIC, TITLE, POOL):
            assert made not in text, (username, path, made)
    status, text = await get("/api/v1/admin/patients/duplicates")
    assert status == 200
    assert PATIENT not in text
    assert TWIN not in text
    for path in (
        f"/api/v1/admin/users/{CLINIC}",
        f"/api/v1/cases/{day.case_id}",
        f"/api/v1/admin/routing/preview?facility={VILLAGE}&modality=DX&priority=routine",
        f"/api/v1/admin/pools/{POOL}/roster",
    ):
        assert (await get(path))[0] == 404, (username, path)
    for path, body in (
        (f"/api/v1/admin/facilities/{VILLAGE}", {"active": False}),
        (f"/api/v1/admin/users/{CLINIC}", {"active": True}),
    ):
        response = await api.client.patch(path, json=body, headers=auth)
        assert response.status == 404, (username, path)
    status, text = await get("/api/v1/admin/dashboard")
    assert status == 200
    assert VILLAGE not in text
    merged = await api.client.post(f"/api/v1/patients/{twin}/unmerge", json={}, headers=auth)
    assert merged.status == 404


async def _outsider_pages(browser: Browser, day: Day, twin: int) -> None:
    """Signed in as another network's administrator: none of it on the pages either."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale=day.lang)
    page = await context.new_page()
    await _sign_in(page, day.base, "zk.admin", OUTSIDER_PASSWORD)
    await _switch_language(page, day.lang)
    await page.goto(f"{day.base}/admin/facilities")
    assert await page.locator(f"tr[data-facility='{VILLAGE}']").count() == 0
    await page.goto(f"{day.base}/admin/routing")
    assert await page.locator(f"tr[data-sender='{VILLAGE}']").count() == 0
    assert await page.locator(f"tr[data-pool='{POOL}']").count() == 0
    await page.goto(f"{day.base}/admin/patients/duplicates")
    assert PATIENT not in await page.inner_text("main")
    await page.goto(f"{day.base}/admin")
    assert await page.locator(f"#dash-facility tr[data-key='{VILLAGE}']").count() == 0
    await _shot(page, day, "outsider_dashboard")
    for path in (
        f"/admin/users/{CLINIC}",
        f"/cases/{day.case_id}",
        f"/admin/patients/merge?a={twin}",
        f"/admin/patients/merge?a={day.patient_ref}",
        f"/admin/routing/pools/{POOL}/roster",
    ):
        response = await page.goto(f"{day.base}{path}")
        assert response is not None, path
        assert response.status == 404, path
    await context.close()


@browser_test
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_the_administrators_day(api: Api, lang: str) -> None:
    await _outsiders(api)
    day = Day(api=api, base=_base(api), lang=lang, suffix="_zh" if lang == "zh-CN" else "_en")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = await browser.new_context(viewport={"width": 1500, "height": 950}, locale=lang)
        admin = await context.new_page()
        await _sign_in(admin, day.base, "hb.admin", "demo-hb.admin")
        await _switch_language(admin, lang)
        await _in_language(admin, lang)
        await _add_village(admin, day)
        link = await _add_user(admin, day)
        clinic, token = await _new_user_signs_in(browser, day, link)
        await _duty_shift(admin, day)
        await _rule_and_preview(admin, day)
        await _c_store(day)
        await _deactivate(admin, clinic, day, token)
        await _dashboard(admin, day)
        twin = await _merge(admin, day)
        for name in OUTSIDERS:
            await _outsider_api(day, name, twin)
        await _outsider_pages(browser, day, twin)
        await browser.close()


async def _token(api: Api, username: str) -> str:
    user = await network.user_by_username(api.pool, username)
    assert user is not None
    return await network.create_token(api.pool, user.id)
