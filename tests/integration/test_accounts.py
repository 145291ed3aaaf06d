"""Accounts with a lifecycle, over the real PostgreSQL: tokens expire, are listed and
revoked; a deactivated user's tokens, sessions and open event stream stop at once; passwords
are changed with the old one or set with a one-time link; an administrator releases an
account the sign-in throttle holds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage import accounts, network
from teleradiology.core.errors import BadRequest
from teleradiology.http.context import SIGNIN_THROTTLE
from teleradiology.http.sse import ACCESS_CHECK_S
from teleradiology.services import administration
from teleradiology.services.signin import FREE_FAILURES, Throttle, check_credentials
from tests.integration.conftest import Api
from tests.integration.one_language import choose_english
from tests.integration.test_viewer_session import sign_in


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _status(api: Api, token: str, path: str = "/api/v1/me") -> int:
    response = await api.client.get(path, headers=_bearer(token))
    await response.read()
    return response.status


async def _json(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _user_id(api: Api, username: str) -> Any:
    user = await network.user_by_username(api.pool, username)
    assert user is not None
    return user.id


# --- 1. every token expires --------------------------------------------------------------------


async def test_an_expired_token_answers_401_like_an_unknown_one(api: Api) -> None:
    user_id = await _user_id(api, "wang.reader")
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    token = await network.create_token(api.pool, user_id, expires_at=soon)
    assert await _status(api, token) == 200
    await asyncio.sleep(2)
    expired = await api.client.get("/api/v1/me", headers=_bearer(token))
    unknown = await api.client.get("/api/v1/me", headers=_bearer("no-such-token"))
    assert expired.status == unknown.status == 401
    assert (await expired.json())["detail"] == (await unknown.json())["detail"]
    # and it is no longer listed among the user's tokens
    listed = await _json(await api.client.get("/api/v1/me/tokens", headers=api.auth("wang.reader")))
    assert all(t["expires_at"] > datetime.now(UTC).isoformat() for t in listed["tokens"])


async def test_every_token_has_an_expiry_and_the_cli_takes_a_lifetime(api: Api) -> None:
    assert await api.pool.fetchval("select count(*) from api_token where expires_at is null") == 0
    _, default = await administration.issue_token(api.pool, "wang.reader")
    assert timedelta(days=29) < default - datetime.now(UTC) <= timedelta(days=30)
    token, two_days = await administration.issue_token(
        api.pool, "wang.reader", lifetime=timedelta(days=2)
    )
    assert timedelta(days=1.9) < two_days - datetime.now(UTC) <= timedelta(days=2)
    assert await _status(api, token) == 200
    with pytest.raises(BadRequest, match="between a minute"):
        await administration.issue_token(api.pool, "wang.reader", lifetime=timedelta(days=999))


async def test_demo_tokens_expire_and_a_new_start_revokes_the_last(api: Api) -> None:
    first = dict((u.username, t) for u, t in await administration.issue_demo_tokens(api.pool))
    listed = await _json(
        await api.client.get("/api/v1/me/tokens", headers=_bearer(first["hb.admin"]))
    )
    demo = [t for t in listed["tokens"] if t["kind"] == "demo"]
    assert len(demo) == 1
    until = datetime.fromisoformat(demo[0]["expires_at"])
    assert until - datetime.now(UTC) <= administration.DEMO_TOKEN_LIFETIME
    second = dict((u.username, t) for u, t in await administration.issue_demo_tokens(api.pool))
    assert await _status(api, first["hb.admin"]) == 401
    assert await _status(api, second["hb.admin"]) == 200


# --- 2. list and revoke ------------------------------------------------------------------------


async def test_a_user_lists_and_revokes_their_own_tokens_only(api: Api) -> None:
    user_id = await _user_id(api, "wang.reader")
    spare = await network.create_token(api.pool, user_id)
    mine = await _json(await api.client.get("/api/v1/me/tokens", headers=api.auth("wang.reader")))
    assert {t["username"] for t in mine["tokens"]} == {"wang.reader"}
    assert len(mine["tokens"]) == 2
    assert all("token" not in t for t in mine["tokens"])
    newest = mine["tokens"][0]["id"]
    # someone else cannot revoke it
    refused = await api.client.delete(f"/api/v1/tokens/{newest}", headers=api.auth("zhou.reader"))
    assert refused.status == 404
    assert await _status(api, spare) == 200
    done = await api.client.delete(f"/api/v1/tokens/{newest}", headers=api.auth("wang.reader"))
    assert (await _json(done)) == {"id": newest, "revoked": True}
    assert await _status(api, spare) == 401
    assert await _status(api, api.tokens["wang.reader"]) == 200


async def test_an_administrator_lists_and_revokes_tokens_of_their_network_only(api: Api) -> None:
    listed = await _json(await api.client.get("/api/v1/admin/tokens", headers=api.auth("hb.admin")))
    names = {t["username"] for t in listed["tokens"]}
    assert {"wang.reader", "xlwd.clinic", "hb.admin"} <= names
    assert "gs.reader" not in names
    assert "xy.admin" not in names
    wang = await _json(
        await api.client.get(
            "/api/v1/admin/tokens", params={"username": "wang.reader"}, headers=api.auth("hb.admin")
        )
    )
    (token,) = wang["tokens"]
    revoked = await api.client.delete(f"/api/v1/tokens/{token['id']}", headers=api.auth("hb.admin"))
    assert (await _json(revoked))["revoked"] is True
    assert await _status(api, api.tokens["wang.reader"]) == 401
    gs = await _json(
        await api.client.get(
            "/api/v1/admin/tokens", params={"username": "gs.reader"}, headers=api.auth("xy.admin")
        )
    )
    outside = await api.client.delete(
        f"/api/v1/tokens/{gs['tokens'][0]['id']}", headers=api.auth("hb.admin")
    )
    assert outside.status == 404
    assert await _status(api, api.tokens["gs.reader"]) == 200
    readers = await api.client.get("/api/v1/admin/tokens", headers=api.auth("zhou.reader"))
    assert readers.status == 403


# --- 3. deactivation ---------------------------------------------------------------------------


async def _read_until(stream: Any, marker: bytes, timeout_s: float) -> list[bytes]:
    lines: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        while True:
            line = await stream.content.readline()
            lines.append(line)
            if marker in line or not line:
                return lines


async def test_deactivating_stops_tokens_sessions_and_the_open_stream(api: Api) -> None:
    cookie = await sign_in(api, "wang.reader")
    cookies = {"Cookie": f"telemed_session={cookie}"}
    assert (await api.client.get("/dicomweb/studies", headers=cookies)).status == 200
    stream = await api.client.get("/api/v1/events", headers=api.auth("wang.reader"))
    assert stream.status == 200
    page_stream = await api.client.get("/events", headers=cookies)
    assert page_stream.status == 200
    listed = await _json(await api.client.get("/api/v1/admin/users", headers=api.auth("hb.admin")))
    assert {"username": "wang.reader", "active": True}.items() <= next(
        u for u in listed["users"] if u["username"] == "wang.reader"
    ).items()

    began = time.monotonic()
    changed = await api.client.patch(
        "/api/v1/admin/users/wang.reader", json={"active": False}, headers=api.auth("hb.admin")
    )
    assert (await _json(changed))["active"] is False
    assert await _status(api, api.tokens["wang.reader"]) == 401
    assert (await api.client.get("/dicomweb/studies", headers=cookies)).status == 401
    for open_stream in (stream, page_stream):
        lines = await _read_until(open_stream, b"signed-out", ACCESS_CHECK_S * 3)
        assert any(b"event: signed-out" in line for line in lines)
        rest = await _read_until(open_stream, b"\0", ACCESS_CHECK_S)
        assert rest[-1] == b"", "the stream is closed after it says so"
    assert time.monotonic() - began < ACCESS_CHECK_S * 3
    # a new stream is refused; the user cannot sign in
    assert (await api.client.get("/api/v1/events", headers=api.auth("wang.reader"))).status == 401
    login = await api.client.post(
        "/api/v1/login", json={"username": "wang.reader", "password": "demo-wang.reader"}
    )
    assert login.status == 401
    # reactivated: signs in again, the old tokens stay revoked
    back = await api.client.patch(
        "/api/v1/admin/users/wang.reader", json={"active": True}, headers=api.auth("hb.admin")
    )
    assert (await _json(back))["active"] is True
    assert await _status(api, api.tokens["wang.reader"]) == 401
    login = await api.client.post(
        "/api/v1/login", json={"username": "wang.reader", "password": "demo-wang.reader"}
    )
    assert login.status == 200


async def test_deactivation_is_scoped_and_not_of_oneself(api: Api) -> None:
    outside = await api.client.patch(
        "/api/v1/admin/users/gs.reader", json={"active": False}, headers=api.auth("hb.admin")
    )
    assert outside.status == 404
    itself = await api.client.patch(
        "/api/v1/admin/users/hb.admin", json={"active": False}, headers=api.auth("hb.admin")
    )
    assert itself.status == 409
    by_reader = await api.client.patch(
        "/api/v1/admin/users/zhou.reader", json={"active": False}, headers=api.auth("wang.reader")
    )
    assert by_reader.status == 403
    bad = await api.client.patch(
        "/api/v1/admin/users/zhou.reader", json={"active": "no"}, headers=api.auth("hb.admin")
    )
    assert bad.status == 400
    assert await _status(api, api.tokens["gs.reader"]) == 200
    assert await _status(api, api.tokens["zhou.reader"]) == 200


# --- 4. passwords ------------------------------------------------------------------------------


async def _login(api: Api, username: str, password: str) -> int:
    response = await api.client.post(
        "/api/v1/login", json={"username": username, "password": password}
    )
    await response.read()
    return response.status


async def test_changing_a_password_needs_the_old_one_and_ends_other_sessions(api: Api) -> None:
    other = await network.create_token(api.pool, await _user_id(api, "zhou.reader"))
    wrong = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": "not-it-at-all", "new_password": "a-new-long-one"},
        headers=api.auth("zhou.reader"),
    )
    assert wrong.status == 401
    demo = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": "demo-zhou.reader", "new_password": "demo-zhou.reader"},
        headers=api.auth("zhou.reader"),
    )
    assert demo.status == 400
    done = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": "demo-zhou.reader", "new_password": "a-new-long-one"},
        headers=api.auth("zhou.reader"),
    )
    assert (await _json(done))["changed"] is True
    assert await _status(api, other) == 401
    assert await _status(api, api.tokens["zhou.reader"]) == 200  # the one it was made with
    assert await _login(api, "zhou.reader", "demo-zhou.reader") == 401
    assert await _login(api, "zhou.reader", "a-new-long-one") == 200
    assert "zhou.reader" not in await accounts.demo_password_users(api.pool)


async def test_a_reset_link_sets_the_password_once_and_expires(api: Api) -> None:
    reset = await api.client.post(
        "/api/v1/admin/users/li.ecg/password-reset", headers=api.auth("hb.admin")
    )
    answer = await _json(reset)
    assert answer["link"].startswith("/password#")
    secret = answer["link"].split("#", 1)[1]
    # until it is used, the old password still signs in
    assert await _login(api, "li.ecg", "demo-li.ecg") == 200
    short = await api.client.post(
        "/api/v1/password/link", json={"link": secret, "new_password": "short"}
    )
    assert short.status == 400
    used = await api.client.post(
        "/api/v1/password/link", json={"link": secret, "new_password": "li-chose-this-one"}
    )
    assert (await _json(used)) == {"username": "li.ecg"}
    assert await _status(api, api.tokens["li.ecg"]) == 401
    assert await _login(api, "li.ecg", "li-chose-this-one") == 200
    again = await api.client.post(
        "/api/v1/password/link", json={"link": secret, "new_password": "another-long-one"}
    )
    assert again.status == 404
    # an expired link does nothing
    stale = await accounts.create_password_link(
        api.pool,
        await _user_id(api, "li.ecg"),
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
        created_by=None,
    )
    late = await api.client.post(
        "/api/v1/password/link", json={"link": stale, "new_password": "too-late-for-it"}
    )
    assert late.status == 404
    assert await _login(api, "li.ecg", "li-chose-this-one") == 200
    outside = await api.client.post(
        "/api/v1/admin/users/gs.reader/password-reset", headers=api.auth("hb.admin")
    )
    assert outside.status == 404


async def _reset_link_said(api: Api, username: str) -> tuple[str, str, str]:
    """An administrator's reset link for the user: its message, link and expiry (UTC)."""
    answer = await _json(
        await api.client.post(
            f"/api/v1/admin/users/{username}/password-reset", headers=api.auth("hb.admin")
        )
    )
    until = datetime.fromisoformat(answer["expires_at"]).astimezone(UTC)
    return answer["show"], answer["link"], f"{until:%Y-%m-%d %H:%M}"


