"""The administrator's console in Debian's chromium, against the service with its DICOM
listener on real PostgreSQL: the county administrator adds a village under a township with
its workstation's title bound to 127.0.0.1 and a clinic user for it; the user sets a
password with the one-time link and signs in; a C-STORE (pynetdicom) from the title is
accepted, and refused once the administrator deactivates the village (the listener sees
each change by itself, within its 5 s refresh); deactivating the user ends their open page
and their token. Screenshots are kept in ``test-artifacts/``."""

from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import Page, async_playwright

from storage import network
from teleradiology.roles import DICOM
from tests.browser import wait_until
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.test_console import _send
from tests.integration.test_web_pages import ARGS, ARTIFACTS, CHROMIUM, _base, browser_test

TITLE = "HBXLNEW01"


async def _sign_in(page: Page, base: str, username: str, password: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


async def _listener_knows(api: Api, known: bool, *, timeout_s: float = 15.0) -> float:
    """Wait for the listener's own refresh to see the title (or no longer): seconds taken."""
    started = time.monotonic()
    while api.app[DICOM].gate.knows(TITLE) != known:
        assert time.monotonic() - started < timeout_s, f"the listener still says {not known}"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def _store(api: Api) -> list[int] | None:
    return await asyncio.to_thread(_send, api.app[DICOM].port, TITLE, make_study(count=1))


async def _message(page: Page) -> str:
    await wait_until(page, "document.getElementById('message').textContent !== ''")
    return await page.inner_text("#message")


@browser_test
async def test_the_administrator_adds_a_village_and_its_user_then_shuts_them_out(
    api: Api,
) -> None:
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        admin = await browser.new_page(viewport={"width": 1500, "height": 900}, locale="zh-CN")
        await _sign_in(admin, base, "hb.admin", "demo-hb.admin")
        await admin.click("nav.menu a[href='/admin/facilities']")
        await admin.wait_for_url(f"{base}/admin/facilities")
        # the village, under 新里镇 (HB-XL), its workstation bound to 127.0.0.1
        form = admin.locator("#add-facility form")
        await form.locator("input[name=code]").fill("HB-XL-NEW")
        await form.locator("input[name=name]").fill("淮滨县新里镇新村卫生室")
        await form.locator("select[name=tier]").select_option("village")
        await form.locator("select[name=parent]").select_option("HB-XL")
        await form.locator("textarea[name=workstations]").fill(f"{TITLE} 127.0.0.1")
        async with admin.expect_navigation():
            await form.locator("button[type=submit]").click()
        row = admin.locator("tr[data-facility='HB-XL-NEW']")
        assert "HB-XL" in await row.inner_text()
        assert f"{TITLE} ← 127.0.0.1" in await row.inner_text()
        await admin.screenshot(path=str(ARTIFACTS / "console_facilities.png"), full_page=True)

        # its clinic user, with the one-time link shown to pass on
        await admin.goto(f"{base}/admin/users")
        form = admin.locator("#add-user form")
        await form.locator("input[name=username]").fill("xlnew.clinic")
        await form.locator("input[name=display_name]").fill("新村卫生室 陈村医")
        await form.locator("select[name=role]").select_option("clinic")
        await form.locator("select[name=facility]").select_option("HB-XL-NEW")
        await form.locator("button[type=submit]").click()
        shown = await _message(admin)
        link = re.search(r"(https?://\S+/password#\S+)", shown)
        assert link, shown
        await admin.screenshot(path=str(ARTIFACTS / "console_user_added.png"), full_page=True)

        # the user sets their password by the link and signs in, in their own browser
        clinic_context = await browser.new_context(locale="zh-CN")
        clinic = await clinic_context.new_page()
        await clinic.goto(link.group(1))
        await clinic.fill("input[name=new_password]", "cun-yi-2026!")
        await clinic.fill("input[name=again]", "cun-yi-2026!")
        await clinic.click("button[type=submit]")
        assert "xlnew.clinic" in await _message(clinic)
        await _sign_in(clinic, base, "xlnew.clinic", "cun-yi-2026!")
        assert "xlnew.clinic" in await clinic.inner_text("#who")
        await clinic.screenshot(path=str(ARTIFACTS / "console_new_user_inbox.png"))
        user = await network.user_by_username(api.pool, "xlnew.clinic")
        assert user is not None
        token = await network.create_token(api.pool, user.id)
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await api.client.get("/api/v1/me", headers=bearer)).status == 200

        # the listener sees the new title by itself, and takes a study from it
        await _listener_knows(api, True)
        assert await _store(api) == [0]
        sender = await api.pool.fetchval(
            "select f.code from instance i join series e on e.id = i.series_id "
            "join study s on s.id = e.study_id "
            "join facility f on f.id = s.facility_id where i.sender_ae = $1",
            TITLE,
        )
        assert sender == "HB-XL-NEW"

        # deactivated, the village's title is refused
        await admin.goto(f"{base}/admin/facilities")
        async with admin.expect_navigation():
            await admin.click("tr[data-facility='HB-XL-NEW'] button.deactivate")
        assert "停用" in await admin.inner_text("tr[data-facility='HB-XL-NEW'] td.state")
        await admin.screenshot(path=str(ARTIFACTS / "console_village_off.png"), full_page=True)
        await _listener_knows(api, False)
        assert await _store(api) is None
        # and back again: the village's user works again
        async with admin.expect_navigation():
            await admin.click("tr[data-facility='HB-XL-NEW'] button.activate")
        assert (await api.client.get("/api/v1/me", headers=bearer)).status == 200

        # deactivating the user on their page ends their open page and their token
        await admin.goto(f"{base}/admin/users/xlnew.clinic")
        admin.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        async with admin.expect_navigation():
            await admin.click("#deactivate")
        assert "已停用" in await admin.inner_text("#user")
        await admin.screenshot(path=str(ARTIFACTS / "console_user_off.png"), full_page=True)
        assert (await api.client.get("/api/v1/me", headers=bearer)).status == 401
        await clinic.reload()
        assert "/login" in clinic.url
        await clinic.screenshot(path=str(ARTIFACTS / "console_user_signed_out.png"))
        await browser.close()


