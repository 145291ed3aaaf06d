"""The send page's upload routes: a clinic's sessions are its own.

Another clinic's operator, signed in to the pages, neither sees nor resumes, sends into,
takes from or commits this clinic's session, even knowing its id and its key; a reader is
refused the page and its routes.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from typing import Any

from teleradiology.http.web.common import PAGE_HEADER
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.test_ecg_reading_page import session
from tests.integration.test_uploads import manifest, sop_uid

OWNER = "xlwd.clinic"
OTHER = "xlzz.clinic"


async def page_call(
    api: Api, user_cookie: dict[str, str], method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    headers = {**user_cookie, PAGE_HEADER: "1", **kwargs.pop("headers", {})}
    response = await api.client.request(method, path, headers=headers, **kwargs)
    return response.status, await response.json(content_type=None)


async def test_another_clinic_cannot_see_or_resume_this_clinics_upload(api: Api) -> None:
    owner = await session(api, OWNER)
    other = await session(api, OTHER)
    instances = make_study(count=2, patient_id="WD-K1")
    study, lines = manifest(instances)
    key = "web:" + hashlib.sha256(study.encode()).hexdigest()
    opened = {"key": key, "study_instance_uid": study, "urgency": "urgent", "instances": lines}
    status, mine = await page_call(api, owner, "POST", "/send/uploads", json=opened)
    assert status == 201, mine
    first = instances[0]
    status, _ = await page_call(
        api,
        owner,
        "PUT",
        f"/send/uploads/{mine['id']}/instances/{sop_uid(first)}",
        data=first,
        headers={"Content-Type": "application/dicom"},
    )
    assert status == 201
    base = f"/send/uploads/{mine['id']}"
    second = instances[1]

    # the other clinic: the session does not exist for it, whatever it tries
    for method, path, body in [
        ("GET", base, None),
        ("PUT", f"{base}/instances/{sop_uid(second)}", second),
        ("DELETE", f"{base}/instances/{sop_uid(second)}", None),
        ("POST", f"{base}/commit", None),
    ]:
        status, problem = await page_call(api, other, method, path, data=body)
        assert status == 404, (method, path, problem)
        assert mine["id"] in problem["detail"]
    status, _ = await page_call(api, other, "GET", f"/api/v1/uploads?key={key}")
    assert status == 401  # the API takes a token, not the page's cookie
    # the same key opens a session of its own: nothing of the owner's is resumed or shown
    status, theirs = await page_call(api, other, "POST", "/send/uploads", json=opened)
    assert status == 201, theirs
    assert theirs["id"] != mine["id"]
    assert theirs["stored"] == 0
    assert len(theirs["missing"]) == 2

    # the owner's session is as it was: one instance stored, one missing
    status, still = await page_call(api, owner, "GET", base)
    assert status == 200
    assert (still["stored"], [m["sop_instance_uid"] for m in still["missing"]]) == (
        1,
        [sop_uid(second)],
    )
    facilities = await api.pool.fetch(
        "select f.code from upload_session u join facility f on f.id = u.facility_id"
        " where u.client_key = $1 order by u.id",
        key,
    )
    assert [f["code"] for f in facilities] == ["HB-XL-WD", "HB-XL-ZZ"]


async def test_the_send_page_is_for_clinic_operators(api: Api) -> None:
    reader = await session(api, "wang.reader")
    response = await api.client.get("/send", headers=reader)
    assert response.status == 403
    assert "基层机构" in await response.text()
    status, problem = await page_call(api, reader, "POST", "/send/uploads", json={})
    assert status == 403
    assert "基层机构" in problem["detail"]
    clinic = await session(api, OWNER)
    response = await api.client.get("/send", headers=clinic)
    assert response.status == 200
    page = await response.text()
    assert 'src="/send/dicom-parser.js"' in page
    assert "webkitdirectory" in page


#: What the send page may weigh on the wire, gzip-compressed as served: about 0.3 s at 1 Mbit/s.
PAGE_BUDGET_BYTES = 40 * 1024


async def test_the_send_page_and_its_assets_are_small_on_the_wire(api: Api) -> None:
    clinic = await session(api, OWNER)
    gzip_ok = {"Accept-Encoding": "gzip"}
    response = await api.client.get("/send", headers={**clinic, **gzip_ok}, auto_decompress=False)
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    page = await response.read()
    html = gzip.decompress(page).decode()
    assets = re.findall(r'(?:src|href)="(/(?:static|send)/[^"]+)"', html)
    assert sorted(assets) == [
        "/send/dicom-parser.js",
        "/static/app.css",
        "/static/app.js",
        "/static/send.js",
    ]
    weights = {"/send": len(page)}
    for asset in assets:
        got = await api.client.get(asset, headers=gzip_ok, auto_decompress=False)
        assert got.status == 200, asset
        assert got.headers["Content-Encoding"] == "gzip", asset
        weights[asset] = len(await got.read())
        # a HEAD, a revalidation and a range are answered without a stray compressed body
        head = await api.client.head(asset, headers=gzip_ok)
        assert head.status == 200
        last = got.headers["Last-Modified"]
        again = await api.client.get(asset, headers={**gzip_ok, "If-Modified-Since": last})
        assert again.status == 304
    total = sum(weights.values())
    print(f"send page on the wire (gzip): {total} bytes {weights}")
    assert total < PAGE_BUDGET_BYTES