async def test_a_reset_link_is_passed_on_in_its_users_language(api: Api) -> None:
    await choose_english(api, "li.ecg")
    said, link, until = await _reset_link_said(api, "li.ecg")
    assert said == f"One-time link for li.ecg (valid until {until} UTC): {link}"
    said, link, until = await _reset_link_said(api, "wang.reader")
    assert said == f"wang.reader 的一次性链接（有效期至 {until} UTC）：{link}"


async def test_the_password_page_sets_a_password_from_its_link(api: Api) -> None:
    reset = await _json(
        await api.client.post(
            "/api/v1/admin/users/xl.ecg/password-reset", headers=api.auth("hb.admin")
        )
    )
    page = await api.client.get("/password")
    assert page.status == 200
    assert "/api/v1/password/link" in await page.text()
    secret = reset["link"].split("#", 1)[1]
    used = await api.client.post(
        "/api/v1/password/link", json={"link": secret, "new_password": "xl-own-password"}
    )
    assert used.status == 200
    assert await _login(api, "xl.ecg", "xl-own-password") == 200


# --- 6. the sign-in throttle -------------------------------------------------------------------


async def test_an_administrator_releases_a_throttled_account(api: Api) -> None:
    for n in range(FREE_FAILURES):
        assert await _login(api, "hb.duty", f"guess-{n}-xx") == 401
    api.app[SIGNIN_THROTTLE].succeeded("address:127.0.0.1")
    assert await _login(api, "hb.duty", "demo-hb.duty") == 429
    # another process's throttle holds the account as well
    elsewhere = Throttle()
    for _ in range(FREE_FAILURES + 1):
        elsewhere.failed("user:hb.duty", time.monotonic())
    assert elsewhere.wait_s("user:hb.duty", time.monotonic()) > 0
    refused = await api.client.post(
        "/api/v1/admin/users/hb.duty/unlock", headers=api.auth("wang.reader")
    )
    assert refused.status == 403
    done = await api.client.post("/api/v1/admin/users/hb.duty/unlock", headers=api.auth("hb.admin"))
    assert (await _json(done)) == {"username": "hb.duty", "unlocked": True}
    assert await _login(api, "hb.duty", "demo-hb.duty") == 200
    user_id = await check_credentials(api.pool, elsewhere, "hb.duty", "demo-hb.duty", address=None)
    assert user_id == await _user_id(api, "hb.duty")