@browser_test
async def test_the_administrator_adds_changes_and_removes_a_readers_viewer_node(
    api: Api,
) -> None:
    base = _base(api)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        admin = await browser.new_page(viewport={"width": 1500, "height": 900}, locale="zh-CN")
        await _sign_in(admin, base, "hb.admin", "demo-hb.admin")
        await admin.click("nav.menu a[href='/admin/dicom-nodes']")
        await admin.wait_for_url(f"{base}/admin/dicom-nodes")
        form = admin.locator("#add-node form")
        await form.locator("input[name=ae_title]").fill("WANGVIEW")
        await form.locator("input[name=username]").fill("wang.reader")
        await form.locator("input[name=host]").fill("127.0.0.1")
        await form.locator("input[name=port]").fill("11113")
        async with admin.expect_navigation():
            await form.locator("button[type=submit]").click()
        listed = await api.client.get("/api/v1/admin/dicom-nodes", headers=api.auth("hb.admin"))
        (node,) = (await listed.json())["dicom_nodes"]
        assert (node["username"], node["facility"], node["port"]) == (
            "wang.reader",
            "HB-COUNTY",
            11113,
        )
        row = admin.locator(f"tr[data-node='{node['id']}']")
        assert "127.0.0.1:11113" in await row.inner_text()
        # the viewer may now query as its reader: the listener knows the title by itself
        started = time.monotonic()
        while not api.app[DICOM].gate.knows("WANGVIEW"):
            assert time.monotonic() - started < 15
            await asyncio.sleep(0.2)
        await row.locator("summary").click()
        await row.locator("form.stack input[name=port]").fill("11114")
        async with admin.expect_navigation():
            await row.locator("form.stack button[type=submit]").click()
        assert "127.0.0.1:11114" in await admin.inner_text(f"tr[data-node='{node['id']}']")
        await admin.screenshot(path=str(ARTIFACTS / "console_dicom_nodes.png"), full_page=True)
        async with admin.expect_navigation():
            await admin.click(f"tr[data-node='{node['id']}'] form.inline button")
        assert await admin.locator("tr[data-node]").count() == 0
        await browser.close()
