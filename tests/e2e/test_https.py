"""``telemed serve`` with a certificate and key speaks HTTPS on its web port: answers carry
HSTS, the session cookie is Secure, and the same port refuses plain HTTP."""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import FAST
from tests.e2e.harness import Service, running_service, service_env
from tests.integration.test_dicom_peers import Pki
from tests.integration.test_dicom_peers import pki as pki

pytestmark = pytest.mark.dcmtk


@pytest.fixture
def service(database_url: str, tmp_path: Path, pki: Pki) -> Iterator[Service]:
    env = service_env(database_url=database_url, storage_url=None, data_dir=tmp_path / "var")
    env |= {
        "TELEMED_HTTPS_CERT": pki.path("server.crt"),
        "TELEMED_HTTPS_KEY": pki.path("server.key"),
    }
    with running_service(env, *FAST, "--role", "api", https_ca=pki.path("ca.crt")) as running:
        yield running


def _connection(service: Service, pki: Pki) -> http.client.HTTPSConnection:
    port = urllib.parse.urlsplit(service.base_url).port
    tls = ssl.create_default_context(cafile=pki.path("ca.crt"))
    return http.client.HTTPSConnection("localhost", port, context=tls, timeout=30)


def test_the_web_port_speaks_https_with_hsts_and_secure_cookies(service: Service, pki: Pki) -> None:
    https = _connection(service, pki)
    try:
        https.request("GET", "/api/v1/openapi.json")
        answer = https.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["openapi"].startswith("3.")
        assert answer.getheader("Strict-Transport-Security", "").startswith("max-age=")
        form = urllib.parse.urlencode(
            {"username": "wang.reader", "password": "demo-wang.reader", "next": "/worklist"}
        )
        https.request(
            "POST",
            "/login",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": service.base_url,
            },
        )
        signed = https.getresponse()
        signed.read()
        assert signed.status == 303, signed.status
        cookie = signed.getheader("Set-Cookie", "")
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
    finally:
        https.close()


def test_plain_http_on_the_https_port_gets_no_answer(service: Service) -> None:
    port = urllib.parse.urlsplit(service.base_url).port
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        plain.request("GET", "/readyz")
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.getresponse()
    finally:
        plain.close()
