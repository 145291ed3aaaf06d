"""The pairs an administrator judged not the same person, listed with an undo, over the API
and on the candidate duplicates page, on real PostgreSQL: undone, the pair is a candidate
again; the list and the undo are audited; another network's administrator sees none of it
and cannot undo it."""

from __future__ import annotations

import json

from playwright.async_api import async_playwright

from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import store
from tests.integration.test_console_pages import _sign_in
from tests.integration.test_patient_identity import (
    DUPLICATES,
    PAGE,
    cookie_of,
    get,
    other_network_admin,
    pairs_of,
    patient_of,
)
from tests.integration.test_web_pages import ARGS, ARTIFACTS, CHROMIUM, _base, browser_test

DISMISSALS = "/api/v1/admin/patients/dismissals"


async def _dismissed_pair(api: Api) -> tuple[int, int]:
    """Two records of one name at two villages, judged not one person: (a, b), a < b."""
    first = await store(api, "HB-XL-WD", make_study(count=1, patient_id="N-1"))
    second = await store(api, "HB-FH-CG", make_study(count=1, patient_id="N-2"))
    a, b = sorted((await patient_of(api, first), await patient_of(api, second)))
    dismissed = await api.client.post(
        f"{DUPLICATES}/dismiss",
        json={"patients": [b, a], "note": "同名不同人"},
        headers=api.auth("hb.admin"),
    )
    assert dismissed.status == 200, await dismissed.text()
    return a, b


async def test_a_dismissal_is_listed_and_undone_and_the_pair_is_a_candidate_again(
    api: Api,
) -> None:
    a, b = await _dismissed_pair(api)
    zk = await other_network_admin(api)
    status, listed = await get(api, DISMISSALS, "hb.admin")
    assert status == 200
    assert listed["total"] == 1
    (shown,) = listed["dismissals"]
    assert (shown["a"]["id"], shown["b"]["id"]) == (a, b)
    assert (shown["a"]["patient_id"], shown["b"]["patient_id"]) == ("N-1", "N-2")
    assert (shown["dismissed_by"], shown["note"]) == ("hb.admin", "同名不同人")
    # another network's administrator: nothing listed, nothing to undo
    assert await get(api, DISMISSALS, zk) == (200, {"dismissals": [], "total": 0})
    elsewhere = await api.client.delete(f"{DISMISSALS}/{a}/{b}", headers=api.auth(zk))
    assert elsewhere.status == 404
    assert (await get(api, DISMISSALS, "hb.admin"))[1]["total"] == 1
    # bad pairs
    same = await api.client.delete(f"{DISMISSALS}/{a}/{a}", headers=api.auth("hb.admin"))
    assert same.status == 409
    word = await api.client.delete(f"{DISMISSALS}/{a}/x", headers=api.auth("hb.admin"))
    assert word.status == 404
    # undone, in either order: a candidate again, and not undone twice
    undone = await api.client.delete(f"{DISMISSALS}/{b}/{a}", headers=api.auth("hb.admin"))
    assert undone.status == 200, await undone.text()
    assert await undone.json() == {"dismissed": False}
    assert await get(api, DISMISSALS, "hb.admin") == (200, {"dismissals": [], "total": 0})
    assert pairs_of((await get(api, DUPLICATES, "hb.admin"))[1]) == [(a, b, ["demographics"])]
    twice = await api.client.delete(f"{DISMISSALS}/{a}/{b}", headers=api.auth("hb.admin"))
    assert twice.status == 404
    changes = await api.pool.fetch(
        "select detail from audit where action = 'configure' and object_type = 'patient_pair' "
        "and object_id = $1 order by seq",
        f"{a},{b}",
    )
    assert [json.loads(r["detail"]) for r in changes][-1] == {
        "before": {"dismissed": True, "note": "同名不同人"},
        "after": {"dismissed": False},
    }
    lists = await api.pool.fetch(
        "select u.username, a.patients from audit a join app_user u on u.id = a.user_id "
        "where a.action = 'list' and a.object_type = 'patient_pair' order by a.seq"
    )
    assert ("hb.admin", ["HB-FH-CG:N-2", "HB-XL-WD:N-1"]) in [
        (r["username"], sorted(r["patients"])) for r in lists
    ]
    assert all(not r["patients"] for r in lists if r["username"] == zk)


async def test_the_duplicates_page_lists_the_dismissals_and_undoes_one(api: Api) -> None:
    a, b = await _dismissed_pair(api)
    zk = await other_network_admin(api)
    cookie = cookie_of(api, "hb.admin")
    page = await (await api.client.get("/admin/patients/duplicates", headers=cookie)).text()
    assert 'id="dismissals"' in page
    assert f'data-pair="{a}-{b}"' in page
    assert f'data-action="/admin/patients/dismissals/{a}/{b}"' in page
    assert "同名不同人" in page
    other = cookie_of(api, zk)
    page = await (await api.client.get("/admin/patients/duplicates", headers=other)).text()
    assert f'data-pair="{a}-{b}"' not in page
    refused = await api.client.delete(
        f"/admin/patients/dismissals/{a}/{b}", headers={**other, **PAGE}
    )
    assert refused.status == 404
    cookie = cookie_of(api, "hb.admin")
    undone = await api.client.delete(
        f"/admin/patients/dismissals/{a}/{b}", headers={**cookie, **PAGE}
    )
    assert undone.status == 200, await undone.text()
    page = await (await api.client.get("/admin/patients/duplicates", headers=cookie)).text()
    assert "/admin/patients/dismissals/" not in page
    assert f'href="/admin/patients/merge?a={a}&amp;b={b}"' in page


@browser_test
async def test_the_administrator_undoes_a_dismissal_in_the_browser(api: Api) -> None:
    a, b = await _dismissed_pair(api)
    base = _base(api)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        admin = await browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        await _sign_in(admin, base, "hb.admin", "demo-hb.admin")
        await admin.click("#identity-link")
        await admin.wait_for_url(f"{base}/admin/patients/duplicates")
        row = admin.locator(f"#dismissals tr[data-pair='{a}-{b}']")
        assert "同名不同人" in await row.inner_text()
        assert await admin.locator(f"#duplicates tr[data-pair='{a}-{b}']").count() == 0
        await admin.screenshot(path=str(ARTIFACTS / "identity_dismissals.png"), full_page=True)
        async with admin.expect_navigation():
            await row.locator("form.undismiss button[type=submit]").click()
        assert await admin.locator(f"#dismissals tr[data-pair='{a}-{b}']").count() == 0
        assert await admin.locator(f"#duplicates tr[data-pair='{a}-{b}']").count() == 1
        await admin.screenshot(path=str(ARTIFACTS / "identity_undismissed.png"), full_page=True)
        await browser.close()
