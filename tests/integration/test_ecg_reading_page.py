"""The ECG reader's web page in Debian's chromium, against the service on real PostgreSQL.

A village sends two ECGs of one patient (GE MUSE files, months apart in the record's eyes);
the township ECG reader signs in, opens the newer one from the worklist, sees the sheet and
the prior beside it with the differences, claims the case, corrects PR and adds a statement
(the change is listed with their name), and signs a final report through the case API.
The screenshot is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import async_playwright

from tests.browser import wait_until
from tests.integration.conftest import Api
from tests.integration.test_ecg_flow import FORMATS, ecg_case, get_json, sweep, upload
from tests.integration.test_viewer_session import sign_in

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def two_ecgs_of_one_patient(api: Api) -> tuple[dict[str, object], dict[str, object]]:
    prior_file = FORMATS / "ge_muse_xml/braveheart_example1.xml"  # 48 bpm
    status, prior = await upload(
        api, [(prior_file.name, prior_file.read_bytes())], patient_id="P-7"
    )
    assert status == 201
    await sweep(api)
    current_file = FORMATS / "ge_muse_xml/braveheart_example2.xml"  # 65 bpm
    status, current = await upload(
        api, [(current_file.name, current_file.read_bytes())], patient_id="P-7"
    )
    assert status == 201
    await sweep(api)
    return prior, current


async def test_the_reader_reads_an_ecg_case_in_the_browser(api: Api) -> None:
    prior, current = await two_ecgs_of_one_patient(api)
    case = await ecg_case(api, str(current["study_instance_uid"]))
    base = str(api.client.make_url("/")).rstrip("/")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1600, "height": 1200})
        await page.goto(f"{base}/login")
        await page.fill("input[name=username]", "xl.ecg")
        await page.fill("input[name=password]", "demo-xl.ecg")
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/")
        links = page.locator("a.open-ecg")
        assert await links.count() == 2
        await page.click(f"a.open-ecg[href='/ecg/cases/{case['id']}']")
        await page.wait_for_url(re.compile(rf".*/ecg/cases/{case['id']}$"))
        assert "王 小明" in await page.inner_text("#patient")
        assert "王店村卫生室" in await page.inner_text("#facility")

        async def loaded(selector: str) -> int:
            return int(
                await page.eval_on_selector(selector, "img => img.complete ? img.naturalWidth : 0")
            )

        await wait_until(page, "document.getElementById('sheet').complete")
        assert await loaded("#sheet") > 3000  # print resolution: A4 landscape at 300 dpi
        # the prior beside it, with the differences
        prior_figure = page.locator(f"figure.prior[data-sop='{prior['sop_instance_uid']}']")
        assert await prior_figure.count() == 1
        await wait_until(page, "[...document.images].every(i => i.complete)")
        assert await loaded(f"figure.prior[data-sop='{prior['sop_instance_uid']}'] img") > 3000
        rate = prior_figure.locator("tr[data-key=heart_rate_bpm] td")
        now, then, delta = [await rate.nth(i).inner_text() for i in (1, 2, 3)]
        assert int(delta) == int(now) - int(then)
        assert int(delta) >= 10  # 48 → 65 bpm
        assert await prior_figure.locator("tr[data-key=heart_rate_bpm] td.changed").count() == 1

        # claim, then correct PR and add a statement
        await page.click("#claim")
        await page.wait_for_load_state("load")
        await page.wait_for_selector("#claim", state="detached")
        measured = await page.input_value("#measurements input[name=pr_ms]")
        corrected = str(round(float(measured)) + 12)
        await page.fill("#measurements input[name=pr_ms]", corrected)
        lines = await page.input_value("#statements")
        await page.fill("#statements", lines.rstrip("\n") + "\n建议复查心电图\n")
        async with page.expect_navigation():
            await page.click("#save")
        edits = await page.inner_text("#edits")
        assert "xl.ecg" in edits
        assert "measurements.pr_ms" in edits
        assert "建议复查心电图" in edits
        assert await page.input_value("#measurements input[name=pr_ms]") == corrected

        # the report, through the case report API
        await page.fill("textarea[name=findings]", "窦性心律，心率65次/分。")
        await page.fill("textarea[name=impression]", "大致正常心电图")
        await page.select_option("select[name=conclusion]", "abnormal")
        await page.click("#submit-report")
        await wait_until(
            page, "document.getElementById('message').textContent.includes('报告已签发')"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "ecg_reading_page.png"), full_page=True)

        # the sheet is drawn with the diagnostic filter; the reader may look at the raw signal
        active = page.locator("#sheet-filter a.active")
        assert await active.get_attribute("data-filter") == "diagnostic"
        async with page.expect_navigation():
            await page.click("#sheet-filter a[data-filter=none]")
        assert "filter=none" in (await page.get_attribute("#sheet", "src") or "")
        await wait_until(page, "document.getElementById('sheet').complete")
        assert await loaded("#sheet") > 3000
        assert await active.get_attribute("data-filter") == "none"
        await browser.close()

    view = await get_json(api, "xl.ecg", f"/api/v1/ecg/{current['sop_instance_uid']}")
    assert view["measurements"]["pr_ms"] == int(corrected)
    assert any(s.get("text_zh") == "建议复查心电图" for s in view["statements"])
    assert [e["by"] for e in view["edits"]] == ["xl.ecg", "xl.ecg"]
    row = await api.pool.fetchrow(
        "select r.conclusion, r.status, c.status as case_status from report r"
        " join reading_case c on c.id = r.case_id where c.id = $1",
        case["id"],
    )
    assert row is not None
    assert (row["conclusion"], row["status"], row["case_status"]) == (
        "abnormal",
        "final",
        "completed",
    )


async def session(api: Api, username: str) -> dict[str, str]:
    """A session cookie header for the user (the client's own cookie jar left empty)."""
    token = await sign_in(api, username)
    api.client.session.cookie_jar.clear()
    return {"Cookie": f"telemed_session={token}"}


async def test_page_actions_need_the_session_and_the_pages_own_header(api: Api) -> None:
    _, current = await two_ecgs_of_one_patient(api)
    case = await ecg_case(api, str(current["study_instance_uid"]))
    path = f"/ecg/cases/{case['id']}/claim"
    anonymous = await api.client.post(path, headers={"X-Telemed-Page": "1"})
    assert anonymous.status == 401
    assert anonymous.content_type == "application/problem+json"
    cookie = await session(api, "xl.ecg")
    forged = await api.client.post(path, headers=cookie)
    assert forged.status == 403
    cross_site = await api.client.post(
        path, headers={**cookie, "X-Telemed-Page": "1", "Origin": "https://evil.example"}
    )
    assert cross_site.status == 403
    assert (
        await api.pool.fetchval("select claimed_by from reading_case where id = $1", case["id"])
        is None
    )
    # another pool's reader does not see the case at all
    other = await session(api, "li.ecg")
    assert (await api.client.get(f"/ecg/cases/{case['id']}", headers=other)).status == 404
    sheet = await api.client.get(
        f"/ecg/cases/{case['id']}/sheets/{current['sop_instance_uid']}.png", headers=other
    )
    assert sheet.status == 404
    own = await api.client.get(
        f"/ecg/cases/{case['id']}/sheets/{current['sop_instance_uid']}.pdf", headers=cookie
    )
    assert own.status == 200, await own.text()
    assert (await own.read()).startswith(b"%PDF")
    audited = await api.pool.fetchval(
        "select count(*) from audit where object_type = 'ecg' and action = 'sheet'"
    )
    assert audited == 1


async def test_a_stemi_case_is_marked_on_its_page_and_opens_from_the_worklist(api: Api) -> None:
    from tests.integration.test_ecg_flow import STEMI_ST_UV, csv_of

    status, body = await upload(api, [("stemi.csv", csv_of(STEMI_ST_UV))], user="mjlw.clinic")
    assert status == 201
    await sweep(api)
    case = await ecg_case(api, str(body["study_instance_uid"]))
    cookie = await session(api, "li.ecg")
    worklist = await (await api.client.get("/", headers=cookie)).text()
    assert f'href="/ecg/cases/{case["id"]}"' in worklist
    assert "STEMI" in worklist
    page = await (await api.client.get(f"/ecg/cases/{case['id']}", headers=cookie)).text()
    assert 'id="stemi"' in page
    assert "10分钟内判读" in page
    assert "无既往心电图" in page  # a first ECG: nothing to compare with
    assert "ST段抬高" in page or "STEMI" in page.split('id="statements"')[1]
