"""Signing in: an unknown name costs the same argon2 check as a wrong password, the check
does not hold the event loop, and an account that keeps getting its password wrong must wait
(429 with Retry-After), twice as long each time, while other accounts sign in as before."""

from __future__ import annotations

import asyncio
import statistics
import time

from teleradiology.http.context import SIGNIN_THROTTLE
from teleradiology.services.signin import FIRST_WAIT_S, FREE_FAILURES
from tests.integration.conftest import Api


async def _login(api: Api, username: str, password: str) -> tuple[int, dict[str, str], float]:
    began = time.monotonic()
    response = await api.client.post(
        "/api/v1/login", json={"username": username, "password": password}
    )
    await response.read()
    return response.status, dict(response.headers), time.monotonic() - began


async def test_an_unknown_name_takes_as_long_as_a_wrong_password(api: Api) -> None:
    known = [(await _login(api, "wang.reader", f"wrong-{n}-x"))[2] for n in range(3)]
    unknown = [(await _login(api, f"nobody{n}", "wrong-pass-x"))[2] for n in range(3)]
    api.app[SIGNIN_THROTTLE].succeeded("address:127.0.0.1")
    ratio = statistics.median(unknown) / statistics.median(known)
    print(
        f"median wrong password {statistics.median(known) * 1000:.0f} ms,"
        f" unknown user {statistics.median(unknown) * 1000:.0f} ms"
    )
    assert 0.33 < ratio < 3, (known, unknown)


async def test_the_event_loop_answers_while_passwords_are_checked(api: Api) -> None:
    logins = [asyncio.create_task(_login(api, "zhou.reader", f"wrong-{n}-xx")) for n in range(4)]
    await asyncio.sleep(0.02)
    began = time.monotonic()
    assert (await api.client.get("/healthz")).status == 200
    health_s = time.monotonic() - began
    slowest = max(took for _, _, took in await asyncio.gather(*logins))
    assert health_s < slowest, (health_s, slowest)


async def test_wrong_passwords_in_a_row_make_the_account_wait_and_others_go_on(api: Api) -> None:
    for n in range(FREE_FAILURES):
        assert (await _login(api, "wang.reader", f"guess-{n}-x"))[0] == 401
    status, headers, _ = await _login(api, "wang.reader", "demo-wang.reader")
    assert status == 429
    assert int(headers["Retry-After"]) == round(FIRST_WAIT_S)
    # Another account from another address signs in; the locked one waits its turn out.
    throttle = api.app[SIGNIN_THROTTLE]
    throttle.succeeded("address:127.0.0.1")
    assert (await _login(api, "zhou.reader", "demo-zhou.reader"))[0] == 200
    await asyncio.sleep(FIRST_WAIT_S + 0.1)
    assert (await _login(api, "wang.reader", "guess-again-x"))[0] == 401
    status, headers, _ = await _login(api, "wang.reader", "demo-wang.reader")
    assert status == 429
    assert int(headers["Retry-After"]) == round(2 * FIRST_WAIT_S)
    await asyncio.sleep(2 * FIRST_WAIT_S + 0.1)
    assert (await _login(api, "wang.reader", "demo-wang.reader"))[0] == 200
    assert throttle.wait_s("user:wang.reader", time.monotonic()) == 0
