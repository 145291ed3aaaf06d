"""The administration pages in one language at a time: zh-CN by default, wholly English
for an administrator who chose English, and no word written twice in either."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from playwright.async_api import async_playwright

from tests.integration import test_web_pages as web
from tests.integration.conftest import Api
from tests.integration.test_dashboard import _loaded
from tests.integration.test_ecg_reading_page import session

#: "中文 (English)": the old form, Chinese then a parenthesised run of Latin letters.
TWICE = re.compile(r"[\u4e00-\u9fff][^<>{}]*\(\s*[A-Za-z][A-Za-z ,.'/-]+\)")
CHINESE = re.compile(r"[\u4e00-\u9fff]")
#: Each page, and one of its words in Chinese and in English.
PAGES = [
    ("/admin", "各机构报告周转", "Turnaround per sending facility"),
    ("/admin/facilities", "新增机构", "Add a facility"),
    ("/admin/users", "新增用户", "Add a user"),
    ("/admin/users/hb.admin", "重置密码链接", "Reset link"),
    ("/admin/accounts", "有效令牌", "Working tokens"),
    ("/admin/dicom-nodes", "新增节点", "Add a node"),
    ("/admin/patients/duplicates", "无疑似重复", "No candidates"),
    ("/admin/identity-conflicts", "显示全部", "Show all"),
    ("/admin/templates", "报告模板", "Report templates"),
    ("/admin/notification-channels", "新增渠道", "Add a channel"),
    ("/admin/operations", "存储与队列", "Storage and queue health"),
    ("/admin/routing", "分诊预览", "Routing preview"),
]
#: The routing preview's question and a week of the pool's roster.
PREVIEW = "facility=HB-MJ-LW&modality=DX&priority=urgent&at=2030-01-07T09:00"
ROSTER = "/admin/routing/pools/HB-DR-DAY/roster?week=2030-01-09"
#: What the pages show of the network's own data: names, template texts.
DATA = re.compile(
    r"<(option|td|code|a|div)\b[^>]*>[^<]*</\1>|value=\"[^\"]*\"|淮滨县远程诊断管理员"
    r"|\([A-Z][a-z]+/[A-Za-z_]+\)"  # the network's time zone, (Asia/Shanghai)
)


async def _text(api: Api, path: str) -> str:
    got = await api.client.get(path, headers=await session(api, "hb.admin"))
    assert got.status == 200, path
    return await got.text()


def _main(html: str) -> str:
    """The page's own part (the menu and header are base.html's)."""
    return html.split("<main", 1)[1].split("</main>", 1)[0]


@pytest.mark.parametrize(("path", "zh", "en"), PAGES)
async def test_an_administration_page_is_in_chinese_then_wholly_in_english(
    api: Api, path: str, zh: str, en: str
) -> None:
    chinese = _main(await _text(api, path))
    assert zh in chinese
    assert en not in chinese
    assert not TWICE.findall(DATA.sub("", chinese))  # a facility's "name (CODE)" is data
    await _english(api)
    english = _main(await _text(api, path))
    assert en in english
    _wholly_english(english, path)


async def test_the_turnaround_csv_names_its_segments_in_the_callers_language(api: Api) -> None:
    await _loaded(api)

    async def segment_names() -> set[str]:
        got = await api.client.get("/api/v1/stats/turnaround.csv", headers=api.auth("hb.admin"))
        assert got.status == 200
        rows = [line.split(",") for line in (await got.text()).lstrip("\ufeff").splitlines()]
        return {r[4] for r in rows[1:] if r[0] == "segment"}

    chinese = await segment_names()
    assert "接收→正式报告" in chinese
    assert all(CHINESE.search(n) and not TWICE.search(n) for n in chinese)
    await _english(api)
    english = await segment_names()
    assert english
    assert not any(CHINESE.search(n) or TWICE.search(n) for n in english)
    assert len(english) == len(chinese)


async def _english(api: Api) -> None:
    changed = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth("hb.admin")
    )
    assert changed.status == 200


def _wholly_english(english: str, path: str) -> None:
    # facility names and the like are the network's data; the page's own words are English
    words = DATA.sub("", english)
    assert not TWICE.findall(words)
    assert not CHINESE.findall(re.sub(r"<[^>]+>", " ", words)), path


async def _post(api: Api, path: str, body: Mapping[str, object]) -> None:
    sent = await api.client.post(path, json=body, headers=api.auth("hb.admin"))
    assert sent.status in (200, 201), await sent.text()


async def test_the_routing_preview_and_a_roster_are_in_one_language(api: Api) -> None:
    await _routing_setup(api)
    preview = f"/admin/routing?{PREVIEW}"
    roster = ROSTER
    chinese = _main(await _text(api, preview))
    assert "紧急 DX 来自" in chinese
    assert "时限 1.5 h" in chinese
    assert not TWICE.findall(chinese)
    chinese = _main(await _text(api, roster))
    assert "请假 全天" in chinese
    assert "周二" in chinese
    assert not TWICE.findall(chinese)
    await _english(api)
    english = _main(await _text(api, preview))
    assert "urgent DX from" in english
    assert "→ pool DR day [HB-DR-DAY]" in english
    assert "due in 1.5 h" in english
    _wholly_english(re.sub(r"<li\b[^>]*>.*?</li>", "", english), preview)
    english = _main(await _text(api, roster))
    assert "<h1>Roster · DR day" in english
    assert "Leave all day" in english
    assert "Week of 2030-01-07" in english
    assert "08:00–18:00" in english
    # the pool's facility and its members' names are the network's data
    names = r"<h1>.*?</h1>|<tr data-member=\"[^\"]*\"><th>.*?</th>"
    _wholly_english(re.sub(names, "", english, flags=re.S), roster)


async def _routing_setup(api: Api) -> None:
    pool = {"code": "HB-DR-DAY", "name": "DR day", "specialty": "radiology",
            "facility": "HB-COUNTY", "members": ["wang.reader"]}  # fmt: skip
    await _post(api, "/api/v1/admin/pools", pool)
    rule = {"modality": "DX", "pool": "HB-DR-DAY", "deadline_minutes": 90}
    await _post(api, "/api/v1/admin/facilities/HB-MJ/routes", rule)
    shift = {"days": ["mon", "tue"], "from": "08:00", "until": "18:00"}
    await _post(api, "/api/v1/admin/users/wang.reader/shifts", shift)
    leave = {"date": "2030-01-08", "kind": "leave"}
    await _post(api, "/api/v1/admin/users/wang.reader/duty-exceptions", leave)


#: The operations pages in the browser, and a heading each shows in zh-CN and in English.
SHOWN = [
    ("operations", "/admin/operations", "#health h2", "存储与队列", "Storage and queue health"),
    ("routing", f"/admin/routing?{PREVIEW}", "#preview h2", "分诊预览", "Routing preview"),
    ("roster", ROSTER, "#new-shift button", "添加班次", "Add shift"),
]


@web.browser_test
async def test_the_operations_pages_in_the_browser_in_each_language(api: Api) -> None:
    await _routing_setup(api)
    web.ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(web.CHROMIUM), args=web.ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await web._sign_in(page, web._base(api), "hb.admin")
        for lang, which in (("zh", 0), ("en", 1)):
            if lang == "en":
                await _english(api)
            for name, path, where, *words in SHOWN:
                await page.goto(web._base(api) + path)
                assert await page.inner_text(where) == words[which]
                shot = web.ARTIFACTS / f"admin_{name}_{lang}.png"
                await page.screenshot(path=str(shot), full_page=True)
        # the roster's form still posts to the member the page names, in English
        form = page.locator("#new-exception")
        await form.locator("select[name=kind]").select_option("extra")
        for field, value in {"date": "2030-01-09", "from": "19:00", "until": "22:00"}.items():
            await form.locator(f"input[name={field}]").fill(value)
        await form.locator("button[type=submit]").click()
        await page.wait_for_selector("#calendar .extra")
        assert "Extra 19:00–22:00" in await page.inner_text("#calendar")
        await browser.close()


async def test_the_forms_name_tiers_roles_and_specialties_in_the_page_language(api: Api) -> None:
    """The stored value is what a form sends; its word is what the administrator reads."""
    shown = {
        "zh": ('value="village" >村卫生室', 'value="admin">管理员', 'value="radiology">影像'),
        "en": (
            'value="village" >village',
            'value="admin">administrator',
            'value="radiology">radiology',
        ),
    }
    for language in ("zh", "en"):
        if language == "en":
            await _english(api)
        facilities = await _text(api, "/admin/facilities")
        users = await _text(api, "/admin/users")
        tier, role, specialty = shown[language]
        assert tier in facilities
        assert role in users
        assert specialty in users


async def test_the_operations_page_writes_counts_in_the_form_their_number_takes(
    api: Api,
) -> None:
    chinese = _main(await _text(api, "/admin/operations"))
    assert "注意 ≥ 1 个任务，告警 ≥ 10 个任务" in chinese
    assert "0 个任务" in chinese  # no failed job yet
    await _english(api)
    english = _main(await _text(api, "/admin/operations"))
    assert "amber ≥ 1 job, red ≥ 10 jobs" in english
    assert "amber ≥ 1 job, red ≥ 5 jobs" in english
    assert "amber ≥ 60 s, red ≥ 600 s" in english
    assert "0 jobs" in english
    assert "1 jobs" not in english
