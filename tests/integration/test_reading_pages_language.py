"""The reader's pages one language at a time: the worklist, the radiology and the ECG case
page, the audit, the error and the password page are in zh-CN by default and wholly in
English for a user who chose English, with no word written twice. Screenshots of the main
pages in both languages are kept in ``test-artifacts/``."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from playwright.async_api import Page, async_playwright

from storage.records import Language, Priority, ReportStatus
from teleradiology.core.language import word
from teleradiology.core.words import EcgMeasurement
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import ecg_case
from tests.integration.test_ecg_reading_page import (
    ARGS,
    ARTIFACTS,
    CHROMIUM,
    session,
    two_ecgs_of_one_patient,
)
from tests.integration.test_language_switch import _sign_in
from tests.integration.test_web_pages import _routed
from tests.unit.test_language import _TWICE

#: Words of the reading pages' own that an English page must not show.
CHINESE_LABELS = ("待读病例", "领取", "截止", "优先级", "所见", "印象", "结论", "测量值", "审计")
#: The patient's, the people's and the network's names, and the study's description: as
#: they are in either language.
NAMES = ("王 小明", "王医生", "王村医", "淮滨县人民医院", "淮滨县新里镇", "王店村卫生室",
         "胸部平扫")  # fmt: skip
_HAN = re.compile(r"[\u4e00-\u9fff]")
_USERNAME = re.compile(r"\((?:[a-z0-9_-]+\.)+[a-z0-9_-]+\)")


class _Text(HTMLParser):
    """A page's text as a person reads it: its elements' text and the attributes read out
    (titles, labels, placeholders, values of buttons), not scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and (name in ("title", "aria-label", "placeholder", "alt")):
                self.parts.append(value)
            if value and name.startswith("data-") and _HAN.search(value):
                self.parts.append(value)  # a script's words

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


async def _english(api: Api, username: str) -> dict[str, str]:
    put = await api.client.put(
        "/api/v1/me/language", json={"language": "en"}, headers=api.auth(username)
    )
    assert put.status == 200
    return await session(api, username)


async def _page(api: Api, path: str, cookie: dict[str, str], status: int = 200) -> str:
    response = await api.client.get(path, headers=cookie)
    assert response.status == status, path
    html = await response.text()
    # a person's name with their username, "王医生 (wang.reader)", is not a word twice
    assert not _TWICE.findall(_USERNAME.sub("", html)), path
    return html


def _only_english(html: str, *patient_data: str) -> str:
    """The page's text, with what is the patient's and the network's own (names) left out,
    holds none of the reading pages' Chinese words."""
    text = _text(html)
    for data in patient_data:
        text = text.replace(data, "")
    assert 'lang="en"' in html
    for label in CHINESE_LABELS:
        assert label not in text, label
    return text


async def test_the_radiology_pages_are_in_chinese_or_wholly_in_english(api: Api) -> None:
    _, case_id = await _routed(api)
    chinese = await session(api, "wang.reader")
    priority = Priority(
        await api.pool.fetchval("select priority from reading_case where id = $1", case_id)
    )
    worklist = await _page(api, "/", chinese)
    assert "领取下一例" in worklist
    assert word(priority, Language.ZH_CN) in worklist
    case = await _page(api, f"/cases/{case_id}", chinese)
    assert "在阅片器中打开" in case
    assert "病例记录" in case

    cookie = await _english(api, "wang.reader")
    worklist = await _page(api, "/", cookie)
    text = _only_english(worklist, *NAMES)
    for words in ("Worklist", "Claim next", "Priority", "Deadline", "Case"):
        assert words in text, words
    assert word(priority, Language.EN) in text
    assert re.search(r"\d+h \d+min left", text), text
    # the scripts' words and messages (a failed action, a live update lost), in English
    words = json.loads(
        worklist.split('<script id="words" type="application/json">')[1].split("</script>")[0]
    )
    assert words["messages"]["failed"] == "Failed"
    assert words["messages"]["lost"] == "Live updates lost: reloading on a timer"
    assert words["report_status"]["final"] == word(ReportStatus.FINAL, Language.EN)
    case = await _page(api, f"/cases/{case_id}", cookie)
    text = _only_english(case, *NAMES)
    for words in ("Radiology case", "Open in viewer", "Case history", "received", "routed"):
        assert words in text, words
    assert not _HAN.search(text), text  # nothing but names and the study's description

    # claimed, the report form and its words of the conclusions
    claim = await api.client.post(
        f"/cases/{case_id}/claim", headers={**cookie, "X-Telemed-Page": "1"}
    )
    assert claim.status == 200, await claim.text()
    case = await _page(api, f"/cases/{case_id}", cookie)
    text = _only_english(case, *NAMES)
    for words in ("Write the report", "Findings", "Sign report", "Return for poor quality"):
        assert words in text, words
    assert ">abnormal</option>" in case or ">Abnormal</option>" in case

    missing = await _page(api, "/cases/999999", cookie, status=404)
    assert "Not found" in _only_english(missing)
    assert "Back" in _text(missing)