async def test_the_accounts_page_lists_and_changes_the_network_users(api: Api) -> None:
    cookie = await sign_in(api, "hb.admin")
    headers = {"Cookie": f"telemed_session={cookie}"}
    page = await api.client.get("/admin/accounts", headers=headers)
    text = await page.text()
    assert page.status == 200
    assert 'data-user="wang.reader"' in text
    assert 'data-user="gs.reader"' not in text
    assert "/admin/users/wang.reader/deactivate" in text
    action = {**headers, "X-Telemed-Page": "1"}
    off = await api.client.post("/admin/users/wang.reader/deactivate", headers=action)
    assert (await _json(off))["active"] is False
    assert await _status(api, api.tokens["wang.reader"]) == 401
    link = await _json(
        await api.client.post("/admin/users/wang.reader/password-reset", headers=action)
    )
    assert link["link"] in link["show"]
    (token,) = [
        t["id"]
        for t in (
            await _json(await api.client.get("/api/v1/admin/tokens", headers=api.auth("hb.admin")))
        )["tokens"]
        if t["username"] == "zhou.reader"
    ]
    revoked = await api.client.post(f"/admin/tokens/{token}/revoke", headers=action)
    assert (await _json(revoked))["revoked"] is True
    assert await _status(api, api.tokens["zhou.reader"]) == 401
    reader = await sign_in(api, "li.ecg")
    assert (
        await api.client.get("/admin/accounts", headers={"Cookie": f"telemed_session={reader}"})
    ).status == 403


