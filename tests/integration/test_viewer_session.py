"""The browser side: sign-in cookie, the OHIF files and config, the worklist's viewer links."""

from __future__ import annotations

import re

from teleradiology.http.web.viewer import viewer_dir
from tests.factory import make_study
from tests.integration.conftest import Api
from tests.integration.dicomweb_support import route_all, store


async def sign_in(api: Api, username: str) -> str:
    response = await api.client.post(
        "/login",
        data={"username": username, "password": f"demo-{username}", "next": "/"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    match = re.match(r"telemed_session=([^;]+);", cookie)
    assert match
    return match.group(1)


async def test_the_session_cookie_reads_dicomweb_and_nothing_else(api: Api) -> None:
    study = await store(api, "HB-XL-WD", make_study(count=1, patient_id="WD-1", size=16))
    await route_all(api)
    token = await sign_in(api, "wang.reader")
    cookies = {"Cookie": f"telemed_session={token}"}
    found = await api.client.get("/dicomweb/studies", headers=cookies)
    assert found.status == 200
    assert (await found.json())[0]["0020000D"]["Value"] == [study]
    # Not a write, and not the JSON API: those still need the bearer header.
    stow = await api.client.post(
        "/dicomweb/studies",
        data=b"--x--",
        headers={
            **cookies,
            "Content-Type": 'multipart/related; type="application/dicom"; boundary=x',
        },
    )
    assert stow.status == 401
    assert (await api.client.get("/api/v1/worklist", headers=cookies)).status == 401
    # Signing out revokes the session's token.
    out = await api.client.post("/logout", headers=cookies, allow_redirects=False)
    assert out.status == 303
    assert (await api.client.get("/dicomweb/studies", headers=cookies)).status == 401


async def test_wrong_password_and_unsafe_next_paths(api: Api) -> None:
    wrong = await api.client.post(
        "/login", data={"username": "wang.reader", "password": "nope"}, allow_redirects=False
    )
    assert wrong.status == 401
    assert "Set-Cookie" not in wrong.headers
    offsite = await api.client.post(
        "/login",
        data={
            "username": "wang.reader",
            "password": "demo-wang.reader",
            "next": "//evil.example/",
        },
        allow_redirects=False,
    )
    assert offsite.headers["Location"] == "/"


async def test_the_worklist_page_links_each_case_to_the_viewer(api: Api) -> None:
    study = await store(
        api, "HB-XL-WD", make_study(count=1, patient_id="WD-1", patient_name="王^小明", size=16)
    )
    await route_all(api)
    unsigned = await api.client.get("/", allow_redirects=False)
    assert unsigned.status == 303
    token = await sign_in(api, "wang.reader")
    page = await api.client.get("/", headers={"Cookie": f"telemed_session={token}"})
    text = await page.text()
    assert "王 小明" in text
    assert f'href="/viewer?StudyInstanceUIDs={study}"' in text


async def test_the_viewer_is_served_from_the_ohif_bundle_with_our_config(api: Api) -> None:
    assert (viewer_dir() / "index.html").is_file(), "run 'make viewer' to fetch the OHIF bundle"
    unsigned = await api.client.get("/viewer?StudyInstanceUIDs=1.2.3", allow_redirects=False)
    assert unsigned.status == 303
    assert unsigned.headers["Location"].startswith("/login?next=/viewer")
    token = await sign_in(api, "wang.reader")
    cookies = {"Cookie": f"telemed_session={token}"}
    page = await api.client.get("/viewer?StudyInstanceUIDs=1.2.3", headers=cookies)
    assert page.status == 200
    assert page.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert page.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    html = await page.text()
    assert "/app-config.js" in html
    config = await (await api.client.get("/app-config.js")).text()
    assert "window.location.origin + '/dicomweb'" in config
    bundle = re.search(r'src="/(app\.bundle\.[0-9a-f]+\.js)"', html)
    assert bundle
    script = await api.client.get(f"/{bundle.group(1)}")
    assert script.status == 200
    assert script.content_type.endswith("javascript")
    wasm = next(viewer_dir().glob("*.wasm"))
    served = await api.client.get(f"/{wasm.name}")
    assert served.content_type == "application/wasm"
    # Another OHIF route answers its index.html; the API's unknown paths stay problems.
    other_route = await api.client.get("/segmentation?StudyInstanceUIDs=1.2.3", headers=cookies)
    assert "/app-config.js" in await other_route.text()
    api_unknown = await api.client.get("/api/v1/nothing-here", headers=api.auth("wang.reader"))
    assert api_unknown.status == 404
    assert api_unknown.content_type == "application/problem+json"
