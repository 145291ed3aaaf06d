"""The errors a page shows are in its reader's language: a page's action (a form sent to
the JSON API's handler), a page asked with a wrong query, the routing preview's own check,
an HTML page of something not found, a DICOMweb query's fault (and the value it names), and
an anonymous caller by its Accept-Language. The problem's ``type``, ``title`` and ``status``
stay as they are in every language."""

from __future__ import annotations

import html
from typing import Any

from playwright.async_api import async_playwright

from tests.integration import test_web_pages as web
from tests.integration.conftest import Api
from tests.integration.test_admin_pages_language import CHINESE, _english, _main
from tests.integration.test_ecg_reading_page import session

FACILITY = {"code": "HB-XL", "name": "新里镇卫生院二部", "tier": "township", "parent": "HB-COUNTY"}


async def _problem(api: Api, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    answer = await api.client.request(method, path, headers=headers, **kw)
    assert answer.content_type == "application/problem+json", await answer.text()
    return await answer.json()


async def _in_each_language(api: Api, ask: Any) -> tuple[Any, Any]:
    """The problem the administrator gets in zh-CN (their default), then in English."""
    chinese = await ask()
    await _english(api)
    return chinese, await ask()


async def test_a_page_action_says_its_refusal_in_the_readers_language(api: Api) -> None:
    async def ask() -> Any:
        cookie = await session(api, "hb.admin")
        return await _problem(api, "POST", "/admin/facilities", cookie | web.PAGE, json=FACILITY)

    chinese, english = await _in_each_language(api, ask)
    assert chinese["detail"] == "机构代码 HB-XL 已被使用"
    assert english["detail"] == "the facility code HB-XL is taken"
    # the program's part of the answer is the same in both
    assert {k: v for k, v in chinese.items() if k != "detail"} == {
        "type": "about:blank", "title": "Conflict", "status": 409,
    }  # fmt: skip
    assert {k: v for k, v in english.items() if k != "detail"} == {
        k: v for k, v in chinese.items() if k != "detail"
    }


async def test_a_forms_wrong_fields_are_named_in_the_readers_language(api: Api) -> None:
    async def ask() -> Any:
        cookie = await session(api, "hb.admin")
        body = FACILITY | {"code": "HB-XL-2", "tier": "hamlet"}
        return await _problem(api, "POST", "/admin/facilities", cookie | web.PAGE, json=body)

    chinese, english = await _in_each_language(api, ask)
    assert chinese["detail"].startswith("tier：须为以下之一："), chinese
    assert "，而非 'hamlet'" in chinese["detail"]
    assert english["detail"].startswith("tier: must be one of "), english
    assert english["detail"].endswith(", not 'hamlet'")
    assert not CHINESE.search(english["detail"])


async def test_a_page_asked_with_a_wrong_query_answers_in_the_readers_language(
    api: Api,
) -> None:
    async def ask() -> Any:
        cookie = await session(api, "hb.admin")
        roster = "/admin/routing/pools/HB-NONE/roster?week=next"
        return await _problem(api, "GET", roster, cookie)

    chinese, english = await _in_each_language(api, ask)
    assert chinese["detail"] == "week='next' 不是日期，应写作 2026-01-05"
    assert english["detail"] == "week='next' is not a date like 2026-01-05"
    assert chinese["status"] == english["status"] == 400


async def test_the_routing_preview_says_what_is_wrong_in_the_readers_language(
    api: Api,
) -> None:
    async def ask() -> str:
        cookie = await session(api, "hb.admin")
        got = await api.client.get(
            "/admin/routing?facility=HB-MJ&modality=DX&priority=soon", headers=cookie
        )
        assert got.status == 200
        return html.unescape(_main(await got.text()))

    chinese, english = await _in_each_language(api, ask)
    assert "priority：须为以下之一：urgent, routine, low, high, medium，而非 'soon'" in chinese
    assert "priority: must be one of urgent, routine, low, high, medium, not 'soon'" in english


async def test_a_page_of_something_not_found_says_so_in_the_readers_language(
    api: Api,
) -> None:
    async def ask() -> str:
        cookie = await session(api, "hb.admin")
        got = await api.client.get("/admin/users/nobody", headers=cookie)
        assert got.status == 404
        return _main(await got.text())

    chinese, english = await _in_each_language(api, ask)
    assert "用户 nobody 不在您的网络中工作" in chinese
    assert "user nobody does not work in your network" in english
    assert not CHINESE.search(english)


async def test_an_anonymous_caller_reads_errors_in_its_accept_language(api: Api) -> None:
    wrong = {"username": "hb.admin", "password": "not-the-password"}
    said = {}
    for header in ("zh-CN,zh;q=0.9", "en-GB,en;q=0.9,zh;q=0.5", "fr, en;q=0.2", ""):
        headers = {"Accept-Language": header} if header else {}
        problem = await _problem(api, "POST", "/api/v1/login", headers, json=wrong)
        assert problem["status"] == 401
        said[header] = problem["detail"]
    assert said["zh-CN,zh;q=0.9"] == said[""] == "用户名或密码错误"  # zh-CN by default
    assert said["en-GB,en;q=0.9,zh;q=0.5"] == said["fr, en;q=0.2"] == "Wrong username or password"
    unsigned = await _problem(api, "GET", "/api/v1/worklist", {"Accept-Language": "en-US,en;q=0.8"})
    assert unsigned["detail"] == "this call needs a token: send 'Authorization: Bearer <token>'"
    assert unsigned["title"] == "Unauthorized"


async def test_a_dicomweb_query_says_what_is_wrong_in_the_readers_language(api: Api) -> None:
    reader = api.auth("wang.reader")

    async def ask() -> Any:
        return await _problem(api, "GET", "/dicomweb/studies?StudyDate=2026x&limit=0", reader)

    chinese = await ask()
    changed = await api.client.put("/api/v1/me/language", json={"language": "en"}, headers=reader)
    assert changed.status == 200
    english = await ask()
    assert chinese["detail"] == "limit 须为正整数，而非 0"
    assert english["detail"] == "limit must be a positive whole number, got 0"
    assert chinese["status"] == english["status"] == 400
    # a value said in its reader's language too (the kind of value a range wants)
    english_date = await _problem(api, "GET", "/dicomweb/studies?StudyDate=2026x", reader)
    assert english_date["detail"] == "StudyDate='2026x': '2026x' is not a date (YYYYMMDD)"
    await api.client.put("/api/v1/me/language", json={"language": "zh-CN"}, headers=reader)
    said = await _problem(api, "GET", "/dicomweb/studies?StudyDate=2026x", reader)
    assert said["detail"] == "StudyDate='2026x'：'2026x' 不是日期（YYYYMMDD）"


@web.browser_test
async def test_a_chinese_console_page_shows_the_apis_error_in_chinese(api: Api) -> None:
    web.ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(web.CHROMIUM), args=web.ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="en-US")
        await web._sign_in(page, web._base(api), "hb.admin")
        shown = {}
        for lang in ("zh", "en"):
            if lang == "en":
                await _english(api)
            await page.goto(web._base(api) + "/admin/facilities")
            form = page.locator("#add-facility form")
            await form.locator("input[name=code]").fill("HB-XL")
            await form.locator("input[name=name]").fill(FACILITY["name"])
            await form.locator("select[name=tier]").select_option("township")
            await form.locator("select[name=parent]").select_option("HB-COUNTY")
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector("#message.error")
            shown[lang] = await page.inner_text("#message")
            await page.locator("#message").scroll_into_view_if_needed()
            await page.screenshot(path=str(web.ARTIFACTS / f"error_language_{lang}.png"))
        await browser.close()
    # the browser asks for English, the administrator reads Chinese: theirs wins
    assert shown["zh"] == "操作失败: 机构代码 HB-XL 已被使用"
    assert shown["en"] == "Failed: the facility code HB-XL is taken"
