"""One language at a time, in the browser: zh-CN by default, English on the user's own
switch, remembered on their account (a new session on another browser is in English too);
the sign-in page's switch before signing in; and the API's. Screenshots in both languages
are kept in ``test-artifacts/``."""

from __future__ import annotations

import re

from playwright.async_api import Page, async_playwright

from tests.integration.conftest import Api
from tests.integration.test_ecg_reading_page import ARGS, ARTIFACTS, CHROMIUM


async def _sign_in(page: Page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", f"demo-{username}")
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{base}/")


async def _menu(page: Page) -> str:
    return await page.inner_text("header.topbar")


async def test_a_user_switches_to_english_and_it_is_remembered(api: Api) -> None:
    base = str(api.client.make_url("/")).rstrip("/")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        first = await browser.new_page(viewport={"width": 1400, "height": 900})
        await _sign_in(first, base, "wang.reader")
        assert await first.get_attribute("html", "lang") == "zh-CN"
        menu = await _menu(first)
        assert "待读病例" in menu
        assert "Worklist" not in menu
        assert "(worklist)" not in menu  # one language at a time
        await first.goto(f"{base}/account")
        await first.screenshot(path=str(ARTIFACTS / "language_account_zh.png"), full_page=True)
        async with first.expect_navigation():
            await first.click("#language-switch input[type=submit]")
        assert await first.get_attribute("html", "lang") == "en"
        menu = await _menu(first)
        assert "Worklist" in menu
        assert "待读病例" not in menu
        assert "Change your password" in await first.inner_text("#password")
        assert await first.inner_text("#language-now") == "English"
        await first.screenshot(path=str(ARTIFACTS / "language_account_en.png"), full_page=True)

        # another browser, a new session: the account's language
        other = await browser.new_context(viewport={"width": 1400, "height": 900})
        second = await other.new_page()
        await _sign_in(second, base, "wang.reader")
        assert await second.get_attribute("html", "lang") == "en"
        assert "Sign out" in await _menu(second)
        # back to Chinese from the account page's own choice
        await second.goto(f"{base}/account")
        await second.select_option("#language select[name=language]", "zh-CN")
        async with second.expect_navigation():
            await second.click("#language button[type=submit]")
        assert "修改密码" in await second.inner_text("#password")
        await browser.close()
    audited = await api.pool.fetch(
        "select detail->>'language' as language from audit"
        " where object_type = 'user_language' order by seq"
    )
    assert [r["language"] for r in audited] == ["en", "zh-CN"]


async def test_the_sign_in_page_switches_before_signing_in(api: Api) -> None:
    base = str(api.client.make_url("/")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1000, "height": 700})
        await page.goto(f"{base}/login")
        assert "登录" in await page.inner_text("section.login h1")
        async with page.expect_navigation():
            await page.click("#language-switch input[type=submit]")
        assert re.search(r"/login$", page.url)
        assert await page.inner_text("section.login h1") == "Sign in"
        await page.fill("input[name=username]", "wang.reader")
        await page.fill("input[name=password]", "wrong")
        async with page.expect_navigation():
            await page.click("button[type=submit].primary")
        assert "Wrong username or password" in await page.inner_text("p.error")
        await page.screenshot(path=str(ARTIFACTS / "language_login_en.png"), full_page=True)
        # signed in, the account's own language (zh-CN) wins over the visitor's cookie
        await _sign_in(page, base, "wang.reader")
        assert await page.get_attribute("html", "lang") == "zh-CN"
        await browser.close()


async def test_the_api_sets_the_language_and_refuses_another(api: Api) -> None:
    put = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth("xlwd.clinic")
    )
    assert put.status == 200
    assert (await put.json())["language"] == "en"
    stored = await api.pool.fetchval("select language from app_user where username = 'xlwd.clinic'")
    assert stored == "en"
    bad = await api.client.put(
        "/api/v1/me/language", json={"language": "fr"}, headers=api.auth("xlwd.clinic")
    )
    assert bad.status == 400
    assert (
        await api.pool.fetchval("select language from app_user where username = 'xlwd.clinic'")
        == "en"
    )


async def test_the_switch_keeps_the_one_time_links_secret(api: Api) -> None:
    """The password page's secret is the URL's fragment: switching the language there
    keeps it in the address bar (a redirect would drop it), so the link still works."""
    base = str(api.client.make_url("/")).rstrip("/")
    link = f"{base}/password#not-a-real-secret"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1000, "height": 700})
        await page.goto(link)
        assert await page.get_attribute("html", "lang") == "zh-CN"
        async with page.expect_navigation():
            await page.click("#language-switch input[type=submit]")
        assert await page.get_attribute("html", "lang") == "en"
        assert page.url == link
        # without a fragment, the switch is the plain form post and its redirect
        await page.goto(f"{base}/login")
        async with page.expect_navigation():
            await page.click("#language-switch input[type=submit]")
        assert await page.get_attribute("html", "lang") == "zh-CN"
        assert page.url == f"{base}/login"
        await browser.close()
