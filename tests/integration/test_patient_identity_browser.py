"""The console's patient identity in Debian's chromium, against the service on real
PostgreSQL: the county administrator opens the candidate duplicates from the menu, opens
the merge screen of a pair (one record's chest film with its final report, the other's CT),
merges them, sees the film listed as a prior on the CT's case, then unmerges and the prior
is gone; and resolves an identity conflict at ingest with a note. Screenshots are kept in
``test-artifacts/``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from playwright.async_api import async_playwright

from storage import network
from storage.records import Conclusion
from teleradiology.services import reading
from teleradiology.services.reading import ReportDraft
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store
from tests.integration.test_console_pages import _sign_in
from tests.integration.test_patient_identity import _conflicting_instance
from tests.integration.test_referrals_patients import _case
from tests.integration.test_web_pages import ARGS, ARTIFACTS, CHROMIUM, _base, browser_test


async def _a_pair_with_a_report(api: Api) -> tuple[str, str]:
    """A film at 王店 read and reported by the county, and a CT at 罗湾 of the same name."""
    film = await store(
        api,
        "HB-XL-WD",
        make_study(modality="CR", count=1, patient_id="WD-88", patient_name="周^明"),
    )
    ct = await store(
        api,
        "HB-MJ-LW",
        make_study(modality="CT", count=2, patient_id="LW-301", patient_name="周^明"),
    )
    await route_all(api)
    reader = await network.user_by_username(api.pool, "wang.reader")
    assert reader is not None
    film_case = await _case(api, film)
    await reading.claim(api.pool, reader, film_case, lease=timedelta(minutes=30))
    draft = ReportDraft(
        findings="右下肺见斑片影。", impression="右下肺炎。", conclusion=Conclusion.ABNORMAL
    )
    await reading.submit_report(api.pool, reader, film_case, draft)
    return film, ct


@browser_test
async def test_the_administrator_merges_a_candidate_pair_sees_the_prior_then_unmerges(
    api: Api,
) -> None:
    film, ct = await _a_pair_with_a_report(api)
    ct_case = await _case(api, ct)
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        admin = await browser.new_page(viewport={"width": 1500, "height": 1000}, locale="zh-CN")
        admin.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await _sign_in(admin, base, "hb.admin", "demo-hb.admin")
        await admin.click("#identity-link")
        await admin.wait_for_url(f"{base}/admin/patients/duplicates")
        row = admin.locator("#duplicates tbody tr").filter(has_text="WD-88")
        assert "LW-301" in await row.inner_text()
        assert "姓名、性别、出生日期相同" in await row.inner_text()
        await admin.screenshot(path=str(ARTIFACTS / "identity_duplicates.png"), full_page=True)

        # the merge screen: both records side by side, the film's report shown
        await row.locator("a.button").click()
        await admin.wait_for_url(f"{base}/admin/patients/merge?*")
        records = admin.locator("article.record")
        assert await records.count() == 2
        texts = [await records.nth(i).inner_text() for i in range(2)]
        assert "WD-88" in texts[0]
        assert "右下肺炎" in texts[0]
        assert "LW-301" in texts[1]
        assert "CT" in texts[1]
        assert "1 / 0 / 1" in texts[0]  # one study, no ECG, one report
        await admin.screenshot(path=str(ARTIFACTS / "identity_merge_screen.png"), full_page=True)
        async with admin.expect_navigation():
            await admin.click("#merge-form button[type=submit]")
        assert await admin.locator("#one-person").count() == 1
        assert await admin.locator("button.unmerge").count() == 2
        await admin.screenshot(path=str(ARTIFACTS / "identity_merged.png"), full_page=True)

        # the CT's case lists the film of the other village as its prior
        await admin.click(f"article.record >> nth=1 >> a[href='/cases/{ct_case}']")
        await admin.wait_for_url(f"{base}/cases/{ct_case}")
        priors = await admin.inner_text("#priors")
        assert "CR" in priors
        assert "王店" in priors or "HB-XL-WD" in priors
        assert "右下肺炎" in priors
        await admin.screenshot(path=str(ARTIFACTS / "identity_prior_linked.png"), full_page=True)

        # unmerged, the prior is gone again and the pair is a candidate again
        await admin.go_back()
        async with admin.expect_navigation():
            await admin.locator("button.unmerge").first.click()
        assert await admin.locator("#one-person").count() == 0
        await admin.screenshot(path=str(ARTIFACTS / "identity_unmerged.png"), full_page=True)
        await admin.goto(f"{base}/cases/{ct_case}")
        assert "无既往检查" in await admin.inner_text("#priors")
        await admin.goto(f"{base}/admin/patients/duplicates")
        assert await admin.locator("#duplicates tbody tr").filter(has_text="WD-88").count() == 1
        await browser.close()
    assert film in await api.pool.fetchval(
        "select string_agg(array_to_string(studies, ','), ',') from audit "
        "where object_type = 'patient' and action = 'read'"
    )


@browser_test
async def test_the_administrator_resolves_an_identity_conflict_with_a_note(api: Api) -> None:
    uid = await _conflicting_instance(api)
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        admin = await browser.new_page(viewport={"width": 1500, "height": 800}, locale="zh-CN")
        await _sign_in(admin, base, "hb.admin", "demo-hb.admin")
        await admin.click("#identity-link")
        await admin.click("#identity-tabs a[href='/admin/identity-conflicts']")
        await admin.wait_for_url(f"{base}/admin/identity-conflicts")
        row = admin.locator("#conflicts tbody tr").filter(has_text=uid)
        shown = await row.inner_text()
        assert "PatientName" in shown
        assert "王^小明" in shown
        assert "李^小红" in shown
        await admin.screenshot(path=str(ARTIFACTS / "identity_conflicts.png"), full_page=True)
        await row.locator("input[name=note]").fill("已与王店村卫生室核对：录入错误")
        async with admin.expect_navigation():
            await row.locator("button[type=submit]").click()
        assert uid not in await admin.inner_text("#conflicts")
        await admin.click("text=显示全部")
        await admin.wait_for_url(f"{base}/admin/identity-conflicts?status=all")
        resolved = await admin.locator("#conflicts tbody tr").filter(has_text=uid).inner_text()
        assert "已处理" in resolved
        assert "hb.admin" in resolved
        assert "录入错误" in resolved
        await admin.screenshot(
            path=str(ARTIFACTS / "identity_conflict_resolved.png"), full_page=True
        )
        # the patient's link opens the study's record
        await admin.locator("#conflicts tbody tr").filter(has_text=uid).locator("a").click()
        await admin.wait_for_url(f"{base}/admin/patients/merge?a=*")
        assert "C-1" in await admin.inner_text("article.record")
        await browser.close()
