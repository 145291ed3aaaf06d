"""What a browser is told: pages under a strict content policy and never framed by another
site, nothing sniffed; the session cookie's Secure flag and the pages' Origin check follow the
configured public address, not a header the client sends; sign-in returns only to this site."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api


async def test_pages_api_answers_and_refusals_carry_the_browser_headers(api: Api) -> None:
    page = await api.client.get("/login")
    assert page.status == 200
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'self'" in policy
    for answer in (page, await api.client.get("/api/v1/me"), await api.client.get("/healthz")):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in page.headers  # plain http here


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "/%09/evil.example", "/%0a/evil.example", "/\\evil.example", "http://e.x"],
)
async def test_sign_in_returns_only_to_a_path_of_this_site(api: Api, target: str) -> None:
    page = await api.client.get(f"/login?next={target}")
    assert 'name="next" value="/"' in await page.text()
    signed = await api.client.post(
        "/login",
        data={"username": "wang.reader", "password": "demo-wang.reader", "next": target},
        allow_redirects=False,
    )
    assert signed.status == 303
    assert signed.headers["Location"] == "/"


async def test_a_client_saying_https_does_not_make_the_cookie_secure(api: Api) -> None:
    signed = await api.client.post(
        "/login",
        data={"username": "wang.reader", "password": "demo-wang.reader", "next": "/worklist"},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert signed.status == 303
    assert signed.headers["Location"] == "/worklist"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" not in cookie