async def test_the_ecg_page_is_wholly_in_english(api: Api) -> None:
    _, current = await two_ecgs_of_one_patient(api)
    case = await ecg_case(api, str(current["study_instance_uid"]))
    zh = await _page(api, f"/ecg/cases/{case['id']}", await session(api, "xl.ecg"))
    assert "心电图判读" in zh
    assert f"<td>{word(EcgMeasurement('heart_rate_bpm'), Language.ZH_CN)}</td>" in zh
    html = await _page(api, f"/ecg/cases/{case['id']}", await _english(api, "xl.ecg"))
    assert "心电图判读" not in html
    text = _text(html)
    for words in ("ECG reading", "Measurements", "Prior ECGs", "Who changed what", "Claim"):
        assert words in text, words
    assert f"<td>{word(EcgMeasurement('heart_rate_bpm'), Language.EN)}</td>" in html
    # the script's own words, in English
    assert 'data-failed="Save failed"' in html
    assert 'data-signed="Report signed"' in html
    base = str(api.client.make_url("/")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 1200})
        await _sign_in(page, base, "xl.ecg")
        await page.goto(f"{base}/ecg/cases/{case['id']}")
        assert await page.get_attribute("html", "lang") == "en"
        # the automatic statements in English; saved unchanged, they are kept as they are
        statements = await page.input_value("#statements")
        assert statements.strip()
        assert not _HAN.search(statements), statements
        async with page.expect_navigation():
            await page.click("#claim")
        async with page.expect_navigation():
            await page.click("#save")
        assert "No changes" in await page.inner_text("#edits")
        assert await page.input_value("#statements") == statements
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "ecg_case_en.png"), full_page=True)
        await browser.close()


async def test_the_audit_and_password_pages_are_in_english(api: Api) -> None:
    html = await _page(api, "/admin/audit", await _english(api, "hb.admin"))
    text = _only_english(html)
    for words in ("Audit of your network", "Since", "Search", "JSON lines", "Address"):
        assert words in text, words
    api.client.session.cookie_jar.clear()
    password = await _page(api, "/password", {"Cookie": "telemed_lang=en"})
    text = _only_english(password)
    assert "Set your password" in text
    assert "<title>Set your password · Remote diagnosis network</title>" in password
    assert 'data-differ="The two passwords differ"' in password
    chinese = await _page(api, "/password", {})
    assert "设置密码" in chinese
    assert 'lang="zh-CN"' in chinese


async def test_screenshots_of_the_reading_pages_in_both_languages(api: Api) -> None:
    _, case_id = await _routed(api)
    base = str(api.client.make_url("/")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await _sign_in(page, base, "wang.reader")
            await _shoot(page, base, case_id, "zh")
            async with page.expect_navigation():
                await page.click("#language-switch input[type=submit]")
            await _shoot(page, base, case_id, "en")
        finally:
            await browser.close()


async def _shoot(page: Page, base: str, case_id: int, lang: str) -> None:
    """The worklist and the claimed case page, in the page's language, kept as images."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.goto(f"{base}/")
    assert await page.inner_text("h1") == ("待读病例" if lang == "zh" else "Worklist")
    await page.screenshot(path=str(ARTIFACTS / f"worklist_{lang}.png"), full_page=True)
    await page.goto(f"{base}/cases/{case_id}")
    await page.click("#claim")
    await page.wait_for_selector("#report")
    await page.screenshot(path=str(ARTIFACTS / f"case_{lang}.png"), full_page=True)
    await page.click("#release")
    await page.wait_for_selector("#claim")