async def test_an_administrator_adds_a_user_who_sets_their_own_password(api: Api) -> None:
    body = {"username": "new.reader", "role": "reader", "facility": "HB-XL", "specialties": ["ecg"]}
    created = await _json(
        await api.client.post("/api/v1/admin/users", json=body, headers=api.auth("hb.admin")), 201
    )
    assert created["user"]["active"] is True
    assert created["user"]["has_password"] is False
    assert await _login(api, "new.reader", "") == 401
    secret = created["link"].split("#", 1)[1]
    used = await api.client.post(
        "/api/v1/password/link", json={"link": secret, "new_password": "new-reader-pass"}
    )
    assert used.status == 200
    assert await _login(api, "new.reader", "new-reader-pass") == 200
    taken = await api.client.post("/api/v1/admin/users", json=body, headers=api.auth("hb.admin"))
    assert taken.status == 409
    elsewhere = {**body, "username": "gs.new", "facility": "GS-COUNTY"}
    outside = await api.client.post(
        "/api/v1/admin/users", json=elsewhere, headers=api.auth("hb.admin")
    )
    assert outside.status == 404
    no_specialty = {**body, "username": "n2", "specialties": []}
    refused = await api.client.post(
        "/api/v1/admin/users", json=no_specialty, headers=api.auth("hb.admin")
    )
    assert refused.status == 400
    assert "阅片医生至少须有一个专业" in (await refused.json())["detail"]
    with_password = {**body, "username": "n3", "password": "sneaky-plain"}
    assert (
        await api.client.post(
            "/api/v1/admin/users", json=with_password, headers=api.auth("hb.admin")
        )
    ).status == 400


