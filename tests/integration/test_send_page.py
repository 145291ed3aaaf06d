"""The clinic's send page in Debian's chromium, against the service on real PostgreSQL.

The browser reaches the service through a TCP proxy that the tests cut in the middle of a
send. A village clinic chooses a generated folder (a CT series and a large CR that goes in
parts), sees what will be sent, asks an urgent question and sends; the link is cut and the
page resumes by itself; cut again, the page is closed, and choosing the same folder in a new
page resumes the same session. Each instance is stored once, and the county reader finds the
case urgent with the question. ECG files: a Contec file is accepted, a damaged one shows its
refusal reason. Screenshots go under the test's temporary directory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from teleradiology.http.context import OBJECTS, SETTINGS
from teleradiology.http.web.send import dicom_parser_file
from tests.browser import wait_until
from tests.e2e.test_viewer_browser import phantom_ct
from tests.ecg_file import FORMATS
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.one_language import assert_one_language, choose_english
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_uploads import manifest, put
from worker.runner import sweep_once

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
QUESTION = "咳嗽两周，排除肺炎"
HISTORY = "吸烟三十年"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="the chromium Debian package is missing"),
    pytest.mark.skipif(not dicom_parser_file().is_file(), reason="run 'make viewer'"),
]


@pytest.fixture
async def proxy(api: Api) -> AsyncIterator[TcpProxy]:
    server = api.client.server
    assert server.port is not None
    link = TcpProxy("127.0.0.1", server.port)
    await link.start()
    try:
        yield link
    finally:
        await link.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, base: str, username: str) -> tuple[BrowserContext, Page]:
    """A browser of the user's own, signed in: its pages share the cookie and localStorage."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", f"demo-{username}")
    await page.click("button[type=submit].primary")  # not the page's language switch
    await page.wait_for_url(f"{base}/")
    return context, page


def write_folder(folder: Path) -> dict[str, bytes]:
    """A CT series (24 slices of 512x512) and one large CR (in parts), as a clinic's export."""
    files: dict[str, bytes] = {}
    for n, data in enumerate(make_study(modality="CT", count=24, patient_id="WD-S1", size=512)):
        files[f"CT/IM{n:04d}.dcm"] = data
    files["CR/IM0001.dcm"] = make_study(
        modality="CR", count=1, patient_id="WD-S2", patient_name="李^四", size=1800
    )[0]
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


async def choose_folder(page: Page, base: str, folder: Path) -> None:
    await page.goto(f"{base}/send")
    await page.set_input_files("#pick-folder", folder)
    await wait_until(page, "!document.getElementById('send-button').disabled")


