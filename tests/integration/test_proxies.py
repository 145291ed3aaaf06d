"""Behind a configured reverse proxy, its X-Forwarded-* headers say who the client is and how
it came (the audit's address, the sign-in limits, Secure cookies, HSTS and DICOMweb URLs);
the same headers from anyone else are ignored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path

import pytest

from teleradiology.http.proxies import client_address
from tests.factory import make_study
from tests.integration.conftest import Api, local_settings, serving
from tests.integration.test_dicomweb import store

PROXY = ip_network("127.0.0.0/8")
FORWARDED = {
    "X-Forwarded-For": "203.0.113.7, 10.1.2.3",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "pacs.hb.example",
}


@pytest.fixture
async def behind_proxy(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The service with the test client's own address (loopback) as a trusted proxy, and
    10.0.0.0/8 as the network of further proxies."""
    settings = local_settings(
        database_url, tmp_path, trusted_proxies=(PROXY, ip_network("10.0.0.0/8"))
    )
    async with serving(settings) as served:
        yield served


def test_the_client_is_the_first_address_that_is_not_a_trusted_proxy() -> None:
    proxies = [ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32")]
    assert client_address("203.0.113.7, 10.1.2.3", "127.0.0.1", proxies) == "203.0.113.7"
    # a client cannot hide behind an address it writes itself in front of its own
    assert client_address("1.2.3.4, 203.0.113.7", "127.0.0.1", proxies) == "203.0.113.7"
    assert client_address("10.9.9.9", "127.0.0.1", proxies) == "10.9.9.9"
    assert client_address("not-an-address, 10.1.1.1", "127.0.0.1", proxies) == "not-an-address"


async def test_a_trusted_proxy_gives_the_address_scheme_and_host(behind_proxy: Api) -> None:
    api = behind_proxy
    signed = await api.client.post(
        "/login",
        data={"username": "wang.reader", "password": "demo-wang.reader", "next": "/worklist"},
        headers={**FORWARDED, "Origin": "https://pacs.hb.example"},
        allow_redirects=False,
    )
    assert signed.status == 303
    assert "Secure" in signed.headers["Set-Cookie"]
    assert signed.headers["Strict-Transport-Security"].startswith("max-age=")
    study = await store(api, "HB-XL-WD", make_study(count=1, patient_id="PX-1", size=16))
    found = await api.client.get(
        "/dicomweb/studies",
        params={"StudyInstanceUID": study},
        headers={**api.auth("xlwd.clinic"), **FORWARDED},
    )
    body = await found.json()
    assert body[0]["00081190"]["Value"] == [f"https://pacs.hb.example/dicomweb/studies/{study}"]
    addresses = await api.pool.fetch(
        "select address::text from audit where username in ('wang.reader', 'xlwd.clinic')"
    )
    assert {r["address"].split("/")[0] for r in addresses} == {"203.0.113.7"}


async def test_the_sign_in_limit_counts_the_forwarded_client(behind_proxy: Api) -> None:
    api = behind_proxy

    async def attempt(client: str, username: str) -> int:
        answer = await api.client.post(
            "/api/v1/login",
            json={"username": username, "password": "wrong"},
            headers={"X-Forwarded-For": client},
        )
        return answer.status

    statuses = [await attempt("203.0.113.9", f"nobody{n}") for n in range(8)]
    assert statuses[:5] == [401] * 5
    assert 429 in statuses[5:]
    # another client behind the same proxy is not held back by the first one's failures
    assert await attempt("198.51.100.4", "nobody-else") == 401


async def test_without_a_trusted_proxy_the_headers_are_ignored(api: Api) -> None:
    await api.client.get("/api/v1/worklist", headers={**api.auth("wang.reader"), **FORWARDED})
    addresses = await api.pool.fetch(
        "select address::text from audit where username = 'wang.reader'"
    )
    assert addresses
    assert all(r["address"].split("/")[0] == "127.0.0.1" for r in addresses)