async def test_a_users_own_page_changes_the_password_and_revokes_tokens(api: Api) -> None:
    cookie = await sign_in(api, "sun.city.ecg")
    headers = {"Cookie": f"telemed_session={cookie}"}
    spare = await network.create_token(api.pool, await _user_id(api, "sun.city.ecg"))
    page = await api.client.get("/account", headers=headers)
    text = await page.text()
    assert page.status == 200
    assert text.count("data-token=") == 3  # the fixture's, the session's, the spare
    mine = await _json(await api.client.get("/api/v1/me/tokens", headers=_bearer(spare)))
    spare_id = mine["tokens"][0]["id"]  # the newest first
    assert f"/account/tokens/{spare_id}/revoke" in text
    action = {**headers, "X-Telemed-Page": "1"}
    revoked = await api.client.post(f"/account/tokens/{spare_id}/revoke", headers=action)
    assert (await _json(revoked))["revoked"] is True
    assert await _status(api, spare) == 401
    changed = await api.client.post(
        "/account/password",
        json={"current_password": "demo-sun.city.ecg", "new_password": "sun-picked-this"},
        headers=action,
    )
    assert (await _json(changed))["changed"] is True
    # the session it was changed from goes on; every other token stops
    assert (await api.client.get("/account", headers=headers)).status == 200
    assert await _status(api, api.tokens["sun.city.ecg"]) == 401
    assert await _login(api, "sun.city.ecg", "sun-picked-this") == 200