async def test_a_clinic_sends_a_ct_folder_through_a_link_that_drops(
    api: Api, proxy: TcpProxy, browser: Browser, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    files = write_folder(folder)
    total = sum(len(d) for d in files.values())
    shots = tmp_path / "screens"
    shots.mkdir()
    clinic, page = await signed_in(browser, proxy.url, "xlwd.clinic")
    await page.click("#send-link")
    await page.wait_for_url(f"{proxy.url}/send")
    await choose_folder(page, proxy.url, folder)

    # what will be sent, per study, before anything is
    ct = page.locator("#studies tr[data-study]", has_text="CT")
    assert await ct.locator("td.patient").inner_text() == "王 小明 WD-S1"
    assert await ct.locator("td.sex-age").inner_text() == "男 68岁"
    assert await ct.locator("td.date").inner_text() == "2026-11-20"
    assert await ct.locator("td.description").inner_text() == "胸部平扫"
    assert await ct.locator("td.count").inner_text() == "24"
    cr = page.locator("#studies tr[data-study]", has_text="CR")
    assert await cr.locator("td.patient").inner_text() == "李 四 WD-S2"
    await page.screenshot(path=str(shots / "1-preview.png"), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "send_preview_zh.png"), full_page=True)
    assert_one_language(await page.inner_text("main"))

    await page.select_option("select[name=urgency]", "urgent")
    await page.fill("textarea[name=question]", QUESTION)
    await page.fill("textarea[name=history]", HISTORY)
    # cut the link once a third of the folder went up; the page waits and goes on
    proxy.cut_after_bytes = total // 3
    await page.click("#send-button")
    async with asyncio.timeout(60):
        await proxy.was_cut.wait()
    await wait_until(page, "document.getElementById('link-state').textContent.includes('重试')")
    await page.screenshot(path=str(shots / "2-link-lost.png"), full_page=True)
    proxy.was_cut.clear()
    await proxy.restore()

    # cut again later, close the page while the link is down
    proxy.cut_after_bytes = proxy.upstream_bytes + total // 3
    async with asyncio.timeout(120):
        await proxy.was_cut.wait()
    remembered = await page.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('telemed.upload.'))"
    )
    assert len(remembered) >= 1
    await page.close()
    before = await held_instances(api)
    assert 0 < before < len(files)
    await proxy.restore()

    # a new page, the same folder: the same session, only the rest is sent
    page = await clinic.new_page()
    await choose_folder(page, proxy.url, folder)
    await page.select_option("select[name=urgency]", "urgent")
    await page.fill("textarea[name=question]", QUESTION)
    await page.fill("textarea[name=history]", HISTORY)
    await page.click("#send-button")
    await wait_until(page, "document.body.dataset.sent === 'all'", timeout_s=180)
    ct = page.locator("#studies tr[data-study]", has_text="CT")
    ct_session = await ct.get_attribute("data-resumed")  # the page said it resumed
    assert ct_session is not None
    held = await page.locator("#files li[data-state=stored]").count()
    assert held == len(files)
    assert await page.locator("#studies tr[data-state=sent]").count() == 2
    assert await page.get_attribute("#overall", "value") == "1"
    await page.screenshot(path=str(shots / "3-sent.png"), full_page=True)
    # a session committed is forgotten
    assert await page.evaluate("Object.keys(localStorage).length") == 0

    sessions = await api.pool.fetch(
        "select study_instance_uid, state, priority, clinical_question from upload_session"
    )
    assert len(sessions) == 2  # one per study, the second page resumed them
    ct_uid = await ct.get_attribute("data-study")
    resumed = await api.pool.fetchval(
        "select public_id::text from upload_session where study_instance_uid = $1", ct_uid
    )
    assert resumed == ct_session
    assert {s["state"] for s in sessions} == {"committed"}
    assert {s["priority"] for s in sessions} == {"high"}
    stored = await api.pool.fetchval("select count(*) from instance")
    assert stored == len(files)  # each instance once
    # what went up over the link: the folder, and not the whole of it again
    assert proxy.upstream_bytes < 1.6 * total

    # the same folder sent again: the server has it all, nothing is sent or stored twice
    sent_before = proxy.upstream_bytes
    await choose_folder(page, proxy.url, folder)
    await page.click("#send-button")
    await wait_until(page, "document.body.dataset.sent === 'all'", timeout_s=60)
    assert await page.locator("#files li[data-state=stored]").count() == len(files)
    assert "已在服务器" in await page.inner_text("#files")
    assert await api.pool.fetchval("select count(*) from instance") == len(files)
    assert await api.pool.fetchval("select count(*) from upload_session") == 2
    assert proxy.upstream_bytes - sent_before < total / 10  # manifests, not the files

    # the county reader's worklist and case show the urgency and the question
    assert await sweep_once(api.pool, api.app[SETTINGS], api.app[OBJECTS]) >= 0
    _, reader = await signed_in(browser, proxy.url, "wang.reader")
    row = reader.locator("tr.case-row", has_text="王 小明").first
    await row.wait_for()
    assert await row.get_attribute("class") == "case-row urgent"
    assert "紧急" in await row.locator(".badge").first.inner_text()
    await reader.screenshot(path=str(shots / "4-worklist.png"), full_page=True)
    await row.locator("a.case").click()
    await reader.wait_for_selector("#clinical-question")
    question = await reader.inner_text("#clinical-question")
    assert QUESTION in question
    assert HISTORY in question
    await reader.screenshot(path=str(shots / "5-case.png"), full_page=True)


async def held_instances(api: Api) -> int:
    return int(await api.pool.fetchval("select count(*) from instance"))


async def test_a_clinic_sends_ecg_files_and_sees_a_refusal(
    api: Api, proxy: TcpProxy, browser: Browser, tmp_path: Path
) -> None:
    good = (FORMATS / "contec_ecg90a/0000037.ECG").read_bytes()
    (tmp_path / "0000037.ECG").write_bytes(good)
    (tmp_path / "0000099.ECG").write_bytes(good[:300])
    await choose_english(api, "xlwd.clinic")  # the page and its script's words in English
    _, page = await signed_in(browser, proxy.url, "xlwd.clinic")
    await page.goto(f"{proxy.url}/send")
    await page.set_input_files("#pick-files", [tmp_path / "0000037.ECG", tmp_path / "0000099.ECG"])
    await wait_until(page, "!document.getElementById('send-button').disabled")
    assert await page.locator("#ecgs tr[data-ecg]").count() == 2
    assert await page.locator("#studies").is_hidden()
    assert await page.inner_text("#ecgs tr[data-ecg='0000037.ECG'] td.state") == "to send"
    await page.click("#send-button")
    await wait_until(page, "document.body.dataset.sent === 'with-refusals'", timeout_s=60)
    accepted = page.locator("#ecgs tr[data-ecg='0000037.ECG']")
    assert await accepted.get_attribute("data-state") == "accepted"
    assert "received: contec" in await accepted.locator("td.state").inner_text()
    refused = page.locator("#ecgs tr[data-ecg='0000099.ECG']")
    assert await refused.get_attribute("data-state") == "refused"
    reason = await refused.locator("td.state").inner_text()
    # the server's own reason, in full
    assert reason.startswith("refused: the ECG file cannot be read: Contec ECG90A")
    assert "cut short" in reason
    assert await page.inner_text("#message") == "Done; some were refused"
    assert await page.inner_text("h1") == "Send Studies and ECGs"
    assert_one_language(await page.inner_text("main"))
    assert await page.get_attribute("#overall", "value") == "1"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "send_ecg_en.png"), full_page=True)
    kept = await api.pool.fetch("select size_bytes, format from ecg_original")
    assert [(k["size_bytes"], k["format"]) for k in kept] == [(len(good), "contec_ecg90a")]
    assert await api.pool.fetchval("select count(*) from refused_ecg") == 1


async def state_of(page: Page, uid: str, state: str, *, timeout_s: float = 20) -> str:
    """Wait (across the page's own reloads) for the study's row to be in ``state``; its
    progress text."""
    row = f"#studies tr[data-study='{uid}']"
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            shown = await page.get_attribute(row, "data-state", timeout=1000)
            if shown == state:
                return await page.inner_text(f"{row} td.progress", timeout=1000)
        except PlaywrightError:
            pass  # reloading
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"study {uid} is not {state}")
        await asyncio.sleep(0.1)


async def test_the_clinics_studies_show_their_progress_live(
    api: Api, browser: Browser, tmp_path: Path
) -> None:
    base = str(api.client.make_url("/")).rstrip("/")
    instances = make_study(modality="CR", count=2, patient_id="WD-P1", size=32)
    study, lines = manifest(instances)
    opened = await api.client.post(
        "/api/v1/uploads",
        json={"study_instance_uid": study, "instances": lines, "question": QUESTION},
        headers=api.auth("xlwd.clinic"),
    )
    upload = await opened.json()
    assert (await put(api, upload, instances[0]))[0] == 201
    _, page = await signed_in(browser, base, "xlwd.clinic")
    assert await state_of(page, study, "sending") == "发送中"

    # the rest, committed and routed: the page follows by itself
    await wait_until(page, "document.body.dataset.liveOpen === '1'")
    assert (await put(api, upload, instances[1]))[0] == 201
    committed = await api.client.post(
        f"/api/v1/uploads/{upload['id']}/commit", headers=api.auth("xlwd.clinic")
    )
    assert committed.status == 200
    await sweep_once(api.pool, api.app[SETTINGS], api.app[OBJECTS])
    waiting = await state_of(page, study, "waiting")
    assert "等待判读 · 淮滨县人民医院 · 县级医院" in waiting
    case = await api.pool.fetchval(
        "select c.id from reading_case c join study s on s.id = c.study_id"
        " where s.study_instance_uid = $1",
        study,
    )

    async def as_reader(user: str, action: str, body: object = None) -> None:
        response = await api.client.post(
            f"/api/v1/cases/{case}/{action}", json=body, headers=api.auth(user)
        )
        assert response.status == 200, await response.text()

    await as_reader("wang.reader", "claim")
    reading = await state_of(page, study, "reading")
    assert "判读中 · 淮滨县人民医院 · 县级医院" in reading
    await as_reader("wang.reader", "escalate", {"question": "请上级会诊"})
    assert "信阳市中心医院 · 市级医院" in await state_of(page, study, "waiting")
    await as_reader("zhao.city", "claim")
    assert "信阳市中心医院 · 市级医院" in await state_of(page, study, "reading")
    await page.screenshot(path=str(tmp_path / "inbox-reading.png"), full_page=True)

    # returned for quality: the reason, and the way to send it again
    await as_reader("zhao.city", "return", {"reason": "positioning", "note": "双肩未展开"})
    returned = await state_of(page, study, "returned")
    assert "已退回" in returned
    assert "体位不正" in returned
    await page.screenshot(path=str(tmp_path / "inbox-returned.png"), full_page=True)
    await page.click(f"#studies tr[data-study='{study}'] a.resend")
    await page.wait_for_url(f"{base}/send")


async def test_a_compressible_study_goes_gzip_compressed_and_is_stored_as_it_was(
    api: Api, proxy: TcpProxy, browser: Browser, tmp_path: Path
) -> None:
    folder = tmp_path / "phantom"
    folder.mkdir()
    slices = phantom_ct(8)
    for n, data in enumerate(slices):
        (folder / f"IM{n:04d}.dcm").write_bytes(data)
    total = sum(len(d) for d in slices)
    _, page = await signed_in(browser, proxy.url, "xlwd.clinic")
    sent_before = proxy.upstream_bytes
    await choose_folder(page, proxy.url, folder)
    await page.click("#send-button")
    await wait_until(page, "document.body.dataset.sent === 'all'", timeout_s=60)
    assert proxy.upstream_bytes - sent_before < total / 4  # far less than the files
    stored = await api.pool.fetch("select size_bytes, received_via from instance")
    assert sorted(r["size_bytes"] for r in stored) == sorted(len(d) for d in slices)
    assert {r["received_via"] for r in stored} == {"upload"}
